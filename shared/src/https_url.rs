//! The rule for URLs Koppel calls or hands out (OSR endpoints, webhook trigger URLs): an
//! absolute `https://` URL with a host and no credentials in it.

use crate::body::Fields;

/// Records what is wrong with `url` under `field`, if anything.
pub fn check(url: &str, field: &str, errors: &mut Fields) {
    let problem = match url::Url::parse(url) {
        Err(_) => Some("must be an absolute URL"),
        Ok(u) if u.scheme() != "https" => Some("must be an https:// URL"),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("must have a host"),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            Some("must not carry credentials")
        }
        Ok(_) => None,
    };
    if let Some(p) = problem {
        errors.push(field, p);
    }
}
