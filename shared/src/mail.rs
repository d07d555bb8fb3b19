//! Outbound e-mail as an internal event: a function puts it through the outbox, and
//! `webhook-dispatch` sends it. Internal events are never delivered to webhooks.
//!
//! The event carries the mail sealed under the data key (see [`crate::crypto`]) and bound
//! to the event's id: an address and a one-time code are personal data and a credential,
//! and are never readable in the outbox table, on the queue or in its dead-letter queue.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::{self, CryptoError};
use crate::outbox::Event;
use crate::secrets::{CachedSecret, SecretVersion};

pub const EVENT: &str = "mail.send";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// `None`: nothing is sent (a request for an unknown address looks the same).
    pub to: Option<String>,
    pub subject: String,
    pub text: String,
}

fn aad(event_id: &str) -> String {
    format!("{EVENT}/{event_id}")
}

/// The `mail.send` event of `workspace_id` for `mail`, sealed with `key`.
pub fn sealed_event(key: &SecretVersion, workspace_id: &str, mail: &Mail) -> Event {
    let mut event = Event::new(EVENT, workspace_id, serde_json::Value::Null);
    let plain = serde_json::to_vec(mail).expect("a Mail serialises");
    event.data = json!({ "sealed": crypto::seal_with(key, &aad(&event.id), &plain) });
    event
}

/// [`sealed_event`] with the current data key.
pub async fn event(
    data_key: &CachedSecret,
    workspace_id: &str,
    mail: &Mail,
) -> Result<Event, CryptoError> {
    let ring = crypto::ring(data_key).await?;
    Ok(sealed_event(&ring.current, workspace_id, mail))
}

/// The mail a `mail.send` event carries.
pub async fn open(data_key: &CachedSecret, event: &Event) -> Result<Mail, String> {
    let sealed = event.data["sealed"]
        .as_str()
        .ok_or("a mail event without its sealed mail")?;
    let plain = crypto::open(data_key, &aad(&event.id), sealed)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&plain).map_err(|e| format!("bad mail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretVersion {
        SecretVersion {
            version: "v1".into(),
            value: b"a data key of sixty-four characters for the tests of mail.rs...".to_vec(),
        }
    }

    #[test]
    fn the_event_hides_the_mail_and_opens_only_under_its_own_id() {
        let mail = Mail {
            to: Some("jan@gemeente.example".into()),
            subject: "Uw code".into(),
            text: "Uw code is 493817.".into(),
        };
        let e = sealed_event(&key(), "ws_1", &mail);
        let wire = serde_json::to_string(&e).unwrap();
        for clear in ["jan@gemeente.example", "493817", "Uw code"] {
            assert!(!wire.contains(clear), "{clear} is readable in {wire}");
        }
        let sealed = e.data["sealed"].as_str().unwrap();
        let opened = crypto::open_with(&key(), &aad(&e.id), sealed).unwrap();
        assert_eq!(serde_json::from_slice::<Mail>(&opened).unwrap(), mail);
        // Copied into another event, it does not open.
        let other = Event::new(EVENT, "ws_1", serde_json::Value::Null);
        assert!(crypto::open_with(&key(), &aad(&other.id), sealed).is_err());
    }
}
