//! The front desk proper: a booking confirmation swapped for a new key card and confirmation
//! (rotation), the grace window, and theft detection. [`decide`] is the whole rule, a pure
//! function of what the booking holds and what was shown; its table tests are below.

use std::sync::Arc;

use rand::RngCore;

use super::{ClientInfo, FrontDesk, Issued};
use crate::audit::{self, RotationOutcome};
use crate::clock::Timestamp;
use crate::config::Lifetimes;
use crate::confirmation::{self, ConfirmationClaims};
use crate::dpop::ProofError;
use crate::error::AuthError;
use crate::keys::KeySet;
use crate::storage::{EventKind, NewEvent, Rotation, SessionChange, SessionRecord, SessionUpdate};

/// The outcome of a visit to the front desk, decided inside the booking's transaction.
enum Visit {
    Rotated,
    Reissued,
    Refused(AuthError),
}

impl FrontDesk {
    /// The front desk proper: swaps a booking confirmation for a new key card and confirmation.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use keycard::AuthError;
    ///
    /// let browser = ClientInfo::default();
    /// let first = desk.register("ann", "correct horse battery", &browser).await?;
    ///
    /// // Each visit replaces the confirmation (rotation)...
    /// let second = desk.refresh(&first.confirmation, &browser).await?;
    /// assert_eq!(second.booking.generation, 2);
    /// // ...but the same one shown again at once (a second tab, a lost answer) gets the same
    /// // answer: the grace window (KEYCARD_REFRESH_GRACE_SECS).
    /// let retry = desk.refresh(&first.confirmation, &browser).await?;
    /// assert_eq!(retry.confirmation, second.confirmation);
    ///
    /// let third = desk.refresh(&second.confirmation, &browser).await?;
    /// // The first confirmation is now two behind: someone kept a copy. The booking is cancelled,
    /// // for the thief and for the guest alike.
    /// let replay = desk.refresh(&first.confirmation, &browser).await;
    /// assert!(matches!(replay, Err(AuthError::ReuseDetected)));
    /// let guest = desk.refresh(&third.confirmation, &browser).await;
    /// assert!(matches!(guest, Err(AuthError::SessionRevoked)));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        confirmation: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        self.visit(confirmation, client, None).await
    }

    /// A visit to the front desk of `native_client` (`None`: the browser's): a booking's
    /// confirmations are exchanged only at its own client's desk.
    pub(super) async fn visit(
        &self,
        confirmation: &str,
        client: &ClientInfo,
        native_client: Option<&str>,
    ) -> Result<Issued, AuthError> {
        let (result, booking) = self.exchange(confirmation, client, native_client).await;
        let outcome = match &result {
            Ok((_, Visit::Reissued)) => RotationOutcome::Grace,
            Ok(_) => RotationOutcome::Rotated,
            Err(_) => RotationOutcome::Refused,
        };
        audit::rotation(outcome, booking.as_deref(), result.as_ref().err());
        result.map(|(issued, _)| issued)
    }

    /// [`Self::visit`]'s work, with the booking the confirmation named (once it was read) and
    /// how the visit went, for the count.
    async fn exchange(
        &self,
        confirmation: &str,
        client: &ClientInfo,
        native_client: Option<&str>,
    ) -> (Result<(Issued, Visit), AuthError>, Option<String>) {
        let claims = match self.shown(confirmation, client) {
            Ok(claims) => claims,
            Err(e) => return (Err(e), None),
        };
        let booking = Some(claims.0.sid.clone());
        (self.rotate(claims, client, native_client).await, booking)
    }

    /// The claims of the confirmation shown, checked, and the keys that checked them.
    fn shown(
        &self,
        confirmation: &str,
        client: &ClientInfo,
    ) -> Result<(ConfirmationClaims, Arc<KeySet>), AuthError> {
        self.inner.throttle.refresh(client.address).map_err(AuthError::TooManyRequests)?;
        self.with_keys(|keys| {
            confirmation::verify(
                confirmation,
                keys.public(),
                &self.inner.policy.issuer,
                &self.inner.clock,
            )
        })
        .map_err(AuthError::Confirmation)
    }

    /// The booking's transaction: the rotation rule applied to what the booking holds.
    async fn rotate(
        &self,
        (claims, keys): (ConfirmationClaims, Arc<KeySet>),
        client: &ClientInfo,
        native_client: Option<&str>,
    ) -> Result<(Issued, Visit), AuthError> {
        let jkt = self.proved_key(client).await?;
        let presented = confirmation::hash_id(&claims.jti);
        let now = self.now();
        let lifetimes = self.inner.policy.lifetimes.clone();
        let (shown, signing, proved) = (claims.clone(), Arc::clone(&keys), jkt.clone());
        let asking = native_client.map(str::to_owned);
        let (after, visit) = self
            .transact(&claims.sid, move |record| {
                let visitor = Visitor { proved: proved.as_deref(), client: asking.as_deref() };
                decide(record, &shown, &presented, visitor, now, &lifetimes, &signing)
            })
            .await?;
        let (record, visit) = match visit.unwrap_or(Visit::Refused(AuthError::SessionNotFound)) {
            Visit::Refused(AuthError::ReuseDetected) => {
                audit::reuse_detected(&claims.sid, claims.generation);
                return Err(AuthError::ReuseDetected);
            }
            Visit::Refused(AuthError::SessionNotFound) => {
                return Err(AuthError::Confirmation(crate::jwt::TokenError::Invalid))
            }
            Visit::Refused(e) => return Err(e),
            // The booking as the transaction left it: no second read.
            visit @ (Visit::Rotated | Visit::Reissued) => {
                (after.ok_or(AuthError::SessionNotFound)?, visit)
            }
        };
        let guest =
            self.inner.store.guest(&record.guest_id).await?.ok_or(AuthError::SessionNotFound)?;
        Ok((self.issue(&keys, &guest, &record, jkt.as_deref()), visit))
    }
}

pub(super) fn new_rotation(
    keys: &KeySet,
    session_id: &str,
    generation: i64,
    now: Timestamp,
    lifetimes: &Lifetimes,
    absolute_expires_at: Timestamp,
) -> Rotation {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = hex(&salt);
    let jti = keys.derive_id(salt.as_bytes(), session_id, generation);
    let idle_expires_at = (now + lifetimes.idle.as_secs() as i64).min(absolute_expires_at);
    Rotation {
        generation,
        salt,
        current_hash: confirmation::hash_id(&jti),
        issued_at: now,
        expires_at: idle_expires_at,
        idle_expires_at,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which of a booking's confirmations was shown.
pub(super) enum Shown {
    /// The current one: it is exchanged.
    Current,
    /// The one it replaced, within the grace window (a second tab's race): answered again.
    PredecessorInGrace,
    /// Anything older, or the predecessor after the window: a copy, so the booking is cancelled.
    Older,
}

/// Which of `r`'s confirmations a genuine one of its booking (`claims`, whose id hashes to
/// `presented_hash`) is, at `now`.
pub(super) fn which_shown(
    r: &SessionRecord,
    claims: &ConfirmationClaims,
    presented_hash: &str,
    now: Timestamp,
    lifetimes: &Lifetimes,
) -> Shown {
    let is_current = claims.generation == r.generation && presented_hash == r.current_hash;
    let is_predecessor =
        claims.generation == r.generation - 1 && r.previous_hash.as_deref() == Some(presented_hash);
    let in_grace = r.rotated_at.is_some_and(|at| now < at + lifetimes.grace.as_secs() as i64);
    if is_current {
        Shown::Current
    } else if is_predecessor && in_grace {
        Shown::PredecessorInGrace
    } else {
        Shown::Older
    }
}

/// Who stands at the desk, besides the confirmation they show.
#[derive(Clone, Copy, Default)]
struct Visitor<'a> {
    /// The DPoP key the client proved, if it sent a proof.
    proved: Option<&'a str>,
    /// The native client whose desk this is (`None`: the browser's).
    client: Option<&'a str>,
}

/// The rotation rules, as a pure function of what the booking holds and what was shown: the
/// confirmation (`claims`, whose id hashes to `presented_hash`), the DPoP key the client
/// proved, if any, and the client whose desk it was shown at.
fn decide(
    record: Option<&SessionRecord>,
    claims: &ConfirmationClaims,
    presented_hash: &str,
    visitor: Visitor<'_>,
    now: Timestamp,
    lifetimes: &Lifetimes,
    keys: &KeySet,
) -> (SessionChange, Visit) {
    let keep = |visit| (SessionChange { update: SessionUpdate::Keep, events: Vec::new() }, visit);
    let Some(r) = record.filter(|r| r.guest_id == claims.sub) else {
        return keep(Visit::Refused(AuthError::SessionNotFound));
    };
    // A native client's refresh token at the browser's desk, or the reverse, is not a token of
    // that desk at all: refused as unknown, before any rule (and no alarm) could run.
    if r.client_id.as_deref() != visitor.client {
        return keep(Visit::Refused(AuthError::SessionNotFound));
    }
    let proved = visitor.proved;
    if r.revoked_at.is_some() {
        return keep(Visit::Refused(AuthError::SessionRevoked));
    }
    // A bound booking's confirmation is exchanged only with a proof of its key (RFC 9449,
    // section 5). Without one nothing about the booking changes, not even the theft alarm: a
    // copy of the confirmation is refused before it could cancel the guest's stay.
    if let Some(bound) = r.dpop_jkt.as_deref() {
        match proved {
            Some(key) if key == bound => {}
            Some(_) => return keep(Visit::Refused(AuthError::Dpop(ProofError::WrongKey))),
            None => return keep(Visit::Refused(AuthError::Dpop(ProofError::Missing))),
        }
    }
    let revoke = |kind: EventKind, reason: &str, detail: String, error| {
        (
            SessionChange {
                update: SessionUpdate::Revoke { at: now, reason: reason.to_owned() },
                events: vec![NewEvent {
                    at: now,
                    kind,
                    generation: Some(claims.generation),
                    detail: Some(detail),
                }],
            },
            Visit::Refused(error),
        )
    };
    if now >= r.absolute_expires_at {
        return revoke(
            EventKind::Expired,
            "absolute limit reached",
            "the booking reached its absolute limit".into(),
            AuthError::SessionExpired,
        );
    }
    if now >= r.idle_expires_at {
        return revoke(
            EventKind::Expired,
            "idle limit reached",
            "the booking was idle too long".into(),
            AuthError::SessionExpired,
        );
    }
    let shown = which_shown(r, claims, presented_hash, now, lifetimes);
    if let Shown::Current = shown {
        let rotation =
            new_rotation(keys, &r.id, r.generation + 1, now, lifetimes, r.absolute_expires_at);
        let event = NewEvent {
            at: now,
            kind: EventKind::Refreshed,
            generation: Some(rotation.generation),
            detail: Some(format!(
                "generation {} exchanged for {}",
                r.generation, rotation.generation
            )),
        };
        return (
            SessionChange { update: SessionUpdate::Rotate(rotation), events: vec![event] },
            Visit::Rotated,
        );
    }
    if let Shown::PredecessorInGrace = shown {
        let event = NewEvent {
            at: now,
            kind: EventKind::GraceReissued,
            generation: Some(r.generation),
            detail: Some(format!("generation {} shown within the grace window; current generation {} handed out again", claims.generation, r.generation)),
        };
        return (
            SessionChange { update: SessionUpdate::Keep, events: vec![event] },
            Visit::Reissued,
        );
    }
    let detail = format!(
        "generation {} shown while generation {} is current",
        claims.generation, r.generation
    );
    revoke(
        EventKind::ReuseDetected,
        "confirmation reuse detected",
        detail,
        AuthError::ReuseDetected,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Mode;
    use crate::keys::KeyRing;

    const GRACE: i64 = 10;
    /// When the booking was last rotated (generation 4 to 5).
    const ROTATED_AT: i64 = 1_000;

    fn lifetimes() -> Lifetimes {
        Lifetimes {
            key_card: Duration::from_secs(120),
            grace: Duration::from_secs(GRACE as u64),
            idle: Duration::from_secs(3_600),
            absolute: Duration::from_secs(86_400),
        }
    }

    /// A booking at generation 5: current confirmation `h5`, predecessor `h4`.
    fn booking() -> SessionRecord {
        SessionRecord {
            id: "b1".into(),
            guest_id: "g1".into(),
            generation: 5,
            salt: "salt".into(),
            current_hash: "h5".into(),
            current_issued_at: ROTATED_AT,
            current_expires_at: 4_600,
            previous_hash: Some("h4".into()),
            rotated_at: Some(ROTATED_AT),
            created_at: 0,
            last_used_at: ROTATED_AT,
            idle_expires_at: 4_600,
            absolute_expires_at: 80_000,
            revoked_at: None,
            revoked_reason: None,
            user_agent: None,
            client_address: None,
            dpop_jkt: None,
            client_id: None,
        }
    }

    /// A genuine confirmation of the booking at `generation` (whose id hashes to `h<generation>`).
    fn shown(generation: i64) -> (ConfirmationClaims, String) {
        let claims = ConfirmationClaims {
            iss: "https://hotel.test".into(),
            sub: "g1".into(),
            aud: confirmation::AUDIENCE.into(),
            exp: 4_600,
            iat: ROTATED_AT,
            jti: format!("id{generation}"),
            client_id: "keycard-web".into(),
            sid: "b1".into(),
            generation,
        };
        (claims, format!("h{generation}"))
    }

    /// (case, the booking, the generation shown, the DPoP key proved, seconds after the last
    /// rotation, outcome, the events logged)
    type Row<'a> =
        (&'a str, Option<&'a SessionRecord>, i64, Option<&'a str>, i64, Outcome, &'a [&'a str]);

    #[derive(Debug, PartialEq)]
    enum Outcome {
        Rotated,
        Reissued,
        Refused(&'static str),
    }

    #[test]
    fn the_rotation_rule() {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            KeyRing::open(dir.path().join("keys.json"), Mode::Development).unwrap().current();
        let live = booking();
        let revoked = SessionRecord { revoked_at: Some(ROTATED_AT), ..booking() };
        let idle = booking().idle_expires_at;
        let absolute = SessionRecord { absolute_expires_at: 2_000, ..booking() };
        let someone_elses = SessionRecord { guest_id: "g2".into(), ..booking() };
        let bound = SessionRecord { dpop_jkt: Some("key-a".into()), ..booking() };
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            ("the current one", Some(&live), 5, None, 30, Outcome::Rotated, &["refreshed"]),
            ("the predecessor inside the grace window", Some(&live), 4, None, GRACE - 1,
                Outcome::Reissued, &["grace_reissued"]),
            ("the predecessor as the window closes", Some(&live), 4, None, GRACE,
                Outcome::Refused("reuse_detected"), &["reuse_detected"]),
            ("the predecessor after the window", Some(&live), 4, None, 60,
                Outcome::Refused("reuse_detected"), &["reuse_detected"]),
            ("an older one, even at once", Some(&live), 3, None, 0,
                Outcome::Refused("reuse_detected"), &["reuse_detected"]),
            ("the current one past the idle limit", Some(&live), 5, None, idle - ROTATED_AT,
                Outcome::Refused("session_expired"), &["expired"]),
            ("the current one past the absolute limit", Some(&absolute), 5, None, 1_000,
                Outcome::Refused("session_expired"), &["expired"]),
            ("any of a revoked booking", Some(&revoked), 5, None, 30,
                Outcome::Refused("session_revoked"), &[]),
            ("a booking that is not there", None, 5, None, 30,
                Outcome::Refused("session_not_found"), &[]),
            ("another guest's booking", Some(&someone_elses), 5, None, 30,
                Outcome::Refused("session_not_found"), &[]),
            // A booking bound to a DPoP key: only a proof of that key reaches the rule at all.
            ("a bound booking's current one with its key", Some(&bound), 5, Some("key-a"), 30,
                Outcome::Rotated, &["refreshed"]),
            ("a bound booking's current one without a proof", Some(&bound), 5, None, 30,
                Outcome::Refused("missing"), &[]),
            ("a bound booking's current one with another key", Some(&bound), 5, Some("key-b"), 30,
                Outcome::Refused("key"), &[]),
            ("a bound booking's old one without the key: no alarm", Some(&bound), 3, None, 0,
                Outcome::Refused("missing"), &[]),
            ("a bound booking's old one with its key: the alarm", Some(&bound), 3, Some("key-a"), 0,
                Outcome::Refused("reuse_detected"), &["reuse_detected"]),
            ("an unbound booking's current one with a proof", Some(&live), 5, Some("key-a"), 30,
                Outcome::Rotated, &["refreshed"]),
        ];
        for (case, record, generation, proved, after, expected, events) in table {
            let (claims, hash) = shown(generation);
            let now = ROTATED_AT + after;
            let visitor = Visitor { proved, client: None };
            let (change, visit) = decide(record, &claims, &hash, visitor, now, &lifetimes(), &keys);
            let outcome = match visit {
                Visit::Rotated => Outcome::Rotated,
                Visit::Reissued => Outcome::Reissued,
                Visit::Refused(AuthError::ReuseDetected) => Outcome::Refused("reuse_detected"),
                Visit::Refused(AuthError::SessionExpired) => Outcome::Refused("session_expired"),
                Visit::Refused(AuthError::SessionRevoked) => Outcome::Refused("session_revoked"),
                Visit::Refused(AuthError::SessionNotFound) => Outcome::Refused("session_not_found"),
                Visit::Refused(AuthError::Dpop(e)) => Outcome::Refused(e.rule()),
                Visit::Refused(e) => panic!("{case}: {e}"),
            };
            assert_eq!(outcome, expected, "{case}");
            let kinds: Vec<&str> = change.events.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(kinds, events, "{case}: events");
            match (&outcome, &change.update) {
                (Outcome::Rotated, SessionUpdate::Rotate(r)) => {
                    assert_eq!(r.generation, 6, "{case}");
                    assert_ne!(r.current_hash, "h5", "{case}: a new confirmation");
                }
                (Outcome::Reissued, SessionUpdate::Keep) => {}
                (Outcome::Refused(_), SessionUpdate::Revoke { .. }) => {
                    assert!(!events.is_empty(), "{case}: a cancellation is logged");
                }
                (Outcome::Refused(_), SessionUpdate::Keep) => {
                    assert!(events.is_empty(), "{case}: nothing to log");
                }
                (outcome, _) => panic!("{case}: {outcome:?} with another change"),
            }
        }
    }

    /// A booking's confirmations work only at its own client's desk: the browser's at the
    /// browser's, a native client's at that client's. Any mix is refused as unknown, changing
    /// nothing (no rotation, no alarm), whatever generation is shown.
    #[test]
    fn a_confirmation_works_only_at_its_clients_desk() {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            KeyRing::open(dir.path().join("keys.json"), Mode::Development).unwrap().current();
        let browsers = booking();
        let clis = SessionRecord { client_id: Some("keycard-cli".into()), ..booking() };
        let tvs = SessionRecord { client_id: Some("tv".into()), ..booking() };
        let table = [
            ("the browser's at the browser's", &browsers, None, true),
            ("the CLI's at the CLI's", &clis, Some("keycard-cli"), true),
            ("the browser's at the CLI's", &browsers, Some("keycard-cli"), false),
            ("the CLI's at the browser's", &clis, None, false),
            ("the TV's at the CLI's", &tvs, Some("keycard-cli"), false),
        ];
        for (case, record, client, works) in table {
            for generation in [5, 3] {
                let (claims, hash) = shown(generation);
                let visitor = Visitor { proved: None, client };
                let (change, visit) = decide(
                    Some(record),
                    &claims,
                    &hash,
                    visitor,
                    ROTATED_AT + 30,
                    &lifetimes(),
                    &keys,
                );
                let refused_unchanged = matches!(visit, Visit::Refused(AuthError::SessionNotFound))
                    && change.update == SessionUpdate::Keep
                    && change.events.is_empty();
                assert_eq!(!refused_unchanged, works, "{case}, generation {generation}");
            }
        }
    }

    #[test]
    fn which_confirmation_was_shown() {
        let r = booking();
        let at = |after: i64| ROTATED_AT + after;
        let table = [
            (5, "h5", 0, "current"),
            (5, "h5", 3_000, "current"),
            (4, "h4", 0, "predecessor in grace"),
            (4, "h4", GRACE - 1, "predecessor in grace"),
            (4, "h4", GRACE, "older"),
            (3, "h3", 0, "older"),
            // A generation that does not match its hash is not taken for the one it claims.
            (5, "h4", 0, "older"),
            (4, "h5", 0, "older"),
        ];
        for (generation, hash, after, expected) in table {
            let (claims, _) = shown(generation);
            let got = match which_shown(&r, &claims, hash, at(after), &lifetimes()) {
                Shown::Current => "current",
                Shown::PredecessorInGrace => "predecessor in grace",
                Shown::Older => "older",
            };
            assert_eq!(got, expected, "generation {generation} as {hash}, {after} s after");
        }
        // A booking never rotated has no predecessor at all.
        let fresh = SessionRecord { rotated_at: None, previous_hash: None, ..booking() };
        let (claims, _) = shown(4);
        assert!(matches!(which_shown(&fresh, &claims, "h4", at(0), &lifetimes()), Shown::Older));
    }
}
