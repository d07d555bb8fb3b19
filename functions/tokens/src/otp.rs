//! OTP issuance (AFAS "uitreiken van tokens via OTP"): a partner app, holding its connector
//! credential, asks for a one-time code for a user's e-mail address; Koppel mails it with the
//! connector's description in the subject; the app redeems e-mail + code for a token bound to
//! that user and that connector.
//!
//! - Codes are 6 digits, valid 10 minutes, single use, stored only as a keyed hash.
//! - Five wrong attempts kill the code; the count carries over when a new code is requested
//!   within the window, so re-requesting does not buy more guesses.
//! - The request step does the same work and answers the same (202, same body) whether or
//!   not the address belongs to a user: for an unknown address the mail event has no
//!   recipient and the dispatcher sends nothing.
//! - The app lists the tokens it got through OTP and revokes them (`GET /v1/otp/tokens`,
//!   `DELETE /v1/otp/tokens/{id}`), with its own credential; nothing else is reachable so.
//! - The mail is an outbound trigger through the outbox; its event is internal (`mail.send`)
//!   and carries the mail sealed under the data key until it is sent: the code exists in
//!   clear only in this function's memory and in the mail itself.

use http::StatusCode;
use koppel_shared::audit::Actor;
use koppel_shared::body;
use koppel_shared::credential::{self, CredentialKind};
use koppel_shared::error::FieldError;
use koppel_shared::issue::{self, NewCredential};
use koppel_shared::mail::{self, Mail};
use koppel_shared::outbox;
use koppel_shared::pipeline::{self, RouteResult};
use koppel_shared::retry::{self, Schedule};
use koppel_shared::store::{Expr, Key, ReturnValue, StoreError, Update, item, put_step, with_ttl};
use koppel_shared::{ApiError, Ctx, Principal, time_util};
use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::credentials::created_for_connector;
use crate::views::{CredentialView, Items, OtpAccepted};

pub const VALID_SECS: i64 = 600;
pub const MAX_ATTEMPTS: u32 = 5;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OtpRecord {
    connector_id: String,
    email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    code_hash: String,
    pepper_version: String,
    attempts: u32,
    expires_at: i64,
}

fn key(connector: &str, email: &str) -> Key {
    Key {
        pk: format!("OTP#{connector}#{email}"),
        sk: "OTP".into(),
    }
}

/// A uniformly random 6-digit code.
pub fn generate_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// The hash is bound to the connector and address, so a code is good for nothing else.
fn code_hash(pepper: &[u8], connector: &str, email: &str, code: &str) -> String {
    credential::hash(pepper, &format!("otp:{connector}:{email}:{code}"))
}

/// Subject and text of the mail; the subject names the connector (AFAS).
pub fn mail(connector_description: &str, code: &str) -> (String, String) {
    (
        format!("Uw eenmalige code voor {connector_description}"),
        format!(
            "Uw eenmalige code voor {connector_description} is: {code}\n\n\
             De code is {} minuten geldig en werkt één keer. Hebt u geen code aangevraagd? \
             Dan kunt u dit bericht negeren.\n",
            VALID_SECS / 60
        ),
    )
}

fn supplier(p: &Principal) -> Result<&str, ApiError> {
    p.connector_id.as_deref().ok_or_else(|| {
        ApiError::forbidden("OTPs are requested with the app's connector credential.")
    })
}

/// `POST /v1/otp`: whom to send a code.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "OtpRequest")]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// The employee's e-mail address (case and surrounding space do not matter).
    #[schemars(extend("format" = "email"))]
    email: String,
}

/// `POST /v1/otp/redeem`: the address and the code mailed to it.
#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "OtpRedeem")]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    #[schemars(extend("format" = "email"))]
    email: String,
    /// The 6-digit code; valid 10 minutes, once, and dead after 5 wrong tries.
    code: String,
}

fn normalise_email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    if koppel_shared::model::is_email(&e) {
        Ok(e)
    } else {
        Err(ApiError::unprocessable(vec![FieldError {
            field: "email".into(),
            message: "must be an e-mail address".into(),
        }]))
    }
}

/// `POST /v1/otp`.
pub async fn request(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    let connector_id = supplier(p)?;
    let b: RequestBody = body::json(req)?;
    let email = normalise_email(&b.email)?;
    let ws = &p.workspace_id;
    #[derive(Deserialize)]
    struct Claim {
        user_id: String,
    }
    let (email_key, otp_key) = (Key::email(ws, &email), key(connector_id, &email));
    let (claim, connector, pepper) = tokio::join!(
        ctx.store.get::<Claim>(&email_key),
        ctx.store.connector(ws, connector_id),
        ctx.pepper.for_new_hash()
    );
    let (claim, connector, pepper) = (claim?, connector?, pepper?);
    let connector = connector.ok_or_else(|| ApiError::forbidden("Unknown connector."))?;
    // A guess that raised the count meanwhile loses us the race: read again. Out of tries,
    // the answer is the same 202 (nothing tells a caller apart).
    let (claim, connector, pepper, otp_key, email) =
        (&claim, &connector, &pepper, &otp_key, &email);
    let sent = retry::on_conflict(&GUESSED_MEANWHILE, || async move {
        let previous = ctx.store.get::<OtpRecord>(otp_key).await?;
        let now = time_util::now().as_second();
        // Attempts carry over until the previous code expires, exhausted or not: a new
        // request must not buy new guesses.
        let attempts = previous
            .as_ref()
            .filter(|r| now < r.expires_at)
            .map_or(0, |r| r.attempts);
        let code = generate_code();
        let record = OtpRecord {
            connector_id: connector_id.to_owned(),
            email: email.clone(),
            user_id: claim.as_ref().map(|c| c.user_id.clone()),
            code_hash: code_hash(&pepper.current.value, connector_id, email, &code),
            pepper_version: pepper.current.version.clone(),
            attempts,
            expires_at: now + VALID_SECS,
        };
        let (subject, text) = mail(&connector.description, &code);
        let mail = Mail {
            to: claim.is_some().then(|| email.clone()),
            subject,
            text,
        };
        let event = match mail::event(&ctx.data_key, ws, &mail).await {
            Ok(e) => e,
            Err(e) => return Ok(Err(e)),
        };
        // Written only if no guess raised the count since it was read.
        let unchanged =
            Expr::new("attribute_not_exists(pk) OR expires_at <= :now OR attempts <= :a")
                .n(":now", now)
                .n(":a", attempts);
        let put = put_step(
            ctx.store.table(),
            with_ttl(item(otp_key, &record)?, record.expires_at),
            unchanged,
        );
        outbox::commit(ctx, vec![put], &[event]).await.map(Ok)
    })
    .await;
    match sent {
        Ok(r) => r?,
        Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    pipeline::json(StatusCode::ACCEPTED, &OtpAccepted::ANSWER)
}

/// Five tries at once: a guess is a single quick write.
const GUESSED_MEANWHILE: Schedule = Schedule::new(&[std::time::Duration::ZERO; 4]);

fn invalid_code() -> ApiError {
    ApiError::unprocessable(vec![FieldError {
        field: "code".into(),
        message: "is invalid or has expired".into(),
    }])
}

/// `POST /v1/otp/redeem`.
pub async fn redeem(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    let connector_id = supplier(p)?;
    let b: RedeemBody = body::json(req)?;
    let email = normalise_email(&b.email)?;
    let k = key(connector_id, &email);
    let now = time_util::now().as_second();
    // Every guess spends an attempt before the code is compared, in one conditional
    // update: parallel guesses each cost one, and none is made once the count is used up.
    let spend = Update::new(
        k.clone(),
        Expr::new("SET attempts = attempts + :one").n(":one", 1),
    )
    .when(
        Expr::new("attribute_exists(pk) AND attempts < :max AND expires_at > :now")
            .n(":max", MAX_ATTEMPTS)
            .n(":now", now),
    )
    .returning(ReturnValue::AllNew);
    let rec: OtpRecord = match ctx.store.update_if(spend).await? {
        Some(out) => serde_dynamo::from_item(out).map_err(ApiError::internal)?,
        None => return Err(invalid_code()),
    };
    let matches = match ctx.pepper.version(&rec.pepper_version).await? {
        Some(pepper) => credential::verify(
            &pepper.value,
            &format!("otp:{connector_id}:{email}:{}", b.code.trim()),
            &rec.code_hash,
        ),
        None => false,
    };
    let (Some(user_id), true) = (rec.user_id.as_ref(), matches) else {
        return Err(invalid_code());
    };
    // Single use: only the request that deletes this very code gets the token.
    let this_code = Expr::new("code_hash = :h").s(":h", rec.code_hash.clone());
    if !ctx.store.delete_if(&k, this_code).await? {
        return Err(invalid_code());
    }
    // An employee without API access gets no token, and is told apart from a wrong code
    // by nobody: the token would be refused on every request anyway.
    let user = ctx
        .store
        .user(&p.workspace_id, user_id)
        .await?
        .filter(|u| u.api_access)
        .ok_or_else(invalid_code)?;
    issue::within_token_cap(ctx, &p.workspace_id, connector_id, &user.user_id).await?;
    let (cred, secret) = issue::issue(
        ctx,
        NewCredential {
            workspace_id: p.workspace_id.clone(),
            kind: CredentialKind::ConnectorToken,
            name: format!("OTP {}", user.email),
            user_id: Some(user.user_id.clone()),
            connector_id: Some(connector_id.to_owned()),
            acting_user_id: None,
            // No more than the app's own credential may do.
            scopes: Some(p.scopes.clone()),
            rate_limit: None,
            expires_at: None,
            created_by: user.user_id.clone(),
        },
        &Actor {
            user_id: user.user_id.clone(),
            credential_id: Some(p.credential_id.clone()),
        },
        None,
    )
    .await?;
    created_for_connector(&cred, &secret, connector_id)
}

/// The connector's live tokens issued through OTP, optionally of one employee.
async fn issued(
    ctx: &Ctx,
    ws: &str,
    connector_id: &str,
) -> Result<Vec<koppel_shared::model::Credential>, ApiError> {
    let at = time_util::now();
    let mut all = ctx.store.credentials_of(ws, connector_id).await?;
    all.retain(|c| c.user_id.is_some() && issue::is_live(c, at));
    all.sort_by(|a, b| (&a.created_at, &a.credential_id).cmp(&(&b.created_at, &b.credential_id)));
    Ok(all)
}

/// `GET /v1/otp/tokens?user_id=`: what the app holds through OTP, without secrets.
pub async fn list_issued(p: &Principal, req: &lambda_http::Request, ctx: &Ctx) -> RouteResult {
    use lambda_http::RequestExt;
    let connector_id = koppel_shared::organisation::connector_itself(p, ctx).await?;
    let q = req.query_string_parameters();
    let user = q.first("user_id");
    let items = issued(ctx, &p.workspace_id, connector_id)
        .await?
        .iter()
        .filter(|c| user.is_none_or(|u| c.user_id.as_deref() == Some(u)))
        .map(CredentialView::of)
        .collect();
    pipeline::json(StatusCode::OK, &Items { items })
}

/// `DELETE /v1/otp/tokens/{id}`: the app revokes a token it got through OTP (a user
/// logging out of the app, or leaving); audited. Any other credential is 404 to it.
pub async fn revoke_issued(p: &Principal, ctx: &Ctx, id: &str) -> RouteResult {
    let connector_id = koppel_shared::organisation::connector_itself(p, ctx).await?;
    let cred = ctx
        .store
        .credential(id)
        .await?
        .filter(|c| {
            c.workspace_id == p.workspace_id
                && c.connector_id.as_deref() == Some(connector_id)
                && c.user_id.is_some()
        })
        .ok_or_else(ApiError::not_found)?;
    let actor = Actor {
        user_id: p.user_id.clone(),
        credential_id: Some(p.credential_id.clone()),
    };
    issue::revoke(ctx, &cred, &actor).await?;
    Ok(pipeline::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = generate_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn a_code_hash_is_bound_to_connector_and_address() {
        let h = code_hash(b"p", "con_a", "a@x.nl", "123456");
        assert_ne!(h, code_hash(b"p", "con_b", "a@x.nl", "123456"));
        assert_ne!(h, code_hash(b"p", "con_a", "b@x.nl", "123456"));
        assert!(credential::verify(b"p", "otp:con_a:a@x.nl:123456", &h));
    }

    #[test]
    fn the_mail_names_the_connector_and_carries_the_code() {
        let (subject, text) = mail("Zaakportaal", "042042");
        assert!(subject.contains("Zaakportaal"));
        assert!(text.contains("042042"));
    }
}
