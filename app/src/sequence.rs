//! The learner's sequence diagram as data: between which lifelines each exchange on the wire
//! went, what it carried, which of the article's four steps it belongs to, and the hotel's own
//! steps that have no exchange of their own (a rotation written to the bookings, a booking
//! cancelled for theft). Also each exchange as a `curl` command, the sentence step mode shows
//! before sending one, and the session as a HAR file with every secret taken out.
//!
//! Pure functions of [`Exchange`]s: `components::sequence` draws them, the tests below check
//! them.

use serde_json::{json, Value};

use crate::api::{CONFIRMATION_COOKIE, CONFIRMATION_PATH, KEY_CARD_COOKIE};
use crate::wire::Exchange;

/// A participant of the diagram, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifeline {
    Browser,
    FrontDesk,
    Room,
    Amenities,
    Spa,
    Bookings,
}

impl Lifeline {
    /// Every lifeline, in order.
    pub const ALL: [Lifeline; 6] =
        [Self::Browser, Self::FrontDesk, Self::Room, Self::Amenities, Self::Spa, Self::Bookings];

    /// The hotel's name for it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Browser => "Browser",
            Self::FrontDesk => "Front desk",
            Self::Room => "Room",
            Self::Amenities => "Amenities",
            Self::Spa => "Spa next door",
            Self::Bookings => "Bookings",
        }
    }

    /// The lifelines a diagram of `arrows` needs: the five of the hotel, and the spa next door
    /// only if an exchange went there.
    pub fn drawn(arrows: &[Arrow]) -> Vec<Lifeline> {
        let spa = arrows.iter().any(|a| a.to == Self::Spa || a.from == Self::Spa);
        Self::ALL.into_iter().filter(|l| *l != Self::Spa || spa).collect()
    }
}

/// Which of the article's four steps an exchange belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// 1: check in (login) for a key card and a booking confirmation.
    CheckIn = 1,
    /// 2: the key card opens the doors.
    Access = 2,
    /// 3: the key card expired; the confirmation gets a new one at the front desk.
    Refresh = 3,
    /// 4: both are void: check in again.
    BothExpired = 4,
}

impl Step {
    /// The step's number and name.
    pub fn label(self) -> &'static str {
        match self {
            Self::CheckIn => "1 check-in",
            Self::Access => "2 access",
            Self::Refresh => "3 expiry and refresh",
            Self::BothExpired => "4 both expired",
        }
    }
}

/// What travelled with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    Password,
    KeyCard,
    Confirmation,
    Proof,
}

impl Carried {
    pub fn label(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::KeyCard => "key card",
            Self::Confirmation => "confirmation",
            Self::Proof => "proof",
        }
    }
}

/// How an arrow is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The browser's request.
    Request,
    /// The hotel's own step, with no HTTP exchange of its own.
    Server,
    /// The answer.
    Answer,
}

/// How the exchange went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Held by step mode, or on its way.
    Pending,
    Ok,
    Refused,
    /// No answer came.
    Failed,
}

/// One arrow of the diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// The exchange it belongs to (its `n` on the wire).
    pub exchange: usize,
    pub from: Lifeline,
    pub to: Lifeline,
    pub kind: Kind,
    /// Method and path, status, or what the hotel did.
    pub label: String,
    pub carried: Vec<Carried>,
    pub step: Option<Step>,
    pub outcome: Outcome,
}

/// What an exchange's path is, to the hotel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Visit {
    CheckIn,
    FrontDesk,
    CheckOut,
    /// Another errand at the front desk: a password, a device's code, the demo, the lab.
    Desk,
    Room,
    Amenity,
    Spa,
}

fn visit(path: &str) -> Visit {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    match path {
        "/api/auth/login" | "/api/auth/register" => Visit::CheckIn,
        "/api/auth/refresh" => Visit::FrontDesk,
        "/api/auth/logout" => Visit::CheckOut,
        _ if path.starts_with("/amenities/") => Visit::Amenity,
        _ if path == "/spa" || path.starts_with("/spa/") => Visit::Spa,
        _ if ["/api/auth/", "/api/device/", "/api/demo/"].iter().any(|p| path.starts_with(p)) => {
            Visit::Desk
        }
        _ => Visit::Room,
    }
}

impl Visit {
    fn lifeline(self) -> Lifeline {
        match self {
            Self::CheckIn | Self::FrontDesk | Self::CheckOut | Self::Desk => Lifeline::FrontDesk,
            Self::Room => Lifeline::Room,
            Self::Amenity => Lifeline::Amenities,
            Self::Spa => Lifeline::Spa,
        }
    }
}

/// Whether `path` is one of the hotel's doors or desks (not a file of the page's own bundle).
fn to_the_hotel(path: &str) -> bool {
    ["/api/", "/amenities/", "/oauth/", "/spa"].iter().any(|p| path.starts_with(p))
}

/// The API error code of a refused answer, if the page read one.
fn code(x: &Exchange) -> &str {
    x.code.as_deref().unwrap_or("")
}

fn outcome(x: &Exchange) -> Outcome {
    match (x.status, &x.failed) {
        (Some(s), _) if s < 400 => Outcome::Ok,
        (Some(_), _) => Outcome::Refused,
        (None, Some(_)) => Outcome::Failed,
        (None, None) => Outcome::Pending,
    }
}

/// What the request carried.
fn carried(x: &Exchange) -> Vec<Carried> {
    let cookie = |name: &str| x.note.as_ref().is_some_and(|n| n.cookies.iter().any(|c| c == name));
    let authorization = x.sent.iter().any(|(name, _)| name == "authorization");
    let mut out = Vec::new();
    match visit(&x.path) {
        Visit::CheckIn => out.push(Carried::Password),
        // The cookie's Path keeps it for the front desk; without the server's description,
        // the browser sent it if it held one.
        Visit::FrontDesk if x.note.is_none() || cookie(CONFIRMATION_COOKIE) => {
            out.push(Carried::Confirmation)
        }
        Visit::FrontDesk => {}
        _ if authorization || cookie(KEY_CARD_COOKIE) => out.push(Carried::KeyCard),
        _ => {}
    }
    if x.proof.is_some() {
        out.push(Carried::Proof);
    }
    out
}

/// The article's step of an exchange, once its answer is known (a request on its way is drawn
/// with the step it is taking).
fn step(x: &Exchange) -> Option<Step> {
    let refused = x.status.is_some_and(|s| s >= 400);
    match visit(&x.path) {
        Visit::CheckIn => Some(Step::CheckIn),
        Visit::FrontDesk if refused => Some(Step::BothExpired),
        Visit::FrontDesk => Some(Step::Refresh),
        Visit::Room | Visit::Amenity | Visit::Spa if code(x) == "key_card_expired" => {
            Some(Step::Refresh)
        }
        Visit::Room | Visit::Amenity | Visit::Spa => Some(Step::Access),
        Visit::CheckOut | Visit::Desk => None,
    }
}

/// The generation of the booking confirmation an answer set, if it set one.
fn generation(x: &Exchange) -> Option<i64> {
    x.note.as_ref()?.set_cookies.iter().find_map(|c| c.generation.filter(|_| !c.cleared))
}

/// The diagram's arrows for `exchanges`, in order: each request, the hotel's own step where it
/// took one, and the answer.
pub fn arrows(exchanges: &[Exchange]) -> Vec<Arrow> {
    let mut out = Vec::new();
    for x in exchanges.iter().filter(|x| to_the_hotel(&x.path)) {
        let place = visit(&x.path);
        let (to, outcome, step) = (place.lifeline(), outcome(x), step(x));
        let arrow = |from, to, kind, label: String, carried| Arrow {
            exchange: x.n,
            from,
            to,
            kind,
            label,
            carried,
            step,
            outcome,
        };
        let path = x.path.split('?').next().unwrap_or_default();
        let held = if x.held { " (held: step mode)" } else { "" };
        out.push(arrow(
            Lifeline::Browser,
            to,
            Kind::Request,
            format!("{} {path}{held}", x.method),
            carried(x),
        ));
        if let Some(label) = server_step(x, place) {
            out.push(arrow(to, Lifeline::Bookings, Kind::Server, label, Vec::new()));
        }
        let answer = match (x.status, &x.failed) {
            (Some(status), _) => Some(format!("{status}: {}", answered(x, place))),
            (None, Some(why)) => Some(format!("no answer: {why}")),
            (None, None) => None,
        };
        if let Some(label) = answer {
            out.push(arrow(to, Lifeline::Browser, Kind::Answer, label, Vec::new()));
        }
    }
    out
}

/// What the hotel did in its bookings for an answered exchange, if anything.
fn server_step(x: &Exchange, place: Visit) -> Option<String> {
    x.status?;
    let ok = outcome(x) == Outcome::Ok;
    Some(match place {
        Visit::CheckIn if ok => "a new booking: confirmation generation 1".to_owned(),
        Visit::FrontDesk if ok => match generation(x) {
            Some(g) => format!("rotation: generation {g} written, the old one void"),
            None => "rotation written".to_owned(),
        },
        Visit::FrontDesk if code(x) == "reuse_detected" => {
            "an old confirmation: the whole booking cancelled (theft)".to_owned()
        }
        Visit::FrontDesk => "the booking looked up: no new key card".to_owned(),
        Visit::CheckOut if ok => "the booking ended".to_owned(),
        // The event log is read whatever became of the booking (it shows how a cancelled one
        // ended); every other room call asks whether the booking is live, and the amenities
        // never ask anything.
        Visit::Room if x.path.starts_with("/api/sessions/events") => {
            "reads the booking's event log".to_owned()
        }
        Visit::Room if code(x) != "key_card_expired" && code(x) != "key_card_invalid" => {
            "is the booking still live?".to_owned()
        }
        _ => return None,
    })
}

/// The answer's words, after its status.
fn answered(x: &Exchange, place: Visit) -> String {
    match (outcome(x), place) {
        (Outcome::Ok, Visit::CheckIn | Visit::FrontDesk) => {
            "a new key card and confirmation".into()
        }
        (Outcome::Ok, Visit::CheckOut) => "checked out".into(),
        (Outcome::Ok, _) => "ok".into(),
        _ if !code(x).is_empty() => code(x).replace('_', " "),
        _ => "refused".into(),
    }
}

/// The diagram in words, in order: the text alternative a screen reader reads.
pub fn narration(arrows: &[Arrow]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for a in arrows {
        let carried = a.carried.iter().map(|c| c.label()).collect::<Vec<_>>().join(" and ");
        let with = if carried.is_empty() { String::new() } else { format!(" with the {carried}") };
        let sentence = match a.kind {
            Kind::Request => {
                let step = a.step.map(|s| format!("Step {}. ", s.label())).unwrap_or_default();
                let to = a.to.label().to_lowercase();
                format!("{step}The browser asks the {to}{with}: {}.", a.label)
            }
            Kind::Server => {
                let from = a.from.label().to_lowercase();
                format!("The {from} turns to the bookings: {}.", a.label)
            }
            Kind::Answer => format!("The {} answers {}.", a.from.label().to_lowercase(), a.label),
        };
        match out.last_mut() {
            Some((n, text)) if *n == a.exchange => {
                text.push(' ');
                text.push_str(&sentence);
            }
            _ => out.push((a.exchange, sentence)),
        }
    }
    out
}

/// Step mode's sentence for an exchange the page is about to send: what goes and why.
/// `key_card_left`: seconds the page's key card has left (negative: expired that long ago).
pub fn explain(x: &Exchange, key_card_left: Option<i64>) -> String {
    let proof = if x.proof.is_some() {
        " It adds a DPoP proof signed by this browser's key, for this request only."
    } else {
        ""
    };
    let sentence = match visit(&x.path) {
        Visit::CheckIn => "The page sends your username and password to the front desk to check in; the answer will carry a key card and a booking confirmation.".to_owned(),
        Visit::FrontDesk => {
            let why = match key_card_left {
                Some(left) if left <= 0 => format!("Your key card expired {} s ago; the page", -left),
                Some(left) => format!("Your key card has {left} s left; the page goes early and"),
                None => "The page".to_owned(),
            };
            format!("{why} now shows its booking confirmation to the front desk; the browser adds the cookie because of its Path={CONFIRMATION_PATH}.")
        }
        Visit::CheckOut => "The page asks the front desk to end this booking (check-out), showing the key card.".to_owned(),
        Visit::Desk => format!("The page asks the front desk for {}, showing the key card.", x.path),
        Visit::Room => format!("The page shows your key card at the room's door ({}): the door also asks the bookings whether the booking is still live.", x.path),
        Visit::Amenity => format!("The page shows your key card at {}: the amenity checks its signature and expiry only, with no database.", x.path),
        Visit::Spa => "The page shows your key card at the spa next door, which trusts the hotel's published keys.".to_owned(),
    };
    format!("{sentence}{proof}")
}

/// Form fields whose values the page never copies (a password, old or new).
pub fn is_secret_field(name: &str) -> bool {
    name.contains("password") || matches!(name, "current" | "new")
}

/// Single-quotes `s` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The exchange as a `curl` command a learner can paste. `origin`: the hotel's. `key_card`: the
/// page's own key card, if it is still valid; it goes where the page sent one. The booking
/// confirmation (HttpOnly) and passwords become named shell variables, with a line saying why.
pub fn curl(x: &Exchange, origin: &str, key_card: Option<&str>) -> String {
    let mut lines =
        vec![format!("curl -i -X {} {}", x.method, quote(&format!("{origin}{}", x.path)))];
    let mut notes = Vec::new();
    if x.method != "GET" && x.method != "HEAD" {
        lines.push(format!("-H {}", quote(&format!("Origin: {origin}"))));
    }
    for (name, value) in &x.sent {
        if name != "authorization" {
            lines.push(format!("-H {}", quote(&format!("{name}: {value}"))));
        }
    }
    let carried = carried(x);
    if carried.contains(&Carried::KeyCard) {
        let scheme = if x.proof.is_some() { "DPoP" } else { "Bearer" };
        match key_card {
            Some(card) => {
                lines.push(format!("-H {}", quote(&format!("Authorization: {scheme} {card}"))))
            }
            None => {
                lines.push(format!("-H \"Authorization: {scheme} $KEY_CARD\""));
                notes.push("# KEY_CARD: this page holds no valid key card now (expired, or checked out): a stale one would only be refused.".to_owned());
            }
        }
    }
    if x.proof.is_some() {
        lines.push("-H \"DPoP: $DPOP_PROOF\"".to_owned());
        notes.push("# DPOP_PROOF: a proof signed by this browser's key for this one request; the key cannot leave the browser (non-extractable), so without a proof of your own this call is refused with invalid_dpop_proof: that is the point of binding.".to_owned());
    }
    if carried.contains(&Carried::Confirmation) {
        lines.push(format!("-H \"Cookie: {CONFIRMATION_COOKIE}=$CONFIRMATION\""));
        notes.push(format!("# CONFIRMATION: the booking confirmation is an HttpOnly cookie (Path={CONFIRMATION_PATH}): no script can read it, this page included, so it cannot copy it for you. Your browser's developer tools show it (Application, Cookies); using it here rotates it, and the browser's copy then counts as an old one."));
    }
    for (name, value) in &x.form {
        match value {
            Some(value) => {
                lines.push(format!("--data-urlencode {}", quote(&format!("{name}={value}"))))
            }
            None => {
                let var = format!("KEYCARD_{}", name.to_uppercase());
                lines.push(format!("--data-urlencode \"{name}=${var}\""));
                notes.push(format!(
                    "# {var}: the page never copies a password; set it yourself first."
                ));
            }
        }
    }
    if x.form.is_empty() && x.method == "POST" {
        lines.push("--data ''".to_owned());
    }
    let mut command = lines.join(" \\\n  ");
    for note in notes {
        command.push('\n');
        command.push_str(&note);
    }
    command
}

/// The session's exchanges as a HAR 1.2 log (what browsers' developer tools export), with every
/// token, proof, password and cookie value replaced by `(redacted)`.
pub fn har(exchanges: &[Exchange], origin: &str) -> Value {
    const REDACTED: &str = "(redacted)";
    let entries: Vec<Value> = exchanges
        .iter()
        .filter(|x| x.status.is_some())
        .map(|x| {
            let mut headers: Vec<Value> = x
                .sent
                .iter()
                .map(|(name, value)| {
                    let value = if name == "authorization" {
                        format!("{} {REDACTED}", value.split(' ').next().unwrap_or(""))
                    } else {
                        value.clone()
                    };
                    json!({ "name": name, "value": value })
                })
                .collect();
            if x.proof.is_some() {
                headers.push(json!({ "name": "dpop", "value": REDACTED }));
            }
            let cookies: Vec<Value> = x
                .note
                .iter()
                .flat_map(|n| n.cookies.iter())
                .map(|name| json!({ "name": name, "value": REDACTED }))
                .collect();
            let set_cookies: Vec<Value> = x
                .note
                .iter()
                .flat_map(|n| n.set_cookies.iter())
                .map(|c| {
                    json!({ "name": c.name, "value": REDACTED, "path": c.path,
                            "httpOnly": c.http_only, "secure": c.secure })
                })
                .collect();
            let form: Vec<Value> = x
                .form
                .iter()
                .map(|(name, value)| {
                    json!({ "name": name, "value": value.as_deref().unwrap_or(REDACTED) })
                })
                .collect();
            let mime = x
                .got
                .iter()
                .find(|(name, _)| name == "content-type")
                .map_or("", |(_, v)| v.as_str());
            let started = js_date_iso(x.at);
            let millis = f64::from(x.millis.unwrap_or(0));
            let mut request = json!({
                "method": x.method,
                "url": format!("{origin}{}", x.path),
                "httpVersion": "HTTP/1.1",
                "cookies": cookies,
                "headers": headers,
                "queryString": [],
                "headersSize": -1,
                "bodySize": -1,
            });
            if !form.is_empty() {
                request["postData"] =
                    json!({ "mimeType": "application/x-www-form-urlencoded", "params": form, "text": "" });
            }
            json!({
                "startedDateTime": started,
                "time": millis,
                "request": request,
                "response": {
                    "status": x.status,
                    "statusText": "",
                    "httpVersion": "HTTP/1.1",
                    "cookies": set_cookies,
                    "headers": x.got.iter().map(|(n, v)| json!({ "name": n, "value": v })).collect::<Vec<_>>(),
                    "content": { "size": 0, "mimeType": mime, "comment": "bodies are not kept: they carry the key card" },
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": -1,
                },
                "cache": {},
                "timings": { "send": 0, "wait": millis, "receive": 0 },
            })
        })
        .collect();
    json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "Keycard", "version": env!("CARGO_PKG_VERSION") },
            "pages": [],
            "entries": entries,
        }
    })
}

/// `at` (Unix seconds) as an ISO 8601 date-time in UTC, as HAR wants.
fn js_date_iso(at: i64) -> String {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm).
    let (days, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SetCookieNote, WireNote};

    fn exchange(n: usize, method: &str, path: &str, status: Option<u16>) -> Exchange {
        Exchange {
            n,
            at: 1_796_357_362,
            method: method.into(),
            path: path.into(),
            status,
            ..Exchange::default()
        }
    }

    fn with_confirmation(mut x: Exchange, generation: i64) -> Exchange {
        x.note = Some(WireNote {
            cookies: vec![CONFIRMATION_COOKIE.into()],
            set_cookies: vec![SetCookieNote {
                name: CONFIRMATION_COOKIE.into(),
                http_only: true,
                generation: Some(generation),
                token: Some("booking confirmation".into()),
                ..SetCookieNote::default()
            }],
            ..WireNote::default()
        });
        x
    }

    #[test]
    fn each_exchange_is_drawn_between_its_lifelines_with_the_articles_step() {
        let mut check_in = exchange(1, "POST", "/api/auth/login", Some(200));
        check_in.form = vec![("username".into(), Some("ann".into())), ("password".into(), None)];
        let mut gym = exchange(2, "GET", "/amenities/gym", Some(200));
        gym.sent = vec![("authorization".into(), "Bearer eyJ... (612 characters)".into())];
        let mut expired = exchange(3, "POST", "/api/me", Some(401));
        expired.sent = gym.sent.clone();
        expired.code = Some("key_card_expired".into());
        let refresh = with_confirmation(exchange(4, "POST", "/api/auth/refresh", Some(200)), 2);
        let mut theft = exchange(5, "POST", "/api/auth/refresh", Some(401));
        theft.code = Some("reuse_detected".into());
        let held = Exchange { held: true, ..exchange(6, "POST", "/api/auth/refresh", None) };
        let bundle = exchange(7, "GET", "/pkg/keycard_bg.wasm", Some(200));

        let arrows = arrows(&[check_in, gym, expired, refresh, theft, held, bundle]);
        let rows: Vec<_> = arrows
            .iter()
            .map(|a| (a.exchange, a.from, a.to, a.kind, a.step.map(|s| s as u8), a.label.as_str()))
            .collect();
        use Kind::*;
        use Lifeline::*;
        assert_eq!(
            rows,
            [
                (1, Browser, FrontDesk, Request, Some(1), "POST /api/auth/login"),
                (
                    1,
                    FrontDesk,
                    Bookings,
                    Server,
                    Some(1),
                    "a new booking: confirmation generation 1"
                ),
                (1, FrontDesk, Browser, Answer, Some(1), "200: a new key card and confirmation"),
                (2, Browser, Amenities, Request, Some(2), "GET /amenities/gym"),
                (2, Amenities, Browser, Answer, Some(2), "200: ok"),
                (3, Browser, Room, Request, Some(3), "POST /api/me"),
                (3, Room, Browser, Answer, Some(3), "401: key card expired"),
                (4, Browser, FrontDesk, Request, Some(3), "POST /api/auth/refresh"),
                (
                    4,
                    FrontDesk,
                    Bookings,
                    Server,
                    Some(3),
                    "rotation: generation 2 written, the old one void"
                ),
                (4, FrontDesk, Browser, Answer, Some(3), "200: a new key card and confirmation"),
                (5, Browser, FrontDesk, Request, Some(4), "POST /api/auth/refresh"),
                (
                    5,
                    FrontDesk,
                    Bookings,
                    Server,
                    Some(4),
                    "an old confirmation: the whole booking cancelled (theft)"
                ),
                (5, FrontDesk, Browser, Answer, Some(4), "401: reuse detected"),
                (
                    6,
                    Browser,
                    FrontDesk,
                    Request,
                    Some(3),
                    "POST /api/auth/refresh (held: step mode)"
                ),
            ]
        );
        assert_eq!(arrows[0].carried, [Carried::Password]);
        assert!(arrows[2].carried.is_empty(), "an answer's tokens are in its words");
        assert_eq!(arrows[3].carried, [Carried::KeyCard]);
        assert_eq!(arrows[7].carried, [Carried::Confirmation]);
        assert_eq!(arrows[13].outcome, Outcome::Pending);
        assert!(!Lifeline::drawn(&arrows).contains(&Lifeline::Spa), "no spa unless it was asked");
    }

    #[test]
    fn the_narration_reads_each_exchange_in_order() {
        let refresh = with_confirmation(exchange(4, "POST", "/api/auth/refresh", Some(200)), 2);
        let said = narration(&arrows(&[refresh]));
        assert_eq!(said.len(), 1);
        assert_eq!(
            said[0].1,
            "Step 3 expiry and refresh. The browser asks the front desk with the confirmation: \
             POST /api/auth/refresh. The front desk turns to the bookings: rotation: generation \
             2 written, the old one void. The front desk answers 200: a new key card and \
             confirmation."
        );
    }

    #[test]
    fn curl_names_what_the_page_cannot_give() {
        let refresh = with_confirmation(exchange(4, "POST", "/api/auth/refresh", Some(200)), 2);
        let command = curl(&refresh, "http://127.0.0.1:3000", Some("card"));
        assert!(command.starts_with("curl -i -X POST 'http://127.0.0.1:3000/api/auth/refresh'"));
        assert!(command.contains("-H \"Cookie: __Secure-confirmation=$CONFIRMATION\""));
        assert!(command.contains("# CONFIRMATION: the booking confirmation is an HttpOnly cookie"));
        assert!(!command.contains("card'"), "no key card goes to the front desk");

        let mut gym = exchange(2, "GET", "/amenities/gym", Some(200));
        gym.sent = vec![("authorization".into(), "Bearer eyJ... (612 characters)".into())];
        assert_eq!(
            curl(&gym, "http://h", Some("e.y.j")),
            "curl -i -X GET 'http://h/amenities/gym' \\\n  -H 'Authorization: Bearer e.y.j'"
        );
        assert!(curl(&gym, "http://h", None).contains("$KEY_CARD"));

        let mut login = exchange(1, "POST", "/api/auth/login", Some(200));
        login.form = vec![("username".into(), Some("o'brien".into())), ("password".into(), None)];
        let command = curl(&login, "http://h", Some("e.y.j"));
        assert!(command.contains(r"--data-urlencode 'username=o'\''brien'"), "{command}");
        assert!(command.contains("--data-urlencode \"password=$KEYCARD_PASSWORD\""));
        assert!(!command.contains("e.y.j"));
    }

    #[test]
    fn the_har_holds_no_secret_and_is_well_formed() {
        let mut refresh = with_confirmation(exchange(4, "POST", "/api/auth/refresh", Some(200)), 2);
        refresh.sent = vec![("authorization".into(), "DPoP eyJhbGciOi... (612 characters)".into())];
        refresh.millis = Some(12);
        let mut login = exchange(1, "POST", "/api/auth/login", Some(200));
        login.form = vec![("username".into(), Some("ann".into())), ("password".into(), None)];
        let pending = exchange(5, "GET", "/api/me", None);
        let har = har(&[login, refresh, pending], "http://h");
        let entries = har["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "only answered exchanges");
        assert_eq!(har["log"]["version"], "1.2");
        assert_eq!(entries[1]["request"]["url"], "http://h/api/auth/refresh");
        assert_eq!(entries[1]["request"]["headers"][0]["value"], "DPoP (redacted)");
        assert_eq!(entries[1]["response"]["cookies"][0]["value"], "(redacted)");
        assert_eq!(entries[0]["request"]["postData"]["params"][1]["value"], "(redacted)");
        assert_eq!(entries[1]["startedDateTime"], "2026-12-04T04:09:22.000Z");
        assert!(!har.to_string().contains("eyJ"), "no token's first characters either");
    }
}
