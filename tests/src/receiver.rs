//! A webhook receiver for the end-to-end tests: HTTPS on 127.0.0.1 with a certificate from
//! a CA made for it (to register on the subscription), or a self-signed one as plain
//! `openssl req -x509` makes it; answering with the statuses it was given in turn (then
//! 200), optionally echoing a request header, and keeping every request it got.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

#[derive(Clone, Debug)]
pub struct Received {
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Receiver {
    /// `https://127.0.0.1:<port>/hook`
    pub url: String,
    /// The certificate to register on the subscription: the CA that signed the receiver's
    /// certificate, or (`Cert::SelfSigned`) that certificate itself.
    pub ca_pem: String,
    requests: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost it signed: (CA PEM, chain,
/// key).
fn certificates() -> (
    String,
    Vec<pki_types::CertificateDer<'static>>,
    pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Koppel e2e test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    leaf.distinguished_name
        .push(DnType::CommonName, "webhook receiver");
    let cert = leaf.signed_by(&key, &issuer).expect("server certificate");
    (
        ca_cert.pem(),
        vec![cert.der().clone()],
        pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// A self-signed certificate as `openssl req -x509 -subj /CN=127.0.0.1` makes it: `CA:TRUE`,
/// no subjectAltName, used as the server's own certificate: (its PEM, chain, key).
fn self_signed_certificate() -> (
    String,
    Vec<pki_types::CertificateDer<'static>>,
    pki_types::PrivateKeyDer<'static>,
) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = p.self_signed(&key).expect("self-signed certificate");
    (
        cert.pem(),
        vec![cert.der().clone()],
        pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// The receiver's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cert {
    /// Issued by a CA made for the receiver (`ca_pem` is the CA).
    Issued,
    /// Self-signed, CA:TRUE, no subjectAltName (`ca_pem` is the certificate itself).
    SelfSigned,
}

/// What the receiver answers besides the status.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// `(header, pad)`: the answer is `pad` times `x`, then the request's value of
    /// `header`, then ` (echoed)`: a receiver that echoes what it got.
    pub echo: Option<(String, usize)>,
}

impl Receiver {
    /// Starts a receiver that answers `statuses` in turn, then 200.
    pub async fn start(statuses: &[u16]) -> Self {
        Self::start_with(statuses, Cert::Issued, Answer::default()).await
    }

    /// A receiver with the certificate `cert`, answering `answer` with `statuses` in turn.
    pub async fn start_with(statuses: &[u16], cert: Cert, answer: Answer) -> Self {
        let (ca_pem, chain, key) = match cert {
            Cert::Issued => certificates(),
            Cert::SelfSigned => self_signed_certificate(),
        };
        let answer = Arc::new(answer);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<_>>(),
        ));
        let (seen, answers) = (requests.clone(), statuses.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let (seen, answers) = (seen.clone(), answers.clone());
                let answer = answer.clone();
                tokio::spawn(async move {
                    // A client that does not trust us fails the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, answers) = (seen.clone(), answers.clone());
                        let answer = answer.clone();
                        async move {
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                })
                                .collect();
                            let body = req.into_body().collect().await.map(|b| b.to_bytes());
                            let body =
                                String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                            let got = Received { headers, body };
                            let status = answers.lock().unwrap().pop_front().unwrap_or(200);
                            let text = match &answer.echo {
                                Some((name, pad)) => format!(
                                    "{}{} (echoed)",
                                    "x".repeat(*pad),
                                    got.header(name).unwrap_or_default()
                                ),
                                None => format!("answered {status}"),
                            };
                            seen.lock().unwrap().push(got);
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(text)))
                                    .expect("response"),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Self {
            url: format!("https://127.0.0.1:{port}/hook"),
            ca_pem,
            requests,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (at most `secs`) until `n` requests came in; returns what came.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.received().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.received()
    }
}

/// Verifies a request with the Python `standardwebhooks` library (PyPI) and `secret`, as a
/// receiver would: `Ok` or the library's complaint.
pub fn verify_with_standardwebhooks(secret: &str, r: &Received) -> Result<(), String> {
    use std::io::Write;
    let python = std::env::var("KOPPEL_E2E_PYTHON")
        .expect("KOPPEL_E2E_PYTHON is not set: run the end-to-end tests through tools/test.sh");
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        d = json.load(sys.stdin)\n\
        Webhook(d['secret']).verify(d['body'], d['headers'])\n";
    let headers: serde_json::Map<String, serde_json::Value> = r
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("webhook-"))
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let input = serde_json::json!({ "secret": secret, "body": r.body, "headers": headers });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python ends");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
