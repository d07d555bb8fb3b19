//! What the tokens function answers, one view per resource: the handlers serialize these,
//! the admin CLI prints them, and the OpenAPI document describes them (their JSON Schema).
//! Optional fields are sent as `null`, not left out, as the API always has: the schemas
//! say so ([`always_sent`]).

use koppel_shared::audit::AuditEntry;
use koppel_shared::credential::CredentialKind;
use koppel_shared::model::{Level, Scopes};
use koppel_shared::principal::Held;
use koppel_shared::{Principal, rate_limit};
use schemars::JsonSchema;
use serde::Serialize;

pub use koppel_shared::views::{CredentialView, IssuedCredential, UserView, always_sent};

/// Every item of a short list (no paging).
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// One page of a list, as `koppel_shared::paging::Pager::body` writes it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
#[schemars(transform = always_sent)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// One issue or revoke of a credential.
pub type AuditView = AuditEntry;

/// `GET /v1/me`: the caller as Koppel sees them, so a partner can debug their setup.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(transform = always_sent)]
pub struct Me {
    pub workspace: MeWorkspace,
    /// The user the credential acts for (a connector's acting employee, or the token's
    /// owner).
    pub user: MeUser,
    /// The connector the credential belongs to; `null` for a personal access token.
    pub connector: Option<MeConnector>,
    pub credential: MeCredential,
    /// Effective scopes: the credential's within the connector's.
    pub scopes: Scopes,
    /// Effective level: the connector's, capped by the acting employee's rights.
    pub access_level: Level,
    pub rate_limit: MeRateLimit,
    /// The client certificate this request came with (mutual TLS); `null` without one.
    pub client_certificate: Option<MeClientCertificate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct MeClientCertificate {
    /// SHA-256 of the certificate's DER, hex: as `…/certificates` lists it.
    pub fingerprint: String,
    pub subject: String,
}

impl MeClientCertificate {
    /// The certificate the authorizer saw, from its context (`client_cert_*`).
    pub fn of_request(req: &lambda_http::Request) -> Option<Self> {
        use lambda_http::RequestExt;
        use lambda_http::request::RequestContext;
        let Some(RequestContext::ApiGatewayV1(c)) = req.request_context_ref() else {
            return None;
        };
        let text = |k: &str| c.authorizer.fields.get(k)?.as_str().map(str::to_owned);
        Some(Self {
            fingerprint: text("client_cert_fingerprint")?,
            subject: text("client_cert_subject").unwrap_or_default(),
        })
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MeWorkspace {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MeUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub rights: Level,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(transform = always_sent)]
pub struct MeConnector {
    pub id: String,
    pub description: String,
    pub access_level: Level,
    pub scopes: Scopes,
    pub acting_user_id: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MeCredential {
    pub id: String,
    pub kind: CredentialKind,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MeRateLimit {
    /// Requests per window.
    pub limit: u32,
    pub window_seconds: i64,
}

impl Me {
    pub fn of(p: &Principal, h: &Held) -> Self {
        Self {
            workspace: MeWorkspace {
                id: p.workspace_id.clone(),
                name: h.workspace_name.clone(),
            },
            user: MeUser {
                id: p.user_id.clone(),
                email: h.user.email.clone(),
                name: h.user.name.clone(),
                rights: h.user.rights,
            },
            connector: p
                .connector_id
                .as_ref()
                .zip(h.connector.as_ref())
                .map(|(id, c)| MeConnector {
                    id: id.clone(),
                    description: c.description.clone(),
                    access_level: c.access_level,
                    scopes: c.scopes.clone(),
                    acting_user_id: c.acting_user_id.clone(),
                }),
            credential: MeCredential {
                id: p.credential_id.clone(),
                kind: p.credential_kind,
            },
            scopes: p.scopes.clone(),
            access_level: p.access_level,
            rate_limit: MeRateLimit {
                limit: p.rate_limit,
                window_seconds: rate_limit::WINDOW_SECS,
            },
            client_certificate: None,
        }
    }
}

/// `POST /v1/otp`: the same whether or not the address belongs to a user.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct OtpAccepted {
    /// Always `accepted`.
    pub status: &'static str,
    pub detail: &'static str,
}

impl OtpAccepted {
    pub const ANSWER: OtpAccepted = OtpAccepted {
        status: "accepted",
        detail: "If the address belongs to a user of this workspace, a one-time code has been sent to it.",
    };
}
