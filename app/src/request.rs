//! What the server reads from the request it answers: the context Leptos holds for it (the front
//! desk, the headers, where it came from) and the credentials it carries, under the cookie names
//! defined here. Below both the server functions ([`crate::api`]) and the guards
//! ([`crate::guard`]), which read through it.

/// The key card cookie. `__Host-` binds it to this exact origin (Secure, Path=/, no Domain).
pub const KEY_CARD_COOKIE: &str = "__Host-keycard";
/// The booking confirmation cookie, sent only to the front desk's paths.
pub const CONFIRMATION_COOKIE: &str = "__Secure-confirmation";
/// Where the booking confirmation cookie is sent.
pub const CONFIRMATION_PATH: &str = "/api/auth";

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use cookie::Cookie;
    use http::header::{AUTHORIZATION, COOKIE};
    use http::request::Parts;
    use http::{HeaderMap, Method};
    use keycard::dpop::{DpopProof, Presented};
    use keycard::front_desk::ClientInfo;
    use keycard::{AuthError, FrontDesk};
    use leptos::prelude::*;

    use super::{CONFIRMATION_COOKIE, KEY_CARD_COOKIE};
    use crate::error::{ApiError, ErrorCode};

    /// The front desk the server put in context.
    pub fn front_desk() -> Result<FrontDesk, ApiError> {
        use_context::<FrontDesk>().ok_or_else(|| {
            tracing::error!("the front desk is missing from the server function context");
            ApiError::new(ErrorCode::Internal, "something went wrong")
        })
    }

    /// The current request's headers (in a server function or a page render).
    pub fn headers() -> HeaderMap {
        use_context::<http::request::Parts>().map(|p| p.headers).unwrap_or_default()
    }

    /// The current request's parts (in a server function or a page render).
    pub fn parts() -> Result<Parts, ApiError> {
        use_context::<Parts>().ok_or_else(|| {
            tracing::error!("the request is missing from the server function context");
            ApiError::new(ErrorCode::Internal, "something went wrong")
        })
    }

    /// Where the request came from (set by the server's middleware), with the DPoP proof it
    /// carried, if any.
    pub fn client_info() -> Result<ClientInfo, ApiError> {
        client_info_from(&parts()?, &front_desk()?)
    }

    /// [`client_info`] for a request outside a server function (the OAuth endpoints): the
    /// address and user agent the middleware put in `parts`, and its DPoP proof.
    pub fn client_info_from(parts: &Parts, desk: &FrontDesk) -> Result<ClientInfo, ApiError> {
        let mut client = parts.extensions.get::<ClientInfo>().cloned().unwrap_or_default();
        client.dpop = dpop_proof(parts, desk)?;
        Ok(client)
    }

    /// The request's DPoP proof, with the method and URL it must name: the URL on the public
    /// origin (`KEYCARD_PUBLIC_URL`), as the client addressed it. More than one `DPoP` header is
    /// refused (RFC 9449, 4.3 (1)).
    pub fn dpop_proof(parts: &Parts, desk: &FrontDesk) -> Result<Option<DpopProof>, ApiError> {
        if !parts.headers.contains_key("dpop") {
            return Ok(None);
        }
        let values = parts.headers.get_all("dpop").iter().map(|v| v.to_str().unwrap_or_default());
        let proof =
            keycard::dpop::one_proof(values).map_err(|e| ApiError::from(AuthError::Dpop(e)))?;
        Ok(Some(DpopProof {
            proof: proof.to_owned(),
            method: parts.method.as_str().to_owned(),
            url: format!("{}{}", desk.policy().public_origin, parts.uri.path()),
        }))
    }

    /// How a request carries its key card.
    pub enum Carried {
        /// `Authorization: Bearer`.
        Bearer(String),
        /// `Authorization: DPoP`, with the request's proof.
        Dpop(String, DpopProof),
        /// The key card cookie: a page load's (a navigation, which cannot carry a proof), or a
        /// call's.
        Cookie { key_card: String, page_load: bool },
    }

    impl Carried {
        /// The key card.
        pub fn key_card(&self) -> &str {
            match self {
                Self::Bearer(token)
                | Self::Dpop(token, _)
                | Self::Cookie { key_card: token, .. } => token,
            }
        }

        /// As the front desk's doors take it.
        pub fn presented(&self) -> Presented<'_> {
            match self {
                Self::Bearer(token) | Self::Cookie { key_card: token, page_load: false } => {
                    Presented::Bearer(token)
                }
                Self::Cookie { key_card, page_load: true } => Presented::PageView(key_card),
                Self::Dpop(key_card, proof) => Presented::Dpop { key_card, proof },
            }
        }
    }

    /// The key card of a request and how it came (`None` when none did). `Authorization: DPoP`
    /// needs exactly one `DPoP` header.
    pub fn carried(parts: &Parts, desk: &FrontDesk) -> Result<Option<Carried>, ApiError> {
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, token)| (scheme, token.trim().to_owned()))
            .filter(|(_, token)| !token.is_empty());
        match authorization {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(Carried::Bearer(token)))
            }
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => {
                let proof = dpop_proof(parts, desk)?.ok_or_else(|| {
                    ApiError::from(AuthError::Dpop(keycard::dpop::ProofError::Missing))
                })?;
                Ok(Some(Carried::Dpop(token, proof)))
            }
            _ => Ok(cookie_from(&parts.headers, KEY_CARD_COOKIE).filter(|t| !t.is_empty()).map(
                |key_card| {
                    // A navigation: a page (not the API) loaded with GET. Anything else is a call.
                    let page_load =
                        parts.method == Method::GET && !parts.uri.path().starts_with("/api/");
                    Carried::Cookie { key_card, page_load }
                },
            )),
        }
    }

    /// Reads a cookie from request headers.
    pub fn cookie_from(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// The key card from `Authorization: Bearer` (API clients) or the cookie (browsers).
    pub fn key_card_from(headers: &HeaderMap) -> Option<String> {
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        bearer.or_else(|| cookie_from(headers, KEY_CARD_COOKIE)).filter(|t| !t.is_empty())
    }

    /// The booking confirmation cookie of the current request.
    pub fn confirmation() -> Option<String> {
        cookie_from(&headers(), CONFIRMATION_COOKIE).filter(|t| !t.is_empty())
    }
}
