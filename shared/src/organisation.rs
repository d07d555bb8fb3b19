//! The organisation's own users acting with their personal access token: who may manage
//! people, connectors, saved searches and the OSR registry. One check for every function,
//! so "is an organisation user" means the same everywhere.

use crate::body::Fields;
use crate::credential::CredentialKind;
use crate::model::{Level, User, is_email};
use crate::{ApiError, Ctx, Principal};

/// A permission flag a user may hold, named as the `User` field that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Permission {
    ManageUsers,
    ManageConnectors,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn held_by(self, u: &User) -> bool {
        match self {
            Self::ManageUsers => u.manage_users,
            Self::ManageConnectors => u.manage_connectors,
        }
    }
}

/// 403 unless the caller acts with a personal access token: never a connector's own
/// credentials (a partner administering the organisation).
pub fn personal(p: &Principal) -> Result<(), ApiError> {
    if p.credential_kind == CredentialKind::PersonalAccessToken && p.connector_id.is_none() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Use a personal access token: this is done by the organisation's users.",
        ))
    }
}

/// The connector acting through its own credential (its key, token or JWT) — never a
/// token issued to an employee through OTP, which is that employee using the app and
/// must not manage what the app manages for everyone. Its connector's id.
pub async fn connector_itself<'a>(p: &'a Principal, ctx: &Ctx) -> Result<&'a str, ApiError> {
    let refused = || {
        ApiError::forbidden(
            "Use the connector's own credential, not a token issued to an employee through OTP.",
        )
    };
    let id = p.connector_id.as_deref().ok_or_else(refused)?;
    if p.credential_kind != CredentialKind::Jwt {
        let own = ctx.store.credential(&p.credential_id).await?;
        if own.is_none_or(|c| c.user_id.is_some()) {
            return Err(refused());
        }
    }
    Ok(id)
}

/// 403 unless `u` holds `need`.
pub fn holds(u: &User, need: Permission) -> Result<(), ApiError> {
    if need.held_by(u) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "This needs the `{}` permission.",
            need.as_str()
        )))
    }
}

/// The calling user, acting with their personal token and holding `need` if given.
pub async fn user(p: &Principal, ctx: &Ctx, need: Option<Permission>) -> Result<User, ApiError> {
    personal(p)?;
    let user = ctx
        .store
        .user(&p.workspace_id, &p.user_id)
        .await?
        .ok_or_else(|| ApiError::forbidden("Unknown user."))?;
    if let Some(n) = need {
        holds(&user, n)?;
    }
    Ok(user)
}

/// A new employee, as `POST /v1/users` takes it.
#[derive(Clone, Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Unique in the workspace (case-insensitive).
    pub email: String,
    pub name: String,
    /// Their rights; a connector acting for them never exceeds these.
    pub rights: Level,
    /// May hold personal access tokens.
    #[serde(default)]
    pub api_access: bool,
    #[serde(default)]
    pub manage_users: bool,
    #[serde(default)]
    pub manage_connectors: bool,
}

impl NewUser {
    /// The user `caller` creates in `ws`, or field errors (named under `prefix`). Nobody
    /// gives more than they hold: rights within their own and only permissions they hold
    /// (the owner holds all).
    pub fn user(&self, ws: &str, caller: &User, prefix: &str, e: &mut Fields) -> User {
        let field = |f: &str| format!("{prefix}{f}");
        let email = self.email.trim();
        e.check(
            is_email(email),
            &field("email"),
            "must be an e-mail address",
        );
        let name = self.name.trim();
        e.check(
            !name.is_empty() && name.chars().count() <= 200,
            &field("name"),
            "must be 1 to 200 characters",
        );
        if !(caller.owner || self.rights <= caller.rights) {
            e.push(
                field("rights"),
                format!("may not exceed your own rights (`{}`)", caller.rights),
            );
        }
        for (wanted, p) in [
            (self.manage_users, Permission::ManageUsers),
            (self.manage_connectors, Permission::ManageConnectors),
        ] {
            if wanted && !(caller.owner || p.held_by(caller)) {
                e.push(
                    field(p.as_str()),
                    "may only be given by someone who holds it",
                );
            }
        }
        User {
            workspace_id: ws.to_owned(),
            user_id: crate::ids::new_id("usr"),
            email: email.to_owned(),
            name: name.to_owned(),
            rights: self.rights,
            api_access: self.api_access,
            manage_users: self.manage_users,
            manage_connectors: self.manage_connectors,
            owner: false,
            created_at: crate::time_util::rfc3339(crate::time_util::now()),
            deactivated_at: None,
        }
    }
}

/// 409 for a user whose e-mail address is taken (the create transaction's claim failed).
pub fn email_taken(email: &str) -> ApiError {
    ApiError::conflict(format!(
        "A user with the e-mail address {email} exists in this workspace."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Level, Scopes};

    fn principal(kind: CredentialKind, connector: Option<&str>) -> Principal {
        Principal {
            workspace_id: "ws".into(),
            user_id: "usr".into(),
            connector_id: connector.map(str::to_owned),
            credential_id: "c".into(),
            credential_kind: kind,
            scopes: Scopes::new(),
            access_level: Level::Handle,
            rate_limit: 30,
            body_hash: None,
            held: None,
            counted: None,
        }
    }

    #[test]
    fn only_a_personal_token_acts_for_the_organisation() {
        assert!(personal(&principal(CredentialKind::PersonalAccessToken, None)).is_ok());
        for (kind, con) in [
            (CredentialKind::ConnectorToken, Some("con")),
            (CredentialKind::ApiKey, Some("con")),
            (CredentialKind::Jwt, Some("con")),
        ] {
            let e = personal(&principal(kind, con)).unwrap_err();
            assert_eq!(e.status, 403);
        }
    }

    #[test]
    fn a_missing_permission_is_named() {
        let mut u = User {
            workspace_id: "ws".into(),
            user_id: "usr".into(),
            email: "a@example.org".into(),
            name: "A".into(),
            rights: Level::Read,
            api_access: true,
            manage_users: false,
            manage_connectors: true,
            owner: false,
            created_at: String::new(),
            deactivated_at: None,
        };
        assert!(holds(&u, Permission::ManageConnectors).is_ok());
        let e = holds(&u, Permission::ManageUsers).unwrap_err();
        assert!(e.detail.contains("manage_users"));
        u.manage_users = true;
        assert!(holds(&u, Permission::ManageUsers).is_ok());
        assert_eq!(Permission::ManageConnectors.as_str(), "manage_connectors");
    }
}
