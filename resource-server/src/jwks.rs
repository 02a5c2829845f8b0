//! The hotel's public keys, fetched from its JWKS URL and kept.
//!
//! A key is looked up by the `kid` of the key card in hand. The set is fetched again when it is
//! older than its `Cache-Control: max-age` (Keycard sends 60 s), and at once when a key card
//! names a `kid` the set does not have (the hotel rotated its keys). Fetches are rate-limited to
//! one per `KEYCARD_JWKS_MIN_REFETCH_SECS` (the `min_refetch` of [`Jwks::new`]), so a stream of made-up `kid`s (or a hotel that is down) cannot
//! turn this service into a flood against the hotel. Fetches happen one at a time; a failed
//! fetch keeps the keys already held.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::DecodingKey;
use reqwest::header::CACHE_CONTROL;
use tokio::sync::{Mutex, RwLock};

/// How long a fetched set is kept when the answer names no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the JWKS request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the JWKS answer is not a JWK Set: {0}")]
    Parse(#[from] serde_json::Error),
}

#[derive(Default)]
struct Held {
    keys: HashMap<String, Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
    max_age: Duration,
}

impl Held {
    fn fresh(&self) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < self.max_age)
    }
}

/// The cached key set of one JWKS URL. Cheap to clone.
#[derive(Clone)]
pub struct Jwks {
    url: url::Url,
    http: reqwest::Client,
    held: Arc<RwLock<Held>>,
    /// Held while fetching, with the time of the last fetch: one fetch at a time.
    fetching: Arc<Mutex<Option<Instant>>>,
    min_refetch: Duration,
    fetches: Arc<std::sync::atomic::AtomicU64>,
}

impl Jwks {
    /// Keys from `url`; an unknown `kid` fetches again at most once per `min_refetch`.
    pub fn new(url: url::Url, min_refetch: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("the HTTP client builds");
        Self {
            url,
            http,
            held: Arc::default(),
            fetching: Arc::default(),
            min_refetch,
            fetches: Arc::default(),
        }
    }

    /// How many times the set was fetched (for `/healthz` and the tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key for `kid`, fetching the set when it is stale or lacks `kid` (rate-limited).
    pub async fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        {
            let held = self.held.read().await;
            if held.fresh() {
                if let Some(key) = held.keys.get(kid) {
                    return Some(key.clone());
                }
            }
        }
        let mut last = self.fetching.lock().await;
        {
            let held = self.held.read().await;
            let key = held.keys.get(kid);
            // Another request may have fetched while this one waited; and whatever the reason
            // (stale set, unknown kid, the hotel down), fetches are at most one per min_refetch.
            if (key.is_some() && held.fresh())
                || last.is_some_and(|at| at.elapsed() < self.min_refetch)
            {
                return key.cloned();
            }
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok((keys, max_age)) => {
                let mut held = self.held.write().await;
                *held = Held { keys, fetched_at: Some(Instant::now()), max_age };
            }
            Err(e) => tracing::warn!(error = %e, url = %self.url, "could not fetch the JWKS"),
        }
        self.held.read().await.keys.get(kid).cloned()
    }

    async fn fetch(&self) -> Result<(HashMap<String, Arc<DecodingKey>>, Duration), FetchError> {
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let res = self.http.get(self.url.clone()).send().await?.error_for_status()?;
        let max_age = res
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE);
        let set: JwkSet = serde_json::from_slice(&res.bytes().await?)?;
        let keys = set
            .keys
            .iter()
            // Ed25519 signing keys only: the one algorithm the hotel signs with.
            .filter(|jwk| {
                matches!(&jwk.algorithm, AlgorithmParameters::OctetKeyPair(okp)
                    if okp.curve == EllipticCurve::Ed25519)
            })
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, Arc::new(key)))
            })
            .collect();
        Ok((keys, max_age))
    }
}

/// The `max-age` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|part| {
        let secs = part.trim().strip_prefix("max-age=")?;
        secs.parse().ok().map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=x"), None);
    }
}
