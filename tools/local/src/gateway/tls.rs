//! HTTPS for the local gateway, standing in for API Gateway's mutual TLS on a custom domain
//! (template.yaml `Domain: MutualTlsAuthentication`): TLS 1.2 or newer, a client
//! certificate verified against a CA bundle (the truststore), and the verified
//! certificate handed to the authorizer in `requestContext.identity.clientCert`, in API
//! Gateway's own format, so the same authorizer code decides.
//!
//! Two differences from API Gateway, both deliberate:
//! - API Gateway with mTLS needs a certificate from every client; here a client without
//!   one is served too (its event has no `clientCert`), so connectors that do not require a
//!   certificate keep working on the same listener. The authorizer denies a connector that
//!   requires one.
//! - The chain is checked after the handshake, not during it: API Gateway answers a
//!   certificate it cannot verify (unknown issuer, expired, not yet valid) with an HTTP 403,
//!   not a handshake failure, and so does this gateway ([`PeerCert::Refused`]). The
//!   handshake still proves the client holds the certificate's key.

use std::sync::Arc;

use koppel_shared::time_util::parse_rfc3339;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{self, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_cert::der::pem;

/// What a connection's client presented, as the gateway passes it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCert {
    /// No certificate (or plain HTTP).
    None,
    /// Verified against the client CA bundle: `clientCert` in the authorizer's event.
    Verified(ClientCert),
    /// Presented but not verified: every request on the connection gets 403.
    Refused(String),
}

/// API Gateway's `requestContext.identity.clientCert`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    pub pem: String,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    /// `May 28 12:30:02 2019 GMT`, as API Gateway writes validity.
    pub not_before: String,
    pub not_after: String,
}

impl ClientCert {
    /// The event's form of the certificate `der`.
    pub fn of_der(der: &[u8]) -> Result<Self, String> {
        let facts = connectors::certificates::facts(der)?;
        let gateway_time = |t: &str| {
            parse_rfc3339(t)
                .and_then(|t| jiff::fmt::strtime::format(GATEWAY_TIME, t).ok())
                .ok_or_else(|| format!("bad time {t}"))
        };
        Ok(Self {
            pem: pem::encode_string("CERTIFICATE", pem::LineEnding::LF, der)
                .map_err(|e| e.to_string())?,
            subject_dn: facts.subject,
            issuer_dn: facts.issuer,
            serial_number: facts.serial,
            not_before: gateway_time(&facts.not_before)?,
            not_after: gateway_time(&facts.not_after)?,
        })
    }

    /// As `aws_lambda_events` carries it in the authorizer's event.
    pub fn to_event(
        &self,
    ) -> aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert
    {
        let mut c = aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert::default();
        c.client_cert_pem = Some(self.pem.clone());
        c.subject_dn = Some(self.subject_dn.clone());
        c.issuer_dn = Some(self.issuer_dn.clone());
        c.serial_number = Some(self.serial_number.clone());
        c.validity.not_before = Some(self.not_before.clone());
        c.validity.not_after = Some(self.not_after.clone());
        c
    }
}

/// OpenSSL's `ASN1_TIME_print` form, which API Gateway passes on.
const GATEWAY_TIME: &str = "%b %e %H:%M:%S %Y GMT";

/// The gateway's TLS: the acceptor, and the verifier that judges client certificates
/// after the handshake (none without a client CA bundle).
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl Tls {
    /// From PEM: the server's certificate chain and key, and the client CA bundle.
    pub fn from_pem(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
    ) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("server certificate: {e}"))?;
        if chain.is_empty() {
            return Err("server certificate: no PEM CERTIFICATE".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("server key: {e}"))?;
        let verifier = match client_ca {
            None => None,
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(pem) {
                    let ca = ca.map_err(|e| format!("client CA: {e}"))?;
                    roots.add(ca).map_err(|e| format!("client CA: {e}"))?;
                }
                let v =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| format!("client CA: {e}"))?;
                Some(v)
            }
        };
        // API Gateway's `SecurityPolicy: TLS_1_2`: nothing older than TLS 1.2.
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let builder = match &verifier {
            Some(v) => builder.with_client_cert_verifier(Arc::new(AfterHandshake(v.clone()))),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("server certificate and key: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            verifier,
        })
    }

    /// What the client of a finished handshake presented, judged now.
    pub fn peer(&self, chain: Option<&[CertificateDer<'_>]>) -> PeerCert {
        judge(self.verifier.as_deref(), chain, UnixTime::now())
    }
}

/// [`Tls::peer`] at `now`.
pub fn judge(
    verifier: Option<&dyn ClientCertVerifier>,
    chain: Option<&[CertificateDer<'_>]>,
    now: UnixTime,
) -> PeerCert {
    let (Some(verifier), Some([leaf, intermediates @ ..])) = (verifier, chain) else {
        return PeerCert::None;
    };
    if let Err(e) = verifier.verify_client_cert(leaf, intermediates, now) {
        return PeerCert::Refused(e.to_string());
    }
    match ClientCert::of_der(leaf) {
        Ok(c) => PeerCert::Verified(c),
        Err(e) => PeerCert::Refused(e),
    }
}

/// Asks for a client certificate and checks the handshake signature (the client holds the
/// key), but leaves the chain to [`judge`] after the handshake: see the module comment.
#[derive(Debug)]
struct AfterHandshake(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for AfterHandshake {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use std::time::Duration;

    struct Pki {
        ca_pem: String,
        leaf: CertificateDer<'static>,
        stranger: CertificateDer<'static>,
    }

    fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "Test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "Supplier");
        leaf.not_before = rcgen::date_time_ymd(2026, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2027, 1, 1);
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0x0b]));
        let leaf = leaf
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other
            .distinguished_name
            .push(DnType::CommonName, "Stranger");
        let stranger_key = KeyPair::generate().unwrap();
        let stranger = other.self_signed(&stranger_key).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            leaf: leaf.der().clone(),
            stranger: stranger.der().clone(),
        }
    }

    fn verifier(ca_pem: &str) -> Arc<dyn ClientCertVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .unwrap()
    }

    fn at(t: &str) -> UnixTime {
        let t = parse_rfc3339(t).unwrap();
        UnixTime::since_unix_epoch(Duration::from_secs(t.as_second() as u64))
    }

    #[test]
    fn a_verified_certificate_goes_on_in_api_gateways_format() {
        let pki = pki();
        let v = verifier(&pki.ca_pem);
        let now = at("2026-06-01T00:00:00Z");
        let PeerCert::Verified(c) = judge(Some(&*v), Some(std::slice::from_ref(&pki.leaf)), now)
        else {
            panic!("not verified");
        };
        assert_eq!(c.subject_dn, "CN=Supplier");
        assert_eq!(c.issuer_dn, "CN=Test CA");
        assert_eq!(c.serial_number, "0a:0b");
        assert_eq!(c.not_before, "Jan  1 00:00:00 2026 GMT");
        assert_eq!(c.not_after, "Jan  1 00:00:00 2027 GMT");
        assert!(c.pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let ev = c.to_event();
        assert_eq!(ev.client_cert_pem.as_deref(), Some(c.pem.as_str()));
        assert_eq!(
            ev.validity.not_after.as_deref(),
            Some("Jan  1 00:00:00 2027 GMT")
        );
    }

    #[test]
    fn an_unverifiable_certificate_is_refused_and_none_is_none() {
        let pki = pki();
        let v = verifier(&pki.ca_pem);
        let now = at("2026-06-01T00:00:00Z");
        let refused = |chain: &[CertificateDer<'static>], now| {
            matches!(judge(Some(&*v), Some(chain), now), PeerCert::Refused(_))
        };
        assert!(refused(std::slice::from_ref(&pki.stranger), now));
        assert!(refused(
            std::slice::from_ref(&pki.leaf),
            at("2027-06-01T00:00:00Z")
        ));
        assert!(refused(
            std::slice::from_ref(&pki.leaf),
            at("2025-06-01T00:00:00Z")
        ));
        assert_eq!(judge(Some(&*v), None, now), PeerCert::None);
        assert_eq!(judge(Some(&*v), Some(&[]), now), PeerCert::None);
        // Without a client CA bundle, certificates are not asked for.
        assert_eq!(judge(None, Some(&[pki.leaf]), now), PeerCert::None);
    }

    #[test]
    fn pem_files_make_a_config() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert, key) = (cert.pem(), key.serialize_pem());
        assert!(Tls::from_pem(cert.as_bytes(), key.as_bytes(), None).is_ok());
        assert!(Tls::from_pem(cert.as_bytes(), key.as_bytes(), Some(cert.as_bytes())).is_ok());
        assert!(Tls::from_pem(b"", key.as_bytes(), None).is_err());
        assert!(Tls::from_pem(cert.as_bytes(), b"nope", None).is_err());
    }
}
