//! Client certificates a connector registered for mutual TLS (seed 003: OSR suppliers
//! present a PKIoverheid certificate). API Gateway's mTLS on the custom domain verifies the
//! chain against the truststore; what is decided here is whether the certificate presented
//! is one the connector registered, and valid now. Only the certificate's public facts are
//! kept, never the certificate's key.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time_util::parse_rfc3339;

/// At most this many registered certificates per connector (they travel in the connector
/// item, which the authorizer reads on every request).
pub const MAX_PER_CONNECTOR: usize = 10;

/// A registered client certificate: its SHA-256 fingerprint (of the DER) and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientCertificate {
    /// SHA-256 of the certificate's DER, 64 lower-case hex digits.
    pub fingerprint: String,
    /// Subject distinguished name (RFC 4514).
    pub subject: String,
    /// Issuer distinguished name (RFC 4514).
    pub issuer: String,
    /// Serial number, colon-separated hex bytes.
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub registered_at: String,
}

impl ClientCertificate {
    /// Within its validity period at `now`; unreadable dates count as not valid.
    pub fn valid_at(&self, now: Timestamp) -> bool {
        match (
            parse_rfc3339(&self.not_before),
            parse_rfc3339(&self.not_after),
        ) {
            (Some(from), Some(until)) => from <= now && now <= until,
            _ => false,
        }
    }
}

/// Whether a connector can still be used at `now`: it does not require a certificate, or
/// one of its certificates is valid. Requiring one, or deleting one, must keep this true;
/// otherwise the connector would be locked out without a word.
pub fn usable(required: bool, registered: &[ClientCertificate], now: Timestamp) -> bool {
    !required || registered.iter().any(|c| c.valid_at(now))
}

/// SHA-256 of `der`, as 64 lower-case hex digits (the form stored and shown).
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a connector's certificate rule lets the request through: always when it does
/// not require a certificate; otherwise only with a presented certificate (`fingerprint`)
/// that it registered and that is valid at `now`.
pub fn admits(
    required: bool,
    registered: &[ClientCertificate],
    presented: Option<&str>,
    now: Timestamp,
) -> bool {
    if !required {
        return true;
    }
    presented.is_some_and(|fp| {
        registered
            .iter()
            .any(|c| c.fingerprint == fp && c.valid_at(now))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(fp: &str, from: &str, until: &str) -> ClientCertificate {
        ClientCertificate {
            fingerprint: fp.into(),
            subject: "CN=supplier".into(),
            issuer: "CN=ca".into(),
            serial: "01".into(),
            not_before: from.into(),
            not_after: until.into(),
            registered_at: from.into(),
        }
    }

    const NOW: Timestamp = Timestamp::constant(1780315200, 0); // 2026-06-01T12:00:00Z

    #[test]
    fn a_fingerprint_is_hex_sha256() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_a_registered_certificate_valid_now_passes_when_required() {
        let live = cert("aa", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        let expired = cert("bb", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
        let early = cert("cc", "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z");
        let all = [live, expired, early];
        assert!(admits(true, &all, Some("aa"), NOW));
        assert!(!admits(true, &all, Some("bb"), NOW));
        assert!(!admits(true, &all, Some("cc"), NOW));
        assert!(!admits(true, &all, Some("dd"), NOW));
        assert!(!admits(true, &all, None, NOW));
        assert!(!admits(true, &[], None, NOW));
        // Not required: anything, also nothing, passes.
        assert!(admits(false, &[], None, NOW));
        assert!(admits(false, &all, Some("dd"), NOW));
    }

    #[test]
    fn a_connector_requiring_one_is_usable_only_with_one_valid_now() {
        let live = cert("aa", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        let early = cert("cc", "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z");
        assert!(usable(true, &[early.clone(), live], NOW));
        assert!(!usable(true, std::slice::from_ref(&early), NOW));
        assert!(!usable(true, &[], NOW));
        assert!(usable(false, &[], NOW));
    }

    #[test]
    fn unreadable_validity_is_not_valid() {
        assert!(!cert("aa", "soon", "2027-01-01T00:00:00Z").valid_at(NOW));
    }

    #[test]
    fn old_connector_items_read_without_certificates() {
        let old = serde_json::json!({
            "workspace_id": "ws", "connector_id": "con", "description": "d",
            "acting_user_id": "usr", "access_level": "read", "scopes": [], "ip_allow_list": [],
            "enabled": true,
            "version": 1, "created_at": "t", "updated_at": "t",
        });
        let con: crate::model::Connector = serde_json::from_value(old.clone()).unwrap();
        assert!(!con.require_client_certificate);
        assert!(con.client_certificates.is_empty());
        // And one without certificates is written as before.
        let again = serde_json::to_value(&con).unwrap();
        assert_eq!(
            again.as_object().unwrap().len(),
            old.as_object().unwrap().len()
        );
    }
}
