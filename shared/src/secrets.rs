//! Root secrets from Secrets Manager, fetched once per cold start and never per request.
//! Rotation keeps older versions valid: `AWSCURRENT` and `AWSPREVIOUS` are loaded, and a
//! version that is unknown (a credential issued after a rotation) causes a reload, at most
//! every few seconds. A version older than both (a credential nobody used since two
//! rotations) is fetched by its version id, which Secrets Manager keeps after its labels
//! move on, so a dormant credential still works and is then re-hashed. Only a stored record
//! names a version, so a caller cannot force fetches with made-up secrets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use tokio::sync::RwLock;

use crate::store::StoreError;

const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(5);
/// A warm function picks up a rotation within this time even if nothing asks for it.
const MAX_AGE: Duration = Duration::from_secs(300);
/// Versions older than `AWSPREVIOUS` kept in memory; records name only a few, and a
/// full cache is simply emptied.
const OLDER_KEPT: usize = 16;

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
    /// Versions fetched by id, and when; `None` for one Secrets Manager no longer has
    /// (asked again after `MAX_AGE`).
    older: RwLock<HashMap<String, (Option<SecretVersion>, Instant)>>,
}

impl CachedSecret {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            cache: RwLock::new(None),
            older: RwLock::new(HashMap::new()),
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

    /// The version a stored hash was made with; reloads (rate-limited) if it is unknown,
    /// then asks for it by id (a version two or more rotations old).
    pub async fn version(&self, version: &str) -> Result<Option<SecretVersion>, StoreError> {
        let ring = self.ring().await?;
        if let Some(v) = ring.get(version) {
            return Ok(Some(v.clone()));
        }
        let ring = self.reload(RELOAD_AT_MOST_EVERY).await?;
        if let Some(v) = ring.get(version) {
            return Ok(Some(v.clone()));
        }
        self.older(version).await
    }

    async fn older(&self, version: &str) -> Result<Option<SecretVersion>, StoreError> {
        // A version found stays; one not found is asked for again after a while.
        let known = |(v, at): &(Option<SecretVersion>, Instant)| {
            (v.is_some() || at.elapsed() < MAX_AGE).then(|| v.clone())
        };
        if let Some(v) = self.older.read().await.get(version).and_then(known) {
            return Ok(v);
        }
        let mut older = self.older.write().await;
        if let Some(v) = older.get(version).and_then(known) {
            return Ok(v);
        }
        let fetched = self.fetch(Stage::Id(version)).await?;
        if older.len() >= OLDER_KEPT {
            older.clear();
        }
        older.insert(version.to_owned(), (fetched.clone(), Instant::now()));
        Ok(fetched)
    }

    async fn reload(&self, unless_younger_than: Duration) -> Result<Arc<SecretRing>, StoreError> {
        let mut guard = self.cache.write().await;
        if let Some((ring, at)) = &*guard
            && at.elapsed() < unless_younger_than.max(Duration::from_millis(1))
        {
            return Ok(ring.clone());
        }
        // Both at once: a cold start waits for one round trip, not two.
        let (current, previous) = tokio::join!(
            self.fetch(Stage::Label("AWSCURRENT")),
            self.fetch(Stage::Label("AWSPREVIOUS"))
        );
        let current = current?.ok_or_else(|| {
            StoreError::Unfinished(format!("secret {} has no value", self.secret_id))
        })?;
        let previous = previous?;
        let ring = Arc::new(SecretRing { current, previous });
        *guard = Some((ring.clone(), Instant::now()));
        Ok(ring)
    }

    async fn fetch(&self, stage: Stage<'_>) -> Result<Option<SecretVersion>, StoreError> {
        let get = self.client.get_secret_value().secret_id(&self.secret_id);
        let r = match stage {
            Stage::Label(label) => get.version_stage(label),
            Stage::Id(id) => get.version_id(id),
        }
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
                let missing = match stage {
                    Stage::Label(label) => {
                        label != "AWSCURRENT" && e.code() == Some("ResourceNotFoundException")
                    }
                    // Also a version id that is no version id at all: it names no version.
                    Stage::Id(_) => matches!(
                        e.code(),
                        Some("ResourceNotFoundException" | "InvalidParameterException")
                    ),
                };
                if missing {
                    Ok(None)
                } else {
                    Err(StoreError::aws("secretsmanager", e))
                }
            }
        }
    }
}

/// Which version of a secret to fetch.
#[derive(Clone, Copy)]
enum Stage<'a> {
    Label(&'static str),
    Id(&'a str),
}
