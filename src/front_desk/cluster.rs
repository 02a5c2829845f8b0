//! The roll of instances: every instance on one database signs as the same issuer, or it does not
//! start; and the periodic upkeep that keeps the roll, the key ring and the throttles fresh.

use super::{FrontDesk, StartError};
use crate::error::AuthError;

/// An instance unseen for this long is taken for dead: its issuer no longer blocks a start-up.
/// Three missed heartbeats of the server's 10 s housekeeping.
pub const INSTANCE_LIVENESS_SECS: i64 = 30;

impl FrontDesk {
    /// Adds this instance to the database's roll, or refuses to start when a live instance
    /// (seen in the last [`INSTANCE_LIVENESS_SECS`]) issues as someone else: the two would refuse
    /// each other's key cards and confirmations, which behind a load balancer looks like random
    /// sign-outs. An instance that stopped long ago does not count, so changing the public URL
    /// of a stopped hotel is fine.
    pub async fn join(&self) -> Result<(), StartError> {
        let now = self.now();
        let issuer = &self.inner.policy.issuer;
        let live_since = now - INSTANCE_LIVENESS_SECS;
        match self.inner.store.join(&self.inner.instance, issuer, now, live_since).await? {
            None => Ok(()),
            Some(theirs) => Err(StartError::IssuerConflict { theirs, ours: issuer.clone() }),
        }
    }

    /// Takes this instance off the roll (on a clean shutdown), so a restart on a new public URL
    /// need not wait for it to be forgotten.
    pub async fn leave(&self) {
        if let Err(e) = self.inner.store.leave(&self.inner.instance).await {
            tracing::warn!(error = %e, "could not leave the roll of instances");
        }
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), AuthError> {
        Ok(self.inner.store.ping().await?)
    }

    /// The database connections open now, in use and idle.
    pub fn connections(&self) -> crate::storage::Connections {
        self.inner.store.connections()
    }

    /// Periodic upkeep: picks up a rotated key file (so one `rotate-keys` reaches every instance
    /// within one period), trims idle rate-limit state and the DPoP proofs too old to matter,
    /// and answers the roll call of instances.
    pub async fn housekeeping(&self) {
        match self.inner.keys.reload_if_changed(self.inner.policy.mode) {
            // A rotation retires the oldest key: forget every card verified with the old ring.
            Ok(true) => self.inner.verified.clear(),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not reload the signing keys; keeping the old ones")
            }
        }
        self.inner.throttle.forget_idle();
        let (now, store) = (self.now(), &self.inner.store);
        if let Err(e) = store.forget_login_attempts(self.inner.clock.now_millis()).await {
            tracing::warn!(error = %e, "could not trim the check-in throttle");
        }
        if let Err(e) = store.forget_proofs(now).await {
            tracing::warn!(error = %e, "could not forget the DPoP proofs too old to be accepted");
        }
        self.forget_device_grants().await;
        let issuer = &self.inner.policy.issuer;
        let live_since = now - INSTANCE_LIVENESS_SECS;
        let forget_before = now - 24 * 3600;
        match store.heartbeat(&self.inner.instance, issuer, now, live_since, forget_before).await {
            Ok(None) => {}
            Ok(Some(theirs)) => tracing::error!(
                other_instance = %theirs.instance,
                other_issuer = %theirs.issuer,
                our_issuer = %issuer,
                "another live instance issues key cards as someone else; each refuses the \
                 other's: give every instance the same KEYCARD_PUBLIC_URL"
            ),
            Err(e) => tracing::warn!(error = %e, "roll call of instances failed"),
        }
    }
}
