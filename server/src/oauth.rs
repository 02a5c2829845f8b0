//! The endpoints native clients use, as the RFCs write them so that standard OAuth clients work
//! unchanged: the device authorization endpoint (RFC 8628, section 3.1) and the token endpoint
//! (RFC 6749, section 3.2) for the device code and for refresh tokens. Form bodies in, JSON out,
//! errors as RFC 6749 section 5.2 writes them; nothing here reads or sets a cookie, so a
//! browser's booking confirmation never reaches this desk.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, PRAGMA, RETRY_AFTER};
use axum::http::{request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keycard::front_desk::{ClientInfo, Issued, OAuthError};
use keycard::AuthError;
use serde_json::json;

use crate::AppState;

/// `grant_type` of the device flow (RFC 8628, section 3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /oauth/device_authorization` (`client_id`): a device code, a user code and where the
/// guest approves it.
pub async fn device_authorization(
    State(state): State<AppState>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let answer = async {
        let params = Params::read(&body)?;
        let client_id = params.required("client_id")?;
        let client = client_info(&parts, &state)?;
        let granted = state.desk.device_authorization(client_id, &client).await?;
        let page = format!("{}/device", state.config.public_url.origin().ascii_serialization());
        Ok::<_, Refusal>(json!({
            "device_code": granted.device_code,
            "user_code": granted.user_code,
            "verification_uri": page,
            "verification_uri_complete": format!("{page}?code={}", granted.user_code),
            "expires_in": granted.expires_in,
            "interval": granted.interval,
        }))
    };
    no_store(match answer.await {
        Ok(body) => Json(body).into_response(),
        Err(refusal) => refusal.into_response(),
    })
}

/// `POST /oauth/token`: `grant_type` is the device code's (with `device_code` and `client_id`)
/// or `refresh_token` (with `refresh_token` and `client_id`).
pub async fn token(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
    let answer = async {
        let params = Params::read(&body)?;
        let grant_type = params.required("grant_type")?;
        let client_id = params.required("client_id")?;
        let client = client_info(&parts, &state)?;
        let desk = &state.desk;
        let issued = match grant_type {
            DEVICE_CODE_GRANT => {
                let device_code = params.required("device_code")?;
                desk.device_token(device_code, client_id, &client).await?
            }
            "refresh_token" => {
                let refresh_token = params.required("refresh_token")?;
                desk.refresh_native(refresh_token, client_id, &client).await?
            }
            _ => return Err(Refusal::OAuth(OAuthError::UnsupportedGrantType, None)),
        };
        Ok::<_, Refusal>(tokens(&issued))
    };
    no_store(match answer.await {
        Ok(body) => Json(body).into_response(),
        Err(refusal) => refusal.into_response(),
    })
}

/// RFC 6749, section 5.1, with the key card's type (`DPoP` when bound, RFC 9449 section 5).
fn tokens(issued: &Issued) -> serde_json::Value {
    let claims = &issued.key_card_claims;
    json!({
        "access_token": issued.key_card,
        "token_type": issued.token_type(),
        "expires_in": claims.exp - claims.iat,
        "refresh_token": issued.confirmation,
    })
}

/// Token answers hold secrets: never kept by a cache (RFC 6749, section 5.1).
fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// Where the request came from, with its DPoP proof if it sent one.
fn client_info(parts: &Parts, state: &AppState) -> Result<ClientInfo, Refusal> {
    keycard_app::request::client_info_from(parts, &state.desk)
        .map_err(|e| Refusal::OAuthDpop(e.message))
}

/// A form's parameters. RFC 6749, section 3.2: a parameter sent twice is an
/// `invalid_request`, and one sent empty counts as not sent.
struct Params(Vec<(String, String)>);

impl Params {
    fn read(body: &[u8]) -> Result<Self, Refusal> {
        let mut params: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            if params.iter().any(|(seen, _)| *seen == name) {
                let detail = format!("{name} is sent more than once");
                return Err(Refusal::OAuth(OAuthError::InvalidRequest, Some(detail)));
            }
            params.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self(params))
    }

    fn required(&self, name: &str) -> Result<&str, Refusal> {
        let value = self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        value.filter(|v| !v.is_empty()).ok_or_else(|| {
            Refusal::OAuth(OAuthError::InvalidRequest, Some(format!("{name} is missing")))
        })
    }
}

/// Why the endpoint said no, in RFC 6749's words.
enum Refusal {
    /// An error of RFC 6749 or RFC 8628, with a description for people.
    OAuth(OAuthError, Option<String>),
    /// A DPoP proof refused (RFC 9449, section 5: `invalid_dpop_proof`, 400).
    OAuthDpop(String),
    /// Any other refusal of the front desk.
    Desk(AuthError),
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::OAuth(e) => Self::OAuth(e, None),
            AuthError::Dpop(_) => Self::OAuthDpop(e.to_string()),
            // The token is no good, whatever the reason: one answer, as the RFC has it. A reuse
            // has cancelled the whole booking by now.
            AuthError::Confirmation(_)
            | AuthError::ReuseDetected
            | AuthError::SessionRevoked
            | AuthError::SessionExpired
            | AuthError::SessionNotFound => {
                let detail = match &e {
                    AuthError::ReuseDetected => e.to_string(),
                    _ => "the refresh token is invalid, expired or revoked".to_owned(),
                };
                Self::OAuth(OAuthError::InvalidGrant, Some(detail))
            }
            other => Self::Desk(other),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, description, retry_after) = match self {
            Refusal::OAuth(e, detail) => {
                let description = detail.unwrap_or_else(|| e.to_string());
                (StatusCode::BAD_REQUEST, e.code(), description, None)
            }
            Refusal::OAuthDpop(detail) => {
                (StatusCode::BAD_REQUEST, "invalid_dpop_proof", detail, None)
            }
            Refusal::Desk(AuthError::TooManyRequests(wait)) => {
                let description = format!("too many requests; try again in {} s", wait.secs());
                (StatusCode::TOO_MANY_REQUESTS, "slow_down", description, Some(wait.secs()))
            }
            Refusal::Desk(AuthError::Unavailable(detail)) => {
                tracing::warn!(error = %detail, "database unavailable");
                let description = "the hotel's records are unavailable for a moment".to_owned();
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", description, None)
            }
            Refusal::Desk(e) => {
                // Logged once, here; the client sees a generic message.
                tracing::error!(error = %e, "token endpoint failed");
                let description = "something went wrong".to_owned();
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", description, None)
            }
        };
        let body = json!({ "error": code, "error_description": description });
        let mut res = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
