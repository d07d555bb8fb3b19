//! What a function needs, built once per cold start: settings, SDK clients, cached secrets.

use aws_config::{BehaviorVersion, SdkConfig};

use crate::secrets::CachedSecret;
use crate::store::Store;

/// Settings from the function's environment (template.yaml sets them).
#[derive(Clone, Debug)]
pub struct Settings {
    pub table_name: String,
    pub events_queue_url: String,
    /// One message per (subscription × event) to deliver; see `delivery`.
    pub deliveries_queue_url: String,
    pub pepper_secret_id: String,
    /// The data key that seals per-record secrets (webhook passwords, hidden headers,
    /// signing secrets) at rest.
    pub data_key_secret_id: String,
    pub jwt_audience: String,
    /// Requests per minute per credential unless the connector or token says otherwise.
    pub default_rate_limit: u32,
    /// The longest a JWT may live (`exp - iat`, and `exp - now`).
    pub jwt_max_lifetime_secs: i64,
}

impl Settings {
    /// Reads settings through `var` (the process environment, or a map in the local gateway).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let need = |k: &str| var(k).ok_or_else(|| format!("environment variable {k} is not set"));
        let num = |k: &str, default: i64| -> Result<i64, String> {
            var(k).map_or(Ok(default), |v| {
                v.parse().map_err(|_| format!("{k} must be a number"))
            })
        };
        Ok(Self {
            table_name: need("KOPPEL_TABLE")?,
            events_queue_url: need("KOPPEL_EVENTS_QUEUE_URL")?,
            deliveries_queue_url: need("KOPPEL_DELIVERIES_QUEUE_URL")?,
            pepper_secret_id: need("KOPPEL_PEPPER_SECRET")?,
            data_key_secret_id: need("KOPPEL_DATA_KEY_SECRET")?,
            jwt_audience: need("KOPPEL_JWT_AUDIENCE")?,
            default_rate_limit: u32::try_from(num("KOPPEL_DEFAULT_RATE_LIMIT", 30)?)
                .map_err(|_| "KOPPEL_DEFAULT_RATE_LIMIT out of range")?,
            jwt_max_lifetime_secs: num("KOPPEL_JWT_MAX_LIFETIME_SECS", 3600)?,
        })
    }

    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }
}

#[derive(Debug)]
pub struct Ctx {
    pub settings: Settings,
    pub store: Store,
    pub sqs: aws_sdk_sqs::Client,
    pub pepper: CachedSecret,
    pub data_key: CachedSecret,
    /// Rate-limit tokens this instance has claimed (the authorizer's; see `rate_limit`).
    pub leases: crate::rate_limit::Leases,
}

impl Ctx {
    pub fn new(sdk: &SdkConfig, settings: Settings) -> Self {
        let sm = aws_sdk_secretsmanager::Client::new(sdk);
        Self {
            store: Store::new(aws_sdk_dynamodb::Client::new(sdk), &settings.table_name),
            sqs: aws_sdk_sqs::Client::new(sdk),
            pepper: CachedSecret::new(sm.clone(), &settings.pepper_secret_id),
            data_key: CachedSecret::new(sm, &settings.data_key_secret_id),
            leases: Default::default(),
            settings,
        }
    }

    /// Loads the SDK configuration (region, credentials, `AWS_ENDPOINT_URL`) once.
    pub async fn sdk_config() -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .load()
            .await
    }

    pub async fn from_env() -> Result<Self, String> {
        let settings = Settings::from_env()?;
        Ok(Self::new(&Self::sdk_config().await, settings))
    }
}

/// The SDK's HTTPS client (rustls with aws-lc, as the SDK's default), trusting Mozilla's roots
/// compiled into the binary instead of the system's: reading and parsing the system's
/// certificate files was most of every cold start.
fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let roots = roots_pem()
        .into_iter()
        .fold(TrustStore::empty(), TrustStore::with_pem_certificate);
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(roots)
                .build()
                .expect("a trust store is all the context has"),
        )
        .build_https()
}

/// Mozilla's roots (webpki-root-certs) as PEM, the form the SDK's trust store takes.
pub fn roots_pem() -> Vec<String> {
    use base64::Engine;
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 60);
            pem.push_str("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
            pem
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_read_back_as_the_same_certificates() {
        use base64::Engine;
        let pems = roots_pem();
        assert!(pems.len() > 100, "{} roots", pems.len());
        for (pem, der) in pems.iter().zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS) {
            let lines: Vec<&str> = pem.lines().collect();
            assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
            assert_eq!(lines[lines.len() - 1], "-----END CERTIFICATE-----");
            assert!(lines.iter().all(|l| l.len() <= 64));
            let body = lines[1..lines.len() - 1].concat();
            let back = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap();
            assert_eq!(back, der.as_ref());
        }
    }
}
