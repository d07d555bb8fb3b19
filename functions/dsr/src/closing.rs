//! The server-owned fields of a request and the rules that set them: dates, creator, the
//! GDPR deadline, closing (needs a reason other than `None`; records when and by whom),
//! reopening (clears the closing fields) and archiving (records when).
//! `closedReasonDescription` is kept on an open request as the client sent it.

use jiff::Timestamp;
use koppel_shared::body::Fields;

use crate::deadline;
use crate::model::{Dsr, Instant, Label, State, UserRef};

/// What a write did, which decides its event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Closed,
}

impl Change {
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Created => "dsr.created",
            Self::Updated => "dsr.updated",
            Self::Closed => "dsr.closed",
        }
    }
}

/// Sets the server-owned fields of `next`, the request as the client wants it, given the
/// stored request `before` (`None` on create), the acting user and the time. Rule
/// violations are added to `errors`.
pub fn settle(
    before: Option<&Dsr>,
    next: &mut Dsr,
    actor: &UserRef,
    now: Timestamp,
    errors: &mut Fields,
) -> Change {
    let at = Instant(now);
    let received = before.and_then(|b| b.date_creation).unwrap_or(at);
    next.id = before.map_or(next.id, |b| b.id);
    next.date_creation = Some(received);
    next.date_update = Some(at);
    next.creator = before.map_or_else(|| Some(actor.clone()), |b| b.creator.clone());
    next.expiry_time = Some(Instant(deadline::expiry(received.0, next.complex)));
    next.remaining_days = None;

    if next.purposes.is_empty() {
        errors.push("purposes", "at least one purpose is required");
    }

    let was_archived = before.is_some_and(|b| b.archived);
    next.archived_date = match (next.archived, was_archived) {
        (false, _) => None,
        (true, true) => before.and_then(|b| b.archived_date).or(Some(at)),
        (true, false) => Some(at),
    };

    let was_closed = before.is_some_and(|b| b.state == State::Closed);
    if next.state != State::Closed {
        // Open (again): nothing of a closing remains. `closedReasonDescription` is the
        // client's on an open request (Dastra keeps it); a reopening drops the one the
        // closing carried unless the same change sends another.
        next.closed_reason = Some(Label::none());
        if was_closed
            && before.is_some_and(|b| b.closed_reason_description == next.closed_reason_description)
        {
            next.closed_reason_description = None;
        }
        next.date_closed = None;
        next.closed_by_user = None;
        next.closing_time = None;
        return if before.is_none() {
            Change::Created
        } else {
            Change::Updated
        };
    }
    if next.closed_reason.as_ref().is_none_or(Label::is_none) {
        errors.push(
            "closedReason",
            "closing a request needs a closedReason other than None",
        );
    }
    if was_closed {
        let b = before.expect("was closed");
        next.date_closed = b.date_closed;
        next.closed_by_user = b.closed_by_user.clone();
        next.closing_time = b.closing_time;
        return Change::Updated;
    }
    next.date_closed = Some(at);
    next.closed_by_user = Some(actor.clone());
    next.closing_time = Some(deadline::closing_days(received.0, now));
    match before {
        None => Change::Created,
        Some(_) => Change::Closed,
    }
}

/// Fills in what is computed at read time.
pub fn for_reading(mut d: Dsr, now: Timestamp) -> Dsr {
    d.remaining_days = match (d.state, d.expiry_time) {
        (State::Closed, _) | (_, None) => None,
        (_, Some(e)) => Some(deadline::remaining_days(e.0, now)),
    };
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn actor(n: &str) -> UserRef {
        UserRef {
            id: Some(1),
            display_name: Some(n.into()),
            ..UserRef::default()
        }
    }

    fn open() -> Dsr {
        Dsr {
            id: 1,
            purposes: vec![Label::new("Access")],
            ..Dsr::default()
        }
    }

    fn settle_ok(before: Option<&Dsr>, next: &mut Dsr, who: &str, now: &str) -> Change {
        let mut errors = Fields::new();
        let c = settle(before, next, &actor(who), ts(now), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        c
    }

    #[test]
    fn create_sets_server_fields_and_ignores_client_values() {
        let mut d = open();
        d.date_closed = Some(Instant(ts("2020-01-01T00:00:00Z")));
        d.closed_reason = Some(Label::new("Completed"));
        let c = settle_ok(None, &mut d, "ann", "2027-01-31T10:00:00Z");
        assert_eq!(c, Change::Created);
        assert_eq!(
            d.date_creation.unwrap().format(),
            "2027-01-31T10:00:00.000Z"
        );
        assert_eq!(d.expiry_time.unwrap().format(), "2027-02-28T10:00:00.000Z");
        assert_eq!(d.creator.unwrap().display_name.as_deref(), Some("ann"));
        assert_eq!(d.date_closed, None);
        assert_eq!(d.closed_reason, Some(Label::none()));
    }

    #[test]
    fn a_purpose_is_required() {
        let mut d = Dsr::default();
        let mut errors = Fields::new();
        settle(
            None,
            &mut d,
            &actor("a"),
            ts("2027-01-01T00:00:00Z"),
            &mut errors,
        );
        let e = errors.finish().unwrap_err();
        assert_eq!(e.errors[0].field, "purposes");
    }

    #[test]
    fn closing_needs_a_reason_other_than_none() {
        let mut before = open();
        settle_ok(None, &mut before, "ann", "2027-01-01T10:00:00Z");
        for reason in [None, Some(Label::new("Geen"))] {
            let mut next = before.clone();
            next.state = State::Closed;
            next.closed_reason = reason;
            let mut errors = Fields::new();
            settle(
                Some(&before),
                &mut next,
                &actor("bob"),
                ts("2027-01-05T10:00:00Z"),
                &mut errors,
            );
            assert_eq!(errors.finish().unwrap_err().errors[0].field, "closedReason");
        }
    }

    #[test]
    fn closing_records_when_and_who_and_reopening_clears_it() {
        let mut before = open();
        settle_ok(None, &mut before, "ann", "2027-01-01T10:00:00Z");
        let mut closed = before.clone();
        closed.state = State::Closed;
        closed.closed_reason = Some(Label::new("Completed"));
        let c = settle_ok(Some(&before), &mut closed, "bob", "2027-01-05T10:00:00Z");
        assert_eq!(c, Change::Closed);
        assert_eq!(
            closed.date_closed.unwrap().format(),
            "2027-01-05T10:00:00.000Z"
        );
        assert_eq!(
            closed
                .closed_by_user
                .as_ref()
                .unwrap()
                .display_name
                .as_deref(),
            Some("bob")
        );
        assert_eq!(closed.closing_time, Some(4));
        assert_eq!(
            closed.creator.as_ref().unwrap().display_name.as_deref(),
            Some("ann")
        );

        // Another update while closed keeps the closing as it was.
        let mut again = closed.clone();
        again.title = Some("renamed".into());
        let c = settle_ok(Some(&closed), &mut again, "carl", "2027-01-07T10:00:00Z");
        assert_eq!(c, Change::Updated);
        assert_eq!(again.date_closed, closed.date_closed);
        assert_eq!(again.closed_by_user, closed.closed_by_user);

        let mut reopened = again.clone();
        reopened.state = State::Open;
        let c = settle_ok(Some(&again), &mut reopened, "dan", "2027-01-08T10:00:00Z");
        assert_eq!(c, Change::Updated);
        assert_eq!(reopened.date_closed, None);
        assert_eq!(reopened.closed_by_user, None);
        assert_eq!(reopened.closing_time, None);
        assert_eq!(reopened.closed_reason, Some(Label::none()));
        assert_eq!(reopened.closed_reason_description, None);
    }

    #[test]
    fn a_closed_reason_description_on_an_open_request_is_kept() {
        let mut d = open();
        d.closed_reason_description = Some("asked by phone".into());
        settle_ok(None, &mut d, "ann", "2027-01-01T10:00:00Z");
        assert_eq!(
            d.closed_reason_description.as_deref(),
            Some("asked by phone")
        );
        let mut next = d.clone();
        next.title = Some("t".into());
        settle_ok(Some(&d), &mut next, "ann", "2027-01-02T10:00:00Z");
        assert_eq!(
            next.closed_reason_description.as_deref(),
            Some("asked by phone")
        );

        // Reopening with a description of its own keeps that one.
        let mut closed = next.clone();
        closed.state = State::Closed;
        closed.closed_reason = Some(Label::new("Completed"));
        closed.closed_reason_description = Some("done".into());
        settle_ok(Some(&next), &mut closed, "ann", "2027-01-03T10:00:00Z");
        let mut reopened = closed.clone();
        reopened.state = State::Open;
        reopened.closed_reason_description = Some("reopened: more to do".into());
        settle_ok(Some(&closed), &mut reopened, "ann", "2027-01-04T10:00:00Z");
        assert_eq!(
            reopened.closed_reason_description.as_deref(),
            Some("reopened: more to do")
        );
    }

    #[test]
    fn complex_moves_the_deadline_from_the_same_receipt() {
        let mut before = open();
        settle_ok(None, &mut before, "ann", "2027-01-31T10:00:00Z");
        let mut next = before.clone();
        next.complex = true;
        settle_ok(Some(&before), &mut next, "ann", "2027-02-10T10:00:00Z");
        assert_eq!(
            next.expiry_time.unwrap().format(),
            "2027-04-30T09:00:00.000Z"
        );
    }

    #[test]
    fn archiving_records_when() {
        let mut before = open();
        settle_ok(None, &mut before, "ann", "2027-01-01T10:00:00Z");
        let mut a = before.clone();
        a.archived = true;
        settle_ok(Some(&before), &mut a, "ann", "2027-01-02T10:00:00Z");
        assert_eq!(
            a.archived_date.unwrap().format(),
            "2027-01-02T10:00:00.000Z"
        );
        let mut b = a.clone();
        settle_ok(Some(&a), &mut b, "ann", "2027-01-03T10:00:00Z");
        assert_eq!(b.archived_date, a.archived_date);
        let mut c = b.clone();
        c.archived = false;
        settle_ok(Some(&b), &mut c, "ann", "2027-01-04T10:00:00Z");
        assert_eq!(c.archived_date, None);
    }

    #[test]
    fn remaining_days_only_while_open() {
        let mut d = open();
        settle_ok(None, &mut d, "ann", "2027-01-01T10:00:00Z");
        let r = for_reading(d.clone(), ts("2027-01-21T10:00:00Z"));
        assert_eq!(r.remaining_days, Some(11));
        let r = for_reading(d.clone(), ts("2027-02-03T10:00:00Z"));
        assert_eq!(r.remaining_days, Some(-2));
        d.state = State::Closed;
        assert_eq!(
            for_reading(d, ts("2027-01-21T10:00:00Z")).remaining_days,
            None
        );
    }
}
