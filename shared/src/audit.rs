//! The audit trail of credentials: every issue and revoke writes an item in the same
//! transaction as the change (who, when, which credential, on behalf of whom).

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};

use crate::credential::CredentialKind;
use crate::model::Credential;
use crate::store::{Key, Page, PageQuery, Store, StoreError, item, put_new};

/// Who did it: a user, through a credential (or `koppel-admin` from the command line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub credential_id: Option<String>,
}

impl Actor {
    /// The operator using the admin CLI.
    pub fn admin_cli() -> Self {
        Self {
            user_id: "koppel-admin".into(),
            credential_id: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    pub workspace_id: String,
    pub id: String,
    pub at: String,
    /// `credential.issued`, `credential.revoked`.
    pub action: String,
    pub actor_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_credential_id: Option<String>,
    pub credential_id: String,
    pub credential_kind: CredentialKind,
    /// The user the credential acts for: a personal token's user, an OTP token's user, or
    /// a connector's own key or token's acting user when it was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
}

impl AuditEntry {
    pub fn new(action: &str, actor: &Actor, cred: &Credential, at: &str) -> Self {
        Self {
            workspace_id: cred.workspace_id.clone(),
            id: crate::ids::new_id("aud"),
            at: at.to_owned(),
            action: action.to_owned(),
            actor_user_id: actor.user_id.clone(),
            actor_credential_id: actor.credential_id.clone(),
            credential_id: cred.credential_id.clone(),
            credential_kind: cred.kind,
            on_behalf_of: cred.user_id.clone().or_else(|| cred.acting_user_id.clone()),
            connector_id: cred.connector_id.clone(),
        }
    }

    fn key(&self) -> Key {
        Key {
            pk: format!("WS#{}", self.workspace_id),
            sk: format!("AUDIT#{}#{}", self.at, self.id),
        }
    }

    pub fn step(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        Ok(put_new(table, item(&self.key(), self)?))
    }
}

/// A page of a workspace's audit trail, newest first; `after` is the position (the sort
/// key after `AUDIT#`) the previous page ended with.
pub async fn list(
    store: &Store,
    ws: &str,
    limit: usize,
    after: Option<&str>,
) -> Result<Page<AuditEntry>, StoreError> {
    let q = PageQuery {
        forward: false,
        ..PageQuery::workspace(ws, "AUDIT#", after, limit)
    };
    store.page(&q, |_| true).await
}
