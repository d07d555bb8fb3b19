//! JWT rules: which tokens the authorizer accepts, and which keys a connector may register.
//!
//! - asymmetric algorithms only (RS*, PS*, ES256/384, EdDSA): `none` and HMAC are refused,
//!   so a token "signed" with the public key as an HMAC secret never verifies;
//! - the header's `kid` selects one of the connector's registered public keys;
//! - `exp`, `iss`, `aud` and `jti` are required; the lifetime is bounded; `jti` is single-use
//!   (the caller records it).

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;

pub const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 30;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm not accepted")]
    Algorithm,
    #[error("no key with that kid")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("lifetime too long")]
    Lifetime,
}

/// Whether a bearer value is shaped like a JWT (three base64url parts), so the authorizer
/// knows which path to take. Says nothing about validity.
pub fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The unverified `iss` claim: used only to find the connector whose keys verify the token.
pub fn peek_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes)
        .ok()
        .map(|c| c.iss)
        // It becomes part of a DynamoDB key, which is bounded.
        .filter(|iss| !iss.is_empty() && iss.len() <= MAX_CLAIM_LEN)
}

/// The longest `iss` or `jti` accepted: both become parts of store keys.
pub const MAX_CLAIM_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    pub jti: String,
    #[serde(default)]
    pub sub: Option<String>,
    /// OSR (seed 003): base64 SHA-256 of the request body, checked by the route.
    #[serde(default)]
    pub hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub kid: String,
    pub claims: Claims,
}

/// Verifies `token` against a connector's registered keys.
pub fn verify(
    token: &str,
    keys: &[Value],
    issuer: &str,
    audience: &str,
    max_lifetime_secs: i64,
    now: i64,
) -> Result<Verified, JwtError> {
    let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(JwtError::Algorithm);
    }
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    let jwk = keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .find(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
        .ok_or(JwtError::UnknownKey)?;
    // A key registered for one algorithm is not used with another.
    if let Some(alg) = jwk.common.key_algorithm
        && alg.to_string() != format!("{:?}", header.alg)
    {
        return Err(JwtError::Algorithm);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| JwtError::Invalid(e.to_string()))?;
    let mut v = Validation::new(header.alg);
    v.algorithms = vec![header.alg];
    v.leeway = LEEWAY_SECS as u64;
    v.set_audience(&[audience]);
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "jti"]);
    v.validate_nbf = true;
    let data = decode::<Claims>(token, &key, &v).map_err(|e| JwtError::Invalid(e.to_string()))?;
    let c = data.claims;
    if c.jti.is_empty() || c.jti.len() > MAX_CLAIM_LEN {
        return Err(JwtError::Invalid("jti empty or too long".into()));
    }
    let too_long = c.exp - now > max_lifetime_secs + LEEWAY_SECS
        || c.iat
            .is_some_and(|iat| c.exp - iat > max_lifetime_secs || iat > now + LEEWAY_SECS);
    if too_long {
        return Err(JwtError::Lifetime);
    }
    Ok(Verified { kid, claims: c })
}

/// Checks a JWK a connector wants to register: a public key of an accepted type, with a
/// `kid`. Private and symmetric keys are refused with a message naming the problem.
pub fn validate_public_jwk(v: &Value) -> Result<Jwk, String> {
    let obj = v.as_object().ok_or("a JWK must be a JSON object")?;
    const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
        return Err(format!(
            "this JWK contains the private member `{m}`: register the public key only"
        ));
    }
    if obj.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err("symmetric keys (`kty: oct`) are not accepted: use an asymmetric key".into());
    }
    let jwk: Jwk =
        serde_json::from_value(v.clone()).map_err(|e| format!("not a valid JWK: {e}"))?;
    if jwk.common.key_id.as_deref().is_none_or(str::is_empty) {
        return Err("the JWK needs a `kid`".into());
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_)
        | AlgorithmParameters::EllipticCurve(_)
        | AlgorithmParameters::OctetKeyPair(_) => {}
        _ => return Err("only RSA, EC and OKP (Ed25519) public keys are accepted".into()),
    }
    if let Some(alg) = jwk.common.key_algorithm {
        let name = alg.to_string();
        if !ACCEPTED.iter().any(|a| format!("{a:?}") == name) {
            return Err(format!("algorithm `{name}` is not accepted"));
        }
    }
    DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable key: {e}"))?;
    Ok(jwk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    // A P-256 key pair made for these tests only.
    const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgApD9HV2DWv2wWaEr
Fjt7geDlm0BSbEXhfXvVV0Km+OShRANCAATVg7QVSPfGfN5udgYgkclsSAQSMHSj
jt9ObI0RYVz+QDOTrfZ+377OsJzySp/6mTr3Ksi5Q9qN4JdmMHRZ9wL2
-----END PRIVATE KEY-----";

    fn public_jwk() -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": "1YO0FUj3xnzebnYGIJHJbEgEEjB0o47fTmyNEWFc_kA",
            "y": "M5Ot9n7fvs6wnPJKn_qZOvcqyLlD2o3gl2YwdFn3AvY",
        })
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    fn token(kid: &str, claims: &Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(kid.into());
        let key = EncodingKey::from_ec_pem(PRIVATE_PEM.as_bytes()).unwrap();
        encode(&h, claims, &key).unwrap()
    }

    fn claims() -> Value {
        let n = now();
        json!({"iss": "https://partner.example", "aud": "koppel", "exp": n + 300,
               "iat": n, "jti": "j1"})
    }

    fn check(t: &str) -> Result<Verified, JwtError> {
        verify(
            t,
            &[public_jwk()],
            "https://partner.example",
            "koppel",
            3600,
            now(),
        )
    }

    fn with(key: &str, value: Value) -> Value {
        let mut c = claims();
        c[key] = value;
        c
    }

    #[test]
    fn good_token_verifies() {
        let v = check(&token("k1", &claims())).unwrap();
        assert_eq!(v.kid, "k1");
        assert_eq!(v.claims.jti, "j1");
    }

    #[test]
    fn claim_failures() {
        let invalid = |c: Value| matches!(check(&token("k1", &c)), Err(JwtError::Invalid(_)));
        assert!(invalid(with("aud", json!("other"))));
        assert!(invalid(with("iss", json!("https://evil.example"))));
        assert!(invalid(with("exp", json!(now() - 120))));
        let mut no_jti = claims();
        no_jti.as_object_mut().unwrap().remove("jti");
        assert!(invalid(no_jti));
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(check(&token("k1", &no_exp)).is_err());
        assert_eq!(
            check(&token("k1", &with("exp", json!(now() + 7200)))),
            Err(JwtError::Lifetime)
        );
        assert_eq!(check(&token("k2", &claims())), Err(JwtError::UnknownKey));
    }

    #[test]
    fn alg_none_and_hmac_refused() {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "kid": "k1"})),
            b64(claims())
        );
        assert!(check(&none).is_err());
        // HS256 "signed" with the public key as the secret.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let secret = EncodingKey::from_secret(public_jwk().to_string().as_bytes());
        let hs = encode(&h, &claims(), &secret).unwrap();
        assert_eq!(check(&hs), Err(JwtError::Algorithm));
    }

    #[test]
    fn registration_rules() {
        assert!(validate_public_jwk(&public_jwk()).is_ok());
        let mut private = public_jwk();
        private["d"] = json!("abc");
        assert!(validate_public_jwk(&private).unwrap_err().contains("`d`"));
        let oct = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"});
        assert!(validate_public_jwk(&oct).unwrap_err().contains("symmetric"));
        let mut no_kid = public_jwk();
        no_kid.as_object_mut().unwrap().remove("kid");
        assert!(validate_public_jwk(&no_kid).unwrap_err().contains("kid"));
    }

    #[test]
    fn shape_helpers() {
        let t = token("k1", &claims());
        assert!(looks_like_jwt(&t));
        assert!(!looks_like_jwt("kpl_pat_abc"));
        assert_eq!(peek_issuer(&t).as_deref(), Some("https://partner.example"));
    }
}
