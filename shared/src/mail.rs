//! Outbound e-mail as an internal event: a function puts it through the outbox, and
//! `webhook-dispatch` sends it. Internal events are never delivered to webhooks.

use serde::{Deserialize, Serialize};

pub const EVENT: &str = "mail.send";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// `None`: nothing is sent (a request for an unknown address looks the same).
    pub to: Option<String>,
    pub subject: String,
    pub text: String,
}
