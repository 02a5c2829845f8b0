//! Typed configuration, read once from `KEYCARD_*` environment variables at start-up.
//!
//! Every setting has a documented default that suits local development; `.env.example` lists them
//! all. A bad value stops the server with a message naming the variable, never a silent default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::clients::NativeClients;
use crate::operations::Operations;
use crate::proxies::TrustedProxies;

/// Development or production. Production refuses development-only shortcuts (generated keys,
/// demo controls on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Shortcuts for a learner's machine: generated keys, demo controls on, minutes-long lifetimes.
    Development,
    /// What a deployment runs: keys must exist, the demo is off, HSTS is sent.
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

/// How long the HTTP server waits for slow or stuck clients, and how many it serves at once.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// `KEYCARD_HEADER_READ_TIMEOUT_SECS`: a connection that has not sent a whole request head
    /// this long after opening (or after its previous answer) is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// `KEYCARD_REQUEST_TIMEOUT_SECS`: a request that has not been answered this long after its
    /// head arrived gets `503 timeout` (body included: a trickled body counts). Default 15 s.
    pub request_timeout: Duration,
    /// `KEYCARD_MAX_CONNECTIONS`: open connections served at once; further ones wait in the
    /// listen queue until one closes. Default 1024.
    pub max_connections: usize,
    /// `KEYCARD_SHUTDOWN_GRACE_SECS`: after SIGTERM (or Ctrl-C), how long requests in flight may
    /// take to finish before the server gives up on them and exits. Default 10 s; keep it below
    /// the load balancer's drain time and systemd's `TimeoutStopSec`.
    pub shutdown_grace: Duration,
}

/// Everything the server needs, loaded once by [`Config::from_env`]. Its `Debug` hides the
/// database URL, which may hold a password.
#[derive(Clone)]
pub struct Config {
    /// `KEYCARD_ENV`: `development` (default) or `production`.
    pub mode: Mode,
    /// `KEYCARD_ADDR`: where the server listens. Default `LEPTOS_SITE_ADDR` or `127.0.0.1:3000`.
    pub addr: SocketAddr,
    /// `KEYCARD_DATA_DIR`: the folder for the SQLite database and development keys. Default `data`.
    pub data_dir: PathBuf,
    /// `KEYCARD_DATABASE_URL`: `sqlite://PATH` (default `sqlite://<data_dir>/keycard.db`) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` for several instances on one database.
    pub database_url: String,
    /// `KEYCARD_DATABASE_POOL_SIZE`: connections each instance keeps. Default 8.
    pub database_pool_size: u32,
    /// `KEYCARD_DATABASE_TIMEOUT_SECS`: how long a request waits for a database connection
    /// before it gets `503 unavailable`. Default 5 s, below the request timeout.
    pub database_timeout: Duration,
    /// `KEYCARD_KEYS_FILE`: the signing key ring. Default `<data_dir>/signing-keys.json`.
    pub keys_file: PathBuf,
    /// `KEYCARD_PUBLIC_URL`: the origin browsers use to reach the site (scheme, host and port
    /// only), e.g. `https://hotel.example` behind a TLS proxy. Navigation targets from input are
    /// resolved against it. Default `http://<addr>`.
    pub public_url: url::Url,
    /// `KEYCARD_ISSUER`: the `iss` of every token. Default: the public URL's origin.
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
    /// `KEYCARD_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges of the proxies in
    /// front of Keycard. A request from one of them has its client address taken from
    /// `X-Forwarded-For`: the rightmost entry that is not a trusted proxy (see
    /// [`crate::proxies`]). Default none: the connection's peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// `KEYCARD_HASH_CONCURRENCY`: password hashes computed at once. Default: the number of cores.
    pub hash_concurrency: usize,
    /// `KEYCARD_KEY_CARD_CACHE_SIZE`: key cards remembered as verified, so that showing the same
    /// card again skips the signature check (see `verified`). Default 10,000 (about 4 MB);
    /// 0 turns the cache off.
    pub key_card_cache_size: usize,
    /// `KEYCARD_DPOP_REQUIRED`: refuse check-ins and visits to the front desk that come without
    /// a DPoP proof, so every key card is sender-constrained. Default false: a client without a
    /// proof (a form without JavaScript, a plain API client) gets a bearer key card.
    pub dpop_required: bool,
    /// `KEYCARD_NATIVE_CLIENTS`: the native clients that may check in with the device grant,
    /// as `id=Name` pairs (see [`NativeClients`]). Default `keycard-cli=Keycard CLI`; `none`
    /// turns the device grant off. No id may equal `KEYCARD_CLIENT_ID`.
    pub native_clients: NativeClients,
    /// `KEYCARD_DEVICE_CODE_TTL_SECS`: how long a device's codes wait for the guest's approval.
    /// Default 600 (RFC 8628's example: ten minutes to reach a browser and type the code).
    pub device_code_ttl: Duration,
    /// `KEYCARD_HSTS_MAX_AGE_SECS`: the `Strict-Transport-Security` max-age sent in production
    /// (never in development, where the site is plain HTTP). Default two years; 0 sends
    /// `max-age=0`, which tells browsers to forget an earlier policy.
    pub hsts_max_age: Duration,
    /// Timeouts and the connection cap.
    pub limits: ServerLimits,
    /// Metrics, log format, and the signing keys' timetable.
    pub operations: Operations,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database())
            .field("keys_file", &self.keys_file)
            .field("public_url", &self.public_url.as_str())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("client_id", &self.client_id)
            .field("lifetimes", &self.lifetimes)
            .field("rate_limits", &self.rate_limits)
            .field("demo_controls", &self.demo_controls)
            .field("allowed_origins", &self.allowed_origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("key_card_cache_size", &self.key_card_cache_size)
            .field("dpop_required", &self.dpop_required)
            .field("native_clients", &self.native_clients)
            .field("device_code_ttl", &self.device_code_ttl)
            .field("hsts_max_age", &self.hsts_max_age)
            .field("limits", &self.limits)
            .field("operations", &self.operations)
            .finish()
    }
}

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with its value.
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
        let postgres =
            database_url.starts_with("postgres://") || database_url.starts_with("postgresql://");
        if !database_url.starts_with("sqlite:") && !postgres {
            let scheme = database_url.split_once(':').map_or("", |(s, _)| s);
            return Err(ConfigError {
                var: "KEYCARD_DATABASE_URL",
                problem: format!(
                    "unsupported database {scheme:?}; expected sqlite://PATH, sqlite::memory: or \
                     postgres://USER:PASSWORD@HOST:PORT/DB"
                ),
            });
        }
        // PostgreSQL is the road to several instances, and instances that each default their
        // issuer to their own address refuse each other's key cards: one public URL for all.
        if postgres && get("KEYCARD_PUBLIC_URL").is_none() && get("KEYCARD_ISSUER").is_none() {
            return Err(ConfigError {
                var: "KEYCARD_PUBLIC_URL",
                problem: "required with a PostgreSQL database: give every instance the same \
                          public URL (the address browsers use, e.g. the load balancer's), so \
                          they all issue and accept the same key cards"
                    .into(),
            });
        }
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
        // A count of 0 would switch the thing off (or stop the server serving): refused.
        let per_minute = |var: &'static str, default: u32| at_least_one(var, get(var), default);
        let rate_limits = RateLimits {
            login_per_account_per_minute: per_minute("KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE", 10)?,
            login_per_address_per_minute: per_minute("KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE", 30)?,
            refresh_per_address_per_minute: per_minute(
                "KEYCARD_REFRESH_PER_ADDRESS_PER_MINUTE",
                120,
            )?,
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let count = |var: &'static str, default: usize| at_least_one(var, get(var), default);
        let hash_concurrency = count("KEYCARD_HASH_CONCURRENCY", cores)?;
        let key_card_cache_size =
            parse("KEYCARD_KEY_CARD_CACHE_SIZE", get("KEYCARD_KEY_CARD_CACHE_SIZE"), 10_000)?;
        let database_pool_size =
            at_least_one("KEYCARD_DATABASE_POOL_SIZE", get("KEYCARD_DATABASE_POOL_SIZE"), 8u32)?;
        let database_timeout = secs("KEYCARD_DATABASE_TIMEOUT_SECS", 5)?;
        let limits = ServerLimits {
            header_read_timeout: secs("KEYCARD_HEADER_READ_TIMEOUT_SECS", 10)?,
            request_timeout: secs("KEYCARD_REQUEST_TIMEOUT_SECS", 15)?,
            max_connections: count("KEYCARD_MAX_CONNECTIONS", 1024)?,
            shutdown_grace: secs("KEYCARD_SHUTDOWN_GRACE_SECS", 10)?,
        };
        // The old switch trusted the leftmost X-Forwarded-For entry from any peer, which a
        // client behind an appending proxy writes itself: refused rather than half-honoured.
        if get("KEYCARD_TRUST_FORWARDED_FOR").is_some() {
            return Err(ConfigError {
                var: "KEYCARD_TRUST_FORWARDED_FOR",
                problem: "replaced by KEYCARD_TRUSTED_PROXIES: name the addresses of the proxies \
                          in front of Keycard (e.g. 127.0.0.1 for an nginx on the same host)"
                    .into(),
            });
        }
        let trusted_proxies = match get("KEYCARD_TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(raw) => raw.parse().map_err(|e: crate::proxies::BadProxy| ConfigError {
                var: "KEYCARD_TRUSTED_PROXIES",
                problem: e.to_string(),
            })?,
        };
        let public_url = match get("KEYCARD_PUBLIC_URL") {
            Some(raw) => origin("KEYCARD_PUBLIC_URL", &raw)?,
            None => origin("KEYCARD_ADDR", &format!("http://{addr}"))?,
        };
        let allowed_origins = get("KEYCARD_ALLOWED_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| origin("KEYCARD_ALLOWED_ORIGINS", o).map(|u| origin_string(&u)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let client_id = get("KEYCARD_CLIENT_ID").unwrap_or_else(|| "keycard-web".into());
        let native_clients = match get("KEYCARD_NATIVE_CLIENTS") {
            None => NativeClients::default(),
            Some(raw) => raw.parse().map_err(|e: crate::clients::BadClient| ConfigError {
                var: "KEYCARD_NATIVE_CLIENTS",
                problem: e.to_string(),
            })?,
        };
        // The browser's confirmations and a native client's must never pass for each other.
        if native_clients.name(&client_id).is_some() {
            return Err(ConfigError {
                var: "KEYCARD_NATIVE_CLIENTS",
                problem: format!("{client_id:?} is the browser's KEYCARD_CLIENT_ID"),
            });
        }
        let hsts_max_age: u64 =
            parse("KEYCARD_HSTS_MAX_AGE_SECS", get("KEYCARD_HSTS_MAX_AGE_SECS"), 63_072_000)?;
        let operations = Operations::from_lookup(&get, &lifetimes)?;
        Ok(Self {
            mode,
            addr,
            issuer: get("KEYCARD_ISSUER").unwrap_or_else(|| origin_string(&public_url)),
            public_url,
            audience: get("KEYCARD_AUDIENCE").unwrap_or_else(|| "keycard-api".into()),
            client_id,
            data_dir,
            database_url,
            database_pool_size,
            database_timeout,
            keys_file,
            lifetimes,
            rate_limits,
            demo_controls: parse(
                "KEYCARD_DEMO_CONTROLS",
                get("KEYCARD_DEMO_CONTROLS"),
                mode == Mode::Development,
            )?,
            allowed_origins,
            trusted_proxies,
            hash_concurrency,
            key_card_cache_size,
            dpop_required: parse("KEYCARD_DPOP_REQUIRED", get("KEYCARD_DPOP_REQUIRED"), false)?,
            native_clients,
            device_code_ttl: secs("KEYCARD_DEVICE_CODE_TTL_SECS", 600)?,
            hsts_max_age: Duration::from_secs(hsts_max_age),
            limits,
            operations,
        })
    }

    /// The address the server actually listens on, once bound. With `KEYCARD_ADDR` on port 0 (a
    /// free port), the public URL and the issuer that were derived from it (not set) take the
    /// port that was bound.
    pub fn bound_to(&mut self, bound: SocketAddr) {
        if self.public_url.port() != Some(0) {
            return;
        }
        let derived_issuer = self.issuer == origin_string(&self.public_url);
        let _ = self.public_url.set_port(Some(bound.port()));
        if derived_issuer {
            self.issuer = origin_string(&self.public_url);
        }
        self.addr = bound;
    }

    /// How to reach the database.
    pub fn database(&self) -> crate::storage::DatabaseOptions {
        crate::storage::DatabaseOptions {
            url: self.database_url.clone(),
            max_connections: self.database_pool_size,
            acquire_timeout: self.database_timeout,
        }
    }

    /// Development defaults with every path under `data_dir`: the starting point for tests.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let dir = data_dir.display().to_string();
        Self::from_lookup(|name| (name == "KEYCARD_DATA_DIR").then(|| dir.clone()))
            .expect("the defaults are valid")
    }
}

/// `raw` as a web origin: `http` or `https`, a host, an optional port, and nothing else.
fn origin(var: &'static str, raw: &str) -> Result<url::Url, ConfigError> {
    let problem = |why: &str| ConfigError {
        var,
        problem: format!("{raw:?} {why}; expected an origin such as https://hotel.example:8443"),
    };
    let url = url::Url::parse(raw.trim()).map_err(|e| problem(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(problem("is not an http(s) URL with a host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(problem("has a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(problem("carries a user name or password"));
    }
    Ok(url)
}

/// `https://host[:port]`, as browsers send it in `Origin`.
fn origin_string(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// [`parse`] for a count that must not be 0.
fn at_least_one<T>(var: &'static str, raw: Option<String>, default: T) -> Result<T, ConfigError>
where
    T: FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let value = parse(var, raw, default)?;
    if value == T::default() {
        return Err(ConfigError { var, problem: "must be at least 1".into() });
    }
    Ok(value)
}

pub(crate) fn parse<T: FromStr>(
    var: &'static str,
    raw: Option<String>,
    default: T,
) -> Result<T, ConfigError>
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
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(c.limits.request_timeout, Duration::from_secs(15));
        assert_eq!(c.limits.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.max_connections, 1024);
        assert_eq!(c.limits.shutdown_grace, Duration::from_secs(10));
        assert!(c.trusted_proxies.is_empty());
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
    fn settings_it_cannot_honour_stop_start_up() {
        for (var, value) in [
            ("KEYCARD_DATABASE_URL", "mysql://keycard:hunter2@db.example/keycard"),
            ("KEYCARD_DATABASE_URL", "data/keycard.db"),
            ("KEYCARD_ADDR", "localhost"),
            ("KEYCARD_ADDR", "127.0.0.1:99999"),
            ("KEYCARD_KEY_CARD_TTL_SECS", "0"),
            ("KEYCARD_REFRESH_GRACE_SECS", "-5"),
            ("KEYCARD_SESSION_IDLE_SECS", "0"),
            ("KEYCARD_SESSION_ABSOLUTE_SECS", "forever"),
            ("KEYCARD_LOGIN_PER_ACCOUNT_PER_MINUTE", "0"),
            ("KEYCARD_HASH_CONCURRENCY", "0"),
            ("KEYCARD_MAX_CONNECTIONS", "0"),
            ("KEYCARD_REQUEST_TIMEOUT_SECS", "0"),
            ("KEYCARD_HEADER_READ_TIMEOUT_SECS", "ten"),
            ("KEYCARD_HSTS_MAX_AGE_SECS", "-1"),
            ("KEYCARD_DEMO_CONTROLS", "maybe"),
            ("KEYCARD_TRUST_FORWARDED_FOR", "true"),
            ("KEYCARD_TRUSTED_PROXIES", "10.0.0.0/8, nginx"),
            ("KEYCARD_SHUTDOWN_GRACE_SECS", "0"),
            ("KEYCARD_PUBLIC_URL", "hotel.example"),
            ("KEYCARD_PUBLIC_URL", "ftp://hotel.example"),
            ("KEYCARD_PUBLIC_URL", "https://hotel.example/app"),
            ("KEYCARD_PUBLIC_URL", "https://user@hotel.example"),
            ("KEYCARD_ALLOWED_ORIGINS", "https://a.example,not an origin"),
        ] {
            let err = config(&[(var, value)]).expect_err(value);
            assert_eq!(err.var, var, "{value}");
            let line = err.to_string();
            assert!(line.starts_with(var) && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn the_public_url_sets_the_issuer_and_may_differ_from_the_address() {
        let c = config(&[
            ("KEYCARD_ADDR", "0.0.0.0:8080"),
            ("KEYCARD_PUBLIC_URL", "https://hotel.example"),
        ])
        .unwrap();
        assert_eq!(c.public_url.as_str(), "https://hotel.example/");
        assert_eq!(c.issuer, "https://hotel.example");
        let c = config(&[
            ("KEYCARD_PUBLIC_URL", "https://hotel.example"),
            ("KEYCARD_ISSUER", "urn:keycard"),
        ])
        .unwrap();
        assert_eq!(c.issuer, "urn:keycard");
    }

    #[test]
    fn postgres_needs_one_public_url_for_every_instance() {
        let url = ("KEYCARD_DATABASE_URL", "postgres://keycard:hunter2@127.0.0.1:5432/keycard");
        let err = config(&[url]).unwrap_err();
        assert_eq!(err.var, "KEYCARD_PUBLIC_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let c = config(&[url, ("KEYCARD_PUBLIC_URL", "http://127.0.0.1:8080")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"), "Debug hides the password");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.database().url, url.1);
        assert_eq!(c.database().max_connections, 8);
        let c = config(&[
            ("KEYCARD_DATABASE_URL", "postgresql://db.example/keycard"),
            ("KEYCARD_ISSUER", "urn:keycard"),
            ("KEYCARD_DATABASE_POOL_SIZE", "20"),
            ("KEYCARD_DATABASE_TIMEOUT_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(c.database().max_connections, 20);
        assert_eq!(c.database().acquire_timeout, Duration::from_secs(2));
        for (var, value) in
            [("KEYCARD_DATABASE_POOL_SIZE", "0"), ("KEYCARD_DATABASE_TIMEOUT_SECS", "0")]
        {
            assert_eq!(config(&[(var, value)]).unwrap_err().var, var);
        }
    }

    #[test]
    fn a_free_port_is_named_once_bound() {
        let mut c = config(&[("KEYCARD_ADDR", "127.0.0.1:0")]).unwrap();
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:0/");
        c.bound_to("127.0.0.1:41234".parse().unwrap());
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:41234/");
        assert_eq!(c.issuer, "http://127.0.0.1:41234");
        // A public URL or issuer of one's own is kept.
        let mut c = config(&[
            ("KEYCARD_ADDR", "127.0.0.1:0"),
            ("KEYCARD_PUBLIC_URL", "https://hotel.example"),
        ])
        .unwrap();
        c.bound_to("127.0.0.1:41234".parse().unwrap());
        assert_eq!(c.public_url.as_str(), "https://hotel.example/");
        let mut c =
            config(&[("KEYCARD_ADDR", "127.0.0.1:0"), ("KEYCARD_ISSUER", "urn:hotel")]).unwrap();
        c.bound_to("127.0.0.1:41234".parse().unwrap());
        assert_eq!(
            (c.public_url.as_str(), c.issuer.as_str()),
            ("http://127.0.0.1:41234/", "urn:hotel")
        );
    }

    #[test]
    fn allowed_origins_are_trimmed() {
        let c = config(&[("KEYCARD_ALLOWED_ORIGINS", " https://a.example/ ,https://b.example,")])
            .unwrap();
        assert_eq!(c.allowed_origins, vec!["https://a.example", "https://b.example"]);
    }
}
