//! Check-in and registration: a password for a new booking, behind the check-in throttles.

use super::rotation::new_rotation;
use super::{ClientInfo, FrontDesk, Issued};
use crate::audit::{self, CheckInOutcome};
use crate::dpop::ProofError;
use crate::error::AuthError;
use crate::jwt::random_id;
use crate::passwords::{self, Verdict};
use crate::storage::{Attempt, GuestRecord, SessionRecord};
use crate::throttle::RetryAfter;

impl FrontDesk {
    /// One check-in or registration attempt: the per-address limit of this instance, then the
    /// per-account limit of the whole cluster (in the database).
    /// The DPoP key the client proved with this request, if it sent a proof (one with no token
    /// beside it: `ath` does not apply). Without one, `None`, unless DPoP is required.
    pub(super) async fn proved_key(
        &self,
        client: &ClientInfo,
    ) -> Result<Option<String>, AuthError> {
        match &client.dpop {
            Some(dpop) => Ok(Some(self.check_proof(dpop, None, None).await?.jkt)),
            None if self.inner.policy.dpop_required => Err(AuthError::Dpop(ProofError::Missing)),
            None => Ok(None),
        }
    }

    async fn throttle_login(&self, account: &str, client: &ClientInfo) -> Result<(), AuthError> {
        let throttle = &self.inner.throttle;
        throttle.login_from(client.address).map_err(AuthError::TooManyRequests)?;
        let step = throttle.per_account(self.inner.clock.now_millis());
        match self.inner.store.take_login_attempt(&account.to_lowercase(), step).await? {
            Attempt::Allowed => Ok(()),
            Attempt::Refused(wait) => {
                audit::throttled(audit::Throttled::CheckInAccount);
                Err(AuthError::TooManyRequests(RetryAfter(wait)))
            }
        }
    }

    /// Registers a guest and checks them in. The username must be new (case aside) and the
    /// password pass the policy (8 to 128 characters, not a common one, not the username).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use keycard::AuthError;
    ///
    /// let issued = desk.register("ann", "correct horse battery", &ClientInfo::default()).await?;
    /// assert_eq!(issued.booking.generation, 1);
    /// let again = desk.register("ANN", "another good password", &ClientInfo::default()).await;
    /// assert!(matches!(again, Err(AuthError::UsernameTaken)));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        check_username(username)?;
        passwords::check_policy(username, password)?;
        self.throttle_login(username, client).await?;
        let jkt = self.proved_key(client).await?;
        let hash = self.inner.passwords.hash(password).await?;
        let guest = GuestRecord {
            id: random_id(),
            username: username.to_owned(),
            password_hash: hash,
            created_at: self.now(),
        };
        self.inner.store.create_guest(&guest).await?;
        tracing::info!(guest = %guest.id, "guest registered");
        self.start_session(&guest, client, jkt, None).await
    }

    /// Check-in: the password for a key card and a booking confirmation, in a new booking.
    /// A wrong password and an unknown guest get the same answer after the same work, and both
    /// count against the check-in limits (per address, per account).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let (desk, _dir) = keycard::doc_support::front_desk().await;
    /// use keycard::front_desk::ClientInfo;
    /// use keycard::AuthError;
    ///
    /// let browser = ClientInfo { address: "192.0.2.7".parse().ok(), ..ClientInfo::default() };
    /// desk.register("ann", "correct horse battery", &browser).await?;
    ///
    /// let issued = desk.check_in("ann", "correct horse battery", &browser).await?;
    /// // The key card opens doors for minutes; the confirmation goes only to the front desk.
    /// assert_eq!(issued.key_card_claims.preferred_username, "ann");
    /// assert_eq!(issued.key_card_claims.exp - issued.key_card_claims.iat, 120);
    /// assert!(issued.confirmation_claims.exp > issued.key_card_claims.exp);
    ///
    /// let wrong = desk.check_in("ann", "not the password", &browser).await;
    /// assert!(matches!(wrong, Err(AuthError::InvalidCredentials)));
    /// # Ok::<(), keycard::AuthError>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(skip_all)]
    pub async fn check_in(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let result = self.check_password(username, password, client).await;
        count_failure(&result);
        result
    }

    async fn check_password(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        // Malformed names and passwords get the same answer as wrong ones, after the same work.
        let plausible =
            check_username(username).is_ok() && password.chars().count() <= passwords::MAX_LEN;
        let account = if plausible { username } else { "" };
        self.throttle_login(account, client).await?;
        // Before the password's work: a client that cannot prove its key learns nothing.
        let jkt = self.proved_key(client).await?;
        let guest =
            if plausible { self.inner.store.guest_by_username(username).await? } else { None };
        let verdict = self
            .inner
            .passwords
            .verify(
                if plausible { password } else { "" },
                guest.as_ref().map(|g| g.password_hash.as_str()),
            )
            .await?;
        let (Verdict::Accepted { rehash }, Some(guest)) = (verdict, guest) else {
            return Err(AuthError::InvalidCredentials);
        };
        if let Some(stronger) = rehash {
            self.inner.store.upgrade_password_hash(&guest.id, &stronger).await?;
            tracing::info!(guest = %guest.id, "stored hash upgraded to the current Argon2id parameters");
        }
        self.start_session(&guest, client, jkt, None).await
    }

    /// A new booking for `guest`, bound to the DPoP key `jkt` if the client proved one, made
    /// for the native client `client_id` (`None`: the browser).
    pub(super) async fn start_session(
        &self,
        guest: &GuestRecord,
        client: &ClientInfo,
        jkt: Option<String>,
        client_id: Option<&str>,
    ) -> Result<Issued, AuthError> {
        let now = self.now();
        let lifetimes = &self.inner.policy.lifetimes;
        let absolute = now + lifetimes.absolute.as_secs() as i64;
        let keys = self.inner.keys.current();
        let id = random_id();
        let rotation = new_rotation(&keys, &id, 1, now, lifetimes, absolute);
        let record = SessionRecord {
            id,
            guest_id: guest.id.clone(),
            generation: rotation.generation,
            salt: rotation.salt.clone(),
            current_hash: rotation.current_hash.clone(),
            current_issued_at: rotation.issued_at,
            current_expires_at: rotation.expires_at,
            previous_hash: None,
            rotated_at: None,
            created_at: now,
            last_used_at: now,
            idle_expires_at: rotation.idle_expires_at,
            absolute_expires_at: absolute,
            revoked_at: None,
            revoked_reason: None,
            user_agent: client.user_agent.as_deref().map(|ua| ua.chars().take(200).collect()),
            client_address: client.address.map(|a| a.to_string()),
            dpop_jkt: jkt,
            client_id: client_id.map(str::to_owned),
        };
        self.inner.store.create_session(&record).await?;
        audit::check_in(CheckInOutcome::CheckedIn, Some(&guest.id), Some(&record.id));
        tracing::debug!(
            bound = record.dpop_jkt.is_some(),
            client = record.client_id.as_deref().unwrap_or("browser"),
            "booking made"
        );
        Ok(self.issue(&keys, guest, &record, record.dpop_jkt.as_deref()))
    }
}

/// Counts a check-in that made no booking (one that did is counted where the booking is made).
fn count_failure<T>(result: &Result<T, AuthError>) {
    if result.is_err() {
        audit::check_in(CheckInOutcome::of(result), None, None);
    }
}

/// Usernames: 3 to 32 of `A-Z a-z 0-9 _ . -`; unique regardless of case (the store compares
/// lower-cased names).
pub fn check_username(username: &str) -> Result<(), AuthError> {
    let ok = (3..=32).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidUsername)
    }
}
