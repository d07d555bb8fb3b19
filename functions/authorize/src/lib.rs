//! The `authorize` function: API Gateway's REQUEST authorizer for every Koppel route.
//!
//! It accepts three credential kinds (DESIGN.md "Identity and access"):
//! `API-Interface-Id` + `API-Key`; `Authorization: Bearer` with a personal access token or a
//! connector token; and a JWT in `Authorization: Bearer` or the `JWT` header.
//! An authorizer cannot pick its status: a bad, missing or unknown credential fails with
//! `Unauthorized` (401), a valid one that is not allowed gets a Deny policy (403).
//! Result caching is off in template.yaml, so revocation takes effect on the next request.

mod access;
mod client_cert;
mod presented;

use std::net::IpAddr;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use jiff::{SignedDuration, Timestamp};
use koppel_shared::credential::{self, CredentialKind};
use koppel_shared::model::{Connector, Credential, User, Workspace};
use koppel_shared::principal::Held;
use koppel_shared::rate_limit::{self, Counted};
use koppel_shared::store::{Item, Key, StoreError, from_item};
use koppel_shared::{Ctx, Principal, jwt, time_util};
use tracing::Instrument;

use crate::access::{Facts, Refusal};

pub use presented::{Presented, presented};

/// How the authorizer fails. `Unauthorized` must display exactly so: API Gateway turns
/// that error message into a 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("authorizer failure")]
    Internal,
}

impl From<StoreError> for AuthorizerError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure in authorizer");
        Self::Internal
    }
}

impl From<AuthorizerError> for lambda_runtime::Diagnostic {
    fn from(e: AuthorizerError) -> Self {
        Self {
            error_type: "AuthorizerError".into(),
            error_message: e.to_string(),
        }
    }
}

/// A verified credential's use is recorded at most this often.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_mins(5);

/// Whether the use just verified should be written: the credential read a moment ago says
/// when it was last recorded, so most requests write nothing (the store's condition still
/// settles two instances racing).
fn due_for_touch(last_used_at: Option<&str>, now: Timestamp) -> bool {
    last_used_at
        .and_then(time_util::parse_rfc3339)
        .is_none_or(|last| last < now - TOUCH_EVERY)
}

pub async fn handler(
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ctx: &Ctx,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    let request_id = event.request_context.request_id.clone().unwrap_or_default();
    let span = tracing::info_span!("authorize", request_id = %request_id);
    decide_request(event, ctx).instrument(span).await
}

async fn decide_request(
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ctx: &Ctx,
) -> Result<ApiGatewayCustomAuthorizerResponse, AuthorizerError> {
    let method_arn = event.method_arn.clone().unwrap_or_default();
    let source_ip: Option<IpAddr> = event
        .request_context
        .identity
        .as_ref()
        .and_then(|i| i.source_ip.as_deref())
        .and_then(|s| s.parse().ok());

    let cert = client_cert::presented(&event);
    match authorize(&event, source_ip, cert.as_ref(), ctx).await? {
        Ok(p) => {
            ctx.leases.learn_limit(&p.credential_id, p.rate_limit);
            // The function's line names the request and its principal: one line at `info`.
            tracing::debug!(
                credential = %p.credential_id, kind = p.credential_kind.as_str(),
                workspace = %p.workspace_id, user = %p.user_id, "allow"
            );
            let mut context = p.to_context();
            client_cert::add_to_context(&mut context, cert.as_ref());
            Ok(policy(
                IamPolicyEffect::Allow,
                p.principal_id(),
                &method_arn,
                context,
            ))
        }
        Err(Refusal::Forbidden(why)) => {
            tracing::info!(reason = why, "deny");
            Ok(policy(
                IamPolicyEffect::Deny,
                "anonymous",
                &method_arn,
                Default::default(),
            ))
        }
        Err(Refusal::Unauthenticated(why)) => {
            tracing::info!(reason = why, "unauthorized");
            Err(AuthorizerError::Unauthorized)
        }
    }
}

fn policy(
    effect: IamPolicyEffect,
    principal_id: &str,
    method_arn: &str,
    context: serde_json::Map<String, serde_json::Value>,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![method_arn.to_owned()];
    let mut doc = ApiGatewayCustomAuthorizerPolicy::default();
    doc.version = Some("2012-10-17".into());
    doc.statement = vec![statement];
    let mut resp = ApiGatewayCustomAuthorizerResponse::default();
    resp.principal_id = Some(principal_id.to_owned());
    resp.policy_document = doc;
    resp.context = serde_json::Value::Object(context);
    resp
}

/// Gathers the facts for the presented credential and decides. The outer `Result` is an
/// infrastructure failure; the inner one the decision.
async fn authorize(
    event: &ApiGatewayCustomAuthorizerRequestTypeRequest,
    source_ip: Option<IpAddr>,
    cert: Option<&client_cert::Presented>,
    ctx: &Ctx,
) -> Result<Result<Principal, Refusal>, AuthorizerError> {
    let now = time_util::now();
    // `headers` keeps one value per name; repeats show only in `multiValueHeaders`.
    let headers = if event.multi_value_headers.is_empty() {
        &event.headers
    } else {
        &event.multi_value_headers
    };
    let presented = match presented(headers) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    match presented {
        Presented::Secret {
            secret,
            interface_id,
        } => {
            let parsed = match credential::parse(secret) {
                Ok(p) => p,
                Err(_) => return Ok(Err(Refusal::Unauthenticated("bad format or checksum"))),
            };
            // API keys go with `API-Interface-Id`; tokens go in `Authorization: Bearer`.
            if (parsed.kind == CredentialKind::ApiKey) != interface_id.is_some() {
                return Ok(Err(Refusal::Unauthenticated(
                    "credential in the wrong header",
                )));
            }
            let Some(cred) = ctx.store.credential(parsed.id).await? else {
                return Ok(Err(Refusal::Unauthenticated("unknown credential")));
            };
            if cred.kind != parsed.kind || !secret_matches(ctx, &cred, parsed.plaintext).await? {
                return Ok(Err(Refusal::Unauthenticated("wrong secret")));
            }
            if interface_id.is_some() && interface_id != cred.connector_id.as_deref() {
                return Ok(Err(Refusal::Unauthenticated("key of another connector")));
            }
            // The request is counted beside the reads that find its limit.
            let (held, counted) = tokio::join!(
                holders(ctx, &cred),
                rate_limit::count_leased(
                    &ctx.store,
                    &ctx.leases,
                    &cred.credential_id,
                    now.as_second()
                )
            );
            let h = held?;
            let decision = access::decide(&Facts {
                kind: cred.kind,
                credential: Some(&cred),
                credential_id: &cred.credential_id,
                connector: h.connector.as_ref(),
                user: h.user.as_ref(),
                source_ip,
                now,
                default_rate_limit: ctx.settings.default_rate_limit,
            });
            let decision = client_cert::enforce(decision, h.connector.as_ref(), cert, now);
            let decision = h.hand_on(decision, counted?);
            if decision.is_ok() && due_for_touch(cred.last_used_at.as_deref(), now) {
                let fmt = time_util::rfc3339;
                let touched = ctx
                    .store
                    .touch_credential(&cred.credential_id, &fmt(now), &fmt(now - TOUCH_EVERY))
                    .await;
                // Recording use is bookkeeping: its failure must not deny the request.
                if let Err(e) = touched {
                    tracing::warn!(error = %e, "last_used_at not recorded");
                }
            }
            Ok(decision)
        }
        Presented::Jwt(token) => authorize_jwt(token, source_ip, cert, ctx, now).await,
    }
}

/// Verifies with the pepper version the hash was made with; a credential that verifies
/// with a previous version is re-hashed with the current one.
async fn secret_matches(ctx: &Ctx, cred: &Credential, plaintext: &str) -> Result<bool, StoreError> {
    let Some(pepper) = ctx.pepper.version(&cred.pepper_version).await? else {
        return Ok(false);
    };
    if !credential::verify(&pepper.value, plaintext, &cred.secret_hash) {
        return Ok(false);
    }
    let ring = ctx.pepper.ring().await?;
    if ring.current.version != cred.pepper_version {
        let hash = credential::hash(&ring.current.value, plaintext);
        let rehashed = ctx
            .store
            .rehash_credential(
                &cred.credential_id,
                &cred.pepper_version,
                &hash,
                &ring.current.version,
            )
            .await;
        if let Err(e) = rehashed {
            tracing::warn!(error = %e, "credential not re-hashed");
        }
    }
    Ok(true)
}

/// What the authorizer reads of a credential's holders.
struct Holders {
    workspace: Option<Workspace>,
    connector: Option<Connector>,
    user: Option<User>,
}

impl Holders {
    /// An allowed principal takes along what was read of it, and its request's count.
    fn hand_on(
        &self,
        decision: Result<Principal, Refusal>,
        counted: Counted,
    ) -> Result<Principal, Refusal> {
        let mut p = decision?;
        let (Some(w), Some(u)) = (&self.workspace, &self.user) else {
            return Err(Refusal::Unauthenticated("workspace gone"));
        };
        p.held = Some(Held::of(w, u, self.connector.as_ref()));
        p.counted = Some(counted);
        Ok(p)
    }
}

/// The workspace, connector and user a stored credential acts through, in one batch. A
/// connector's own credential acts for the connector's acting user as it is now: the one it
/// was issued under is read with the rest, and the current one after it if that changed.
async fn holders(ctx: &Ctx, cred: &Credential) -> Result<Holders, StoreError> {
    let ws = &cred.workspace_id;
    let user_id = cred.user_id.as_ref().or(cred.acting_user_id.as_ref());
    let mut keys = vec![Key::workspace(ws)];
    keys.extend(cred.connector_id.iter().map(|c| Key::connector(ws, c)));
    keys.extend(user_id.map(|u| Key::user(ws, u)));
    let mut found = ctx.store.get_each(&keys).await?.into_iter();
    let workspace = typed(found.next())?;
    let connector: Option<Connector> = match cred.connector_id {
        Some(_) => typed(found.next())?,
        None => None,
    };
    let mut user: Option<User> = match user_id {
        Some(_) => typed(found.next())?,
        None => None,
    };
    if cred.user_id.is_none()
        && let Some(c) = &connector
        && user.as_ref().is_none_or(|u| u.user_id != c.acting_user_id)
    {
        user = ctx.store.user(ws, &c.acting_user_id).await?;
    }
    Ok(Holders {
        workspace,
        connector,
        user,
    })
}

/// One of [`Store::get_each`]'s places as its model.
fn typed<T: serde::de::DeserializeOwned>(
    place: Option<Option<Item>>,
) -> Result<Option<T>, StoreError> {
    place.flatten().map(from_item).transpose()
}

async fn authorize_jwt(
    token: &str,
    source_ip: Option<IpAddr>,
    cert: Option<&client_cert::Presented>,
    ctx: &Ctx,
    now: Timestamp,
) -> Result<Result<Principal, Refusal>, AuthorizerError> {
    let unauthenticated = |why| Ok(Err(Refusal::Unauthenticated(why)));
    let Some(iss) = jwt::peek_issuer(token) else {
        return unauthenticated("jwt without iss");
    };
    let Some((ws, con_id)) = ctx.store.issuer(&iss).await? else {
        return unauthenticated("unknown issuer");
    };
    let Some(connector) = ctx.store.connector(&ws, &con_id).await? else {
        return unauthenticated("connector gone");
    };
    let Some(cfg) = connector.jwt.as_ref().filter(|c| c.issuer == iss) else {
        return unauthenticated("issuer no longer registered");
    };
    let verified = match jwt::verify(
        token,
        &cfg.keys,
        &iss,
        &ctx.settings.jwt_audience,
        ctx.settings.jwt_max_lifetime_secs,
        now.as_second(),
    ) {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(error = %e, "jwt rejected");
            return unauthenticated("jwt invalid");
        }
    };
    let credential_id = format!("jwt.{con_id}.{}", verified.kid);
    let keys = [
        Key::workspace(&ws),
        Key::user(&ws, &connector.acting_user_id),
    ];
    // The token is genuine: its id is spent now, beside the reads and the count, whatever
    // they decide (a refused token replayed is refused again).
    let (found, counted, fresh) = tokio::join!(
        ctx.store.get_each(&keys),
        rate_limit::count_leased(&ctx.store, &ctx.leases, &credential_id, now.as_second()),
        ctx.store.consume_jti(
            &con_id,
            &verified.claims.jti,
            // Accepted until `exp` plus the leeway: the record must outlive that.
            verified.claims.exp + jwt::LEEWAY_SECS,
            now.as_second(),
        )
    );
    let mut found = found?.into_iter();
    let h = Holders {
        workspace: typed(found.next())?,
        user: typed(found.next())?,
        connector: Some(connector),
    };
    let decision = access::decide(&Facts {
        kind: CredentialKind::Jwt,
        credential: None,
        credential_id: &credential_id,
        connector: h.connector.as_ref(),
        user: h.user.as_ref(),
        source_ip,
        now,
        default_rate_limit: ctx.settings.default_rate_limit,
    });
    let decision = client_cert::enforce(decision, h.connector.as_ref(), cert, now);
    let decision = h.hand_on(decision, counted?);
    let decision = decision.map(|mut p| {
        p.body_hash = verified.claims.hash.clone();
        p
    });
    if !fresh? {
        return unauthenticated("jti replayed");
    }
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_is_written_at_most_every_five_minutes() {
        let now = time_util::parse_rfc3339("2026-12-02T12:00:00Z").unwrap();
        assert!(due_for_touch(None, now));
        assert!(due_for_touch(Some("2026-12-02T11:54:59Z"), now));
        assert!(!due_for_touch(Some("2026-12-02T11:55:01Z"), now));
        assert!(!due_for_touch(Some("2026-12-02T12:00:00Z"), now));
        // An unreadable stored time is written over.
        assert!(due_for_touch(Some("yesterday"), now));
    }
}
