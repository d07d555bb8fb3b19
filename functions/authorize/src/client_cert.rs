//! Mutual TLS in the authorizer. On a custom domain with mTLS, API Gateway verifies the
//! client certificate's chain against the truststore (e.g. the PKIoverheid roots) and
//! passes it to a REQUEST authorizer in `requestContext.identity.clientCert`. What is left
//! to decide here: for a connector that requires a certificate, is the one presented a
//! certificate it registered, valid now? Any failure is the same deny (403), whatever
//! credential kind came with it, so a caller learns nothing about which part failed.

use crate::access::Refusal;
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use jiff::Timestamp;
use koppel_shared::Principal;
use koppel_shared::model::Connector;
use koppel_shared::model::client_cert::{admits, fingerprint};
use serde_json::{Map, Value};
use x509_cert::Certificate;
use x509_cert::der::{Decode, pem};

/// The presented certificate, as far as the decision and `GET /v1/me` need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// SHA-256 of the DER in `clientCertPem`, hex.
    pub fingerprint: String,
    /// Subject DN (RFC 4514), as registration writes it.
    pub subject: String,
}

/// The certificate in the event, if there is one that reads as a PEM certificate.
pub fn presented(event: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Option<Presented> {
    let cert = event
        .request_context
        .identity
        .as_ref()?
        .client_cert
        .as_ref()?;
    let (label, der) = pem::decode_vec(cert.client_cert_pem.as_deref()?.trim().as_bytes()).ok()?;
    if label != "CERTIFICATE" {
        return None;
    }
    let subject = Certificate::from_der(&der)
        .map(|c| c.tbs_certificate.subject.to_string())
        .unwrap_or_else(|_| cert.subject_dn.clone().unwrap_or_default());
    Some(Presented {
        fingerprint: fingerprint(&der),
        subject,
    })
}

/// `decision`, turned into a deny when the credential's connector requires a certificate
/// and `presented` is none it registered, valid at `now`. Personal tokens (no connector)
/// are not bound to certificates.
pub fn enforce(
    decision: Result<Principal, Refusal>,
    connector: Option<&Connector>,
    presented: Option<&Presented>,
    now: Timestamp,
) -> Result<Principal, Refusal> {
    let p = decision?;
    match connector {
        Some(c)
            if !admits(
                c.require_client_certificate,
                &c.client_certificates,
                presented.map(|p| p.fingerprint.as_str()),
                now,
            ) =>
        {
            Err(Refusal::Forbidden(
                "client certificate not registered or not valid",
            ))
        }
        _ => Ok(p),
    }
}

/// Puts the certificate used into the authorizer context, for `GET /v1/me`.
pub fn add_to_context(context: &mut Map<String, Value>, presented: Option<&Presented>) {
    if let Some(c) = presented {
        context.insert(
            "client_cert_fingerprint".into(),
            c.fingerprint.clone().into(),
        );
        context.insert("client_cert_subject".into(), c.subject.clone().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::{
        ApiGatewayCustomAuthorizerRequestTypeRequestIdentity,
        ApiGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert,
    };
    use koppel_shared::credential::CredentialKind;
    use koppel_shared::model::client_cert::ClientCertificate;
    use koppel_shared::model::{Connector, Level};

    const NOW: Timestamp = Timestamp::constant(1780315200, 0); // 2026-06-01T12:00:00Z

    fn event(pem: Option<&str>) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        let mut identity = ApiGatewayCustomAuthorizerRequestTypeRequestIdentity::default();
        identity.client_cert = pem.map(|p| {
            let mut c = ApiGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert::default();
            c.client_cert_pem = Some(p.into());
            c.subject_dn = Some("CN=from the gateway".into());
            c
        });
        let mut ev = ApiGatewayCustomAuthorizerRequestTypeRequest::default();
        ev.request_context.identity = Some(identity);
        ev
    }

    fn pem() -> (String, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(vec!["s.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Supplier");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    fn connector(required: bool, fingerprints: &[&str]) -> Connector {
        let mut c: Connector = serde_json::from_value(serde_json::json!({
            "workspace_id": "ws", "connector_id": "con", "description": "d",
            "acting_user_id": "usr", "access_level": "read", "scopes": [], "enabled": true,
            "version": 1, "created_at": "t", "updated_at": "t",
        }))
        .unwrap();
        c.require_client_certificate = required;
        c.client_certificates = fingerprints
            .iter()
            .map(|f| ClientCertificate {
                fingerprint: (*f).into(),
                subject: "CN=Supplier".into(),
                issuer: "CN=Supplier".into(),
                serial: "01".into(),
                not_before: "2026-01-01T00:00:00Z".into(),
                not_after: "2027-01-01T00:00:00Z".into(),
                registered_at: "2026-01-01T00:00:00Z".into(),
            })
            .collect();
        c
    }

    fn principal() -> Principal {
        Principal {
            workspace_id: "ws".into(),
            user_id: "usr".into(),
            connector_id: Some("con".into()),
            credential_id: "cred".into(),
            credential_kind: CredentialKind::ApiKey,
            scopes: Default::default(),
            access_level: Level::Read,
            rate_limit: 30,
            body_hash: None,
            held: None,
            counted: None,
        }
    }

    #[test]
    fn the_presented_certificate_is_read_from_its_pem() {
        let (pem, der) = pem();
        let p = presented(&event(Some(&pem))).unwrap();
        assert_eq!(p.fingerprint, fingerprint(&der));
        assert_eq!(p.subject, "CN=Supplier");
        assert_eq!(presented(&event(None)), None);
        assert_eq!(presented(&event(Some("garbage"))), None);
    }

    #[test]
    fn a_connector_that_requires_one_admits_only_its_registered_certificates() {
        let (pem, der) = pem();
        let mine = presented(&event(Some(&pem))).unwrap();
        let fp = fingerprint(&der);
        let ok = |c: &Connector, p: Option<&Presented>| {
            enforce(Ok(principal()), Some(c), p, NOW).is_ok()
        };
        assert!(ok(&connector(true, &[&fp]), Some(&mine)));
        assert!(!ok(&connector(true, &["other"]), Some(&mine)));
        assert!(!ok(&connector(true, &[&fp]), None));
        assert!(ok(&connector(false, &[]), None));
        // Expired at `now`: the registered validity counts.
        assert!(
            enforce(
                Ok(principal()),
                Some(&connector(true, &[&fp])),
                Some(&mine),
                "2027-06-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap()
            )
            .is_err()
        );
        // No connector (a personal token): nothing to bind.
        assert!(enforce(Ok(principal()), None, None, NOW).is_ok());
        // An earlier refusal stays what it was.
        assert!(matches!(
            enforce(Err(Refusal::Unauthenticated("x")), None, None, NOW),
            Err(Refusal::Unauthenticated("x"))
        ));
    }

    #[test]
    fn the_context_names_the_certificate_used() {
        let mut m = Map::new();
        add_to_context(&mut m, None);
        assert!(m.is_empty());
        let p = Presented {
            fingerprint: "ab".into(),
            subject: "CN=x".into(),
        };
        add_to_context(&mut m, Some(&p));
        assert_eq!(m["client_cert_fingerprint"], "ab");
        assert_eq!(m["client_cert_subject"], "CN=x");
    }
}
