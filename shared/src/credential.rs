//! Secrets issued by Koppel: format, checksum, keyed hash and verification.
//!
//! Format: `kpl_<kind>_<id>_<secret><checksum>`, e.g. `kpl_pat_0123456789abcdef_<32><6>`.
//! - the prefix names the kind, so secret scanners can find leaked ones;
//! - `id` (16 × base-36) is the credential's id: the store is read by id, never by secret;
//! - `secret` is 32 × base-62 random characters (about 190 bits);
//! - `checksum` is the CRC-32 of everything before it, as 6 base-62 characters, so a typo
//!   is rejected without a store read.
//!
//! Only `HMAC-SHA256(pepper, whole string)` is stored; the pepper lives in Secrets Manager.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::random_string;

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 16;
const SECRET_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;

/// What a credential is; decides its prefix and how the authorizer resolves it.
// Serde and strum name the variants by one rule (a test holds them equal).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CredentialKind {
    /// A user's personal access token (`Authorization: Bearer`).
    PersonalAccessToken,
    /// A connector's token (`Authorization: Bearer`).
    ConnectorToken,
    /// A connector's API key (`API-Interface-Id` + `API-Key`).
    ApiKey,
    /// A signed JWT from a key registered on a connector (never stored; checked per call).
    Jwt,
}

impl CredentialKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::PersonalAccessToken => "kpl_pat_",
            Self::ConnectorToken => "kpl_ct_",
            Self::ApiKey => "kpl_key_",
            Self::Jwt => "",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// A connector credential's kind as the API's bodies name it: `token` (also when
    /// absent) or `api_key`; `None` for anything else.
    pub fn of_connector(name: Option<&str>) -> Option<Self> {
        match name {
            None | Some("token") => Some(Self::ConnectorToken),
            Some("api_key") => Some(Self::ApiKey),
            Some(_) => None,
        }
    }

    const ISSUED: [Self; 3] = [
        Self::PersonalAccessToken,
        Self::ConnectorToken,
        Self::ApiKey,
    ];
}

/// A freshly issued secret: shown once, then only its hash is kept.
#[derive(Clone)]
pub struct IssuedSecret {
    pub id: String,
    pub plaintext: String,
}

/// A presented secret whose format and checksum are valid.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedSecret<'a> {
    pub kind: CredentialKind,
    pub id: &'a str,
    pub plaintext: &'a str,
}

// Secrets never reach a log through `{:?}`.
impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ParsedSecret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedSecret")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a Koppel credential")]
    UnknownPrefix,
    #[error("malformed credential")]
    Malformed,
    #[error("credential checksum does not match")]
    BadChecksum,
}

/// The checksum suffix of `body` (CRC-32, 6 × base-62). Public knowledge, not a secret.
pub fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base-62 is ASCII")
}

/// Issues a new secret of `kind` with a new id.
pub fn generate(kind: CredentialKind) -> IssuedSecret {
    assert!(kind != CredentialKind::Jwt, "JWTs are not issued by Koppel");
    let id = random_string(BASE36, ID_LEN);
    let body = format!(
        "{}{id}_{}",
        kind.prefix(),
        random_string(BASE62, SECRET_LEN)
    );
    let plaintext = format!("{body}{}", checksum(&body));
    IssuedSecret { id, plaintext }
}

/// Checks a presented secret's shape and checksum. No I/O: typos die here.
pub fn parse(presented: &str) -> Result<ParsedSecret<'_>, FormatError> {
    let kind = CredentialKind::ISSUED
        .into_iter()
        .find(|k| presented.starts_with(k.prefix()))
        .ok_or(FormatError::UnknownPrefix)?;
    let rest = &presented[kind.prefix().len()..];
    if rest.len() != ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN || !rest.is_ascii() {
        return Err(FormatError::Malformed);
    }
    let (id, tail) = rest.split_at(ID_LEN);
    let well_formed = id.bytes().all(|b| BASE36.contains(&b))
        && tail.as_bytes()[0] == b'_'
        && tail[1..].bytes().all(|b| BASE62.contains(&b));
    if !well_formed {
        return Err(FormatError::Malformed);
    }
    let (body, sum) = presented.split_at(presented.len() - CHECKSUM_LEN);
    if checksum(body).as_bytes().ct_eq(sum.as_bytes()).unwrap_u8() != 1 {
        return Err(FormatError::BadChecksum);
    }
    Ok(ParsedSecret {
        kind,
        id,
        plaintext: presented,
    })
}

/// The keyed hash that is stored instead of the secret, hex-encoded.
pub fn hash(pepper: &[u8], plaintext: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes keys of any length");
    mac.update(plaintext.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time check of a presented secret against its stored hash.
pub fn verify(pepper: &[u8], plaintext: &str, stored_hash: &str) -> bool {
    hash(pepper, plaintext)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_credential_is_a_token_unless_an_api_key_is_asked_for() {
        let of = CredentialKind::of_connector;
        assert_eq!(of(None), Some(CredentialKind::ConnectorToken));
        assert_eq!(of(Some("token")), Some(CredentialKind::ConnectorToken));
        assert_eq!(of(Some("api_key")), Some(CredentialKind::ApiKey));
        assert_eq!(of(Some("connector_token")), None);
    }

    #[test]
    fn generated_secrets_parse_back() {
        for kind in CredentialKind::ISSUED {
            let s = generate(kind);
            assert!(s.plaintext.starts_with(kind.prefix()));
            let p = parse(&s.plaintext).unwrap();
            assert_eq!(p.kind, kind);
            assert_eq!(p.id, s.id);
        }
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let s = generate(CredentialKind::ApiKey).plaintext;
        // Change one secret character to another valid one.
        let pos = s.len() - 10;
        let c = s.as_bytes()[pos];
        let swapped = if c == b'a' { 'b' } else { 'a' };
        let typo = format!("{}{}{}", &s[..pos], swapped, &s[pos + 1..]);
        assert_eq!(parse(&typo), Err(FormatError::BadChecksum));
    }

    #[test]
    fn shape_errors() {
        assert_eq!(parse("hello"), Err(FormatError::UnknownPrefix));
        assert_eq!(parse("kpl_pat_short"), Err(FormatError::Malformed));
        let s = generate(CredentialKind::PersonalAccessToken).plaintext;
        let no_sep = s.replacen('_', "-", 3);
        assert!(parse(&no_sep).is_err());
        let truncated = &s[..s.len() - 1];
        assert_eq!(parse(truncated), Err(FormatError::Malformed));
    }

    #[test]
    fn kinds_have_one_name_each() {
        crate::model::tests::serde_and_strum_agree::<CredentialKind>();
        assert_eq!(CredentialKind::ApiKey.as_str(), "api_key");
        assert_eq!(
            CredentialKind::parse("personal_access_token"),
            Some(CredentialKind::PersonalAccessToken)
        );
        assert_eq!(CredentialKind::parse("Jwt"), None);
    }

    #[test]
    fn checksum_is_fixed_width() {
        assert_eq!(checksum("").len(), CHECKSUM_LEN);
        assert_eq!(checksum("kpl_pat_x").len(), CHECKSUM_LEN);
    }

    #[test]
    fn hash_depends_on_pepper_and_verifies() {
        let s = generate(CredentialKind::ConnectorToken).plaintext;
        let h = hash(b"pepper-1", &s);
        assert_eq!(h.len(), 64);
        assert!(verify(b"pepper-1", &s, &h));
        assert!(!verify(b"pepper-2", &s, &h));
        assert!(!verify(b"pepper-1", &format!("{s}x"), &h));
    }
}
