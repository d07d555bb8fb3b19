//! Per-record secrets at rest (webhook Basic passwords, hidden header values, signing
//! secrets): XChaCha20-Poly1305 under a key derived from the data key in Secrets Manager
//! (`KOPPEL_DATA_KEY_SECRET`). One root secret, not one secret per record.
//!
//! A sealed value is `kdk1.<data-key version>.<base64url(nonce ‖ ciphertext ‖ tag)>`:
//! - it names the Secrets Manager version it was sealed with, so after a rotation of the
//!   data key older records still open (see `secrets`: current, previous, older by id);
//! - it is bound to its place by associated data (`aad`, e.g.
//!   `ws_1/con_1/sub_1/basic_password`), so a sealed value copied into another record or
//!   field does not open there.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::secrets::{CachedSecret, SecretRing, SecretVersion};

const FORMAT: &str = "kdk1";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("data key unavailable: {0}")]
    Key(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed with data-key version {0}, which is no longer held")]
    UnknownVersion(String),
    #[error("sealed value does not open (tampered, or moved to another record)")]
    Tampered,
}

impl From<CryptoError> for crate::ApiError {
    fn from(e: CryptoError) -> Self {
        crate::ApiError::internal(e)
    }
}

/// The AEAD key: SHA-256 over a domain label and the secret's value (a 64-character random
/// string from Secrets Manager).
fn cipher(v: &SecretVersion) -> XChaCha20Poly1305 {
    let mut h = Sha256::new();
    h.update(b"koppel data key v1\0");
    h.update(&v.value);
    XChaCha20Poly1305::new(&h.finalize())
}

/// Seals `plaintext` with the given data-key version.
pub fn seal_with(key: &SecretVersion, aad: &str, plaintext: &[u8]) -> String {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .expect("XChaCha20-Poly1305 encryption does not fail for in-memory input");
    let mut raw = nonce.to_vec();
    raw.extend_from_slice(&ct);
    format!("{FORMAT}.{}.{}", key.version, URL_SAFE_NO_PAD.encode(raw))
}

/// The data-key version a sealed value names.
pub fn version_of(sealed: &str) -> Result<&str, CryptoError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(FORMAT), Some(v), Some(_)) if !v.is_empty() => Ok(v),
        _ => Err(CryptoError::Malformed),
    }
}

/// Opens a value sealed by [`seal_with`] with `key`, which must be the version it names.
pub fn open_with(key: &SecretVersion, aad: &str, sealed: &str) -> Result<Vec<u8>, CryptoError> {
    if version_of(sealed)? != key.version {
        return Err(CryptoError::UnknownVersion(version_of(sealed)?.to_owned()));
    }
    let body = sealed.rsplit('.').next().ok_or(CryptoError::Malformed)?;
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CryptoError::Malformed)?;
    if raw.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ct) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
    cipher(key)
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Tampered)
}

/// The data key's current and previous versions.
pub async fn ring(data_key: &CachedSecret) -> Result<Arc<SecretRing>, CryptoError> {
    data_key
        .ring()
        .await
        .map_err(|e| CryptoError::Key(e.to_string()))
}

/// Seals a text secret with the current data key.
pub async fn seal(
    data_key: &CachedSecret,
    aad: &str,
    plaintext: &str,
) -> Result<String, CryptoError> {
    Ok(seal_with(
        &ring(data_key).await?.current,
        aad,
        plaintext.as_bytes(),
    ))
}

/// Opens a text secret sealed by [`seal`]: what the webhook dispatcher calls to get a
/// subscription's Basic password, hidden header values and signing secrets back.
pub async fn open(data_key: &CachedSecret, aad: &str, sealed: &str) -> Result<String, CryptoError> {
    let version = version_of(sealed)?;
    let key = data_key
        .version(version)
        .await
        .map_err(|e| CryptoError::Key(e.to_string()))?
        .ok_or_else(|| CryptoError::UnknownVersion(version.to_owned()))?;
    let plain = open_with(&key, aad, sealed)?;
    String::from_utf8(plain).map_err(|_| CryptoError::Malformed)
}

/// Re-seals `sealed` with the current data key if it was sealed with an older version, so
/// that records which are written keep opening after later rotations without a fetch of an
/// old version by id (which Secrets Manager may drop once a secret has many versions). `None` when it is current already.
pub async fn reseal(
    data_key: &CachedSecret,
    aad: &str,
    sealed: &str,
) -> Result<Option<String>, CryptoError> {
    let ring = ring(data_key).await?;
    if version_of(sealed)? == ring.current.version {
        return Ok(None);
    }
    let plain = open(data_key, aad, sealed).await?;
    Ok(Some(seal_with(&ring.current, aad, plain.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: &str, value: &str) -> SecretVersion {
        SecretVersion {
            version: version.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn round_trip_and_not_plain() {
        let k = key("v1", "a-64-character-random-data-key");
        let sealed = seal_with(&k, "ws/con/sub/basic_password", b"hunter2");
        assert!(sealed.starts_with("kdk1.v1."));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            open_with(&k, "ws/con/sub/basic_password", &sealed).unwrap(),
            b"hunter2"
        );
        // A fresh nonce each time: equal secrets do not look equal at rest.
        assert_ne!(
            sealed,
            seal_with(&k, "ws/con/sub/basic_password", b"hunter2")
        );
    }

    #[test]
    fn bound_to_its_place_and_key() {
        let k = key("v1", "key one");
        let sealed = seal_with(&k, "ws/con/sub1/basic_password", b"s");
        assert!(matches!(
            open_with(&k, "ws/con/sub2/basic_password", &sealed),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            open_with(
                &key("v1", "another key"),
                "ws/con/sub1/basic_password",
                &sealed
            ),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            open_with(&key("v2", "key one"), "ws/con/sub1/basic_password", &sealed),
            Err(CryptoError::UnknownVersion(_))
        ));
        let mut flipped = sealed.clone();
        flipped.pop();
        flipped.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(open_with(&k, "ws/con/sub1/basic_password", &flipped).is_err());
        assert!(matches!(version_of("plain"), Err(CryptoError::Malformed)));
    }
}
