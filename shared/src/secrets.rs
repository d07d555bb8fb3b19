//! Root secrets from Secrets Manager, fetched once per cold start and never per request.
//! Rotation keeps the previous version valid: both `AWSCURRENT` and `AWSPREVIOUS` are
//! loaded, and a version that is unknown (a credential issued after a rotation) causes a
//! reload, at most every few seconds. Only a stored credential names a version, so a
//! caller cannot force reloads with made-up secrets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use tokio::sync::RwLock;

use crate::store::StoreError;

const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(5);
/// A warm function picks up a rotation within this time even if nothing asks for it.
const MAX_AGE: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct SecretVersion {
    pub version: String,
    pub value: Vec<u8>,
}

/// Never prints the value.
impl std::fmt::Debug for SecretVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersion")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct SecretRing {
    pub current: SecretVersion,
    pub previous: Option<SecretVersion>,
}

impl SecretRing {
    pub fn get(&self, version: &str) -> Option<&SecretVersion> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|v| v.version == version)
    }
}

/// One cached secret.
#[derive(Debug)]
pub struct CachedSecret {
    client: Client,
    secret_id: String,
    cache: RwLock<Option<(Arc<SecretRing>, Instant)>>,
}

impl CachedSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            cache: RwLock::new(None),
        }
    }

    pub async fn ring(&self) -> Result<Arc<SecretRing>, StoreError> {
        if let Some((ring, at)) = &*self.cache.read().await
            && at.elapsed() < MAX_AGE
        {
            return Ok(ring.clone());
        }
        self.reload(Duration::ZERO).await
    }

    /// The ring to make a new hash with: at most a few seconds old, so an instance that issues
    /// rarely never hashes with a version that rotations since have dropped (the verifier
    /// knows only `AWSCURRENT` and `AWSPREVIOUS`). Issuing is rare; the reload is cheap.
    pub async fn for_new_hash(&self) -> Result<Arc<SecretRing>, StoreError> {
        self.reload(RELOAD_AT_MOST_EVERY).await
    }

    /// The version a stored hash was made with; reloads (rate-limited) if it is unknown.
    pub async fn version(&self, version: &str) -> Result<Option<SecretVersion>, StoreError> {
        let ring = self.ring().await?;
        if let Some(v) = ring.get(version) {
            return Ok(Some(v.clone()));
        }
        let ring = self.reload(RELOAD_AT_MOST_EVERY).await?;
        Ok(ring.get(version).cloned())
    }

    async fn reload(&self, unless_younger_than: Duration) -> Result<Arc<SecretRing>, StoreError> {
        let mut guard = self.cache.write().await;
        if let Some((ring, at)) = &*guard
            && at.elapsed() < unless_younger_than.max(Duration::from_millis(1))
        {
            return Ok(ring.clone());
        }
        let current = self.fetch("AWSCURRENT").await?.ok_or_else(|| {
            StoreError::Unfinished(format!("secret {} has no value", self.secret_id))
        })?;
        let previous = self.fetch("AWSPREVIOUS").await?;
        let ring = Arc::new(SecretRing { current, previous });
        *guard = Some((ring.clone(), Instant::now()));
        Ok(ring)
    }

    async fn fetch(&self, stage: &str) -> Result<Option<SecretVersion>, StoreError> {
        let r = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        match r {
            Ok(o) => {
                let value = o
                    .secret_string()
                    .map(|s| s.as_bytes().to_vec())
                    .or_else(|| o.secret_binary().map(|b| b.as_ref().to_vec()));
                Ok(value.map(|value| SecretVersion {
                    version: o.version_id().unwrap_or_default().to_owned(),
                    value,
                }))
            }
            Err(e) => {
                let e = e.into_service_error();
                if e.code() == Some("ResourceNotFoundException") && stage != "AWSCURRENT" {
                    Ok(None)
                } else {
                    Err(StoreError::aws("secretsmanager", e))
                }
            }
        }
    }
}
