//! Settings for the people who run Keycard rather than use it: where the metrics are served, how
//! log lines are written, and the timetable a new signing key follows from `rotate-keys` to
//! retirement (see [`crate::keys::KeySchedule`]).

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::{parse, ConfigError, Lifetimes};
use crate::keys::KeySchedule;

/// How often each instance re-reads the key file (the server's housekeeping interval): a
/// rotation reaches an instance at most this long after `rotate-keys` wrote it.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Operations settings, part of [`crate::Config`].
#[derive(Clone, Debug)]
pub struct Operations {
    /// `KEYCARD_METRICS_ADDR`: where Prometheus scrapes `/metrics`, on a listener of its own
    /// (for example `127.0.0.1:9100`). Unset (the default): no metrics are kept or served. Never
    /// the public address: the counters tell an attacker how their attempts fare.
    pub metrics_addr: Option<SocketAddr>,
    /// `KEYCARD_LOG_FORMAT`: `text` (the default, for people) or `json` (one object a line, for
    /// log shippers).
    pub log_format: LogFormat,
    /// `KEYCARD_JWKS_MAX_AGE_SECS`: how long resource servers may keep `/.well-known/jwks.json`
    /// (its `Cache-Control: max-age`). Default 60.
    pub jwks_max_age: Duration,
    /// When a rotated key signs and when the key before it retires.
    pub key_schedule: KeySchedule,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format, event fields at the top).
    Json,
}

impl LogFormat {
    /// `KEYCARD_LOG_FORMAT` from the process environment. The logger starts before the rest of
    /// the configuration is read (so that reading it can log), hence this reader of its own.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(std::env::var("KEYCARD_LOG_FORMAT").ok().filter(|v| !v.trim().is_empty()))
    }

    fn parse(raw: Option<String>) -> Result<Self, ConfigError> {
        match raw.as_deref().map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError {
                var: "KEYCARD_LOG_FORMAT",
                problem: format!("expected text or json, got {other:?}"),
            }),
        }
    }
}

impl Operations {
    /// Reads the operations settings through `get` (empty values already dropped).
    pub(crate) fn from_lookup(
        get: &dyn Fn(&'static str) -> Option<String>,
        lifetimes: &Lifetimes,
    ) -> Result<Self, ConfigError> {
        let metrics_addr = get("KEYCARD_METRICS_ADDR")
            .map(|raw| parse("KEYCARD_METRICS_ADDR", Some(raw), SocketAddr::from(([0; 4], 0))))
            .transpose()?;
        let jwks_max_age: u64 =
            parse("KEYCARD_JWKS_MAX_AGE_SECS", get("KEYCARD_JWKS_MAX_AGE_SECS"), 60)?;
        let jwks_max_age = Duration::from_secs(jwks_max_age);
        // Long enough for every instance to reload the ring and every resource server's cached
        // JWKS to go stale, with room to spare: twice the sum, rounded to whole minutes.
        let default_ahead = 2 * (jwks_max_age + KEY_RELOAD_INTERVAL).as_secs().div_ceil(60) * 60;
        let ahead: u64 = parse(
            "KEYCARD_KEY_PUBLISH_AHEAD_SECS",
            get("KEYCARD_KEY_PUBLISH_AHEAD_SECS"),
            default_ahead,
        )?;
        let publish_ahead = Duration::from_secs(ahead);
        // 0 is allowed (a key that signs at once, as before pre-publication) for a single
        // instance with no resource server; anything else too short to cover a cached JWKS
        // would refuse key cards for a while after each rotation.
        if ahead != 0 && publish_ahead <= jwks_max_age {
            return Err(ConfigError {
                var: "KEYCARD_KEY_PUBLISH_AHEAD_SECS",
                problem: format!(
                    "must be longer than KEYCARD_JWKS_MAX_AGE_SECS ({}) plus the key reload \
                     interval ({} s), or 0 to sign with a new key at once",
                    jwks_max_age.as_secs(),
                    KEY_RELOAD_INTERVAL.as_secs()
                ),
            });
        }
        // A key that stopped signing verifies for as long as anything it signed can be shown: a
        // key card (minutes) or a booking confirmation (up to the idle lifetime, since every
        // visit replaces it).
        let keep_verifying = lifetimes.key_card.max(lifetimes.idle) + Duration::from_secs(60);
        Ok(Self {
            metrics_addr,
            log_format: LogFormat::parse(get("KEYCARD_LOG_FORMAT"))?,
            jwks_max_age,
            key_schedule: KeySchedule { publish_ahead, keep_verifying },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&'static str, &str)]) -> Result<Operations, ConfigError> {
        let map: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let lifetimes = Lifetimes {
            key_card: Duration::from_secs(120),
            grace: Duration::from_secs(10),
            idle: Duration::from_secs(3600),
            absolute: Duration::from_secs(7200),
        };
        Operations::from_lookup(&|k| map.get(k).cloned(), &lifetimes)
    }

    #[test]
    fn defaults_keep_metrics_off_and_publish_keys_ahead_of_every_cache() {
        let ops = read(&[]).unwrap();
        assert_eq!(ops.metrics_addr, None);
        assert_eq!(ops.log_format, LogFormat::Text);
        assert_eq!(ops.jwks_max_age, Duration::from_secs(60));
        // 60 s of max-age and 10 s of reload, doubled and rounded up to minutes.
        assert_eq!(ops.key_schedule.publish_ahead, Duration::from_secs(240));
        assert!(ops.key_schedule.publish_ahead > ops.jwks_max_age + KEY_RELOAD_INTERVAL);
        assert_eq!(ops.key_schedule.keep_verifying, Duration::from_secs(3660));
    }

    #[test]
    fn settings_are_read_and_bad_ones_named() {
        let ops = read(&[
            ("KEYCARD_METRICS_ADDR", "127.0.0.1:9100"),
            ("KEYCARD_LOG_FORMAT", "JSON"),
            ("KEYCARD_JWKS_MAX_AGE_SECS", "5"),
            ("KEYCARD_KEY_PUBLISH_AHEAD_SECS", "20"),
        ])
        .unwrap();
        assert_eq!(ops.metrics_addr, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(ops.log_format, LogFormat::Json);
        assert_eq!(ops.key_schedule.publish_ahead, Duration::from_secs(20));
        assert_eq!(
            read(&[("KEYCARD_KEY_PUBLISH_AHEAD_SECS", "0")]).unwrap().key_schedule.publish_ahead,
            Duration::ZERO
        );
        for (var, value) in [
            ("KEYCARD_METRICS_ADDR", "localhost"),
            ("KEYCARD_LOG_FORMAT", "xml"),
            ("KEYCARD_JWKS_MAX_AGE_SECS", "-1"),
            ("KEYCARD_KEY_PUBLISH_AHEAD_SECS", "30"),
        ] {
            let e = read(&[(var, value)]).unwrap_err();
            assert_eq!(e.var, var, "{value}");
        }
    }
}
