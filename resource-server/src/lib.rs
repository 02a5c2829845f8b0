//! # keycard-resource-server: the spa next door
//!
//! Another service, in another process, run by another team: it lets guests into its spa with
//! the key cards the hotel (Keycard) cuts, and it knows nothing of the hotel but where its public
//! keys are published (`KEYCARD_JWKS_URL`). No database, no shared secret, no call to the front
//! desk per request: that is what stateless key cards are for. The price is the same as at the
//! hotel's own amenities: a key card of a booking that was just cancelled keeps working here until
//! it expires (minutes).
//!
//! - [`jwks`]: fetches and keeps the public keys (again on an unknown `kid`, rate-limited).
//! - [`door`]: the rules a key card must pass (the hotel's own).
//! - [`proofs`]: a key card bound to a key (DPoP, RFC 9449) opens the door only with a fresh
//!   proof of that key, by the same rules as the hotel's doors.
//! - [`router`]: `GET /spa` (the door), `GET /healthz`.

pub mod door;
pub mod jwks;
pub mod proofs;

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::door::{Expect, Refusal};
use crate::jwks::Jwks;

/// Settings, from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `RESOURCE_SERVER_ADDR`: where to listen. Default `127.0.0.1:4000`.
    pub addr: std::net::SocketAddr,
    /// `KEYCARD_JWKS_URL` (required): the hotel's published keys, e.g.
    /// `https://hotel.example/.well-known/jwks.json`.
    pub jwks_url: url::Url,
    /// `KEYCARD_ISSUER`: the `iss` key cards must carry. Default: the JWKS URL's origin, which is
    /// Keycard's own default issuer (its public URL's origin).
    pub issuer: String,
    /// `KEYCARD_AUDIENCE`: the `aud` key cards must carry. Default `keycard-api`, Keycard's.
    pub audience: String,
    /// `KEYCARD_JWKS_MIN_REFETCH_SECS`: the shortest time between two fetches of the keys.
    /// Default 10.
    pub min_refetch: Duration,
    /// `RESOURCE_SERVER_PUBLIC_URL`: the origin clients address this service at (DPoP proofs
    /// name URLs on it). Default `http://<RESOURCE_SERVER_ADDR>`.
    pub public_origin: String,
}

impl Settings {
    /// Reads the settings through `get` (e.g. `std::env::var(..).ok()`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let addr = get("RESOURCE_SERVER_ADDR").unwrap_or_else(|| "127.0.0.1:4000".into());
        let addr = addr.parse().map_err(|e| format!("RESOURCE_SERVER_ADDR {addr:?}: {e}"))?;
        let jwks_url = get("KEYCARD_JWKS_URL").ok_or("KEYCARD_JWKS_URL is required")?;
        let jwks_url = url::Url::parse(&jwks_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| format!("KEYCARD_JWKS_URL {jwks_url:?} is not an http(s) URL"))?;
        let issuer =
            get("KEYCARD_ISSUER").unwrap_or_else(|| jwks_url.origin().ascii_serialization());
        let audience = get("KEYCARD_AUDIENCE").unwrap_or_else(|| "keycard-api".into());
        let min_refetch = match get("KEYCARD_JWKS_MIN_REFETCH_SECS") {
            None => 10,
            Some(s) => s.parse().map_err(|_| format!("KEYCARD_JWKS_MIN_REFETCH_SECS {s:?}"))?,
        };
        let public_origin = match get("RESOURCE_SERVER_PUBLIC_URL") {
            Some(raw) => url::Url::parse(&raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .map(|u| u.origin().ascii_serialization())
                .ok_or_else(|| {
                    format!("RESOURCE_SERVER_PUBLIC_URL {raw:?} is not an http(s) URL")
                })?,
            None => format!("http://{addr}"),
        };
        Ok(Self {
            addr,
            jwks_url,
            issuer,
            audience,
            min_refetch: Duration::from_secs(min_refetch),
            public_origin,
        })
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct Spa {
    jwks: Jwks,
    expect: Expect,
    proofs: proofs::SeenProofs,
    public_origin: std::sync::Arc<str>,
}

impl Spa {
    /// A spa trusting the keys at `settings.jwks_url`.
    pub fn new(settings: &Settings) -> Self {
        Self {
            jwks: Jwks::new(settings.jwks_url.clone(), settings.min_refetch),
            expect: Expect { issuer: settings.issuer.clone(), audience: settings.audience.clone() },
            proofs: proofs::SeenProofs::default(),
            public_origin: settings.public_origin.as_str().into(),
        }
    }
}

/// The service's routes.
pub fn router(spa: Spa) -> Router {
    Router::new().route("/spa", get(spa_door)).route("/healthz", get(healthz)).with_state(spa)
}

/// `GET /spa`: open to any valid key card of the hotel: a bearer one with `Authorization:
/// Bearer`, one bound to a key with `Authorization: DPoP` and a proof of that key.
async fn spa_door(State(spa): State<Spa>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(scheme, token)| (scheme.to_ascii_lowercase(), token.trim()))
        .filter(|(_, t)| !t.is_empty());
    let (scheme, token) = match authorization {
        Some((scheme, token)) if scheme == "bearer" || scheme == "dpop" => (scheme, token),
        _ => return refused(Refusal::Missing),
    };
    let claims = match door::check(token, &spa.jwks, &spa.expect).await {
        Ok(claims) => claims,
        Err(refusal) => return refused(refusal),
    };
    let url = format!("{}/spa", spa.public_origin);
    let sent = headers.get_all("dpop").iter().map(|v| v.to_str().unwrap_or_default());
    let bound = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    let proof = match (scheme.as_str(), bound) {
        ("bearer", None) => Ok(()),
        // A bound card shown as a bearer token is refused: a copy of it must open nothing.
        ("bearer", Some(_)) => Err(keycard_dpop::ProofError::Missing),
        (_, None) => Err(keycard_dpop::ProofError::Unbound),
        (_, Some(jkt)) => spa.proofs.check(sent, "GET", &url, token, jkt),
    };
    if let Err(e) = proof {
        return refused_proof(e);
    }
    let mut res = Json(json!({
        "service": "spa",
        "message": "Welcome to the spa next door.",
        "guest": claims.preferred_username,
        "sub": claims.sub,
        "session_id": claims.sid,
        "expires_at": claims.exp,
        "bound_to_key": bound.is_some(),
        "verified_with": "the hotel's JWKS only: another process, no database",
    }))
    .into_response();
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 401 with Keycard's error body and RFC 6750's `WWW-Authenticate`.
fn refused(refusal: Refusal) -> Response {
    let challenge = match refusal {
        Refusal::Missing => "Bearer",
        _ => "Bearer error=\"invalid_token\"",
    };
    let body = Json(json!({ "error": refusal.code(), "message": refusal.to_string() }));
    let mut res = (StatusCode::UNAUTHORIZED, body).into_response();
    res.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 401 for a DPoP refusal, as the hotel answers it (RFC 9449, section 7.1).
fn refused_proof(e: keycard_dpop::ProofError) -> Response {
    let (code, error) = match e {
        keycard_dpop::ProofError::Unbound => ("key_card_invalid", "invalid_token"),
        _ => ("invalid_dpop_proof", "invalid_dpop_proof"),
    };
    let body = Json(json!({ "error": code, "message": e.to_string(), "rule": e.rule() }));
    let challenge =
        format!("DPoP error=\"{error}\", algs=\"{}\"", keycard_dpop::ALGORITHMS.join(" "));
    let mut res = (StatusCode::UNAUTHORIZED, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /healthz`: up, and how often the keys were fetched.
async fn healthz(State(spa): State<Spa>) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "jwks_fetches": spa.jwks.fetches() }))
}
