//! Mutual TLS (seed 003: an OSR supplier connects with TLS 1.2 or newer and a PKIoverheid
//! client certificate), end to end. The test makes its own PKI with rcgen: a CA standing in
//! for the PKIoverheid root, client certificates it issues (valid, expired, not yet valid)
//! and a stranger's self-signed one. It starts a second gateway beside the test stack
//! (`koppel-local serve --routes-only --tls-cert --tls-key --client-ca`, same emulator and
//! table) that serves HTTPS and hands the verified certificate to the real authorizer, as
//! API Gateway's mTLS custom domain does; connectors and certificates are set up through
//! the test stack's own API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use koppel_e2e::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{self, pki_types};

/// A client certificate with its key, as PEM.
struct ClientCert {
    cert_pem: String,
    key_pem: String,
}

/// The test's PKI: the CA clients chain to and the server certificate, in files for the
/// gateway's command line.
struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    server_ca_pem: String,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("koppel-e2e-mtls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Staat der Nederlanden e2e root");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        // The server's own certificate, issued by the same CA (the client trusts it).
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
        std::fs::write(dir.join("server.pem"), server.pem()).expect("write");
        std::fs::write(dir.join("server.key"), server_key.serialize_pem()).expect("write");
        Self {
            dir,
            issuer,
            server_ca_pem: ca_cert.pem(),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A client certificate the CA issues, valid from `from` to `until`.
    fn issue(&self, cn: &str, from: Timestamp, until: Timestamp) -> ClientCert {
        let key = KeyPair::generate().expect("client key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "Leverancier BV");
        // rcgen takes `time`'s type, which it builds from a date: the midnight (UTC) of the
        // day is close enough for windows a day or more from now.
        let day = |t: Timestamp| {
            let d = t.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
            rcgen::date_time_ymd(
                d.year().into(),
                d.month().unsigned_abs(),
                d.day().unsigned_abs(),
            )
        };
        p.not_before = day(from);
        p.not_after = day(until);
        let cert = p.signed_by(&key, &self.issuer).expect("client certificate");
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn valid(&self, cn: &str) -> ClientCert {
        let now = Timestamp::now();
        self.issue(
            cn,
            now - jiff::SignedDuration::from_hours(24),
            now + jiff::SignedDuration::from_hours(720),
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed certificate no truststore holds.
fn stranger() -> ClientCert {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, "stranger");
    let cert = p.self_signed(&key).expect("certificate");
    ClientCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The HTTPS gateway; killed when dropped.
struct TlsGateway {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl TlsGateway {
    async fn start(pki: &Pki) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("koppel-e2e-mtls-gateway-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(var("KOPPEL_E2E_LOCAL"))
            .args(["--template", &var("KOPPEL_E2E_TEMPLATE")])
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--routes-only",
            ])
            .args(["--tls-cert", &pki.file("server.pem")])
            .args(["--tls-key", &pki.file("server.key")])
            .args(["--client-ca", &pki.file("ca.pem")])
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start koppel-local");
        let mut gw = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = gw.child.try_wait().expect("child status") {
                panic!(
                    "the TLS gateway exited ({status}): see {}",
                    gw.log.display()
                );
            }
            let up = call(&gw, pki, None, "GET", "/v1/me", &[], None)
                .await
                .is_ok_and(|(status, _)| status == 401);
            if up {
                return gw;
            }
            assert!(
                Instant::now() < deadline,
                "the TLS gateway did not answer within 30 s: see {}",
                gw.log.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TlsGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTPS request to the gateway (HTTP/1.1, `Connection: close`), presenting `cert`
/// if given: (status, JSON body or `null`). `Err` when the connection or handshake fails.
async fn call(
    gw: &TlsGateway,
    pki: &Pki,
    cert: Option<&ClientCert>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in pki_types::CertificateDer::pem_slice_iter(pki.server_ca_pem.as_bytes()) {
        roots.add(c.expect("CA PEM")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match cert {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let chain = pki_types::CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client PEM");
            let key = pki_types::PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
    };
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
            .await
            .map_err(|e| e.to_string())?;
        let name = pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            gw.port,
            payload.len()
        );
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&payload);
        tls.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        // The server closes after the answer; a TLS peer that skips close_notify is fine.
        let _ = tls.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or(format!("no answer: {text:?}"))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(format!("no status: {head:?}"))?;
        Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// A connector of a fresh workspace with a key, a token and a JWT key, managed by the
/// owner's personal token.
struct Fixture {
    owner_auth: String,
    connector: String,
    api_key: String,
    token: String,
    jwt: Value,
}

impl Fixture {
    fn new() -> Self {
        let (ws, owner) = new_workspace("mtls e2e");
        let (_, pat) = personal_token(&ws, &owner);
        let id = NewConnector::sample(&ws, &owner)
            .description("OSR supplier (mtls e2e)")
            .scopes(&["endpoints:read"])
            .id();
        let (_, api_key) = NewCredential::key(&ws, &id).secret();
        let (_, token) = NewCredential::token(&ws, &id).secret();
        let iss = format!("https://supplier-{id}.example");
        let jwt = jwt_key(&ws, &id, &iss, "k1");
        Self {
            owner_auth: format!("Bearer {pat}"),
            connector: id,
            api_key,
            token,
            jwt: json!({"iss": iss, "key": jwt}),
        }
    }

    /// The three credential kinds' headers: API key, connector token, the OSR `JWT` header.
    fn credentials(&self) -> Vec<(&'static str, Vec<(String, String)>)> {
        let n = now();
        let claims = json!({
            "iss": self.jwt["iss"], "aud": demo()["jwt"]["aud"], "iat": n, "exp": n + 300,
            "jti": uuid::Uuid::new_v4().to_string(), "sub": "mtls e2e",
        });
        let signing = json!({"jwt": {"private_key_pem": self.jwt["key"]["private_key_pem"]}});
        let jwt = sign(&signing, "k1", &claims);
        vec![
            (
                "api key",
                vec![
                    ("API-Interface-Id".into(), self.connector.clone()),
                    ("API-Key".into(), self.api_key.clone()),
                ],
            ),
            (
                "token",
                vec![("Authorization".into(), format!("Bearer {}", self.token))],
            ),
            ("jwt", vec![("JWT".into(), jwt)]),
        ]
    }

    async fn manage(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let path = format!("/v1/connectors/{}{path}", self.connector);
        send(
            &base_url(),
            method,
            &path,
            &[("Authorization", &self.owner_auth)],
            body,
        )
        .await
    }

    async fn register(&self, cert: &ClientCert) -> Reply {
        self.manage(
            "POST",
            "/certificates",
            Some(&json!({"certificate_pem": cert.cert_pem})),
        )
        .await
    }

    /// `PATCH` of `require_client_certificate` at the connector's current version.
    async fn set_required(&self, on: bool) -> Reply {
        let current = self.manage("GET", "", None).await;
        let etag = current.headers["etag"].to_str().expect("ETag").to_owned();
        let path = format!("/v1/connectors/{}", self.connector);
        send(
            &base_url(),
            "PATCH",
            &path,
            &[("Authorization", &self.owner_auth), ("If-Match", &etag)],
            Some(&json!({"require_client_certificate": on})),
        )
        .await
    }

    async fn require(&self, on: bool) {
        let r = self.set_required(on).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["require_client_certificate"], on);
    }
}

/// `GET /v1/me` over the TLS gateway with each credential kind: the statuses.
async fn me_statuses(
    gw: &TlsGateway,
    pki: &Pki,
    f: &Fixture,
    cert: Option<&ClientCert>,
) -> Vec<(&'static str, u16, Value)> {
    let mut out = Vec::new();
    for (kind, headers) in f.credentials() {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, body) = call(gw, pki, cert, "GET", "/v1/me", &headers, None)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        out.push((kind, status, body));
    }
    out
}

async fn assert_all(
    gw: &TlsGateway,
    pki: &Pki,
    f: &Fixture,
    cert: Option<&ClientCert>,
    want: u16,
    what: &str,
) {
    for (kind, status, body) in me_statuses(gw, pki, f, cert).await {
        assert_eq!(status, want, "{what}, {kind}: {body}");
        if want == 403 {
            // The same answer whatever failed.
            assert_eq!(body["status"], 403, "{what}, {kind}: {body}");
            assert_eq!(
                body["type"], "urn:koppel:problem:forbidden",
                "{what}, {kind}"
            );
        }
    }
}

#[tokio::test]
async fn a_connector_that_requires_a_certificate_admits_only_its_registered_ones() {
    let pki = Pki::new();
    let gw = TlsGateway::start(&pki).await;
    let f = Fixture::new();
    let mine = pki.valid("leverancier.example");
    let another = pki.valid("another.example");
    let now = Timestamp::now();
    let expired = pki.issue(
        "expired.example",
        now - jiff::SignedDuration::from_hours(720),
        now - jiff::SignedDuration::from_hours(24),
    );
    let early = pki.issue(
        "early.example",
        now + jiff::SignedDuration::from_hours(24),
        now + jiff::SignedDuration::from_hours(720),
    );

    // A PEM with a private key is refused, naming the field; an expired one too.
    let with_key = ClientCert {
        cert_pem: format!("{}{}", mine.cert_pem, mine.key_pem),
        key_pem: String::new(),
    };
    let r = f.register(&with_key).await;
    r.assert_problem(422);
    assert!(
        problem_fields(&r).contains(&"certificate_pem".to_owned()),
        "{}",
        r.body
    );
    f.register(&expired).await.assert_problem(422);

    let r = f.register(&mine).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let fingerprint = s(&r.body["fingerprint"]).to_owned();
    assert_eq!(fingerprint.len(), 64);
    assert!(
        s(&r.body["subject"]).contains("CN=leverancier.example"),
        "{}",
        r.body
    );
    assert!(
        s(&r.body["issuer"]).contains("Staat der Nederlanden e2e root"),
        "{}",
        r.body
    );
    assert!(r.body["not_after"].is_string() && r.body["serial"].is_string());
    assert!(r.body.get("key_pem").is_none() && !r.body.to_string().contains("PRIVATE"));
    f.register(&mine).await.assert_problem(409);
    // Not yet valid may be registered ahead of its start.
    assert_eq!(f.register(&early).await.status, 201);
    let list = f.manage("GET", "/certificates", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["items"].as_array().map(Vec::len),
        Some(2),
        "{}",
        list.body
    );

    // Before the connector requires one, a certificate is optional.
    assert_all(&gw, &pki, &f, None, 200, "not required, none").await;
    f.require(true).await;
    let one = f
        .manage("GET", &format!("/certificates/{fingerprint}"), None)
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(
        one.body, r.body,
        "the 201's Location is where it can be read"
    );
    let location = r.headers["location"].to_str().expect("Location");
    assert!(
        location.ends_with(&format!(
            "/v1/connectors/{}/certificates/{fingerprint}",
            f.connector
        )),
        "{location}"
    );

    assert_all(&gw, &pki, &f, Some(&mine), 200, "registered").await;
    for (kind, _, body) in me_statuses(&gw, &pki, &f, Some(&mine)).await {
        assert_eq!(
            body["client_certificate"]["fingerprint"],
            fingerprint.as_str(),
            "{kind}"
        );
        assert!(s(&body["client_certificate"]["subject"]).contains("CN=leverancier.example"));
    }
    assert_all(&gw, &pki, &f, None, 403, "none").await;
    assert_all(&gw, &pki, &f, Some(&another), 403, "another of the same CA").await;
    assert_all(&gw, &pki, &f, Some(&stranger()), 403, "a stranger's").await;
    assert_all(&gw, &pki, &f, Some(&expired), 403, "expired").await;
    assert_all(&gw, &pki, &f, Some(&early), 403, "not yet valid").await;
    // The plain-HTTP stack presents no certificate at all.
    let token = format!("Bearer {}", f.token);
    me(&[("Authorization", &token)]).await.assert_problem(403);

    // The last certificate valid now cannot go while one is required (the not-yet-valid one
    // does not count): that would lock the connector out.
    let r = f
        .manage("DELETE", &format!("/certificates/{fingerprint}"), None)
        .await;
    r.assert_problem(409);
    assert!(s(&r.body["detail"]).contains("successor"), "{}", r.body);
    assert_all(&gw, &pki, &f, Some(&mine), 200, "still registered").await;

    // With its successor registered, it can; deleted, it no longer admits.
    assert_eq!(f.register(&another).await.status, 201);
    let r = f
        .manage("DELETE", &format!("/certificates/{fingerprint}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    f.manage("DELETE", &format!("/certificates/{fingerprint}"), None)
        .await
        .assert_problem(404);
    f.manage("GET", &format!("/certificates/{fingerprint}"), None)
        .await
        .assert_problem(404);
    assert_all(&gw, &pki, &f, Some(&mine), 403, "deleted").await;
    assert_all(&gw, &pki, &f, Some(&another), 200, "the successor").await;
}

#[tokio::test]
async fn a_connector_that_does_not_require_one_works_with_or_without() {
    let pki = Pki::new();
    let gw = TlsGateway::start(&pki).await;
    let f = Fixture::new();
    assert_all(&gw, &pki, &f, None, 200, "none").await;
    // Requiring one with none registered would lock the connector out: 422, nothing changed.
    let r = f.set_required(true).await;
    r.assert_problem(422);
    assert_eq!(
        problem_fields(&r),
        ["require_client_certificate"],
        "{}",
        r.body
    );
    let con = f.manage("GET", "", None).await;
    assert_eq!(
        con.body["require_client_certificate"], false,
        "{}",
        con.body
    );
    let any = pki.valid("any.example");
    for (kind, status, body) in me_statuses(&gw, &pki, &f, Some(&any)).await {
        assert_eq!(status, 200, "{kind}: {body}");
        // `GET /v1/me` says which certificate came with the request, registered or not.
        assert!(s(&body["client_certificate"]["subject"]).contains("CN=any.example"));
    }
    // Without TLS the answer shows none.
    let token = format!("Bearer {}", f.token);
    let r = me(&[("Authorization", &token)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body["client_certificate"].is_null(), "{}", r.body);
}

/// `openssl s_client` offering only `version`: whether the handshake completed, and what
/// it printed.
fn openssl_handshake(port: u16, version: &str, ca: &Path) -> Option<(bool, String)> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
        ])
        // OpenSSL 3 refuses TLS 1.1 itself at its default security level: level 0 makes
        // it really offer 1.1, so a failure is the server's refusal.
        .args([
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-CAfile",
            &ca.to_string_lossy(),
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let done = text.contains("Verify return code: 0 (ok)") && !text.contains("alert");
    Some((done, text))
}

#[tokio::test]
async fn a_tls_1_1_client_cannot_connect() {
    let pki = Pki::new();
    let gw = TlsGateway::start(&pki).await;
    let ca = pki.dir.join("ca.pem");
    let Some((tls12, text)) = openssl_handshake(gw.port, "-tls1_2", &ca) else {
        eprintln!("openssl is not installed: the TLS 1.1 check is skipped");
        return;
    };
    // The same client, at TLS 1.2, gets through: the refusal below is about the version.
    assert!(tls12, "TLS 1.2 handshake failed: {text}");
    let (tls11, text) = openssl_handshake(gw.port, "-tls1_1", &ca).expect("openssl");
    assert!(!tls11, "a TLS 1.1 handshake completed: {text}");
    assert!(
        !text.contains("no protocols available"),
        "this openssl does not offer TLS 1.1 at all, so nothing was tested: {text}"
    );
    // The server answered the TLS 1.1 hello with an alert (rustls: handshake_failure).
    assert!(text.contains("SSL alert number"), "{text}");
}
