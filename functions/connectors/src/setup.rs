//! Setting a partner up in one call (AFAS "Maak nieuwe gebruikersgroep" and "Automatisch
//! token genereren"): `POST /v1/connectors` may also create the employee the connector
//! acts for and issue its first credential, in the connector's own transaction, so a
//! failure leaves nothing behind and the secret is shown exactly once.

use koppel_shared::audit::Actor;
use koppel_shared::body::Fields;
use koppel_shared::credential::CredentialKind;
use koppel_shared::issue::{self, NewCredential};
use koppel_shared::model::{Connector, Scopes, User};
use koppel_shared::organisation::NewUser;
use koppel_shared::views::{CredentialView, IssuedCredential, UserView};
use koppel_shared::{ApiError, Ctx, Principal};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ConnectorView;
use crate::input::{ConnectorUser, GenerateToken};

const USER: &str = "create_connector_user";
const TOKEN: &str = "generate_token";
/// The fields only create takes, beside the connector's own (the schema test holds them).
pub(crate) const FIELDS: [&str; 2] = [USER, TOKEN];

/// What create takes beyond the connector's own fields.
#[derive(Debug, Default)]
pub struct Setup {
    /// The new acting employee, ready to store.
    pub user: Option<User>,
    /// `create_connector_user` was sent (valid or not): then no `acting_user_id`.
    pub user_asked: bool,
    pub token: Option<(CredentialKind, Option<String>)>,
}

impl Setup {
    /// Takes the set-up fields out of `body` (so the connector's parser sees only its own),
    /// listing what is wrong with them in `e`.
    pub fn take(
        body: &mut Map<String, Value>,
        ws: &str,
        caller: &User,
        e: &mut Fields,
    ) -> Result<Self, ApiError> {
        let mut out = Self::default();
        // `null` is as absent.
        body.retain(|k, v| !(FIELDS.contains(&k.as_str()) && v.is_null()));
        if let Some(v) = body.remove(USER) {
            out.user_asked = true;
            // Making an employee is managing users.
            if !(caller.owner || caller.manage_users) {
                return Err(ApiError::forbidden(
                    "Only the owner or a user with `manage_users` may create a connector user.",
                ));
            }
            match serde_json::from_value::<ConnectorUser>(v) {
                Ok(u) => {
                    let new = NewUser {
                        email: u.email,
                        name: u.name,
                        rights: u.rights,
                        api_access: false,
                        manage_users: false,
                        manage_connectors: false,
                    };
                    out.user = Some(new.user(ws, caller, "create_connector_user.", e));
                }
                Err(err) => e.push(USER, err.to_string()),
            }
        }
        if let Some(v) = body.remove(TOKEN) {
            match serde_json::from_value::<GenerateToken>(v) {
                Ok(t) => out.token = Some(token(t, e)),
                Err(err) => e.push(TOKEN, err.to_string()),
            }
        }
        Ok(out)
    }
}

fn token(t: GenerateToken, e: &mut Fields) -> (CredentialKind, Option<String>) {
    let kind = CredentialKind::of_connector(t.kind.as_deref()).unwrap_or_else(|| {
        e.push("generate_token.kind", "must be `token` or `api_key`");
        CredentialKind::ConnectorToken
    });
    let name = t.name.map(|n| n.trim().to_owned());
    if let Some(n) = &name {
        e.check(
            (1..=100).contains(&n.chars().count()),
            "generate_token.name",
            "must be 1 to 100 characters",
        );
    }
    (kind, name)
}

/// The answer of create: the connector, and what the set-up made with it.
#[derive(Serialize, JsonSchema)]
pub struct CreatedConnector {
    #[serde(flatten)]
    pub connector: ConnectorView,
    /// Only with `create_connector_user`: the employee it acts for, made with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_user: Option<UserView>,
    /// Only with `generate_token`: its first credential, the secret shown this once
    /// (`Cache-Control: no-store`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<IssuedCredential>,
}

/// Who issues the set-up's credential, and within what: a new credential never goes
/// beyond the token creating it (its scopes and expiry).
pub struct Issuer {
    pub actor: Actor,
    /// `None`: every scope (the admin CLI).
    pub scopes: Option<Scopes>,
    pub expires_at: Option<jiff::Timestamp>,
}

impl Issuer {
    /// The caller of `POST /v1/connectors`; its credential's expiry is read only when
    /// `setup` issues one.
    pub async fn of(p: &Principal, ctx: &Ctx, setup: &Setup) -> Result<Self, ApiError> {
        let expires_at = match setup.token {
            Some(_) => issue::within_caller(p, ctx, None, None, &mut Fields::new()).await?,
            None => None,
        };
        Ok(Self {
            actor: Actor {
                user_id: p.user_id.clone(),
                credential_id: Some(p.credential_id.clone()),
            },
            scopes: Some(p.scopes.clone()),
            expires_at,
        })
    }
}

/// Stores `con` with what `setup` asks for in one transaction; the answer's parts.
pub async fn store(
    ctx: &Ctx,
    con: &Connector,
    setup: Setup,
    by: &Issuer,
) -> Result<CreatedConnector, ApiError> {
    let mut steps = ctx.store.connector_steps(con, None, None)?;
    match &setup.user {
        Some(u) => steps.extend(ctx.store.user_steps(u)?),
        None => steps.push(ctx.store.acting_user_check(con)),
    }
    let mut issued = None;
    if let Some((kind, name)) = setup.token {
        // As `POST /v1/connectors/{id}/credentials` would issue it.
        let grantable: Scopes = match &by.scopes {
            Some(s) => con.scopes.intersection(s).copied().collect(),
            None => con.scopes.clone(),
        };
        let new = NewCredential {
            workspace_id: con.workspace_id.clone(),
            kind,
            name: name.unwrap_or_else(|| con.description.clone()),
            user_id: None,
            connector_id: Some(con.connector_id.clone()),
            acting_user_id: Some(con.acting_user_id.clone()),
            scopes: (grantable != con.scopes).then_some(grantable),
            rate_limit: None,
            expires_at: by.expires_at,
            created_by: by.actor.user_id.clone(),
        };
        let prepared = issue::prepare(ctx, new, &by.actor).await?;
        steps.extend(prepared.steps);
        issued = Some(IssuedCredential {
            credential: CredentialView::of(&prepared.credential),
            secret: prepared.secret,
        });
    }
    match ctx.store.transact(steps).await {
        Ok(()) => {}
        Err(e) if e.is_conflict() => return Err(conflict(ctx, con, setup.user.as_ref()).await?),
        Err(e) => return Err(e.into()),
    }
    Ok(CreatedConnector {
        connector: ConnectorView::of(con),
        connector_user: setup.user.as_ref().map(UserView::of),
        credential: issued,
    })
}

/// Which condition the cancelled transaction lost: the new user's e-mail, the acting
/// user's (deactivated or deleted meanwhile), or the JWT issuer.
async fn conflict(ctx: &Ctx, con: &Connector, user: Option<&User>) -> Result<ApiError, ApiError> {
    match user {
        Some(u) => {
            let key = koppel_shared::store::Key::email(&u.workspace_id, &u.email);
            if ctx.store.get::<Value>(&key).await?.is_some() {
                return Ok(koppel_shared::organisation::email_taken(&u.email));
            }
        }
        None => {
            if let Some(e) = acting_user_gone(ctx, con).await? {
                return Ok(e);
            }
        }
    }
    Ok(ApiError::conflict(
        "The JWT issuer was registered by another connector meanwhile.",
    ))
}

/// The 409 when `con`'s acting user was deactivated or removed (what its save's
/// `acting_user_check` found), if they were.
pub(crate) async fn acting_user_gone(
    ctx: &Ctx,
    con: &Connector,
) -> Result<Option<ApiError>, ApiError> {
    let acting = ctx
        .store
        .user(&con.workspace_id, &con.acting_user_id)
        .await?;
    Ok(acting
        .is_none_or(|a| a.deactivated_at.is_some())
        .then(|| ApiError::conflict("The acting user was deactivated or removed meanwhile.")))
}
