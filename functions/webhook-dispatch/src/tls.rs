//! TLS for a subscription that registered certificates (`ca_certificate_pem`): its
//! receiver is trusted only with them, never with the public roots.
//!
//! Two kinds of registration must work:
//! - a CA (a partner's own or a PKIoverheid one): the receiver's chain must lead to it,
//!   verified as usual (webpki, hostname included);
//! - the receiver's own certificate, self-signed: what seed 000's partners make with plain
//!   `openssl req -x509`. Such a certificate says `CA:TRUE`, so a chain verifier refuses it
//!   as the server's own certificate (`CaUsedAsEndEntity`). Presented as exactly the
//!   registered bytes it is trusted as a pinned end-entity certificate: the pin replaces
//!   the chain, while its validity period and names are still checked and the handshake
//!   signature is still verified with its key (so the server must hold the private key).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Encode, Tag, Tagged};

const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// The rustls client configuration for a subscription's registered certificates (PEM).
pub fn client_config(pem: &str) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Pinned::new(pem, provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // Webhooks are sent over HTTP/1.1 (reqwest is built without HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Trusts the registered certificates as pins and as roots (see the module docs).
#[derive(Debug)]
pub struct Pinned {
    pinned: Vec<CertificateDer<'static>>,
    /// `None` when no registered certificate can be a trust anchor: only pins then.
    chains: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    pub fn new(pem: &str, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let load_error = || "the subscription's CA certificate does not load".to_owned();
        let certs = Certificate::load_pem_chain(pem.as_bytes()).map_err(|_| load_error())?;
        let pinned = certs
            .iter()
            .map(|c| c.to_der().map(CertificateDer::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| load_error())?;
        if pinned.is_empty() {
            return Err(load_error());
        }
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(pinned.iter().cloned());
        let chains = if added == 0 {
            None
        } else {
            let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("TLS verifier: {e}"))?;
            Some(v)
        };
        Ok(Self {
            pinned,
            chains,
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            verify_pinned(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chains {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The checks a pinned certificate still gets: it is valid at `now`, and it names
/// `server_name`: in its subjectAltName when it has one (webpki's rules), else in its
/// subject's common name (plain `openssl req -x509` makes no subjectAltName).
pub fn verify_pinned(
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    use x509_cert::der::Decode;
    let bad = |e: CertificateError| Error::InvalidCertificate(e);
    let cert =
        Certificate::from_der(der.as_ref()).map_err(|_| bad(CertificateError::BadEncoding))?;
    let validity = &cert.tbs_certificate.validity;
    let secs = now.as_secs();
    if secs < validity.not_before.to_unix_duration().as_secs() {
        return Err(bad(CertificateError::NotValidYet));
    }
    if secs > validity.not_after.to_unix_duration().as_secs() {
        return Err(bad(CertificateError::Expired));
    }
    let has_san = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id == SUBJECT_ALT_NAME);
    let names_it = if has_san {
        webpki::EndEntityCert::try_from(der)
            .and_then(|ee| ee.verify_is_valid_for_subject_name(server_name))
            .is_ok()
    } else {
        common_names(&cert).any(|cn| cn_names(&cn, server_name))
    };
    if names_it {
        Ok(())
    } else {
        Err(bad(CertificateError::NotValidForName))
    }
}

/// The subject's common names that are text.
fn common_names(cert: &Certificate) -> impl Iterator<Item = String> + '_ {
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == COMMON_NAME)
        .filter(|atv| {
            matches!(
                atv.value.tag(),
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
            )
        })
        .filter_map(|atv| {
            std::str::from_utf8(atv.value.value())
                .ok()
                .map(str::to_owned)
        })
}

/// Whether a common name names the server exactly (no wildcards: a pin is for one host).
fn cn_names(cn: &str, server_name: &ServerName<'_>) -> bool {
    match server_name {
        ServerName::DnsName(d) => cn.eq_ignore_ascii_case(d.as_ref()),
        ServerName::IpAddress(ip) => cn.parse::<IpAddr>() == Ok(IpAddr::from(*ip)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    fn name(s: &str) -> ServerName<'static> {
        ServerName::try_from(s.to_owned()).unwrap()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    /// A self-signed CA:TRUE certificate as `openssl req -x509 -subj /CN=<cn>` makes it
    /// (no subjectAltName unless `sans` names some), valid 2025–2035.
    fn openssl_like(cn: &str, sans: &[&str]) -> CertificateDer<'static> {
        made(cn, sans).0
    }

    /// The certificate of [`openssl_like`] with its PEM.
    fn made(cn: &str, sans: &[&str]) -> (CertificateDer<'static>, String) {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2035, 1, 1);
        let c = p.self_signed(&key).unwrap();
        (c.der().clone(), c.pem())
    }

    const Y2030: u64 = 1_893_456_000;

    #[test]
    fn a_pin_without_alt_names_is_checked_against_its_common_name() {
        let c = openssl_like("hooks.example", &[]);
        assert!(verify_pinned(&c, &name("hooks.example"), at(Y2030)).is_ok());
        assert!(verify_pinned(&c, &name("HOOKS.example"), at(Y2030)).is_ok());
        assert!(verify_pinned(&c, &name("other.example"), at(Y2030)).is_err());
        let ip = openssl_like("127.0.0.1", &[]);
        assert!(verify_pinned(&ip, &name("127.0.0.1"), at(Y2030)).is_ok());
        assert!(verify_pinned(&ip, &name("127.0.0.2"), at(Y2030)).is_err());
    }

    #[test]
    fn a_pin_with_alt_names_is_checked_against_them_only() {
        let c = openssl_like("hooks.example", &["alt.example", "127.0.0.1"]);
        assert!(verify_pinned(&c, &name("alt.example"), at(Y2030)).is_ok());
        assert!(verify_pinned(&c, &name("127.0.0.1"), at(Y2030)).is_ok());
        // The common name no longer counts once there are alt names (RFC 6125).
        assert!(verify_pinned(&c, &name("hooks.example"), at(Y2030)).is_err());
    }

    #[test]
    fn a_pin_is_valid_only_in_its_period() {
        let c = openssl_like("hooks.example", &[]);
        let err = |t| verify_pinned(&c, &name("hooks.example"), at(t)).unwrap_err();
        assert_eq!(
            err(1_700_000_000),
            Error::InvalidCertificate(CertificateError::NotValidYet)
        );
        assert_eq!(
            err(2_100_000_000),
            Error::InvalidCertificate(CertificateError::Expired)
        );
    }

    #[test]
    fn only_the_exact_registered_certificate_is_a_pin() {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (registered, pem) = made("127.0.0.1", &[]);
        let v = Pinned::new(&pem, provider).unwrap();
        let now = UnixTime::now();
        let ok = v.verify_server_cert(&registered, &[], &name("127.0.0.1"), &[], now);
        assert!(ok.is_ok(), "{ok:?}");
        // Another self-signed certificate with the same name is no pin and no chain.
        let other = openssl_like("127.0.0.1", &[]);
        let e = v.verify_server_cert(&other, &[], &name("127.0.0.1"), &[], now);
        assert!(e.is_err());
        assert!(
            Pinned::new(
                "garbage",
                Arc::new(rustls::crypto::aws_lc_rs::default_provider())
            )
            .is_err()
        );
    }
}
