//! Talking to the hotel: every request goes through [`Hotel::send`], which adds a DPoP proof of
//! the CLI's key (RFC 9449) and, with `--verbose`, prints the exchange the way the browser's
//! wire panel does, naming each secret but never showing one. The OAuth grants themselves are
//! the `oauth2` crate's: Keycard's endpoints are standard ones.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keycard_dpop::ProofKey;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, DeviceCodeErrorResponseType, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, RefreshToken, RequestTokenError,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

use crate::CliError;

/// The client id this CLI is registered as (`KEYCARD_NATIVE_CLIENTS`' default).
pub const CLIENT_ID: &str = "keycard-cli";

/// Form fields whose values are secrets: the wire names them only.
const SECRET_FIELDS: [&str; 3] = ["device_code", "refresh_token", "password"];

/// The OAuth client, with the two endpoints it uses set.
type Oauth = BasicClient<EndpointNotSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Fresh tokens from the token endpoint.
pub struct Tokens {
    /// The key card.
    pub access_token: String,
    /// `DPoP` or `Bearer`.
    pub token_type: String,
    /// When the key card expires (Unix seconds).
    pub expires_at: i64,
    /// The booking confirmation.
    pub refresh_token: String,
}

/// A hotel at `origin`, and the key the CLI proves.
pub struct Hotel {
    origin: String,
    http: reqwest::blocking::Client,
    key: ProofKey,
    verbose: bool,
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Hotel {
    /// The hotel whose public URL is `url` (scheme, host and port; a path is ignored).
    pub fn new(url: &str, key: ProofKey, verbose: bool) -> Result<Self, CliError> {
        let parsed = url::Url::parse(url).map_err(|e| CliError::Url(url.into(), e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(CliError::Url(url.into(), "expected http(s)://host[:port]".into()));
        }
        let http = reqwest::blocking::Client::builder()
            // A redirect would carry a token or a proof to a URL it does not name.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("keycard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Http(e.to_string()))?;
        Ok(Self { origin: parsed.origin().ascii_serialization(), http, key, verbose })
    }

    /// The hotel's origin, as the tokens name it.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn oauth(&self) -> Result<Oauth, CliError> {
        let url = |path: &str| format!("{}{path}", self.origin);
        let bad = |e: url::ParseError| CliError::Url(self.origin.clone(), e.to_string());
        Ok(BasicClient::new(ClientId::new(CLIENT_ID.into()))
            // A public client: its id in the body, no secret (RFC 6749, section 2.3).
            .set_auth_type(AuthType::RequestBody)
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(url("/oauth/device_authorization")).map_err(bad)?,
            )
            .set_token_uri(TokenUrl::new(url("/oauth/token")).map_err(bad)?))
    }

    /// One request, with a DPoP proof; with `key_card`, presented as `scheme` (`DPoP` with the
    /// proof bound to it, or `Bearer`).
    fn send(
        &self,
        mut req: HttpRequest,
        key_card: Option<(&str, &str)>,
    ) -> Result<HttpResponse, CliError> {
        let url = req.uri().to_string();
        // The proof names the URL without its query (RFC 9449, section 4.2).
        let htu = url.split(['?', '#']).next().unwrap_or(&url).to_owned();
        let ath = key_card.filter(|(scheme, _)| *scheme == "DPoP").map(|(_, card)| card);
        let proof = self.key.proof(req.method().as_str(), &htu, ath, now());
        let headers = req.headers_mut();
        headers.insert("dpop", proof.parse().map_err(|_| CliError::Http("proof".into()))?);
        if let Some((scheme, card)) = key_card {
            let value = format!("{scheme} {card}");
            let value = value.parse().map_err(|_| CliError::Http("key card".into()))?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        if self.verbose {
            eprintln!("{}", describe_request(&req, key_card.map(|(scheme, _)| scheme)));
        }
        let (parts, body) = req.into_parts();
        let res = self
            .http
            .request(parts.method, url)
            .headers(parts.headers)
            .body(body)
            .send()
            .map_err(|e| CliError::Http(e.without_url().to_string()))?;
        let mut answer = http::Response::builder().status(res.status());
        for (name, value) in res.headers() {
            answer = answer.header(name, value);
        }
        let body = res.bytes().map_err(|e| CliError::Http(e.without_url().to_string()))?;
        let answer = answer.body(body.to_vec()).map_err(|e| CliError::Http(e.to_string()))?;
        if self.verbose {
            eprintln!("{}", describe_response(&answer));
        }
        Ok(answer)
    }

    /// The device grant (RFC 8628): asks for a code, has `show` tell the guest where to approve
    /// it, and polls until they do (honouring `slow_down`), deny it, or it expires.
    pub fn check_in(
        &self,
        show: impl FnOnce(&StandardDeviceAuthorizationResponse),
    ) -> Result<Tokens, CliError> {
        let oauth = self.oauth()?;
        let http = |req| self.send(req, None);
        let details: StandardDeviceAuthorizationResponse =
            oauth.exchange_device_code().request(&http).map_err(|e| match e {
                RequestTokenError::ServerResponse(e) => CliError::Refused(e.to_string()),
                other => from_oauth(other),
            })?;
        show(&details);
        let tokens = oauth
            .exchange_device_access_token(&details)
            .request(&http, std::thread::sleep, None)
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(e) => match e.error() {
                    DeviceCodeErrorResponseType::AccessDenied => CliError::Denied,
                    DeviceCodeErrorResponseType::ExpiredToken => CliError::Expired,
                    _ => CliError::Refused(e.to_string()),
                },
                other => from_oauth(other),
            })?;
        Ok(tokens_from(&tokens))
    }

    /// The front desk (RFC 6749, section 6): the refresh token for new tokens. A refusal means
    /// the booking is over (checked out elsewhere, expired, or cancelled for a replayed copy).
    pub fn refresh(&self, refresh_token: &str) -> Result<Tokens, CliError> {
        let http = |req| self.send(req, None);
        let token = RefreshToken::new(refresh_token.to_owned());
        let tokens =
            self.oauth()?.exchange_refresh_token(&token).request(&http).map_err(|e| match e {
                RequestTokenError::ServerResponse(e)
                    if *e.error() == BasicErrorResponseType::InvalidGrant =>
                {
                    CliError::BookingEnded
                }
                RequestTokenError::ServerResponse(e) => CliError::Refused(e.to_string()),
                other => from_oauth(other),
            })?;
        Ok(tokens_from(&tokens))
    }

    /// `method path` with the key card (a form POST with no fields, or a GET): the status and
    /// the JSON body.
    pub fn call(
        &self,
        method: http::Method,
        path: &str,
        key_card: (&str, &str),
    ) -> Result<(http::StatusCode, serde_json::Value), CliError> {
        let mut req = http::Request::builder().method(method.clone()).uri(self.url(path));
        if method == http::Method::POST {
            req = req.header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req.body(Vec::new()).map_err(|e| CliError::Http(e.to_string()))?;
        let res = self.send(req, Some(key_card))?;
        let body = serde_json::from_slice(res.body()).unwrap_or(serde_json::Value::Null);
        Ok((res.status(), body))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

fn tokens_from(t: &BasicTokenResponse) -> Tokens {
    let lifetime = t.expires_in().map_or(0, |d| d.as_secs() as i64);
    Tokens {
        access_token: t.access_token().secret().clone(),
        // oauth2 spells an unknown type as sent and Bearer as `bearer`: the scheme names here.
        token_type: if t.token_type().as_ref().eq_ignore_ascii_case("dpop") {
            "DPoP"
        } else {
            "Bearer"
        }
        .to_owned(),
        expires_at: now() + lifetime,
        refresh_token: t.refresh_token().map(|r| r.secret().clone()).unwrap_or_default(),
    }
}

fn from_oauth<E: oauth2::ErrorResponse + 'static>(e: RequestTokenError<CliError, E>) -> CliError {
    match e {
        RequestTokenError::Request(e) => e,
        RequestTokenError::Parse(e, _) => CliError::Http(format!("an answer it cannot read: {e}")),
        RequestTokenError::Other(e) => CliError::Http(e),
        RequestTokenError::ServerResponse(e) => CliError::Refused(e.to_string()),
    }
}

/// `→ POST /oauth/token  grant_type=refresh_token, client_id=keycard-cli, refresh_token (secret)
/// · DPoP proof`.
fn describe_request(req: &HttpRequest, scheme: Option<&str>) -> String {
    let fields: Vec<String> = url::form_urlencoded::parse(req.body())
        .map(|(name, value)| {
            if SECRET_FIELDS.contains(&name.as_ref()) {
                format!("{name} (secret)")
            } else {
                format!("{name}={value}")
            }
        })
        .collect();
    let mut line = format!("→ {} {}", req.method(), req.uri().path());
    if !fields.is_empty() {
        line += &format!("  {}", fields.join(", "));
    }
    if let Some(scheme) = scheme {
        line += &format!(" · key card as Authorization: {scheme}");
    }
    line + " · DPoP proof of this CLI's key"
}

/// `← 400  authorization_pending` or `← 200  DPoP key card for 120 s, a new refresh token`.
fn describe_response(res: &HttpResponse) -> String {
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap_or_default();
    let status = res.status();
    let said = if let Some(error) = body["error"].as_str() {
        error.to_owned()
    } else if let Some(kind) = body["token_type"].as_str() {
        let renewed = if body["refresh_token"].is_string() { ", a new refresh token" } else { "" };
        format!("{kind} key card for {} s{renewed}", body["expires_in"])
    } else if body["user_code"].is_string() {
        format!("user code {}, device code (secret)", body["user_code"].as_str().unwrap_or(""))
    } else {
        String::new()
    };
    format!("← {} {}  {said}", status.as_u16(), status.canonical_reason().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names every secret and shows none: the device code and refresh token in a
    /// body, the key card in a header.
    #[test]
    fn the_wire_never_shows_a_secret() {
        let body = b"grant_type=refresh_token&refresh_token=SECRET1&client_id=keycard-cli".to_vec();
        let req = http::Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:3000/oauth/token")
            .header("authorization", "DPoP SECRET2")
            .body(body)
            .unwrap();
        let line = describe_request(&req, Some("DPoP"));
        assert!(!line.contains("SECRET"), "{line}");
        assert!(line.contains("grant_type=refresh_token"), "{line}");
        assert!(line.contains("refresh_token (secret)"), "{line}");
        let answer = serde_json::json!({
            "access_token": "SECRET3", "token_type": "DPoP", "expires_in": 120,
            "refresh_token": "SECRET4",
        });
        let res =
            http::Response::builder().status(200).body(answer.to_string().into_bytes()).unwrap();
        let line = describe_response(&res);
        assert!(!line.contains("SECRET"), "{line}");
        assert_eq!(line, "← 200 OK  DPoP key card for 120 s, a new refresh token");
        let device = serde_json::json!({ "device_code": "SECRET5", "user_code": "BCDF-GHJK" });
        let res =
            http::Response::builder().status(200).body(device.to_string().into_bytes()).unwrap();
        assert!(!describe_response(&res).contains("SECRET"));
    }
}
