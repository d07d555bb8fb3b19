//! The organisation's own users acting with their personal access token: who may manage
//! people, connectors, saved searches and the OSR registry. One check for every function,
//! so "is an organisation user" means the same everywhere.

use crate::credential::CredentialKind;
use crate::model::User;
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
        };
        assert!(holds(&u, Permission::ManageConnectors).is_ok());
        let e = holds(&u, Permission::ManageUsers).unwrap_err();
        assert!(e.detail.contains("manage_users"));
        u.manage_users = true;
        assert!(holds(&u, Permission::ManageUsers).is_ok());
        assert_eq!(Permission::ManageConnectors.as_str(), "manage_connectors");
    }
}
