//! Typed configuration, read once from `KEYCARD_*` environment variables at start-up.
//!
//! Every setting has a documented default that suits local development; `.env.example` lists them
//! all. A bad value stops the server with a message naming the variable, never a silent default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Development or production. Production refuses development-only shortcuts (generated keys,
/// demo controls on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// How long each token and session lives, and the clock-skew tolerance.
#[derive(Clone, Debug)]
pub struct Lifetimes {
    /// Key card (access token) lifetime. Default 120 s so a learner watches it expire; use 5 to 15
    /// minutes in production.
    pub key_card: Duration,
    /// How long the immediate predecessor of a booking confirmation is still honoured after a
    /// rotation (concurrent tabs, a lost response). Default 10 s.
    pub grace: Duration,
    /// A session unused for this long is over (sliding). Default 7 days.
    pub idle: Duration,
    /// A session is over this long after check-in, however often it rotates. Default 30 days.
    pub absolute: Duration,
}

/// Login and refresh throttling.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Login or registration attempts per minute for one account name. Default 10.
    pub login_per_account_per_minute: u32,
    /// Login or registration attempts per minute from one client address. Default 30.
    pub login_per_address_per_minute: u32,
    /// Front-desk visits (refreshes) per minute from one client address. Default 120.
    pub refresh_per_address_per_minute: u32,
}

/// Everything the server needs, loaded once by [`Config::from_env`].
#[derive(Clone, Debug)]
pub struct Config {
    /// `KEYCARD_ENV`: `development` (default) or `production`.
    pub mode: Mode,
    /// `KEYCARD_ADDR`: where the server listens. Default `LEPTOS_SITE_ADDR` or `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `KEYCARD_DATA_DIR`: the folder for the SQLite database and development keys. Default `data`.
    pub data_dir: PathBuf,
    /// `KEYCARD_DATABASE_URL`: default `sqlite://<data_dir>/keycard.db`.
    pub database_url: String,
    /// `KEYCARD_KEYS_FILE`: the signing key ring. Default `<data_dir>/signing-keys.json`.
    pub keys_file: PathBuf,
    /// `KEYCARD_ISSUER`: the `iss` of every token. Default `http://<addr>`.
    pub issuer: String,
    /// `KEYCARD_AUDIENCE`: the `aud` of key cards, the API they open. Default `keycard-api`.
    pub audience: String,
    /// `KEYCARD_CLIENT_ID`: the `client_id` claim (RFC 9068). Default `keycard-web`.
    pub client_id: String,
    /// `KEYCARD_KEY_CARD_TTL_SECS`, `KEYCARD_REFRESH_GRACE_SECS`, `KEYCARD_SESSION_IDLE_SECS`,
    /// `KEYCARD_SESSION_ABSOLUTE_SECS`.
    pub lifetimes: Lifetimes,
    /// `KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE`, `KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE`,
    /// `KEYCARD_REFRESH_PER_ADDRESS_PER_MINUTE`.
    pub rate_limits: RateLimits,
    /// `KEYCARD_DEMO_CONTROLS`: the theft and fast-expiry demo buttons. Default on in development,
    /// off in production.
    pub demo_controls: bool,
    /// `KEYCARD_ALLOWED_ORIGINS`: comma-separated origins allowed to make state-changing requests
    /// besides the server's own host. Default none.
    pub allowed_origins: Vec<String>,
    /// `KEYCARD_TRUST_FORWARDED_FOR`: take the client address from `X-Forwarded-For` (only behind a
    /// proxy you run). Default false.
    pub trust_forwarded_for: bool,
    /// `KEYCARD_HASH_CONCURRENCY`: password hashes computed at once. Default: the number of cores.
    pub hash_concurrency: usize,
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass a map instead of mutating the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let mode = match get("KEYCARD_ENV").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("development") | Some("dev") => Mode::Development,
            Some("production") | Some("prod") => Mode::Production,
            Some(other) => {
                return Err(ConfigError {
                    var: "KEYCARD_ENV",
                    problem: format!("expected development or production, got {other:?}"),
                })
            }
        };
        let addr: SocketAddr = parse(
            "KEYCARD_ADDR",
            get("KEYCARD_ADDR").or_else(|| get("LEPTOS_SITE_ADDR")),
            "127.0.0.1:3000".parse().expect("valid literal"),
        )?;
        let data_dir = PathBuf::from(get("KEYCARD_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = get("KEYCARD_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("keycard.db").display()));
        let keys_file = get("KEYCARD_KEYS_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("signing-keys.json"));
        let secs = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
            let value: u64 = parse(var, get(var), default)?;
            if value == 0 {
                return Err(ConfigError { var, problem: "must be at least 1 second".into() });
            }
            Ok(Duration::from_secs(value))
        };
        let lifetimes = Lifetimes {
            key_card: secs("KEYCARD_KEY_CARD_TTL_SECS", 120)?,
            grace: secs("KEYCARD_REFRESH_GRACE_SECS", 10)?,
            idle: secs("KEYCARD_SESSION_IDLE_SECS", 7 * 24 * 3600)?,
            absolute: secs("KEYCARD_SESSION_ABSOLUTE_SECS", 30 * 24 * 3600)?,
        };
        if lifetimes.idle > lifetimes.absolute {
            return Err(ConfigError {
                var: "KEYCARD_SESSION_IDLE_SECS",
                problem: "must not exceed KEYCARD_SESSION_ABSOLUTE_SECS".into(),
            });
        }
        let per_minute = |var: &'static str, default: u32| -> Result<u32, ConfigError> {
            let value: u32 = parse(var, get(var), default)?;
            if value == 0 {
                return Err(ConfigError { var, problem: "must be at least 1".into() });
            }
            Ok(value)
        };
        let rate_limits = RateLimits {
            login_per_account_per_minute: per_minute("KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE", 10)?,
            login_per_address_per_minute: per_minute("KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE", 30)?,
            refresh_per_address_per_minute: per_minute(
                "KEYCARD_REFRESH_PER_ADDRESS_PER_MINUTE",
                120,
            )?,
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let hash_concurrency: usize =
            parse("KEYCARD_HASH_CONCURRENCY", get("KEYCARD_HASH_CONCURRENCY"), cores)?;
        Ok(Self {
            mode,
            addr,
            issuer: get("KEYCARD_ISSUER").unwrap_or_else(|| format!("http://{addr}")),
            audience: get("KEYCARD_AUDIENCE").unwrap_or_else(|| "keycard-api".into()),
            client_id: get("KEYCARD_CLIENT_ID").unwrap_or_else(|| "keycard-web".into()),
            data_dir,
            database_url,
            keys_file,
            lifetimes,
            rate_limits,
            demo_controls: parse(
                "KEYCARD_DEMO_CONTROLS",
                get("KEYCARD_DEMO_CONTROLS"),
                mode == Mode::Development,
            )?,
            allowed_origins: get("KEYCARD_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            trust_forwarded_for: parse(
                "KEYCARD_TRUST_FORWARDED_FOR",
                get("KEYCARD_TRUST_FORWARDED_FOR"),
                false,
            )?,
            hash_concurrency: hash_concurrency.max(1),
        })
    }

    /// Development defaults with every path under `data_dir`: the starting point for tests.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let dir = data_dir.display().to_string();
        Self::from_lookup(|name| (name == "KEYCARD_DATA_DIR").then(|| dir.clone()))
            .expect("the defaults are valid")
    }
}

fn parse<T: FromStr>(var: &'static str, raw: Option<String>, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match raw {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError {
            var,
            problem: format!("cannot parse {raw:?}: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_suit_development() {
        let c = config(&[]).unwrap();
        assert_eq!(c.mode, Mode::Development);
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database_url, "sqlite://data/keycard.db");
        assert_eq!(c.lifetimes.key_card, Duration::from_secs(120));
        assert_eq!(c.lifetimes.grace, Duration::from_secs(10));
        assert!(c.demo_controls);
        assert_eq!(c.issuer, "http://127.0.0.1:3000");
    }

    #[test]
    fn production_turns_demo_controls_off() {
        let c = config(&[("KEYCARD_ENV", "production")]).unwrap();
        assert_eq!(c.mode, Mode::Production);
        assert!(!c.demo_controls);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = config(&[("KEYCARD_KEY_CARD_TTL_SECS", "soon")]).unwrap_err();
        assert_eq!(err.var, "KEYCARD_KEY_CARD_TTL_SECS");
        let err = config(&[("KEYCARD_KEY_CARD_TTL_SECS", "0")]).unwrap_err();
        assert_eq!(err.var, "KEYCARD_KEY_CARD_TTL_SECS");
        let err = config(&[("KEYCARD_ENV", "staging")]).unwrap_err();
        assert_eq!(err.var, "KEYCARD_ENV");
        let err = config(&[
            ("KEYCARD_SESSION_IDLE_SECS", "100"),
            ("KEYCARD_SESSION_ABSOLUTE_SECS", "50"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "KEYCARD_SESSION_IDLE_SECS");
    }

    #[test]
    fn allowed_origins_are_trimmed() {
        let c = config(&[("KEYCARD_ALLOWED_ORIGINS", " https://a.example/ ,https://b.example,")])
            .unwrap();
        assert_eq!(c.allowed_origins, vec!["https://a.example", "https://b.example"]);
    }
}
