//! A connector's client certificates (mutual TLS, seed 003's PKIoverheid requirement):
//! `POST`, `GET …/{id}/certificates`, `GET`, `DELETE …/certificates/{fingerprint}`.
//!
//! Only the certificate's public facts are kept, in the connector item (the authorizer reads
//! it on every request anyway): SHA-256 fingerprint of the DER, subject, issuer, serial and
//! validity. A PEM that holds a private key is refused: a key never leaves its holder.
//! Each change bumps the connector's version, under the version read (a lost race retries).

use http::StatusCode;
use jiff::Timestamp;
use koppel_shared::body::{self, Fields};
use koppel_shared::model::Connector;
use koppel_shared::model::client_cert::{self, ClientCertificate, MAX_PER_CONNECTOR};
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::retry::run_with_retries;
use koppel_shared::store::StoreError;
use koppel_shared::time_util::{now, parse_rfc3339, rfc3339};
use koppel_shared::{ApiError, Ctx, Principal};
use lambda_http::Request;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use x509_cert::Certificate;
use x509_cert::der::{Decode, pem};

use crate::input::Input;
use crate::{CONCURRENT_CHANGE, administered, connector_of, manager, preconditions};

/// The fields of `POST …/certificates`.
pub const FIELDS: [&str; 1] = ["certificate_pem"];
const F: &str = "certificate_pem";
/// Far more than a certificate needs, far less than a body may be.
const MAX_PEM: usize = 16 * 1024;

/// `GET /v1/connectors/{id}/certificates`.
#[derive(Serialize, JsonSchema)]
pub struct CertificateList {
    /// Oldest first.
    pub items: Vec<ClientCertificate>,
}

/// The facts of one PEM client certificate, or why it is refused (the 422's message).
/// Not yet valid is fine (a successor registered ahead of the switch); expired is not.
pub fn parse(text: &str, now: Timestamp) -> Result<ClientCertificate, String> {
    if text.len() > MAX_PEM {
        return Err(format!("must be at most {MAX_PEM} bytes"));
    }
    if text.contains("PRIVATE KEY") {
        return Err("contains a private key: send the certificate only".into());
    }
    if text.matches("-----BEGIN ").count() != 1 {
        return Err("must be exactly one PEM `CERTIFICATE` block".into());
    }
    let der = match pem::decode_vec(text.trim().as_bytes()) {
        Ok(("CERTIFICATE", der)) => der,
        _ => return Err("must be exactly one PEM `CERTIFICATE` block".into()),
    };
    let mut cert = facts(&der)?;
    if parse_rfc3339(&cert.not_after).is_none_or(|until| until < now) {
        return Err("has expired".into());
    }
    cert.registered_at = rfc3339(now);
    Ok(cert)
}

/// What a certificate (DER) says, whatever its dates (`registered_at` left empty). The
/// local gateway uses it too, to write `clientCert` as API Gateway does.
pub fn facts(der: &[u8]) -> Result<ClientCertificate, String> {
    let cert = Certificate::from_der(der).map_err(|_| "is not a valid X.509 certificate")?;
    let tbs = &cert.tbs_certificate;
    let time = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs())
            .ok()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(rfc3339)
            .ok_or("has a validity date out of range")
    };
    Ok(ClientCertificate {
        // Of the DER as sent: what API Gateway's `clientCertPem` will hold, byte for byte.
        fingerprint: client_cert::fingerprint(der),
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        serial: serial_hex(tbs.serial_number.as_bytes()),
        not_before: time(tbs.validity.not_before)?,
        not_after: time(tbs.validity.not_after)?,
        registered_at: String::new(),
    })
}

/// `a1:02:…`, without DER's sign byte, as API Gateway writes `serialNumber`.
fn serial_hex(bytes: &[u8]) -> String {
    let bytes = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        b => b,
    };
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Changes the connector with `change` and saves it over the version read; `change` says
/// no with an error. Each try reads the connector again and checks the caller may change it
/// (the acting user may have changed meanwhile).
async fn change_connector(
    p: &Principal,
    ctx: &Ctx,
    id: &str,
    change: impl Fn(&mut Connector) -> Result<(), ApiError>,
) -> Result<Connector, ApiError> {
    let me = &manager(p, ctx).await?;
    let lost = |e: &ApiError| e.status == StatusCode::PRECONDITION_FAILED;
    run_with_retries(&CONCURRENT_CHANGE, lost, || async {
        let mut con = administered(p, me, ctx, id).await?;
        change(&mut con)?;
        let expected = con.version;
        con.updated_at = rfc3339(now());
        match ctx.store.save_connector(&mut con, expected).await {
            Ok(()) => Ok(con),
            Err(StoreError::Conflict(_)) => Err(preconditions::lost_race()),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

pub async fn register(p: &Principal, req: &Request, ctx: &Ctx, id: &str) -> RouteResult {
    let body: Map<String, Value> = body::json(req)?;
    let o = Input::new(&body, &FIELDS);
    let mut e = Fields::new();
    o.unknown_fields(&mut e);
    let parsed = o
        .string(F, true, &mut e)
        .and_then(|pem| parse(pem, now()).map_err(|why| e.push(F, why)).ok());
    e.finish()?;
    let cert = parsed.expect("a field without errors was parsed");
    change_connector(p, ctx, id, |con| {
        let held = &mut con.client_certificates;
        if held.iter().any(|c| c.fingerprint == cert.fingerprint) {
            return Err(ApiError::conflict(
                "This certificate is registered for the connector already.",
            ));
        }
        if held.len() >= MAX_PER_CONNECTOR {
            return Err(ApiError::conflict(format!(
                "A connector has at most {MAX_PER_CONNECTOR} client certificates: delete one first."
            )));
        }
        held.push(cert.clone());
        Ok(())
    })
    .await?;
    tracing::info!(connector = %id, fingerprint = %cert.fingerprint, "client certificate registered");
    pipeline::created(
        &format!("/v1/connectors/{id}/certificates/{}", cert.fingerprint),
        &cert,
        None,
    )
}

pub async fn list(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    let con = connector_of(p, ctx, id).await?;
    pipeline::json(
        StatusCode::OK,
        &CertificateList {
            items: con.client_certificates,
        },
    )
}

pub async fn get(p: &Principal, ctx: &Ctx, id: &str, fingerprint: &str) -> RouteResult {
    let fingerprint = fingerprint.to_ascii_lowercase();
    let con = connector_of(p, ctx, id).await?;
    let cert = con
        .client_certificates
        .into_iter()
        .find(|c| c.fingerprint == fingerprint)
        .ok_or_else(ApiError::not_found)?;
    pipeline::json(StatusCode::OK, &cert)
}

pub async fn delete(p: &Principal, ctx: &Ctx, id: &str, fingerprint: &str) -> RouteResult {
    let fingerprint = fingerprint.to_ascii_lowercase();
    change_connector(p, ctx, id, |con| {
        let before = con.client_certificates.len();
        con.client_certificates
            .retain(|c| c.fingerprint != fingerprint);
        if con.client_certificates.len() == before {
            return Err(ApiError::not_found());
        }
        if !client_cert::usable(con.require_client_certificate, &con.client_certificates, now()) {
            return Err(ApiError::conflict(
                "The connector requires a client certificate and this is its last one valid now: register its successor first, or disable the connector to stop it at once.",
            ));
        }
        Ok(())
    })
    .await?;
    tracing::info!(connector = %id, %fingerprint, "client certificate deleted");
    Ok(pipeline::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid 2026-01-01 to 2027-01-01 (rcgen, P-256).
    fn sample() -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["supplier.example".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2027, 1, 1);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x8a, 0x01]));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Supplier BV");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Supplier");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    const NOW: Timestamp = Timestamp::constant(1780315200, 0); // 2026-06-01T12:00:00Z

    #[test]
    fn a_certificate_gives_its_facts() {
        let (pem, _) = sample();
        let c = parse(&pem, NOW).unwrap();
        let der = pem::decode_vec(pem.as_bytes()).unwrap().1;
        assert_eq!(c.fingerprint, client_cert::fingerprint(&der));
        assert_eq!(c.fingerprint.len(), 64);
        assert!(c.subject.contains("CN=Supplier BV"), "{}", c.subject);
        assert!(c.subject.contains("O=Supplier"), "{}", c.subject);
        assert_eq!(c.issuer, c.subject);
        // DER's sign byte in front of 0x8a is not part of the number.
        assert_eq!(c.serial, "8a:01");
        assert_eq!(c.not_before, "2026-01-01T00:00:00.000000Z");
        assert_eq!(c.not_after, "2027-01-01T00:00:00.000000Z");
        assert_eq!(c.registered_at, rfc3339(NOW));
        // Not yet valid is accepted (registered ahead); expired is not.
        assert!(parse(&pem, parse_rfc3339("2025-01-01T00:00:00Z").unwrap()).is_ok());
        assert_eq!(
            parse(&pem, parse_rfc3339("2027-06-01T00:00:00Z").unwrap()).unwrap_err(),
            "has expired"
        );
    }

    #[test]
    fn a_private_key_or_anything_else_is_refused() {
        let (pem, key) = sample();
        let with_key = format!("{pem}{key}");
        assert!(parse(&with_key, NOW).unwrap_err().contains("private key"));
        assert!(parse(&key, NOW).unwrap_err().contains("private key"));
        let two = format!("{pem}{pem}");
        assert!(parse(&two, NOW).unwrap_err().contains("exactly one"));
        assert!(parse("hello", NOW).unwrap_err().contains("exactly one"));
        let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            parse(not_x509, NOW).unwrap_err(),
            "is not a valid X.509 certificate"
        );
        let huge = "a".repeat(MAX_PEM + 1);
        assert!(parse(&huge, NOW).unwrap_err().contains("at most"));
    }

    #[test]
    fn serials_lose_only_the_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0x01]), "80:01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x12, 0x34]), "12:34");
    }
}
