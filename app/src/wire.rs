//! The wire: every HTTP exchange the page makes with the hotel, as the learner's lab shows it.
//!
//! A page cannot see everything that travels: the browser adds the cookies and `Origin` itself,
//! and no script may read a `Set-Cookie` answer (least of all an HttpOnly one). So the server
//! describes both in a `Keycard-Wire` answer header ([`WireNote`]: cookie names and attributes,
//! never a value), while the demo controls are on, and the page records each `fetch` it makes
//! with that description beside it ([`Exchange`]).

use serde::{Deserialize, Serialize};

/// The answer header that carries the server's [`WireNote`].
pub const WIRE_HEADER: &str = "keycard-wire";

/// What the server saw arrive and what it set, with every secret left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireNote {
    /// The names of the cookies the browser sent (the values stay out).
    pub cookies: Vec<String>,
    /// `Authorization`, shortened to its scheme and the token's first characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// The `Origin` the browser sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Each `Set-Cookie` of the answer, described.
    pub set_cookies: Vec<SetCookieNote>,
}

/// One `Set-Cookie`, without its value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetCookieNote {
    pub name: String,
    pub http_only: bool,
    pub secure: bool,
    /// `Strict`, `Lax` or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// The cookie is being removed (empty value, `Max-Age=0`).
    pub cleared: bool,
    /// For a token: which kind (`key card` or `booking confirmation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// For a booking confirmation: its generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

impl SetCookieNote {
    /// The attributes as a `Set-Cookie` line shows them, the value hidden.
    pub fn attributes(&self) -> String {
        let mut line = format!("{}=(hidden)", self.name);
        if let Some(path) = &self.path {
            line.push_str(&format!("; Path={path}"));
        }
        if let Some(max_age) = self.max_age {
            line.push_str(&format!("; Max-Age={max_age}"));
        }
        if self.secure {
            line.push_str("; Secure");
        }
        if self.http_only {
            line.push_str("; HttpOnly");
        }
        if let Some(same_site) = &self.same_site {
            line.push_str(&format!("; SameSite={same_site}"));
        }
        line
    }
}

/// One request the page made and what came back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchange {
    /// 1, 2, 3… in the order the page sent them.
    pub n: usize,
    /// When it was sent (Unix seconds, the timeline's clock).
    pub at: i64,
    pub method: String,
    pub path: String,
    /// Request headers the page itself set (`Authorization` shortened).
    pub sent: Vec<(String, String)>,
    /// `None` while the answer is on its way.
    pub status: Option<u16>,
    /// Milliseconds from sending to the answer's headers.
    pub millis: Option<u32>,
    /// Answer headers that matter to the flow.
    pub got: Vec<(String, String)>,
    /// The server's description of cookies and origin (while the demo controls are on).
    pub note: Option<WireNote>,
    /// The DPoP proof the page sent with it, decoded (RFC 9449), if any.
    pub proof: Option<crate::dpop::ProofNote>,
    /// Why no answer came, if none did.
    pub failed: Option<String>,
    /// The fields of a form body, in order; a password's value is never kept (`None`).
    pub form: Vec<(String, Option<String>)>,
    /// The API error code of a refused answer (`key_card_expired`, `reuse_detected`…).
    pub code: Option<String>,
    /// Held by step mode until the learner says Next.
    pub held: bool,
}

/// A form body's fields, with the values of secret ones (see
/// [`crate::sequence::is_secret_field`]) dropped.
pub fn form_fields(body: &str) -> Vec<(String, Option<String>)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(name, value)| {
            let value = (!crate::sequence::is_secret_field(&name)).then(|| value.into_owned());
            (name.into_owned(), value)
        })
        .collect()
}

/// How many exchanges the page keeps (the oldest go first).
pub const MAX_EXCHANGES: usize = 200;

/// Answer headers worth showing.
pub const SHOWN_ANSWER_HEADERS: [&str; 4] =
    ["content-type", "cache-control", "www-authenticate", "retry-after"];

/// `Bearer eyJhbGciOi… (612 characters)`: enough to recognise a token, not to use it.
pub fn shorten_authorization(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, token)) => {
            let start: String = token.chars().take(10).collect();
            format!("{scheme} {start}... ({} characters)", token.chars().count())
        }
        None => "(not a scheme and a token)".to_owned(),
    }
}

#[cfg(feature = "ssr")]
mod describe {
    //! The server side: the description of one exchange.

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use cookie::Cookie;
    use http::header::{AUTHORIZATION, COOKIE, ORIGIN, SET_COOKIE};
    use http::{HeaderMap, HeaderValue};

    use super::{shorten_authorization, SetCookieNote, WireNote};

    /// Describes an exchange from the request's and the answer's headers: cookie names, never
    /// values. `None` if the description is not a valid header value (a non-ASCII `Origin`).
    pub fn describe(request: &HeaderMap, answer: &HeaderMap) -> Option<HeaderValue> {
        let cookies = request
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .map(|c| c.name().to_owned())
            .collect();
        let note = WireNote {
            cookies,
            authorization: request
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(shorten_authorization),
            origin: request.get(ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned),
            set_cookies: answer
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|line| Cookie::parse(line).ok())
                .map(|c| note_of(&c))
                .collect(),
        };
        HeaderValue::from_str(&serde_json::to_string(&note).ok()?).ok()
    }

    fn note_of(c: &Cookie<'_>) -> SetCookieNote {
        let max_age = c.max_age().map(|d| d.whole_seconds());
        // The server's own tokens: read, unverified, for their kind and generation only.
        let claims = c
            .value()
            .split('.')
            .nth(1)
            .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
            .and_then(|bytes| {
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes).ok()
            });
        let generation = claims.as_ref().and_then(|c| c.get("generation")?.as_i64());
        let token = claims.as_ref().map(|_| {
            if generation.is_some() { "booking confirmation" } else { "key card" }.to_owned()
        });
        SetCookieNote {
            name: c.name().to_owned(),
            http_only: c.http_only().unwrap_or(false),
            secure: c.secure().unwrap_or(false),
            same_site: c.same_site().map(|s| s.to_string()),
            path: c.path().map(str::to_owned),
            max_age,
            cleared: c.value().is_empty() || max_age == Some(0),
            token,
            generation,
        }
    }
}

#[cfg(feature = "ssr")]
pub use describe::describe;

#[cfg(feature = "hydrate")]
pub(crate) mod watch {
    //! The browser side: `window.fetch` wrapped so that every exchange lands on the wire.

    use leptos::prelude::*;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;

    use std::cell::{Cell, RefCell};

    use super::{
        form_fields, shorten_authorization, Exchange, WireNote, MAX_EXCHANGES,
        SHOWN_ANSWER_HEADERS, WIRE_HEADER,
    };

    thread_local! {
        /// Step mode: requests wait before they are sent.
        static STEPPING: Cell<bool> = const { Cell::new(false) };
        /// What each held request waits on: its number and the function that lets it go.
        static HELD: RefCell<Vec<(usize, js_sys::Function)>> = const { RefCell::new(Vec::new()) };
    }

    /// Turns step mode on or off; off lets every held request go.
    pub fn set_stepping(on: bool) {
        STEPPING.with(|s| s.set(on));
        if !on {
            while release_next() {}
        }
    }

    /// Lets the oldest held request go; false if none was held.
    pub fn release_next() -> bool {
        let next = HELD.with(|h| {
            let mut held = h.borrow_mut();
            (!held.is_empty()).then(|| held.remove(0))
        });
        match next {
            Some((_, go)) => {
                let _ = go.call0(&JsValue::NULL);
                true
            }
            None => false,
        }
    }

    /// Waits until step mode lets request `n` go (at once when it is off).
    async fn gate(wire: RwSignal<Vec<Exchange>>, n: usize) {
        if !STEPPING.with(Cell::get) {
            return;
        }
        settle(wire, n, |x| x.held = true);
        let wait = js_sys::Promise::new(&mut |go, _| HELD.with(|h| h.borrow_mut().push((n, go))));
        let _ = wasm_bindgen_futures::JsFuture::from(wait).await;
        settle(wire, n, |x| x.held = false);
    }

    /// The form fields of a request's body (a copy is read: the request itself is sent as is).
    async fn form_of(input: &JsValue, init: &JsValue) -> Vec<(String, Option<String>)> {
        let body = if init.is_object() {
            js_sys::Reflect::get(init, &"body".into()).ok().and_then(|b| b.as_string())
        } else {
            None
        };
        let body = match (body, input.dyn_ref::<web_sys::Request>()) {
            (Some(body), _) => Some(body),
            (None, Some(request)) if request.method() != "GET" => {
                match request.clone().and_then(|copy| copy.text()) {
                    Ok(text) => wasm_bindgen_futures::JsFuture::from(text)
                        .await
                        .ok()
                        .and_then(|t| t.as_string()),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        body.map(|b| form_fields(&b)).unwrap_or_default()
    }

    /// The `error` code of a refused answer's JSON body (read from a copy).
    async fn error_code(res: &web_sys::Response) -> Option<String> {
        let text = res.clone().ok()?.text().ok()?;
        let text = wasm_bindgen_futures::JsFuture::from(text).await.ok()?.as_string()?;
        let body: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(body.get("error")?.as_str()?.to_owned())
    }

    /// Wraps `window.fetch` once per page. The wrapper records every call, and adds what DPoP
    /// asks of a request to the hotel (a proof, and `Authorization: DPoP` for a bound key card;
    /// see [`crate::dpop`]) before passing it on with the same arguments otherwise.
    pub fn start(wire: RwSignal<Vec<Exchange>>) {
        let Some(window) = web_sys::window() else { return };
        let Ok(original) = js_sys::Reflect::get(&window, &"fetch".into()) else { return };
        let Ok(original) = original.dyn_into::<js_sys::Function>() else { return };
        let original = original.bind0(&window);
        let wrapper = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(
            move |input: JsValue, init: JsValue| {
                let original = original.clone();
                let started = js_sys::Date::now();
                let (method, url, sent) = request_of(&input, &init);
                let n = wire.with_untracked(|w| w.last().map_or(0, |x| x.n)) + 1;
                wire.update(|w| {
                    // The page may stay open for hours: the wire keeps the latest exchanges.
                    if w.len() >= MAX_EXCHANGES {
                        w.remove(0);
                    }
                    w.push(Exchange {
                        n,
                        at: (started / 1000.0) as i64,
                        method: method.clone(),
                        path: path_of(&url),
                        sent,
                        ..Exchange::default()
                    })
                });
                let answer = wasm_bindgen_futures::future_to_promise(async move {
                    let form = form_of(&input, &init).await;
                    if !form.is_empty() {
                        settle(wire, n, |x| x.form = form);
                    }
                    // Step mode holds the request here, before its proof is made (a proof is
                    // refused a minute after it was signed).
                    gate(wire, n).await;
                    let started = js_sys::Date::now();
                    let (extra, proof) = crate::dpop::for_request(&method, &url).await;
                    let (input, init) = with_headers(input, init, &extra);
                    if !extra.is_empty() {
                        settle(wire, n, |x| {
                            for (name, value) in &extra {
                                if *name == "authorization" {
                                    x.sent.retain(|(n, _)| n != "authorization");
                                    x.sent.push((name.to_string(), shorten_authorization(value)));
                                }
                            }
                            x.proof = proof;
                        });
                    }
                    let fetched = match original.call2(&JsValue::NULL, &input, &init) {
                        Ok(promise) => {
                            wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise))
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    match &fetched {
                        Ok(res) => {
                            let res: &web_sys::Response = res.unchecked_ref();
                            let millis = (js_sys::Date::now() - started).max(0.0) as u32;
                            let headers = res.headers();
                            if let Ok(Some(date)) = headers.get("date") {
                                crate::dpop::observe_server_date(&date);
                            }
                            let got = SHOWN_ANSWER_HEADERS
                                .iter()
                                .filter_map(|name| {
                                    headers.get(name).ok().flatten().map(|v| (name.to_string(), v))
                                })
                                .collect();
                            let note = headers
                                .get(WIRE_HEADER)
                                .ok()
                                .flatten()
                                .and_then(|v| serde_json::from_str::<WireNote>(&v).ok());
                            let status = res.status();
                            let code = if status >= 400 { error_code(res).await } else { None };
                            settle(wire, n, |x| {
                                x.status = Some(status);
                                x.millis = Some(millis);
                                x.got = got;
                                x.note = note;
                                x.code = code;
                            });
                        }
                        Err(e) => settle(wire, n, |x| x.failed = Some(describe_error(e))),
                    }
                    fetched
                });
                answer.into()
            },
        );
        if js_sys::Reflect::set(&window, &"fetch".into(), wrapper.as_ref()).is_ok() {
            // Lives as long as the page.
            wrapper.forget();
        }
    }

    /// `fetch(input, init)`'s arguments with `extra` headers added (to a copy of `init`, which
    /// overrides the headers of a `Request` input).
    fn with_headers(input: JsValue, init: JsValue, extra: &[(&str, String)]) -> (JsValue, JsValue) {
        if extra.is_empty() {
            return (input, init);
        }
        let copy = js_sys::Object::new();
        if init.is_object() {
            let _ = js_sys::Object::assign(&copy, init.unchecked_ref());
        }
        let current =
            js_sys::Reflect::get(&copy, &"headers".into()).ok().filter(|h| !h.is_undefined());
        let headers = match (current, input.dyn_ref::<web_sys::Request>()) {
            (Some(h), _) => web_sys::Headers::new_with_headers(h.unchecked_ref())
                .or_else(|_| web_sys::Headers::new_with_record_from_str_to_str(h.unchecked_ref())),
            (None, Some(request)) => web_sys::Headers::new_with_headers(&request.headers()),
            (None, None) => web_sys::Headers::new(),
        };
        let Ok(headers) = headers else { return (input, init) };
        for (name, value) in extra {
            let _ = headers.set(name, value);
        }
        let _ = js_sys::Reflect::set(&copy, &"headers".into(), &headers);
        (input, copy.into())
    }

    fn settle(wire: RwSignal<Vec<Exchange>>, n: usize, f: impl FnOnce(&mut Exchange)) {
        wire.update(|w| {
            if let Some(x) = w.iter_mut().find(|x| x.n == n) {
                f(x);
            }
        });
    }

    fn describe_error(e: &JsValue) -> String {
        e.dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_else(|| "no answer".to_owned())
    }

    /// Method, URL and the headers the page set, from `fetch(input, init)`.
    fn request_of(input: &JsValue, init: &JsValue) -> (String, String, Vec<(String, String)>) {
        let mut method = "GET".to_owned();
        // A string, or a URL object (the bundle's loader fetches its pieces with one).
        let mut url = input
            .as_string()
            .or_else(|| js_sys::Reflect::get(input, &"href".into()).ok()?.as_string())
            .unwrap_or_default();
        let mut headers = None;
        if let Some(request) = input.dyn_ref::<web_sys::Request>() {
            method = request.method();
            url = request.url();
            headers = Some(request.headers());
        }
        if init.is_object() {
            if let Some(m) =
                js_sys::Reflect::get(init, &"method".into()).ok().and_then(|m| m.as_string())
            {
                method = m.to_uppercase();
            }
            if let Ok(h) = js_sys::Reflect::get(init, &"headers".into()) {
                if let Some(h) = h.dyn_ref::<web_sys::Headers>() {
                    headers = Some(h.clone());
                } else if h.is_object() {
                    headers =
                        web_sys::Headers::new_with_record_from_str_to_str(h.unchecked_ref()).ok();
                }
            }
        }
        let sent = headers
            .map(|h| {
                ["content-type", "accept", "authorization"]
                    .iter()
                    .filter_map(|name| {
                        let value = h.get(name).ok().flatten()?;
                        let value = if *name == "authorization" {
                            shorten_authorization(&value)
                        } else {
                            value
                        };
                        Some((name.to_string(), value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        (method, url, sent)
    }

    /// The path and query of `url`, which may be relative.
    fn path_of(url: &str) -> String {
        let base = web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        match web_sys::Url::new_with_base(url, &base) {
            Ok(u) => format!("{}{}", u.pathname(), u.search()),
            Err(_) => url.to_owned(),
        }
    }
}
