//! The HTTP client that sends webhooks, with the security checks at the lowest layer:
//! - https only, no redirects followed, no proxies (a proxy would resolve for us);
//! - every address a host resolves to is checked before connecting ([`GuardedResolver`]);
//!   an IP-literal host, which skips resolvers, is checked before the request;
//! - connect timeout 5 s, 15 s in all; at most 64 KiB of the response is read;
//! - TLS pinning: a subscription with a CA certificate is verified against that CA
//!   *instead of* the public roots (its receiver is trusted only with the certificate the
//!   partner registered), with hostname verification kept, or trusts it as the receiver's
//!   own self-signed certificate (`tls.rs`); without one, the platform's public roots;
//! - what comes back (the answer's start, an error's text) is returned as read: `deliver`
//!   cuts the subscription's secrets out of it before cutting it to size.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::destination::{self, Class};
use crate::schedule::parse_retry_after;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
pub const MAX_RESPONSE_READ: usize = 64 * 1024;
/// The most of an answer's body that is recorded (after secrets are cut out).
pub const MAX_EXCERPT: usize = 1024;
/// The most of an error's text that is recorded (after secrets are cut out).
pub const MAX_ERROR_TEXT: usize = 300;
const REFUSED_PREFIX: &str = "destination refused";

/// The error a refused destination causes, found again in reqwest's error chain (its text
/// starts with [`REFUSED_PREFIX`]).
#[derive(Debug, thiserror::Error)]
#[error("destination refused: a {} address", .0.as_str())]
pub struct Refused(pub Class);

/// Resolves like the system does, then refuses the whole name if any address is not
/// allowed (a name that mixes public and private addresses is not a receiver).
struct GuardedResolver {
    allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for a in &addrs {
                destination::check(a.ip(), allow).map_err(|c| Box::new(Refused(c)))?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// One webhook request, fully prepared (values in the clear: never logged).
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub ca_certificate_pem: Option<&'a str>,
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub basic: Option<(&'a str, &'a str)>,
    pub headers: &'a [(String, String)],
    pub body: &'a str,
}

/// What came of a request.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error_kind: Option<&'static str>,
    /// The error's text, whole: not yet cleaned of secrets nor cut to size.
    pub error: Option<String>,
    /// The answer's body as read (at most [`MAX_RESPONSE_READ`] bytes): not yet cleaned of
    /// secrets nor cut to size.
    pub excerpt: Option<String>,
    /// Whether `excerpt` stops at the read limit, where the receiver sent more.
    pub excerpt_cut: bool,
    pub retry_after: Option<u64>,
}

/// Pinned clients kept per instance; past this many CAs the cache starts over.
const PINNED_KEPT: usize = 64;

pub struct Sender {
    allow_loopback: bool,
    user_agent: String,
    /// Public roots: built on the first delivery that needs it (a cold start that only
    /// sweeps or delivers to pinned receivers never reads the system's roots).
    public: OnceLock<reqwest::Client>,
    /// A client per registered CA (its PEM), kept with its connections: deliveries to the
    /// same receiver reuse them instead of a new client and TLS handshake each time.
    pinned: Mutex<HashMap<String, reqwest::Client>>,
}

impl Sender {
    pub fn new(allow_loopback: bool) -> Result<Self, String> {
        Ok(Self {
            allow_loopback,
            user_agent: format!("Koppel-Webhooks/{}", env!("CARGO_PKG_VERSION")),
            public: OnceLock::new(),
            pinned: Mutex::new(HashMap::new()),
        })
    }

    /// The client for a receiver: pinned to `ca`, or on the public roots.
    fn client(&self, ca: Option<&str>) -> Result<reqwest::Client, String> {
        let Some(pem) = ca else {
            if let Some(c) = self.public.get() {
                return Ok(c.clone());
            }
            let built = build(self.allow_loopback, &self.user_agent, None)?;
            return Ok(self.public.get_or_init(|| built).clone());
        };
        let lock = || self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = lock().get(pem) {
            return Ok(c.clone());
        }
        let built = build(self.allow_loopback, &self.user_agent, Some(pem))?;
        let mut kept = lock();
        if kept.len() >= PINNED_KEPT {
            kept.clear();
        }
        kept.insert(pem.to_owned(), built.clone());
        Ok(built)
    }

    pub async fn send(&self, o: &Outgoing<'_>) -> Reply {
        let started = Instant::now();
        let mut reply = self.send_timed(o).await;
        reply.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        reply
    }

    async fn send_timed(&self, o: &Outgoing<'_>) -> Reply {
        let failed = |kind: &'static str, error: String| Reply {
            error_kind: Some(kind),
            error: Some(error),
            ..Reply::default()
        };
        let url = match url::Url::parse(o.url) {
            Ok(u) if u.scheme() == "https" => u,
            _ => return failed("request", "not an https:// URL".into()),
        };
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip.into()),
            Some(url::Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        if let Some(ip) = literal
            && let Err(c) = destination::check(ip, self.allow_loopback)
        {
            return failed("refused", Refused(c).to_string());
        }
        let client = match self.client(o.ca_certificate_pem) {
            Ok(c) => c,
            Err(e) => return failed("tls", e),
        };
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", o.webhook_id)
            .header("webhook-timestamp", o.timestamp.to_string())
            .header("webhook-signature", o.signature);
        for (k, v) in o.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some((user, password)) = o.basic {
            req = req.basic_auth(user, Some(password));
        }
        let mut resp = match req.body(o.body.to_owned()).send().await {
            Ok(r) => r,
            Err(e) => {
                let (kind, text) = describe(&e);
                return failed(kind, text);
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut body = Vec::new();
        // A receiver that streams forever is cut off at the limit (or by the timeout).
        while body.len() < MAX_RESPONSE_READ {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                _ => break,
            }
        }
        let cut = body.len() >= MAX_RESPONSE_READ;
        body.truncate(MAX_RESPONSE_READ);
        Reply {
            status: Some(status),
            excerpt: (!body.is_empty()).then(|| text_of(&body, cut)),
            excerpt_cut: cut,
            retry_after,
            ..Reply::default()
        }
    }
}

fn build(
    allow_loopback: bool,
    user_agent: &str,
    ca: Option<&str>,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .no_proxy()
        .https_only(true)
        .user_agent(user_agent)
        .dns_resolver(Arc::new(GuardedResolver { allow_loopback }));
    if let Some(pem) = ca {
        b = b.tls_backend_preconfigured(crate::tls::client_config(pem)?);
    }
    b.build().map_err(|e| format!("client: {e}"))
}

/// The error kind and a short text without the URL (which may carry a token in its query).
fn describe(e: &reqwest::Error) -> (&'static str, String) {
    let mut text = String::new();
    let mut refused = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        // The resolver's error may reach us re-boxed, where a downcast no longer sees it.
        refused |=
            s.downcast_ref::<Refused>().is_some() || s.to_string().starts_with(REFUSED_PREFIX);
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s.to_string());
        source = s.source();
    }
    let lower = text.to_ascii_lowercase();
    let kind = if refused {
        "refused"
    } else if e.is_timeout() {
        "timeout"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "tls"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    };
    if text.is_empty() {
        text = kind.to_owned();
    }
    (kind, text)
}

/// `bytes` as text, invalid UTF-8 replaced; `cut`: the bytes stop at a read limit, so an
/// incomplete character at their end is dropped (it is not the receiver's error).
pub fn text_of(bytes: &[u8], cut: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut chunks = bytes.utf8_chunks().peekable();
    while let Some(c) = chunks.next() {
        out.push_str(c.valid());
        let incomplete_at_cut = cut && chunks.peek().is_none();
        if !c.invalid().is_empty() && !incomplete_at_cut {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(url: &str) -> Outgoing<'_> {
        Outgoing {
            url,
            ca_certificate_pem: None,
            webhook_id: "evt_1",
            timestamp: 1,
            signature: "v1,x",
            basic: None,
            headers: &[],
            body: "{}",
        }
    }

    #[tokio::test]
    async fn ip_literals_outside_the_rules_are_refused_before_connecting() {
        let s = Sender::new(true).unwrap();
        for url in [
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00::1]/",
            "https://[::ffff:192.168.1.1]/",
        ] {
            let r = s.send(&to(url)).await;
            assert_eq!(r.error_kind, Some("refused"), "{url}: {:?}", r.error);
            assert_eq!(r.status, None);
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_allowed() {
        let r = Sender::new(false)
            .unwrap()
            .send(&to("https://localhost:9/"))
            .await;
        assert_eq!(r.error_kind, Some("refused"), "{:?}", r.error);
        let r = Sender::new(false)
            .unwrap()
            .send(&to("https://127.0.0.1:9/"))
            .await;
        assert_eq!(r.error_kind, Some("refused"), "{:?}", r.error);
    }

    #[test]
    fn a_character_split_by_the_read_limit_is_dropped() {
        let text = "aé".as_bytes();
        assert_eq!(text_of(&text[..2], true), "a");
        assert_eq!(text_of(&text[..2], false), "a\u{FFFD}");
        assert_eq!(text_of(b"a\xffb", true), "a\u{FFFD}b");
        assert_eq!(text_of(text, true), "aé");
    }

    #[tokio::test]
    async fn only_https_is_sent() {
        let r = Sender::new(true)
            .unwrap()
            .send(&to("http://127.0.0.1:9/"))
            .await;
        assert_eq!(r.error_kind, Some("request"));
    }
}
