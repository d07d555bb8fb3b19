//! Koppel's shared crate: the models, the request pipeline every handler runs first, the
//! single-table store, credentials, the access decision, errors as problem+json, and the
//! outbox. Everything a function needs beyond its own route logic lives here, once.

pub mod audit;
pub mod body;
pub mod calendar;
pub mod cases;
pub mod connector_rules;
pub mod credential;
pub mod crypto;
pub mod ctx;
pub mod delivery;
pub mod error;
pub mod https_url;
pub mod idempotency;
pub mod ids;
pub mod ip_allow;
pub mod issue;
pub mod jwt;
pub mod mail;
pub mod model;
pub mod openapi;
pub mod organisation;
pub mod outbox;
pub mod paging;
pub mod pipeline;
pub mod preconditions;
pub mod principal;
pub mod problems;
pub mod rate_limit;
pub mod retry;
pub mod routes;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod time_util;
pub mod views;
pub mod webhook;

pub use ctx::{Ctx, Settings};
pub use error::ApiError;
/// For [`handler!`]'s expansion in function crates.
pub use lambda_http;
pub use principal::Principal;
