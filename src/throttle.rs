//! Throttling of check-in and the front desk, per client address and per account, with the
//! `governor` crate's GCRA limiter: each key gets a burst of N and regains one attempt every
//! 60/N seconds.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimits;

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
    login_per_account: DefaultKeyedRateLimiter<String>,
    login_per_address: DefaultKeyedRateLimiter<IpAddr>,
    refresh_per_address: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn per_minute<K: Hash + Eq + Clone>(n: u32) -> DefaultKeyedRateLimiter<K> {
    RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)))
}

impl Throttle {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            login_per_account: per_minute(limits.login_per_account_per_minute),
            login_per_address: per_minute(limits.login_per_address_per_minute),
            refresh_per_address: per_minute(limits.refresh_per_address_per_minute),
            clock: DefaultClock::default(),
        }
    }

    /// One check-in or registration attempt for `account` from `address`.
    pub fn login(&self, account: &str, address: Option<IpAddr>) -> Result<(), RetryAfter> {
        if let Some(address) = address {
            self.check(&self.login_per_address, &address)?;
        }
        self.check(&self.login_per_account, &account.to_lowercase())
    }

    /// One front-desk visit from `address`.
    pub fn refresh(&self, address: Option<IpAddr>) -> Result<(), RetryAfter> {
        match address {
            Some(address) => self.check(&self.refresh_per_address, &address),
            None => Ok(()),
        }
    }

    /// Drops the state of keys that are back to a full burst, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.login_per_account.retain_recent();
        self.login_per_address.retain_recent();
        self.refresh_per_address.retain_recent();
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), RetryAfter> {
        limiter
            .check_key(key)
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_and_address_has_its_own_budget() {
        let t = Throttle::new(&RateLimits {
            login_per_account_per_minute: 2,
            login_per_address_per_minute: 3,
            refresh_per_address_per_minute: 1,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(t.login("ann", Some(a)).is_ok());
        assert!(t.login("ANN", Some(b)).is_ok());
        let wait = t.login("ann", Some(b)).unwrap_err();
        assert!((1..=30).contains(&wait.secs()), "{wait:?}");
        assert!(t.login("bob", Some(a)).is_ok());
        // Address a has now made 2 of its 3 attempts.
        assert!(t.login("cat", Some(a)).is_ok());
        assert!(t.login("dan", Some(a)).is_err());
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
