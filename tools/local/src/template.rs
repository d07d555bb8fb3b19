//! Reads template.yaml: CloudFormation short-form tags become their long form, and
//! intrinsic functions resolve against the resources the local setup created. Routes,
//! the authorizer, gateway responses and function environments all come from here, so the
//! local stack never repeats what the template says.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};
use serde_yaml_ng::Value as Yaml;

pub const REGION_FALLBACK: &str = "eu-west-1";
/// The emulator's account.
pub const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone)]
pub struct Template {
    pub doc: Value,
}

/// Names and attributes of created resources, for `Ref` and `Fn::GetAtt`.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub refs: HashMap<String, String>,
    pub attrs: HashMap<(String, String), String>,
    pub region: String,
    /// `AWS::StackName`, also the prefix of local resource names.
    pub stack: String,
}

/// A route of the API: an `Api` event of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub function: String,
    pub path: String,
    /// Upper case, or `ANY`.
    pub method: String,
    /// `false` when the event says `Auth: {Authorizer: NONE}`.
    pub authorized: bool,
    /// `ResponseTransferMode: RESPONSE_STREAM`: API Gateway invokes the function with
    /// response streaming and expects the streaming format back.
    pub streaming: bool,
}

/// A function fed by a queue (an `SQS` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConsumer {
    pub function: String,
    /// Logical id of the queue.
    pub queue: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
}

/// A function run on a timer (a `Schedule` event, i.e. an EventBridge rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub function: String,
    /// The event's logical id, as in the rule's name.
    pub name: String,
    /// The template's expression, e.g. `rate(1 minute)`.
    pub expression: String,
    pub every: Duration,
}

/// The period of an EventBridge `rate(N unit)` expression. `cron(...)` has no fixed
/// period, so the local stack does not run it.
pub fn parse_rate(expression: &str) -> Result<Duration, String> {
    let bad =
        || format!("`{expression}`: the local stack runs rate(N minutes|hours|days) schedules");
    let inner = expression
        .trim()
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (n, unit) = inner.trim().split_once(' ').ok_or_else(bad)?;
    let n: u64 = n.parse().map_err(|_| bad())?;
    // EventBridge wants the singular for 1 and the plural otherwise.
    let secs = match (unit.trim(), n) {
        ("minute", 1) | ("minutes", 2..) => 60,
        ("hour", 1) | ("hours", 2..) => 3600,
        ("day", 1) | ("days", 2..) => 86_400,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(n * secs))
}

/// A `GatewayResponses` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayResponse {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub template: Option<String>,
}

fn yaml_to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(s) => Value::Array(s.iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let k = k.as_str().ok_or("mapping keys must be strings")?;
                out.insert(k.to_owned(), yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            let name = t.tag.to_string();
            let name = name.trim_start_matches('!');
            let inner = yaml_to_json(&t.value)?;
            match name {
                "Ref" | "Condition" => json!({ name: inner }),
                // `!GetAtt A.B` is `Fn::GetAtt: [A, B]`.
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (a, b) = s
                            .split_once('.')
                            .ok_or("!GetAtt needs Resource.Attribute")?;
                        json!({ "Fn::GetAtt": [a, b] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                other => json!({ format!("Fn::{other}"): inner }),
            }
        }
    })
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let y: Yaml = serde_yaml_ng::from_str(text).map_err(|e| format!("template.yaml: {e}"))?;
        Ok(Self {
            doc: yaml_to_json(&y)?,
        })
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    pub fn resource(&self, id: &str) -> Result<&Value, String> {
        self.doc["Resources"]
            .get(id)
            .ok_or_else(|| format!("template.yaml has no resource {id}"))
    }

    pub fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"] == ty)
    }

    /// Parameter values: defaults, then the local stack's values for parameters a
    /// deployment must choose (`Metadata.KoppelLocal.ParameterValues`), then overrides.
    pub fn parameters(&self, overrides: &HashMap<String, String>) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for (k, p) in self.doc["Parameters"].as_object().into_iter().flatten() {
            if let Some(d) = p.get("Default") {
                out.insert(k.clone(), scalar(d));
            }
        }
        let local = &self.doc["Metadata"]["KoppelLocal"]["ParameterValues"];
        for (k, v) in local.as_object().into_iter().flatten() {
            out.insert(k.clone(), scalar(v));
        }
        out.extend(overrides.clone());
        out
    }

    /// The `Properties` of every event of type `ty` of every function, with the function's
    /// logical id, in template order.
    fn events<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.of_type("AWS::Serverless::Function")
            .flat_map(move |(id, f)| {
                f["Properties"]["Events"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, e)| e)
                    .filter(move |e| e["Type"] == ty)
                    .map(move |e| (id, &e["Properties"]))
            })
    }

    /// Every `Api` event of every function, in template order.
    pub fn routes(&self) -> Vec<Route> {
        let mut out = Vec::new();
        for (id, p) in self.events("Api") {
            out.push(Route {
                function: id.to_owned(),
                path: p["Path"].as_str().unwrap_or("/").to_owned(),
                method: p["Method"].as_str().unwrap_or("any").to_uppercase(),
                authorized: p["Auth"]["Authorizer"] != "NONE",
                streaming: p["ResponseTransferMode"] == "RESPONSE_STREAM",
            });
        }
        out
    }

    /// Every `SQS` event source of every function.
    pub fn queue_consumers(&self) -> Result<Vec<QueueConsumer>, String> {
        let mut out = Vec::new();
        for (id, p) in self.events("SQS") {
            let queue = match &p["Queue"]["Fn::GetAtt"] {
                Value::Array(a) if a.len() == 2 && a[1] == "Arn" => scalar(&a[0]),
                _ => {
                    return Err(format!(
                        "{id}: an SQS event's Queue must be !GetAtt <Queue>.Arn"
                    ));
                }
            };
            let report = p["FunctionResponseTypes"]
                .as_array()
                .is_some_and(|t| t.iter().any(|v| v == "ReportBatchItemFailures"));
            out.push(QueueConsumer {
                function: id.to_owned(),
                queue,
                batch_size: p["BatchSize"].as_u64().unwrap_or(10).min(10) as i32,
                report_batch_item_failures: report,
            });
        }
        Ok(out)
    }

    /// Every enabled `Schedule` event of every function.
    pub fn schedules(&self) -> Result<Vec<Schedule>, String> {
        let mut out = Vec::new();
        for f in self.of_type("AWS::Serverless::Function").map(|(id, _)| id) {
            let events = self.resource(f)?["Properties"]["Events"].as_object();
            for (name, e) in events.into_iter().flatten() {
                if e["Type"] != "Schedule" {
                    continue;
                }
                let p = &e["Properties"];
                if p["Enabled"] == false || p["State"] == "DISABLED" {
                    continue;
                }
                // A custom `Input` would replace the scheduled event the handler expects.
                if p.get("Input").is_some() {
                    return Err(format!("{f}.{name}: the local stack does not pass Input"));
                }
                let expression = p["Schedule"]
                    .as_str()
                    .ok_or_else(|| format!("{f}.{name}: Schedule must be an expression"))?;
                out.push(Schedule {
                    function: f.to_owned(),
                    name: name.clone(),
                    expression: expression.to_owned(),
                    every: parse_rate(expression).map_err(|e| format!("{f}.{name}: {e}"))?,
                });
            }
        }
        Ok(out)
    }

    /// The only `AWS::Serverless::Api` resource.
    pub fn api(&self) -> Result<(&str, &Value), String> {
        let mut apis = self.of_type("AWS::Serverless::Api");
        let api = apis
            .next()
            .ok_or("template.yaml declares no AWS::Serverless::Api")?;
        if apis.next().is_some() {
            return Err("the local gateway serves one AWS::Serverless::Api".into());
        }
        Ok(api)
    }

    /// The function behind the API's default authorizer, and its payload type.
    pub fn authorizer_function(&self) -> Result<String, String> {
        let (_, api) = self.api()?;
        let auth = &api["Properties"]["Auth"];
        let name = auth["DefaultAuthorizer"]
            .as_str()
            .ok_or("the API has no DefaultAuthorizer")?;
        let a = &auth["Authorizers"][name];
        if a["FunctionPayloadType"] != "REQUEST" {
            return Err(format!("authorizer {name} must be a REQUEST authorizer"));
        }
        match &a["FunctionArn"]["Fn::GetAtt"] {
            Value::Array(v) if v.len() == 2 => Ok(scalar(&v[0])),
            _ => Err(format!(
                "authorizer {name}: FunctionArn must be !GetAtt <Function>.Arn"
            )),
        }
    }

    pub fn gateway_responses(&self) -> Result<HashMap<String, GatewayResponse>, String> {
        let (_, api) = self.api()?;
        let mut out = HashMap::new();
        for (kind, r) in api["Properties"]["GatewayResponses"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let status = r
                .get("StatusCode")
                .map(|s| scalar(s).parse::<u16>())
                .transpose()
                .map_err(|_| format!("GatewayResponses.{kind}.StatusCode is not a status"))?;
            let headers = r["ResponseParameters"]["Headers"]
                .as_object()
                .into_iter()
                .flatten()
                // Static values are single-quoted, as API Gateway requires.
                .map(|(k, v)| (k.clone(), scalar(v).trim_matches('\'').to_owned()))
                .collect();
            let template = r["ResponseTemplates"]["application/json"]
                .as_str()
                .map(str::to_owned);
            out.insert(
                kind.clone(),
                GatewayResponse {
                    status,
                    headers,
                    template,
                },
            );
        }
        Ok(out)
    }

    /// `Metadata.BuildProperties.Binary` of a function: which crate's handler serves it.
    pub fn binary(&self, function: &str) -> Result<String, String> {
        self.resource(function)?["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{function} has no Metadata.BuildProperties.Binary"))
    }

    /// A function's environment: `Globals.Function` merged with its own, resolved.
    pub fn function_env(
        &self,
        function: &str,
        phys: &Physical,
        params: &HashMap<String, String>,
    ) -> Result<HashMap<String, String>, String> {
        let mut vars = Map::new();
        for src in [
            &self.doc["Globals"]["Function"]["Environment"]["Variables"],
            &self.resource(function)?["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(m) = src.as_object() {
                vars.extend(m.clone());
            }
        }
        vars.into_iter()
            .map(|(k, v)| Ok((k, scalar(&resolve(&v, phys, params)?))))
            .collect()
    }
}

/// A scalar as text.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Resolves `Ref`, `Fn::GetAtt`, `Fn::Sub` and `Fn::Join` against created resources.
pub fn resolve(
    v: &Value,
    phys: &Physical,
    params: &HashMap<String, String>,
) -> Result<Value, String> {
    let lookup_ref = |name: &str| -> Result<String, String> {
        match name {
            "AWS::Region" => Ok(phys.region.clone()),
            "AWS::AccountId" => Ok(ACCOUNT.into()),
            "AWS::URLSuffix" => Ok("amazonaws.com".into()),
            "AWS::StackName" => Ok(phys.stack.clone()),
            "AWS::Partition" => Ok("aws".into()),
            _ => params
                .get(name)
                .or_else(|| phys.refs.get(name))
                .cloned()
                .ok_or_else(|| format!("cannot resolve Ref {name}")),
        }
    };
    let get_att = |res: &str, att: &str| -> Result<String, String> {
        phys.attrs
            .get(&(res.to_owned(), att.to_owned()))
            .cloned()
            .ok_or_else(|| format!("cannot resolve Fn::GetAtt {res}.{att}"))
    };
    match v {
        Value::Object(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next().expect("one entry");
            match k.as_str() {
                "Ref" => Ok(Value::String(lookup_ref(&scalar(arg))?)),
                "Fn::GetAtt" => match arg {
                    Value::Array(a) if a.len() == 2 => {
                        Ok(Value::String(get_att(&scalar(&a[0]), &scalar(&a[1]))?))
                    }
                    _ => Err("Fn::GetAtt takes [Resource, Attribute]".into()),
                },
                "Fn::Sub" => {
                    let s = arg
                        .as_str()
                        .ok_or("only the one-argument Fn::Sub is supported")?;
                    let mut out = String::new();
                    let mut rest = s;
                    while let Some(i) = rest.find("${") {
                        out.push_str(&rest[..i]);
                        let end = rest[i..].find('}').ok_or("unclosed ${ in Fn::Sub")? + i;
                        let name = &rest[i + 2..end];
                        out.push_str(&match name.split_once('.') {
                            Some((r, a)) if !name.starts_with("AWS::") => get_att(r, a)?,
                            _ => lookup_ref(name)?,
                        });
                        rest = &rest[end + 1..];
                    }
                    out.push_str(rest);
                    Ok(Value::String(out))
                }
                "Fn::Join" => match arg {
                    Value::Array(a) if a.len() == 2 => {
                        let sep = scalar(&a[0]);
                        let parts = a[1].as_array().ok_or("Fn::Join takes a list")?;
                        let parts: Vec<String> = parts
                            .iter()
                            .map(|p| resolve(p, phys, params).map(|v| scalar(&v)))
                            .collect::<Result<_, _>>()?;
                        Ok(Value::String(parts.join(&sep)))
                    }
                    _ => Err("Fn::Join takes [separator, list]".into()),
                },
                _ => Ok(json!({ k: resolve(arg, phys, params)? })),
            }
        }
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve(v, phys, params)?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        Value::Array(a) => a
            .iter()
            .map(|v| resolve(v, phys, params))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"
Parameters:
  Stage: {Type: String, Default: live}
Globals:
  Function:
    Environment:
      Variables:
        TABLE: !Ref T1
        QUEUE_ARN: !GetAtt Q1.Arn
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: !Ref Stage
      Auth:
        DefaultAuthorizer: A
        Authorizers:
          A: {FunctionArn: !GetAtt AuthFn.Arn, FunctionPayloadType: REQUEST}
      GatewayResponses:
        UNAUTHORIZED:
          StatusCode: "401"
          ResponseParameters: {Headers: {Content-Type: "'application/problem+json'"}}
          ResponseTemplates: {application/json: '{"id":"$context.requestId"}'}
  AuthFn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: authorize}}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: tokens}}
    Properties:
      Environment: {Variables: {URL: !Sub "https://${Api}.x/${Stage}"}}
      Events:
        Me: {Type: Api, Properties: {Path: /v1/me, Method: get}}
        Open: {Type: Api, Properties: {Path: /v1/otp, Method: post, Auth: {Authorizer: NONE}}}
        Stream: {Type: Api, Properties: {Path: /x.csv, Method: get, ResponseTransferMode: RESPONSE_STREAM}}
"#;

    #[test]
    fn reads_routes_authorizer_responses_and_env() {
        let t = Template::parse(T).unwrap();
        assert_eq!(
            t.routes(),
            vec![
                Route {
                    function: "Fn".into(),
                    path: "/v1/me".into(),
                    method: "GET".into(),
                    authorized: true,
                    streaming: false,
                },
                Route {
                    function: "Fn".into(),
                    path: "/v1/otp".into(),
                    method: "POST".into(),
                    authorized: false,
                    streaming: false,
                },
                Route {
                    function: "Fn".into(),
                    path: "/x.csv".into(),
                    method: "GET".into(),
                    authorized: true,
                    streaming: true,
                },
            ]
        );
        assert_eq!(t.authorizer_function().unwrap(), "AuthFn");
        assert_eq!(t.binary("Fn").unwrap(), "tokens");
        let r = &t.gateway_responses().unwrap()["UNAUTHORIZED"];
        assert_eq!(r.status, Some(401));
        assert_eq!(
            r.headers,
            vec![("Content-Type".into(), "application/problem+json".into())]
        );

        let mut phys = Physical {
            region: "eu-west-1".into(),
            ..Default::default()
        };
        phys.refs.insert("T1".into(), "koppel-T1".into());
        phys.refs.insert("Api".into(), "local".into());
        phys.attrs
            .insert(("Q1".into(), "Arn".into()), "arn:q".into());
        let params = t.parameters(&HashMap::new());
        let env = t.function_env("Fn", &phys, &params).unwrap();
        assert_eq!(env["TABLE"], "koppel-T1");
        assert_eq!(env["QUEUE_ARN"], "arn:q");
        assert_eq!(env["URL"], "https://local.x/live");
    }

    #[test]
    fn local_values_fill_parameters_a_deployment_must_choose() {
        let t = Template::parse(
            "Metadata:\n  KoppelLocal:\n    ParameterValues: {From: a@b.test}\nParameters:\n  From: {Type: String}\n  Stage: {Type: String, Default: live}\n",
        )
        .unwrap();
        let p = t.parameters(&HashMap::new());
        assert_eq!(p["From"], "a@b.test");
        assert_eq!(p["Stage"], "live");
        let over = HashMap::from([("From".to_owned(), "c@d.test".to_owned())]);
        assert_eq!(t.parameters(&over)["From"], "c@d.test");
        let bare = Template::parse("Parameters:\n  From: {Type: String}\n").unwrap();
        assert!(!bare.parameters(&HashMap::new()).contains_key("From"));
    }

    #[test]
    fn rates_parse_and_cron_does_not() {
        assert_eq!(parse_rate("rate(1 minute)"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_rate("rate(5 minutes)"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_rate(" rate(2 hours) "), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_rate("rate(1 day)"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 minutes)",
            "rate(1 second)",
            "rate(minute)",
            "rate(-1 minute)",
            "cron(0 12 * * ? *)",
            "every minute",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_schedules_skipping_disabled_ones() {
        let t = Template::parse(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Q: {Type: SQS, Properties: {Queue: !GetAtt Q1.Arn}}
        Often: {Type: Schedule, Properties: {Schedule: rate(10 minutes)}}
        Off: {Type: Schedule, Properties: {Schedule: rate(1 hour), Enabled: false}}
"#,
        )
        .unwrap();
        assert_eq!(
            t.schedules().unwrap(),
            vec![Schedule {
                function: "Fn".into(),
                name: "Often".into(),
                expression: "rate(10 minutes)".into(),
                every: Duration::from_secs(600),
            }]
        );
        let cron = Template::parse(
            "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        C: {Type: Schedule, Properties: {Schedule: cron(0 12 * * ? *)}}\n",
        )
        .unwrap();
        assert!(cron.schedules().is_err());
    }

    #[test]
    fn the_real_template_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let t = Template::load(&path).unwrap();
        assert!(
            t.routes()
                .iter()
                .any(|r| r.path == "/v1/me" && r.method == "GET")
        );
        assert_eq!(t.authorizer_function().unwrap(), "AuthorizeFunction");
        let responses = t.gateway_responses().unwrap();
        for kind in [
            "UNAUTHORIZED",
            "ACCESS_DENIED",
            "MISSING_AUTHENTICATION_TOKEN",
        ] {
            assert!(responses.contains_key(kind), "{kind}");
        }
        assert_eq!(responses["MISSING_AUTHENTICATION_TOKEN"].status, Some(404));
        assert_eq!(
            t.schedules().unwrap(),
            vec![Schedule {
                function: "WebhookDispatchFunction".into(),
                name: "OutboxSweep".into(),
                expression: "rate(1 minute)".into(),
                every: Duration::from_secs(60),
            }]
        );
        let params = t.parameters(&HashMap::new());
        assert_eq!(params["OutboxSweepMinAgeSeconds"], "60");
        // A deployment chooses its sender; the local stack has a value of its own.
        assert_eq!(t.doc["Parameters"]["MailFrom"].get("Default"), None);
        assert!(params["MailFrom"].contains('@'));
        for (k, _) in t.doc["Parameters"].as_object().unwrap() {
            assert!(
                params.contains_key(k),
                "the local stack has no value for {k}"
            );
        }
        // The cases function streams, so every one of its routes must (and no other).
        let routes = t.routes();
        assert!(
            routes
                .iter()
                .any(|r| r.path == "/app/api2csv" && r.streaming)
        );
        for r in &routes {
            assert_eq!(r.streaming, r.function == "CasesFunction", "{r:?}");
        }
        let consumers = t.queue_consumers().unwrap();
        assert!(
            consumers
                .iter()
                .any(|c| c.function == "WebhookDispatchFunction"
                    && c.queue == "EventsQueue"
                    && c.report_batch_item_failures)
        );
    }
}
