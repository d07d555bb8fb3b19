//! Issuing and revoking credentials: generate the secret, store only its keyed hash with
//! the current pepper version, hand the plaintext back exactly once; every issue and revoke
//! is audited in the same transaction.

use aws_sdk_dynamodb::types::TransactWriteItem;
use jiff::Timestamp;

use crate::Ctx;
use crate::audit::{Actor, AuditEntry};
use crate::credential::{self, CredentialKind};
use crate::model::{Credential, Scopes};
use crate::store::StoreError;
use crate::time_util::{now, rfc3339};

/// Live tokens a user may hold: personal tokens, and per connector the tokens issued to
/// them through OTP. Each credential has a rate limit of its own; without a cap a user
/// could multiply theirs by issuing more.
pub const MAX_LIVE_TOKENS_PER_USER: usize = 50;

/// Whether a stored credential still works as far as its own record says.
pub fn is_live(c: &Credential, at: Timestamp) -> bool {
    c.revoked_at.is_none()
        && c.expires_at
            .as_deref()
            .is_none_or(|e| crate::time_util::parse_rfc3339(e).is_some_and(|t| t > at))
}

/// 409 when `user` already holds [`MAX_LIVE_TOKENS_PER_USER`] live tokens of `holder`
/// (themselves for personal tokens, the connector for OTP tokens). Concurrent issues may
/// pass together; the cap is there to bound, not to count exactly.
pub async fn within_token_cap(
    ctx: &Ctx,
    ws: &str,
    holder: &str,
    user: &str,
) -> Result<(), crate::ApiError> {
    let at = now();
    let live = ctx
        .store
        .credentials_of(ws, holder)
        .await?
        .iter()
        .filter(|c| c.user_id.as_deref() == Some(user) && is_live(c, at))
        .count();
    if live >= MAX_LIVE_TOKENS_PER_USER {
        return Err(crate::ApiError::new(
            http::StatusCode::CONFLICT,
            "token-limit",
            format!(
                "At most {MAX_LIVE_TOKENS_PER_USER} live tokens per user here; revoke one first."
            ),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NewCredential {
    pub workspace_id: String,
    pub kind: CredentialKind,
    pub name: String,
    pub user_id: Option<String>,
    pub connector_id: Option<String>,
    /// See [`Credential::acting_user_id`].
    pub acting_user_id: Option<String>,
    pub scopes: Option<Scopes>,
    pub rate_limit: Option<u32>,
    pub expires_at: Option<Timestamp>,
    /// The user who issued it.
    pub created_by: String,
}

/// A new credential with its plaintext secret (shown once), and the transaction steps
/// that store and audit it: for a caller that writes more in the same transaction.
pub struct Prepared {
    pub credential: Credential,
    pub secret: String,
    pub steps: Vec<TransactWriteItem>,
}

pub async fn prepare(ctx: &Ctx, new: NewCredential, actor: &Actor) -> Result<Prepared, StoreError> {
    let pepper = ctx.pepper.for_new_hash().await?;
    let secret = credential::generate(new.kind);
    let cred = Credential {
        credential_id: secret.id.clone(),
        workspace_id: new.workspace_id,
        kind: new.kind,
        name: new.name,
        user_id: new.user_id,
        connector_id: new.connector_id,
        acting_user_id: new.acting_user_id,
        scopes: new.scopes,
        rate_limit: new.rate_limit,
        expires_at: new.expires_at.map(rfc3339),
        revoked_at: None,
        created_by: new.created_by,
        created_at: rfc3339(now()),
        last_used_at: None,
        secret_hash: credential::hash(&pepper.current.value, &secret.plaintext),
        pepper_version: pepper.current.version.clone(),
    };
    let steps = vec![
        ctx.store.credential_step(&cred)?,
        AuditEntry::new("credential.issued", actor, &cred, &cred.created_at)
            .step(ctx.store.table())?,
    ];
    Ok(Prepared {
        credential: cred,
        secret: secret.plaintext,
        steps,
    })
}

/// Stores the new credential, and revokes `replaces` in the same transaction when given
/// (rotation); returns it with the plaintext secret (shown once).
pub async fn issue(
    ctx: &Ctx,
    new: NewCredential,
    actor: &Actor,
    replaces: Option<&Credential>,
) -> Result<(Credential, String), StoreError> {
    let Prepared {
        credential: cred,
        secret,
        mut steps,
    } = prepare(ctx, new, actor).await?;
    if let Some(old) = replaces {
        steps.push(ctx.store.revoke_step(&old.credential_id, &cred.created_at));
        steps.push(
            AuditEntry::new("credential.revoked", actor, old, &cred.created_at)
                .step(ctx.store.table())?,
        );
    }
    ctx.store.transact(steps).await?;
    Ok((cred, secret))
}

/// A new credential never outlives nor out-paces the credential that creates it: no later
/// expiry (none given: the caller's), no higher rate limit.
pub async fn within_caller(
    p: &crate::Principal,
    ctx: &Ctx,
    expires_at: Option<jiff::Timestamp>,
    rate_limit: Option<u32>,
    errors: &mut crate::body::Fields,
) -> Result<Option<jiff::Timestamp>, crate::ApiError> {
    let caller_expiry = ctx
        .store
        .credential(&p.credential_id)
        .await?
        .and_then(|c| c.expires_at)
        .and_then(|e| crate::time_util::parse_rfc3339(&e));
    if let (Some(new), Some(limit)) = (expires_at, caller_expiry)
        && new > limit
    {
        errors.push(
            "expires_at",
            "may not be later than the expiry of the token creating it",
        );
    }
    if rate_limit.is_some_and(|r| r > p.rate_limit) {
        errors.push(
            "rate_limit",
            format!(
                "may not exceed the creating token's own limit ({} per minute)",
                p.rate_limit
            ),
        );
    }
    Ok(expires_at.or(caller_expiry))
}

/// Revokes a credential, audited. `Ok(false)` if it was revoked already.
pub async fn revoke(ctx: &Ctx, cred: &Credential, actor: &Actor) -> Result<bool, StoreError> {
    let at = rfc3339(now());
    let steps = vec![
        ctx.store.revoke_step(&cred.credential_id, &at),
        AuditEntry::new("credential.revoked", actor, cred, &at).step(ctx.store.table())?,
    ];
    match ctx.store.transact(steps).await {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn revoked_and_expired_tokens_are_not_live() {
        let at = now();
        let mut c = Credential::sample();
        assert!(is_live(&c, at));
        c.expires_at = Some(rfc3339(at - jiff::SignedDuration::from_secs(1)));
        assert!(!is_live(&c, at));
        c.expires_at = Some(rfc3339(at + jiff::SignedDuration::from_hours(1)));
        assert!(is_live(&c, at));
        c.expires_at = Some("garbage".into());
        assert!(
            !is_live(&c, at),
            "an unreadable expiry is no expiry to trust"
        );
        c.expires_at = None;
        c.revoked_at = Some(rfc3339(at));
        assert!(!is_live(&c, at));
    }
}
