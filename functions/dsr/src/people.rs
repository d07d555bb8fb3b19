//! The users a request names: `operator` (a user object), `operatorId` (its Dastra id) and
//! `userId` (a Koppel user id). Each must name a user of the workspace, or the write is
//! refused naming the field. Dastra ids are numbers derived from Koppel user ids
//! (`model::dastra_id`), so `operator` is best named by `koppelUserId`; a Dastra id that
//! several users share is refused as ambiguous. What a body does not send is kept as
//! stored, so a user removed later does not block unrelated changes.
//!
//! The rules are pure: `wanted` reads what the body asks, the handler looks the users up,
//! and `apply` checks and sets the fields.

use koppel_shared::body::Fields;
use koppel_shared::model::User;

use crate::model::{Dsr, UserRef, dastra_id};

/// Koppel user ids are short; a longer text names no user and is not looked up.
const MAX_USER_ID: usize = 100;

/// A reference to a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    Koppel(String),
    Dastra(i64),
}

/// What a body asks of the people fields. `None` in a pair clears the field.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The operator as the body names it, by field (`operator`, `operatorId`): every
    /// reference sent must name the same user.
    pub operator: Vec<(&'static str, Option<Who>)>,
    /// `userId`, when sent.
    pub user: Option<Option<String>>,
}

impl Wanted {
    /// The Koppel user ids to look up, and whether a Dastra id needs every user.
    pub fn lookups(&self) -> (Vec<&str>, bool) {
        let mut koppel: Vec<&str> = Vec::new();
        let mut all = false;
        for who in self.operator.iter().filter_map(|(_, w)| w.as_ref()) {
            match who {
                Who::Koppel(id) => koppel.push(id),
                Who::Dastra(_) => all = true,
            }
        }
        koppel.extend(self.user.iter().flatten().map(String::as_str));
        koppel.retain(|id| plausible(id));
        koppel.sort_unstable();
        koppel.dedup();
        (koppel, all)
    }
}

fn plausible(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID
}

/// Reads what the body asks: `sent` says whether the body carries a field, `d` is the
/// request as read (so the values have the right types).
pub fn wanted(sent: &dyn Fn(&str) -> bool, d: &Dsr, errors: &mut Fields) -> Wanted {
    let mut w = Wanted::default();
    if sent("operator") {
        match &d.operator {
            None => w.operator.push(("operator", None)),
            Some(o) => match (&o.koppel_user_id, o.id) {
                (Some(k), id) => {
                    if id.is_some_and(|n| n != dastra_id(k)) {
                        errors.push("operator.id", "does not match operator.koppelUserId");
                    }
                    w.operator.push(("operator", Some(Who::Koppel(k.clone()))));
                }
                (None, Some(n)) => w.operator.push(("operator", Some(Who::Dastra(n)))),
                (None, None) => errors.push(
                    "operator",
                    "must name a user of this workspace by koppelUserId (or id)",
                ),
            },
        }
    }
    if sent("operatorId") {
        w.operator
            .push(("operatorId", d.operator_id.map(Who::Dastra)));
    }
    if sent("userId") {
        w.user = Some(d.user_id.clone());
    }
    w
}

/// The user `who` names among `users`, or why not.
fn find<'u>(users: &'u [User], who: &Who) -> Result<&'u User, &'static str> {
    let mut hits = users.iter().filter(|u| match who {
        Who::Koppel(id) => u.user_id == *id,
        Who::Dastra(n) => dastra_id(&u.user_id) == *n,
    });
    match (hits.next(), hits.next()) {
        (Some(u), None) => Ok(u),
        (None, _) => Err("names no user of this workspace"),
        (Some(_), Some(_)) => {
            Err("names more than one user of this workspace; send operator with koppelUserId")
        }
    }
}

/// Checks the references in `w` against `users` (the workspace's users that were looked
/// up) and sets `operator`, `operatorId` and `userId` on `d`: the operator as Koppel
/// knows the user, its Dastra id beside it.
pub fn apply(w: &Wanted, users: &[User], d: &mut Dsr, errors: &mut Fields) {
    let mut chosen: Option<Option<&User>> = None;
    for (field, who) in &w.operator {
        let found = match who {
            None => Ok(None),
            Some(who) => find(users, who).map(Some),
        };
        match (found, chosen) {
            (Err(why), _) => errors.push(*field, why),
            (Ok(u), None) => chosen = Some(u),
            (Ok(u), Some(prev)) => {
                let id = |u: Option<&User>| u.map(|u| u.user_id.clone());
                if id(u) != id(prev) {
                    errors.push(*field, "names another user than operator");
                }
            }
        }
    }
    if let Some(u) = chosen {
        d.operator = u.map(UserRef::of);
        d.operator_id = d.operator.as_ref().and_then(|o| o.id);
    }
    if let Some(Some(id)) = &w.user
        && find(users, &Who::Koppel(id.clone())).is_err()
    {
        errors.push(
            "userId",
            "must be the id of a user of this workspace (usr_…)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koppel_shared::model::Level;

    fn user(id: &str) -> User {
        User {
            workspace_id: "ws".into(),
            user_id: id.into(),
            email: format!("{id}@example.org"),
            name: format!("User {id}"),
            rights: Level::Handle,
            api_access: true,
            manage_users: false,
            manage_connectors: false,
            owner: false,
            created_at: "2027-01-01T00:00:00Z".into(),
            deactivated_at: None,
        }
    }

    fn run(body: serde_json::Value, users: &[User], d: &mut Dsr) -> Vec<String> {
        let sent = |k: &str| body.get(k).is_some();
        let mut errors = Fields::new();
        let w = wanted(&sent, d, &mut errors);
        apply(&w, users, d, &mut errors);
        match errors.finish() {
            Ok(()) => vec![],
            Err(e) => e.errors.into_iter().map(|e| e.field).collect(),
        }
    }

    fn dsr(body: &serde_json::Value) -> Dsr {
        serde_json::from_value(body.clone()).unwrap()
    }

    #[test]
    fn an_operator_by_koppel_or_dastra_id_is_set_as_koppel_knows_the_user() {
        let ann = user("usr_ann");
        let users = [ann.clone(), user("usr_bob")];
        let n = dastra_id("usr_ann");
        for body in [
            serde_json::json!({ "operator": { "koppelUserId": "usr_ann", "displayName": "x" } }),
            serde_json::json!({ "operator": { "id": n } }),
            serde_json::json!({ "operatorId": n }),
            serde_json::json!({ "operator": { "koppelUserId": "usr_ann" }, "operatorId": n }),
        ] {
            let mut d = dsr(&body);
            assert!(run(body.clone(), &users, &mut d).is_empty(), "{body}");
            assert_eq!(d.operator, Some(UserRef::of(&ann)), "{body}");
            assert_eq!(d.operator_id, Some(n), "{body}");
        }
    }

    #[test]
    fn unknown_or_disagreeing_users_are_refused_by_field() {
        let users = [user("usr_ann"), user("usr_bob")];
        let ann = dastra_id("usr_ann");
        let bob = dastra_id("usr_bob");
        let cases = [
            (
                serde_json::json!({ "operator": { "id": 0 } }),
                vec!["operator"],
            ),
            (serde_json::json!({ "operatorId": 0 }), vec!["operatorId"]),
            (
                serde_json::json!({ "operator": { "displayName": "Ann" } }),
                vec!["operator"],
            ),
            (serde_json::json!({ "userId": "string" }), vec!["userId"]),
            (
                serde_json::json!({ "operator": { "koppelUserId": "usr_ann", "id": bob } }),
                vec!["operator.id"],
            ),
            (
                serde_json::json!({ "operator": { "koppelUserId": "usr_ann" }, "operatorId": bob }),
                vec!["operatorId"],
            ),
            (
                serde_json::json!({ "operator": { "id": 0 }, "operatorId": 0, "userId": "x" }),
                vec!["operator", "operatorId", "userId"],
            ),
            (
                serde_json::json!({ "operator": null, "operatorId": ann }),
                vec!["operatorId"],
            ),
        ];
        for (body, want) in cases {
            let mut d = dsr(&body);
            assert_eq!(run(body.clone(), &users, &mut d), want, "{body}");
        }
    }

    #[test]
    fn a_shared_dastra_id_is_ambiguous() {
        // Dastra ids are 31-bit hashes: two users may share one (here, the same user twice
        // stands in for a collision). Only koppelUserId tells them apart.
        let users = [user("usr_a"), user("usr_a")];
        let body = serde_json::json!({ "operatorId": dastra_id("usr_a") });
        let mut d = dsr(&body);
        assert_eq!(run(body, &users, &mut d), ["operatorId"]);
    }

    #[test]
    fn null_clears_and_what_is_not_sent_is_kept() {
        let users = [user("usr_ann")];
        let kept = UserRef::of(&users[0]);
        let mut d = Dsr {
            operator: Some(kept.clone()),
            operator_id: kept.id,
            user_id: Some("usr_gone".into()),
            ..Dsr::default()
        };
        // Nothing sent: nothing checked, not even the user who is gone.
        assert!(run(serde_json::json!({ "title": "t" }), &[], &mut d).is_empty());
        assert_eq!(d.operator, Some(kept));
        d.operator = None;
        assert!(run(serde_json::json!({ "operator": null }), &users, &mut d).is_empty());
        assert_eq!((d.operator.as_ref(), d.operator_id), (None, None));
        d.user_id = None;
        assert!(run(serde_json::json!({ "userId": null }), &[], &mut d).is_empty());
        d.user_id = Some("usr_ann".into());
        assert!(run(serde_json::json!({ "userId": "usr_ann" }), &users, &mut d).is_empty());
    }

    #[test]
    fn lookups_name_only_plausible_koppel_ids_and_dastra_ids_need_everyone() {
        let w = Wanted {
            operator: vec![("operator", Some(Who::Koppel("usr_a".into())))],
            user: Some(Some("usr_a".into())),
        };
        assert_eq!(w.lookups(), (vec!["usr_a"], false));
        let w = Wanted {
            operator: vec![("operatorId", Some(Who::Dastra(5)))],
            user: Some(Some("x".repeat(500))),
        };
        assert_eq!(w.lookups(), (vec![], true));
    }
}
