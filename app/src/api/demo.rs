//! The demo controls' server functions: a thief who copies the booking confirmation, a key card
//! that expires in seconds, a booking that lapses by time (the article's step 4), and the forge
//! lab. Compiled only with the `demo` feature (on by default); served only while
//! `KEYCARD_DEMO_CONTROLS` is on.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::request;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::ssr;
use super::{ApiError, MeResponse};
#[cfg(feature = "ssr")]
use crate::guard::{CheckedIn, KeyCard};

/// What the demo thief achieved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoOutcome {
    /// `copied`, `got_in`, `caught`, `too_late`, or `stopped` (the booking is bound to the
    /// guest's DPoP key: the copy was refused and the booking lives on).
    pub outcome: String,
    pub generation: Option<i64>,
}

/// What a door said to the thief with a copy of the key card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorAnswer {
    /// `opened` or `refused`.
    pub answer: String,
    /// For a refusal: the DPoP rule (`missing`, `key`…) and where RFC 9449 writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

/// The thief with a perfect copy of the guest's key card, at the gym's door.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCardTheft {
    /// The copy shown as a bearer token.
    pub as_bearer: DoorAnswer,
    /// The copy shown with `DPoP` and a proof of the thief's own key.
    pub with_own_key: DoorAnswer,
}

/// `POST /api/demo/enabled`: whether this server offers the demo controls (`true` or `false`).
/// A setting of the server, not of a booking: pages ask once, whoever is (or is not) checked in.
#[server(prefix = "/api", endpoint = "demo/enabled")]
pub async fn demo_enabled() -> Result<bool, ApiError> {
    Ok(request::front_desk()?.policy().demo_controls)
}

/// `POST /api/demo/steal`: demo only. A thief copies the booking confirmation; the copy stays
/// on the server.
#[server(prefix = "/api", endpoint = "demo/steal")]
pub async fn demo_steal() -> Result<DemoOutcome, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let generation = request::front_desk()?.demo_steal(&guest).await?;
    Ok(DemoOutcome { outcome: "copied".into(), generation: Some(generation) })
}

/// `POST /api/demo/thief-key-card`: demo only. A thief with a perfect copy of the key card this
/// request carries tries the gym, as a bearer token and with a DPoP proof of its own key: a
/// bearer key card opens the door, one bound to the guest's key does not.
#[server(prefix = "/api", endpoint = "demo/thief-key-card")]
pub async fn demo_thief_key_card() -> Result<KeyCardTheft, ApiError> {
    let KeyCard { token, .. } = KeyCard::from_server_fn().await?;
    let theft = request::front_desk()?.demo_thief_key_card(&token).await?;
    let door = |answer: keycard::front_desk::DoorAnswer| match answer {
        keycard::front_desk::DoorAnswer::Opened => {
            DoorAnswer { answer: "opened".into(), rule: None, section: None }
        }
        keycard::front_desk::DoorAnswer::Refused { rule, section } => DoorAnswer {
            answer: "refused".into(),
            rule: Some(rule.into()),
            section: Some(section.into()),
        },
    };
    Ok(KeyCardTheft { as_bearer: door(theft.as_bearer), with_own_key: door(theft.with_own_key) })
}

/// `POST /api/demo/thief`: demo only. The thief shows the copy at the front desk.
#[server(prefix = "/api", endpoint = "demo/thief")]
pub async fn demo_thief() -> Result<DemoOutcome, ApiError> {
    // The amenity door on purpose: the guest's own booking may already be cancelled.
    let KeyCard { holder, .. } = KeyCard::from_server_fn().await?;
    let outcome = request::front_desk()?.demo_thief_visit(&holder).await?;
    let outcome = serde_json::to_value(outcome).ok().and_then(|v| v.as_str().map(str::to_owned));
    Ok(DemoOutcome { outcome: outcome.unwrap_or_default(), generation: None })
}

/// `POST /api/demo/expire-soon`: demo only. Swaps the key card for one that expires in 10 s.
#[server(prefix = "/api", endpoint = "demo/expire-soon")]
pub async fn demo_expire_soon() -> Result<MeResponse, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let desk = request::front_desk()?;
    let (key_card, claims) = desk.demo_short_key_card(&guest, 10).await?;
    let short = read_back(&desk, &key_card).await?;
    let me = ssr::me_for(&short, key_card);
    // Like every key card cookie, it outlives the card so that expiry reads as expiry.
    ssr::set_key_card_cookie(&me.access_token, me.session.idle_expires_at - claims.iat);
    Ok(me)
}

/// `POST /api/demo/lapse`: demo only. The article's step 4, live: the booking's idle and absolute
/// limits move to 10 s from now (the server's clock is not touched) and the key card is swapped
/// for one that expires at the same moment. The next visit to the front desk is refused with
/// `session_expired`.
#[server(prefix = "/api", endpoint = "demo/lapse")]
pub async fn demo_lapse() -> Result<MeResponse, ApiError> {
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let desk = request::front_desk()?;
    let (key_card, claims) = desk.demo_lapse(&guest, LAPSE_SECS).await?;
    let short = read_back(&desk, &key_card).await?;
    let me = ssr::me_for(&short, key_card);
    // The cookie outlives the card, so that the next call reads as an expired card, not a missing one.
    ssr::set_key_card_cookie(&me.access_token, claims.exp - claims.iat + 60);
    Ok(me)
}

/// The guest as a key card the desk has just cut describes them. Read back as a page view is
/// (the signature, the expiry, the booking): a bound card needs a proof to be used, not to be
/// shown, and this one has not left the server yet.
#[cfg(feature = "ssr")]
async fn read_back(
    desk: &keycard::FrontDesk,
    key_card: &str,
) -> Result<keycard::CheckedInGuest, ApiError> {
    Ok(desk.room_door(keycard::dpop::Presented::PageView(key_card)).await?)
}

/// How long [`demo_lapse`] leaves the booking.
pub const LAPSE_SECS: i64 = 10;

/// One of a door's rules, explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRule {
    /// `malformed`, `algorithm`, `header`, `type`, `key`, `signature`, `claims`, `issuer`,
    /// `audience`, `expired`, `not_yet_valid`, `replayed` or `genuine`.
    pub rule: String,
    /// The rule in one sentence.
    pub explanation: String,
    /// Where the rule is written down.
    pub rfc: String,
    /// The link's text, e.g. `RFC 8725 §3.1`.
    pub rfc_label: String,
}

/// The forge lab's answer: whether the door would open, and if not, the rule that refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabAnswer {
    /// `true` only for the hotel's own, unchanged token (the lab opens nothing with it).
    pub opens: bool,
    /// The door's own words.
    pub reason: String,
    /// The rule that decided.
    #[serde(flatten)]
    pub decided: LabRule,
    /// After a broken signature: the rules the claims would have broken next.
    pub also: Vec<LabRule>,
}

/// `POST /api/auth/lab`: demo only, throttled per booking. Runs a token through a door's own
/// checks and names the rule that refused it. `door` is `amenity` (key cards), `front_desk`
/// (booking confirmations) or `proof`: the caller's own DPoP-bound key card (`token`) with a
/// DPoP `proof` made, or forged, for `GET /amenities/gym`, run through that door's DPoP checks. With `present=confirmation` the server takes the booking
/// confirmation from its HttpOnly cookie (sent here because the lab sits under `/api/auth`), so
/// it can be shown where a key card is expected without ever reaching the page; otherwise
/// `token` is tried. Only the caller's own booking's tokens, and forgeries of them, are
/// explained (403 `not_your_booking`). Nothing is opened, rotated or changed.
#[server(prefix = "/api", endpoint = "auth/lab")]
pub async fn lab_try(
    door: String,
    token: Option<String>,
    present: Option<String>,
    proof: Option<String>,
) -> Result<LabAnswer, ApiError> {
    use keycard::front_desk::{LabDoor, LabSource};
    let door = match door.as_str() {
        "amenity" => Some(LabDoor::Amenity),
        "front_desk" => Some(LabDoor::FrontDesk),
        "proof" => None,
        _ => {
            return Err(ApiError::new(
                super::ErrorCode::BadRequest,
                "door must be amenity, front_desk or proof",
            ))
        }
    };
    let CheckedIn { guest, .. } = CheckedIn::from_server_fn().await?;
    let desk = request::front_desk()?;
    let Some(door) = door else {
        let dpop = keycard::dpop::DpopProof {
            proof: proof.unwrap_or_default(),
            method: "GET".into(),
            url: format!("{}/amenities/gym", desk.policy().public_origin),
        };
        let found = desk.lab_try_proof(&guest, &token.unwrap_or_default(), &dpop).await?;
        return Ok(lab_answer(found));
    };
    let (token, source) = match present.as_deref().unwrap_or("token") {
        "token" => (token.unwrap_or_default(), LabSource::Shown),
        "confirmation" => (
            request::confirmation().ok_or_else(|| {
                // Not `confirmation_missing`: that code ends a booking, and nothing ended here.
                ApiError::new(
                    super::ErrorCode::BadRequest,
                    "this browser sent no booking confirmation",
                )
            })?,
            LabSource::ConfirmationCookie,
        ),
        _ => {
            return Err(ApiError::new(
                super::ErrorCode::BadRequest,
                "present must be token or confirmation",
            ))
        }
    };
    Ok(lab_answer(desk.lab_try(&guest, &token, door, source).await?))
}

/// The lab's finding as the page shows it.
#[cfg(feature = "ssr")]
fn lab_answer(found: keycard::front_desk::LabFinding) -> LabAnswer {
    use keycard::front_desk::LabVerdict;
    let reason = match found.verdict {
        LabVerdict::Refused(e) => e.to_string(),
        LabVerdict::ProofRefused(e) => e.to_string(),
        LabVerdict::Replayed => "a genuine confirmation of this booking, but an old one".to_owned(),
        LabVerdict::Opens => "every rule holds".to_owned(),
    };
    LabAnswer {
        opens: found.verdict == LabVerdict::Opens,
        reason,
        decided: lab_rule(found.verdict),
        also: found.also.into_iter().map(|e| lab_rule(LabVerdict::Refused(e))).collect(),
    }
}

/// Each rule: its name, one sentence, and the RFC section that states it.
#[cfg(feature = "ssr")]
fn lab_rule(verdict: keycard::front_desk::LabVerdict) -> LabRule {
    use keycard::front_desk::LabVerdict;
    use keycard::jwt::TokenError as E;
    let (rule, explanation, rfc_label, rfc) = match verdict {
        LabVerdict::Opens => (
            "genuine",
            "Every rule holds: this is the hotel's own token, byte for byte. The lab opens nothing with it.",
            "RFC 7519 §7.2",
            "https://www.rfc-editor.org/rfc/rfc7519#section-7.2",
        ),
        LabVerdict::Replayed => (
            "replayed",
            "A genuine confirmation, but not the booking's current one: shown at the front desk it would cancel the whole booking, because two parties hold its confirmations.",
            "RFC 9700 §4.14.2",
            "https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2",
        ),
        LabVerdict::ProofRefused(e) => return dpop_rule(e),
        LabVerdict::Refused(e) => match e {
            E::Malformed => (
                "malformed",
                "A JWT is three base64url parts of JSON joined by dots, at most 4 KiB; this is not one.",
                "RFC 7519 §7.2",
                "https://www.rfc-editor.org/rfc/rfc7519#section-7.2",
            ),
            E::WrongAlgorithm => (
                "algorithm",
                "The door accepts only EdDSA, the algorithm the hotel signs with, whatever the token asks for: \"none\" and HS256 are refused before any key is touched.",
                "RFC 8725 §3.1",
                "https://www.rfc-editor.org/rfc/rfc8725#section-3.1",
            ),
            E::ForbiddenHeader => (
                "header",
                "A token may not name its own key (jku, x5u, jwk, x5c) or demand unknown processing (crit): the door trusts only the hotel's published keys.",
                "RFC 8725 §3.10",
                "https://www.rfc-editor.org/rfc/rfc8725#section-3.10",
            ),
            E::WrongType => (
                "type",
                "A key card says typ at+jwt and a booking confirmation refresh+jwt; each door takes only its own kind, so neither can pass for the other.",
                "RFC 8725 §3.11",
                "https://www.rfc-editor.org/rfc/rfc8725#section-3.11",
            ),
            E::UnknownKey => (
                "key",
                "The kid names no key in the hotel's JWKS, so there is nothing to check the signature with.",
                "RFC 7515 §4.1.4",
                "https://www.rfc-editor.org/rfc/rfc7515#section-4.1.4",
            ),
            E::BadSignature => (
                "signature",
                "The signature covers the exact bytes of the header and payload: change a claim (another guest's sub, a later exp) or one character of the signature, and the Ed25519 check fails before any claim is believed.",
                "RFC 7515 §5.2",
                "https://www.rfc-editor.org/rfc/rfc7515#section-5.2",
            ),
            E::Invalid => (
                "claims",
                "A claim the door requires (iss, aud, sub, exp, and the booking's sid) is missing or of the wrong kind.",
                "RFC 7519 §7.2",
                "https://www.rfc-editor.org/rfc/rfc7519#section-7.2",
            ),
            E::WrongIssuer => (
                "issuer",
                "The iss names another issuer: the door trusts tokens from this hotel only.",
                "RFC 7519 §4.1.1",
                "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.1",
            ),
            E::WrongAudience => (
                "audience",
                "The aud says who may accept the token, and this door is not among them.",
                "RFC 7519 §4.1.3",
                "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.3",
            ),
            E::Expired => (
                "expired",
                "Past its exp (give or take two seconds of clock skew), the token opens nothing: a key card must be renewed at the front desk.",
                "RFC 7519 §4.1.4",
                "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.4",
            ),
            E::NotYetValid => (
                "not_yet_valid",
                "Its nbf or iat lies in the future: the token is not valid yet.",
                "RFC 7519 §4.1.5",
                "https://www.rfc-editor.org/rfc/rfc7519#section-4.1.5",
            ),
        },
    };
    LabRule {
        rule: rule.to_owned(),
        explanation: explanation.to_owned(),
        rfc: rfc.to_owned(),
        rfc_label: rfc_label.to_owned(),
    }
}

/// A DPoP rule: its name, one sentence, and the section of RFC 9449 that states it.
#[cfg(feature = "ssr")]
fn dpop_rule(e: keycard::dpop::ProofError) -> LabRule {
    use keycard::dpop::ProofError as P;
    let (explanation, section) = match e {
        P::Missing => ("This key card is bound to a key: it opens a door only with a DPoP proof made by that key for this very request.", "7.1"),
        P::Multiple => ("A request carries exactly one DPoP proof; of two, a door could not tell which to check.", "4.3"),
        P::Malformed => ("A DPoP proof is a JWT: three base64url parts of JSON joined by dots, at most 4 KiB.", "4.2"),
        P::MissingClaim => ("A proof names its jti, htm, htu and iat; one is missing or of the wrong kind.", "4.2"),
        P::WrongType => ("A proof's header says typ dpop+jwt, so no other JWT can pass for one.", "4.3"),
        P::Algorithm => ("A proof is signed with an asymmetric algorithm the door accepts (ES256 or EdDSA): never none, never a shared secret.", "4.3"),
        P::BadKey => ("The proof's header carries the public key that signed it (jwk), of the algorithm's kind, and nothing that fetches a key elsewhere.", "4.3"),
        P::PrivateKey => ("The jwk header holds a private key: whoever sent it has given the key away, so it proves nothing.", "4.3"),
        P::BadSignature => ("The proof's signature does not verify with the key in its own header: it was made by another key, or changed after signing.", "4.3"),
        P::WrongMethod => ("The proof was made for another HTTP method (its htm): a proof for a GET cannot authorise a POST.", "4.3"),
        P::WrongUrl => ("The proof was made for another URL (its htu): a proof for the pool cannot open the gym.", "4.3"),
        P::IssuedAt => ("The proof was made too long ago (over 60 s) or in the future: a proof is made for one request, now.", "4.3"),
        P::AccessTokenHash => ("A proof sent with a key card carries that card's hash (ath): without it, or with another card's, the proof could go with any card.", "4.3"),
        P::Replayed => ("This proof was used before (every instance remembers its jti): a proof opens one door, once.", "11.1"),
        P::WrongKey => ("The proof is genuine, but made by another key than the one the key card is bound to: a perfect copy of the card, in another hand.", "4.3"),
        P::Unbound => ("This key card is bound to no key: it is a bearer token, and is presented as one.", "7.1"),
    };
    LabRule {
        rule: e.rule().to_owned(),
        explanation: explanation.to_owned(),
        rfc: format!("https://www.rfc-editor.org/rfc/rfc9449#section-{section}"),
        rfc_label: format!("RFC 9449 §{section}"),
    }
}
