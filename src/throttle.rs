//! Throttling of check-in and the front desk. Both limits use GCRA (the generic cell rate
//! algorithm): each key gets a burst of N and regains one attempt every 60/N seconds.
//!
//! - Per client address (check-in and front desk): in this process's memory, with the `governor`
//!   crate. Behind a load balancer each instance counts the addresses it sees, so N instances
//!   allow up to N times the limit from one address; that is the price of not touching the
//!   database for every front-desk visit, and these limits only blunt floods.
//! - Per account (check-in): in the database ([`crate::storage::Store::take_login_attempt`]), so
//!   the budget is the cluster's, not each instance's: password guessing against one account is
//!   what this limit exists to stop, and spreading guesses over instances must not multiply it.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::audit::{self, Throttled};
use crate::config::RateLimits;
use crate::storage::Gcra;

/// How long to wait before trying again (becomes the `Retry-After` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up, at least one.
    pub fn secs(self) -> u64 {
        (self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)).max(1)
    }
}

/// The limiters the front desk consults.
pub struct Throttle {
    login_per_account_per_minute: u32,
    login_per_address: DefaultKeyedRateLimiter<IpAddr>,
    refresh_per_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Device codes looked up or decided, per guest (RFC 8628, section 5.1: guessing user
    /// codes must be slow).
    device_per_guest: DefaultKeyedRateLimiter<String>,
    /// The forge lab, per booking: enough to try every forgery by hand, too few to use the lab's
    /// explanations as an oracle at scale.
    #[cfg(feature = "demo")]
    lab_per_booking: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

/// Device codes a guest may look up or decide per minute: a person types a handful (the
/// approval page looks its code up once per render on the server and once more after a
/// decision); a script guessing among 20^8 (about 2^34.6) codes, 30 a minute, would need
/// centuries for one live code.
pub const DEVICE_PER_GUEST_PER_MINUTE: u32 = 30;

/// Forge-lab attempts per booking per minute.
#[cfg(feature = "demo")]
pub const LAB_PER_BOOKING_PER_MINUTE: u32 = 30;

fn per_minute<K: Hash + Eq + Clone>(n: u32) -> DefaultKeyedRateLimiter<K> {
    RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)))
}

impl Throttle {
    /// Limits as configured.
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            login_per_account_per_minute: limits.login_per_account_per_minute.max(1),
            login_per_address: per_minute(limits.login_per_address_per_minute),
            refresh_per_address: per_minute(limits.refresh_per_address_per_minute),
            device_per_guest: per_minute(DEVICE_PER_GUEST_PER_MINUTE),
            #[cfg(feature = "demo")]
            lab_per_booking: per_minute(LAB_PER_BOOKING_PER_MINUTE),
            clock: DefaultClock::default(),
        }
    }

    /// One check-in or registration attempt from `address` (the per-account part is the
    /// store's: see [`Throttle::per_account`]).
    pub fn login_from(&self, address: Option<IpAddr>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(&self.login_per_address, &address, Throttled::CheckIn),
            None => Ok(()),
        }
    }

    /// The per-account limit as the store's GCRA step at `now_ms`.
    pub fn per_account(&self, now_ms: i64) -> Gcra {
        let window_ms = 60_000;
        Gcra {
            now_ms,
            interval_ms: window_ms / i64::from(self.login_per_account_per_minute),
            window_ms,
        }
    }

    /// One front-desk visit from `address`.
    pub fn refresh(&self, address: Option<IpAddr>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(&self.refresh_per_address, &address, Throttled::FrontDesk),
            None => Ok(()),
        }
    }

    /// One look-up or decision of a device code by `guest`.
    pub fn device(&self, guest: &str) -> Result<(), RetryAfter> {
        self.check(&self.device_per_guest, &guest.to_owned(), Throttled::Device)
    }

    /// One forge-lab attempt for `booking`.
    #[cfg(feature = "demo")]
    pub fn lab(&self, booking: &str) -> Result<(), RetryAfter> {
        self.check(&self.lab_per_booking, &booking.to_owned(), Throttled::Lab)
    }

    /// Drops the state of keys that are back to a full burst, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.login_per_address.retain_recent();
        self.refresh_per_address.retain_recent();
        self.device_per_guest.retain_recent();
        #[cfg(feature = "demo")]
        self.lab_per_booking.retain_recent();
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
        which: Throttled,
    ) -> Result<(), RetryAfter> {
        limiter.check_key(key).map_err(|not_until| {
            audit::throttled(which);
            RetryAfter(not_until.wait_time_from(self.clock.now()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_budget_and_accounts_get_a_gcra_step() {
        let t = Throttle::new(&RateLimits {
            login_per_account_per_minute: 2,
            login_per_address_per_minute: 3,
            refresh_per_address_per_minute: 1,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(t.login_from(Some(a)).is_ok());
        }
        let wait = t.login_from(Some(a)).unwrap_err();
        assert!((1..=20).contains(&wait.secs()), "{wait:?}");
        assert!(t.login_from(Some(b)).is_ok());
        assert!(t.login_from(None).is_ok());
        // 2 per minute per account: one attempt every 30 s, a burst of 2.
        let g = t.per_account(1_000);
        assert_eq!((g.interval_ms, g.window_ms), (30_000, 60_000));
        assert!(t.refresh(Some(a)).is_ok());
        assert!(t.refresh(Some(a)).is_err());
        assert!(t.refresh(Some(b)).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_secs(2)).secs(), 2);
        assert_eq!(RetryAfter(Duration::from_millis(2500)).secs(), 3);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }
}
