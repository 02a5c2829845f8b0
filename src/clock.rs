//! The one source of "now" for the core, so tests can move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the unit of every JWT time claim (RFC 7519 NumericDate).
pub type Timestamp = i64;

/// Where the core reads the time. [`Clock::system`] in production; [`Clock::manual`] in tests.
#[derive(Clone, Debug)]
pub struct Clock(ClockKind);

#[derive(Clone, Debug)]
enum ClockKind {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The machine's wall clock.
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// A clock that stands still until [`Clock::advance`] moves it (shared by all clones).
    pub fn manual(start: Timestamp) -> Self {
        Self(ClockKind::Manual(Arc::new(AtomicI64::new(start))))
    }

    /// The current time in whole seconds.
    pub fn now(&self) -> Timestamp {
        self.now_millis().div_euclid(1000)
    }

    /// The current time in milliseconds (a manual clock's whole seconds, times 1000).
    pub fn now_millis(&self) -> i64 {
        match &self.0 {
            ClockKind::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
            ClockKind::Manual(t) => t.load(Ordering::SeqCst) * 1000,
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, seconds: i64) {
        if let ClockKind::Manual(t) = &self.0 {
            t.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}
