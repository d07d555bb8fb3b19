//! The access decision: from a presented credential and what the store holds about it, to
//! either a principal or a refusal. Pure; the authorizer gathers the facts.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use koppel_shared::credential::CredentialKind;
use koppel_shared::ip_allow;
use koppel_shared::model::{Connector, Credential, Level, Scope, Scopes, User};
use koppel_shared::principal::Principal;
use koppel_shared::time_util::parse_rfc3339;

/// Why a request is refused. The reason is for logs only: a response never says which
/// check failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, malformed, unknown, revoked or expired credential → 401.
    Unauthenticated(&'static str),
    /// A valid credential that is not allowed → 403.
    Forbidden(&'static str),
}

/// What the authorizer found for one request.
pub struct Facts<'a> {
    pub kind: CredentialKind,
    /// `None` for JWTs, which are not stored.
    pub credential: Option<&'a Credential>,
    /// For JWTs: the kid of the key that verified it.
    pub credential_id: &'a str,
    pub connector: Option<&'a Connector>,
    pub user: Option<&'a User>,
    pub source_ip: Option<IpAddr>,
    pub now: Timestamp,
    pub default_rate_limit: u32,
}

/// Scopes a credential may use: its own (if narrowed) within what its holder allows.
pub fn effective_scopes(credential: Option<&Scopes>, holder: &Scopes) -> Scopes {
    match credential {
        Some(own) => own.intersection(holder).copied().collect(),
        None => holder.clone(),
    }
}

/// A `handle` connector acting for a `read` employee can only read (seed 000).
pub fn effective_level(connector: Level, employee: Level) -> Level {
    connector.min(employee)
}

fn all_scopes() -> Scopes {
    Scope::ALL.iter().copied().collect()
}

pub fn decide(f: &Facts<'_>) -> Result<Principal, Refusal> {
    use Refusal::*;

    if let Some(c) = f.credential {
        if c.revoked_at.is_some() {
            return Err(Unauthenticated("revoked"));
        }
        // Stored expiry is checked on every read: DynamoDB's TTL deletes late.
        if let Some(exp) = &c.expires_at {
            match parse_rfc3339(exp) {
                Some(t) if t > f.now => {}
                _ => return Err(Unauthenticated("expired")),
            }
        }
    }

    let user = f.user;
    let (workspace_id, scopes, level, rate_limit, connector_id);
    match f.kind {
        CredentialKind::PersonalAccessToken => {
            let cred = f.credential.ok_or(Unauthenticated("unknown"))?;
            let user = user.ok_or(Unauthenticated("user gone"))?;
            if !user.api_access {
                return Err(Forbidden("user lacks api_access"));
            }
            workspace_id = user.workspace_id.clone();
            scopes = effective_scopes(cred.scopes.as_ref(), &all_scopes());
            level = user.rights;
            rate_limit = cred.rate_limit;
            connector_id = None;
        }
        CredentialKind::ConnectorToken | CredentialKind::ApiKey | CredentialKind::Jwt => {
            let connector = f.connector.ok_or(Unauthenticated("connector gone"))?;
            if !connector.enabled {
                return Err(Forbidden("connector disabled"));
            }
            // An entry that does not parse refuses: dropping it could empty the list, and
            // an empty list allows every address.
            let allow: Option<Vec<IpNet>> = connector
                .ip_allow_list
                .iter()
                .map(|s| ip_allow::parse_cidr(s).ok())
                .collect();
            // A connector with an allow-list and no known source address is refused.
            let ip_ok = match (f.source_ip, allow) {
                (_, None) => false,
                (Some(ip), Some(allow)) => ip_allow::allowed(&allow, ip),
                (None, Some(_)) => connector.ip_allow_list.is_empty(),
            };
            if !ip_ok {
                return Err(Forbidden("source ip not allowed"));
            }
            let user = user.ok_or(Forbidden("acting user gone"))?;
            // A token bound to an employee (OTP) is that employee using the app: it works
            // only while they may use the API. A connector's own keys act for its acting
            // user, who may be a connector user without API access of their own.
            if f.credential.is_some_and(|c| c.user_id.is_some()) && !user.api_access {
                return Err(Forbidden("bound user lacks api_access"));
            }
            workspace_id = connector.workspace_id.clone();
            let own = f.credential.and_then(|c| c.scopes.as_ref());
            scopes = effective_scopes(own, &connector.scopes);
            level = effective_level(connector.access_level, user.rights);
            // A token may narrow its connector's limit, never raise it.
            rate_limit = match (
                f.credential.and_then(|c| c.rate_limit),
                connector.rate_limit,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            connector_id = Some(connector.connector_id.clone());
        }
    }
    let user = user.expect("checked above");
    // Deactivated: nothing acts for them, whatever credential still names them.
    if user.deactivated_at.is_some() {
        return Err(Forbidden("user deactivated"));
    }
    if user.workspace_id != workspace_id {
        return Err(Unauthenticated("workspace mismatch"));
    }

    Ok(Principal {
        workspace_id,
        user_id: user.user_id.clone(),
        connector_id,
        credential_id: f.credential_id.to_owned(),
        credential_kind: f.kind,
        scopes,
        access_level: level,
        rate_limit: rate_limit.unwrap_or(f.default_rate_limit),
        body_hash: None,
        held: None,
        counted: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn user(rights: Level, api_access: bool) -> User {
        User {
            workspace_id: "ws_1".into(),
            user_id: "usr_1".into(),
            email: "a@example.org".into(),
            name: "A".into(),
            rights,
            api_access,
            manage_users: false,
            manage_connectors: false,
            owner: false,
            created_at: "2026-01-01T00:00:00Z".into(),
            deactivated_at: None,
        }
    }

    fn connector(level: Level, scopes: &[Scope], allow: &[&str]) -> Connector {
        Connector {
            workspace_id: "ws_1".into(),
            connector_id: "con_1".into(),
            description: "Demo".into(),
            acting_user_id: "usr_1".into(),
            access_level: level,
            scopes: scopes.iter().copied().collect(),
            ip_allow_list: allow.iter().map(|s| s.to_string()).collect(),
            rate_limit: None,
            enabled: true,
            version: 1,
            jwt: None,
            saved_search_id: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            require_client_certificate: false,
            client_certificates: Vec::new(),
            manifest: None,
        }
    }

    fn cred(kind: CredentialKind, scopes: Option<&[Scope]>) -> Credential {
        Credential {
            credential_id: "c1".into(),
            workspace_id: "ws_1".into(),
            kind,
            name: "t".into(),
            user_id: (kind == CredentialKind::PersonalAccessToken).then(|| "usr_1".into()),
            connector_id: (kind != CredentialKind::PersonalAccessToken).then(|| "con_1".into()),
            acting_user_id: None,
            scopes: scopes.map(|s| s.iter().copied().collect()),
            rate_limit: None,
            expires_at: None,
            revoked_at: None,
            created_by: "usr_1".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            last_used_at: None,
            secret_hash: "x".into(),
            pepper_version: "v".into(),
        }
    }

    fn facts<'a>(
        kind: CredentialKind,
        c: Option<&'a Credential>,
        con: Option<&'a Connector>,
        u: Option<&'a User>,
        ip: &str,
    ) -> Facts<'a> {
        Facts {
            kind,
            credential: c,
            credential_id: "c1",
            connector: con,
            user: u,
            source_ip: Some(ip.parse().unwrap()),
            now: Timestamp::now(),
            default_rate_limit: 30,
        }
    }

    #[test]
    fn handle_connector_for_read_employee_reads() {
        let u = user(Level::Read, false);
        let con = connector(Level::Handle, &[Scope::CasesRead], &[]);
        let c = cred(CredentialKind::ApiKey, None);
        let p = decide(&facts(
            CredentialKind::ApiKey,
            Some(&c),
            Some(&con),
            Some(&u),
            "1.2.3.4",
        ))
        .unwrap();
        assert_eq!(p.access_level, Level::Read);
        let u = user(Level::Handle, false);
        let con = connector(Level::Read, &[Scope::CasesRead], &[]);
        let p = decide(&facts(
            CredentialKind::ApiKey,
            Some(&c),
            Some(&con),
            Some(&u),
            "1.2.3.4",
        ))
        .unwrap();
        assert_eq!(p.access_level, Level::Read);
    }

    #[test]
    fn scopes_are_intersected() {
        let u = user(Level::Handle, true);
        let con = connector(Level::Handle, &[Scope::CasesRead, Scope::DsrRead], &[]);
        let c = cred(
            CredentialKind::ConnectorToken,
            Some(&[Scope::DsrRead, Scope::DsrWrite]),
        );
        let p = decide(&facts(
            CredentialKind::ConnectorToken,
            Some(&c),
            Some(&con),
            Some(&u),
            "1.2.3.4",
        ))
        .unwrap();
        assert_eq!(p.scopes, [Scope::DsrRead].into_iter().collect());
        assert_eq!(p.connector_id.as_deref(), Some("con_1"));
    }

    #[test]
    fn refusals() {
        let u = user(Level::Handle, true);
        let mut con = connector(Level::Handle, &[Scope::CasesRead], &["10.0.0.0/8"]);
        let c = cred(CredentialKind::ApiKey, None);
        let k = CredentialKind::ApiKey;
        assert_eq!(
            decide(&facts(k, Some(&c), Some(&con), Some(&u), "11.0.0.1")),
            Err(Refusal::Forbidden("source ip not allowed"))
        );
        assert!(decide(&facts(k, Some(&c), Some(&con), Some(&u), "10.9.9.9")).is_ok());
        con.enabled = false;
        assert_eq!(
            decide(&facts(k, Some(&c), Some(&con), Some(&u), "10.9.9.9")),
            Err(Refusal::Forbidden("connector disabled"))
        );
        assert_eq!(
            decide(&facts(k, Some(&c), None, Some(&u), "10.9.9.9")),
            Err(Refusal::Unauthenticated("connector gone"))
        );

        let mut revoked = c.clone();
        revoked.revoked_at = Some("2026-01-01T00:00:00Z".into());
        con.enabled = true;
        assert_eq!(
            decide(&facts(k, Some(&revoked), Some(&con), Some(&u), "10.9.9.9")),
            Err(Refusal::Unauthenticated("revoked"))
        );
        let mut expired = c.clone();
        expired.expires_at = Some(koppel_shared::time_util::rfc3339(
            Timestamp::now() - SignedDuration::from_secs(1),
        ));
        assert_eq!(
            decide(&facts(k, Some(&expired), Some(&con), Some(&u), "10.9.9.9")),
            Err(Refusal::Unauthenticated("expired"))
        );
    }

    #[test]
    fn a_token_bound_to_an_employee_needs_their_api_access() {
        let con = connector(Level::Handle, &[Scope::CasesRead], &[]);
        let k = CredentialKind::ConnectorToken;
        let mut otp = cred(k, None);
        otp.user_id = Some("usr_1".into());
        let without = user(Level::Handle, false);
        assert_eq!(
            decide(&facts(k, Some(&otp), Some(&con), Some(&without), "::1")),
            Err(Refusal::Forbidden("bound user lacks api_access"))
        );
        let with = user(Level::Read, true);
        let p = decide(&facts(k, Some(&otp), Some(&con), Some(&with), "::1")).unwrap();
        assert_eq!(p.access_level, Level::Read);
        // The connector's own token acts for a user who needs no API access of their own.
        let own = cred(k, None);
        assert!(decide(&facts(k, Some(&own), Some(&con), Some(&without), "::1")).is_ok());
    }

    #[test]
    fn nothing_acts_for_a_deactivated_user() {
        let mut u = user(Level::Handle, true);
        u.deactivated_at = Some("2026-12-01T00:00:00Z".into());
        let pat = cred(CredentialKind::PersonalAccessToken, None);
        let k = CredentialKind::PersonalAccessToken;
        let refused = Err(Refusal::Forbidden("user deactivated"));
        assert_eq!(
            decide(&facts(k, Some(&pat), None, Some(&u), "::1")),
            refused
        );
        let con = connector(Level::Handle, &[Scope::CasesRead], &[]);
        let k = CredentialKind::ConnectorToken;
        let own = cred(k, None);
        assert_eq!(
            decide(&facts(k, Some(&own), Some(&con), Some(&u), "::1")),
            refused
        );
    }

    #[test]
    fn personal_token_needs_api_access() {
        let c = cred(
            CredentialKind::PersonalAccessToken,
            Some(&[Scope::CasesRead]),
        );
        let k = CredentialKind::PersonalAccessToken;
        let no = user(Level::Handle, false);
        assert_eq!(
            decide(&facts(k, Some(&c), None, Some(&no), "::1")),
            Err(Refusal::Forbidden("user lacks api_access"))
        );
        let yes = user(Level::Read, true);
        let p = decide(&facts(k, Some(&c), None, Some(&yes), "::1")).unwrap();
        assert_eq!(p.access_level, Level::Read);
        assert_eq!(p.connector_id, None);
        assert_eq!(p.rate_limit, 30);
    }

    #[test]
    fn rate_limit_precedence() {
        let u = user(Level::Handle, true);
        let mut con = connector(Level::Handle, &[Scope::CasesRead], &[]);
        con.rate_limit = Some(100);
        let mut c = cred(CredentialKind::ConnectorToken, None);
        let k = CredentialKind::ConnectorToken;
        assert_eq!(
            decide(&facts(k, Some(&c), Some(&con), Some(&u), "::1"))
                .unwrap()
                .rate_limit,
            100
        );
        c.rate_limit = Some(5);
        assert_eq!(
            decide(&facts(k, Some(&c), Some(&con), Some(&u), "::1"))
                .unwrap()
                .rate_limit,
            5
        );
        c.rate_limit = Some(500);
        assert_eq!(
            decide(&facts(k, Some(&c), Some(&con), Some(&u), "::1"))
                .unwrap()
                .rate_limit,
            100,
            "a token cannot raise its connector's limit"
        );
        let bad = connector(Level::Handle, &[Scope::CasesRead], &["bogus"]);
        assert_eq!(
            decide(&facts(k, Some(&c), Some(&bad), Some(&u), "::1")),
            Err(Refusal::Forbidden("source ip not allowed")),
            "an unparseable allow-list entry refuses"
        );
    }
}
