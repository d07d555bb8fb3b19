//! Reading a v1 JSON object field by field, so that one 422 lists every bad field
//! (wrong types, missing and unknown fields alike). On create every required field must be
//! present; on `PATCH` an absent field is left as it is and `null` clears an optional one.

use koppel_shared::body::Fields;
use serde_json::{Map, Value};

pub struct Input<'a> {
    map: &'a Map<String, Value>,
    known: &'a [&'a str],
    prefix: String,
}

impl<'a> Input<'a> {
    pub fn new(map: &'a Map<String, Value>, known: &'a [&'a str]) -> Self {
        Self {
            map,
            known,
            prefix: String::new(),
        }
    }

    /// Field names are reported as `<prefix>.<name>`.
    pub fn nested(mut self, prefix: &str) -> Self {
        self.prefix = format!("{prefix}.");
        self
    }

    pub fn field(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Koppel's own resources reject unknown fields (a typo must not be silently ignored).
    pub fn unknown_fields(&self, e: &mut Fields) {
        for k in self.map.keys() {
            if !self.known.contains(&k.as_str()) {
                e.push(self.field(k), "is not a known field");
            }
        }
    }

    fn get(&self, name: &str, required: bool, e: &mut Fields) -> Option<&'a Value> {
        match self.map.get(name) {
            None if required => {
                e.push(self.field(name), "is required");
                None
            }
            None => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&self, name: &str, required: bool, e: &mut Fields) -> Option<&'a str> {
        match self.get(name, required, e)? {
            Value::String(s) => Some(s),
            _ => {
                e.push(self.field(name), "must be a string");
                None
            }
        }
    }

    /// `Some(None)` for an explicit `null`.
    pub fn nullable_string(&self, name: &str, e: &mut Fields) -> Option<Option<&'a str>> {
        match self.get(name, false, e)? {
            Value::Null => Some(None),
            Value::String(s) => Some(Some(s)),
            _ => {
                e.push(self.field(name), "must be a string or null");
                None
            }
        }
    }

    pub fn strings(&self, name: &str, required: bool, e: &mut Fields) -> Option<Vec<&'a str>> {
        let v = self.get(name, required, e)?;
        let all: Option<Vec<&str>> = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect());
        if all.is_none() {
            e.push(self.field(name), "must be an array of strings");
        }
        all
    }

    pub fn bool(&self, name: &str, e: &mut Fields) -> Option<bool> {
        match self.get(name, false, e)? {
            Value::Bool(b) => Some(*b),
            _ => {
                e.push(self.field(name), "must be true or false");
                None
            }
        }
    }

    pub fn nullable_u32(&self, name: &str, e: &mut Fields) -> Option<Option<u32>> {
        match self.get(name, false, e)? {
            Value::Null => Some(None),
            v => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(Some(n)),
                None => {
                    e.push(self.field(name), "must be a whole number or null");
                    None
                }
            },
        }
    }

    pub fn nullable_object(
        &self,
        name: &str,
        e: &mut Fields,
    ) -> Option<Option<&'a Map<String, Value>>> {
        match self.get(name, false, e)? {
            Value::Null => Some(None),
            Value::Object(m) => Some(Some(m)),
            _ => {
                e.push(self.field(name), "must be an object or null");
                None
            }
        }
    }

    pub fn array(&self, name: &str, e: &mut Fields) -> Option<&'a Vec<Value>> {
        match self.get(name, false, e)? {
            Value::Array(a) => Some(a),
            _ => {
                e.push(self.field(name), "must be an array");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_problem_is_listed() {
        let v = json!({"a": 1, "b": ["x", 2], "c": "yes", "zz": true, "n": -1});
        let m = v.as_object().unwrap();
        let i = Input::new(m, &["a", "b", "c", "d", "n"]);
        let mut e = Fields::new();
        i.unknown_fields(&mut e);
        assert_eq!(i.string("a", true, &mut e), None);
        assert_eq!(i.strings("b", true, &mut e), None);
        assert_eq!(i.bool("c", &mut e), None);
        assert_eq!(i.string("d", true, &mut e), None);
        assert_eq!(i.nullable_u32("n", &mut e), None);
        let fields: Vec<_> = e
            .finish()
            .unwrap_err()
            .errors
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["zz", "a", "b", "c", "d", "n"]);
    }

    #[test]
    fn nested_names() {
        let v = json!({"x": 1});
        let i = Input::new(v.as_object().unwrap(), &[]).nested("jwt");
        let mut e = Fields::new();
        i.unknown_fields(&mut e);
        assert_eq!(e.finish().unwrap_err().errors[0].field, "jwt.x");
    }
}
