//! Which credential a request presents, from its headers alone. Pure.

use http::HeaderMap;
use koppel_shared::jwt::looks_like_jwt;

use crate::access::Refusal;

#[derive(PartialEq, Eq)]
pub enum Presented<'a> {
    /// A Koppel-issued secret; `interface_id` is set when it came as `API-Key`.
    Secret {
        secret: &'a str,
        interface_id: Option<&'a str>,
    },
    Jwt(&'a str),
}

/// Never prints the credential.
impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret { interface_id, .. } => f
                .debug_struct("Secret")
                .field("interface_id", interface_id)
                .finish_non_exhaustive(),
            Self::Jwt(_) => f.write_str("Jwt(..)"),
        }
    }
}

/// No credential header value is longer (README "Authenticating"): a longer one is refused
/// before it is parsed or a JWT in it decoded, so a huge signed token costs nothing.
/// Koppel's own secrets are under 100 bytes; a JWT with a few RSA-4096 signatures fits.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Refusal> {
    let mut values = h.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::Unauthenticated("header repeated"));
    }
    if first.len() > MAX_CREDENTIAL_BYTES {
        return Err(Refusal::Unauthenticated("credential header too long"));
    }
    let v = first
        .to_str()
        .map_err(|_| Refusal::Unauthenticated("header not ASCII"))?
        .trim();
    Ok(Some(v))
}

/// Exactly one credential must be presented; anything else is a 401.
pub fn presented(h: &HeaderMap) -> Result<Presented<'_>, Refusal> {
    let interface_id = header(h, "api-interface-id")?;
    let api_key = header(h, "api-key")?;
    let authorization = header(h, "authorization")?;
    let jwt_header = header(h, "jwt")?;

    let count = [interface_id.or(api_key), authorization, jwt_header]
        .iter()
        .filter(|v| v.is_some())
        .count();
    match count {
        0 => return Err(Refusal::Unauthenticated("no credential")),
        1 => {}
        _ => return Err(Refusal::Unauthenticated("more than one credential")),
    }
    if interface_id.is_some() || api_key.is_some() {
        return match (interface_id, api_key) {
            (Some(id), Some(key)) if !id.is_empty() && !key.is_empty() => Ok(Presented::Secret {
                secret: key,
                interface_id: Some(id),
            }),
            _ => Err(Refusal::Unauthenticated("API-Interface-Id needs API-Key")),
        };
    }
    if let Some(token) = jwt_header {
        return if looks_like_jwt(token) {
            Ok(Presented::Jwt(token))
        } else {
            Err(Refusal::Unauthenticated("JWT header is not a JWT"))
        };
    }
    let auth = authorization.expect("counted above");
    let (scheme, value) = auth
        .split_once(' ')
        .ok_or(Refusal::Unauthenticated("malformed Authorization"))?;
    let value = value.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || value.is_empty() {
        return Err(Refusal::Unauthenticated("not a bearer credential"));
    }
    if looks_like_jwt(value) {
        Ok(Presented::Jwt(value))
    } else {
        Ok(Presented::Secret {
            secret: value,
            interface_id: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn each_kind() {
        let h = headers(&[("API-Interface-Id", "con_1"), ("API-Key", "kpl_key_x")]);
        assert_eq!(
            presented(&h),
            Ok(Presented::Secret {
                secret: "kpl_key_x",
                interface_id: Some("con_1")
            })
        );
        let h = headers(&[("Authorization", "bearer kpl_pat_x")]);
        assert_eq!(
            presented(&h),
            Ok(Presented::Secret {
                secret: "kpl_pat_x",
                interface_id: None
            })
        );
        let h = headers(&[("Authorization", "Bearer aaa.bbb.ccc")]);
        assert_eq!(presented(&h), Ok(Presented::Jwt("aaa.bbb.ccc")));
        let h = headers(&[("JWT", "aaa.bbb.ccc")]);
        assert_eq!(presented(&h), Ok(Presented::Jwt("aaa.bbb.ccc")));
    }

    #[test]
    fn refusals() {
        let unauth = |pairs: &[(&'static str, &str)]| {
            matches!(presented(&headers(pairs)), Err(Refusal::Unauthenticated(_)))
        };
        assert!(unauth(&[]));
        assert!(unauth(&[("API-Key", "kpl_key_x")]));
        assert!(unauth(&[("API-Interface-Id", "con_1")]));
        assert!(unauth(&[("Authorization", "Basic dXNlcjpwYXNz")]));
        assert!(unauth(&[("Authorization", "Bearer")]));
        assert!(unauth(&[("Authorization", "Bearer x"), ("JWT", "a.b.c")]));
        assert!(unauth(&[("JWT", "not-a-jwt")]));
        assert!(unauth(&[
            ("Authorization", "Bearer a"),
            ("Authorization", "Bearer b")
        ]));
    }

    #[test]
    fn an_oversized_credential_is_refused_before_it_is_read() {
        let long = format!("aaa.{}.ccc", "b".repeat(MAX_CREDENTIAL_BYTES));
        for name in ["JWT", "API-Key", "API-Interface-Id"] {
            let h = headers(&[(name, &long)]);
            assert_eq!(
                presented(&h),
                Err(Refusal::Unauthenticated("credential header too long"))
            );
        }
        let h = headers(&[("Authorization", &format!("Bearer {long}"))]);
        assert_eq!(
            presented(&h),
            Err(Refusal::Unauthenticated("credential header too long"))
        );
        let fits = format!("aaa.{}.ccc", "b".repeat(MAX_CREDENTIAL_BYTES - 20));
        let h = headers(&[("JWT", &fits)]);
        assert_eq!(presented(&h), Ok(Presented::Jwt(&fits)));
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;

    #[test]
    fn the_sample_event_parses_and_presents_an_api_key() {
        let text = include_str!("../../../events/authorize-request.json");
        let ev: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_str(text).unwrap();
        assert_eq!(ev.type_.as_deref(), Some("REQUEST"));
        assert_eq!(
            ev.request_context.identity.unwrap().source_ip.as_deref(),
            Some("203.0.113.7")
        );
        match presented(&ev.headers).unwrap() {
            Presented::Secret { interface_id, .. } => {
                assert_eq!(interface_id, Some("con_0123456789abcdef"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
