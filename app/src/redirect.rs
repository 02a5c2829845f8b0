//! Where a guest may be sent: the one decision for every navigation target that comes from input
//! (`next` on check-in and registration, the links that carry it, the server's redirect of the
//! no-JavaScript flow, the page's own navigation after check-in, and the no-JavaScript error
//! redirect back to the form's page).
//!
//! A prefix check ("starts with one `/`") is not enough: browsers resolve `/\evil.example`,
//! `/<TAB>/evil.example` or `https:evil.example` to another host (CWE-601). So the target is
//! resolved exactly as a browser would, by a WHATWG URL parser, against the site's own origin, and
//! accepted only when the result is still that origin. The caller then navigates to the
//! *normalised* result, never to the raw input: it is ASCII, percent-encoded and free of control
//! characters, so it is also always a valid `Location` header value.
//!
//! The parser: on the server the `url` crate; in the browser the browser's own `URL`, the very
//! parser that will follow the link (and the `url` crate's Unicode tables stay out of the
//! bundle). Both implement the WHATWG URL Standard; the hostile table (`hostile-next.json`) holds
//! the first to it in the unit tests below and the second in Chromium (end2end/redirects.spec.ts).

/// An origin targets are resolved against (`scheme://host[:port]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin(
    #[cfg(not(target_arch = "wasm32"))] url::Url,
    #[cfg(target_arch = "wasm32")] String,
);

#[cfg(not(target_arch = "wasm32"))]
impl Origin {
    /// The origin of `url` (its credentials, path, query and fragment are ignored: a relative
    /// target joined to it would otherwise inherit them, and be refused for its credentials).
    pub fn of(url: &url::Url) -> Self {
        let mut origin = url.clone();
        // Both fail only for a URL without a host, which is no origin to resolve against anyway.
        let _ = origin.set_username("");
        let _ = origin.set_password(None);
        origin.set_path("/");
        origin.set_query(None);
        origin.set_fragment(None);
        Self(origin)
    }

    /// The origin of an absolute URL, or `None` when `raw` is not one.
    pub fn parse(raw: &str) -> Option<Self> {
        url::Url::parse(raw).ok().map(|url| Self::of(&url))
    }
}

/// The site's configured public URL (`KEYCARD_PUBLIC_URL`), which the server provides as context.
#[cfg(feature = "ssr")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteOrigin(pub url::Url);

/// The origin targets are resolved against: the page's own in the browser; on the server, the
/// origin the request was made to (see [`request_origin`]).
pub fn site_origin() -> Origin {
    #[cfg(target_arch = "wasm32")]
    {
        let origin = leptos::prelude::window().location().origin().unwrap_or_default();
        Origin(origin)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        #[cfg(feature = "ssr")]
        if let Some(public) = leptos::prelude::use_context::<SiteOrigin>() {
            return match leptos::prelude::use_context::<http::request::Parts>() {
                Some(parts) => request_origin(&public.0, &parts.headers),
                None => Origin::of(&public.0),
            };
        }
        Origin::parse("http://localhost").expect("a valid literal")
    }
}

/// The origin a request was made to: the public URL's scheme with the request's `Host`, so that a
/// learner on `localhost` and one on `127.0.0.1` are each at home. This only decides whether an
/// *absolute* URL to this site is accepted; whatever the `Host` says, the answer is a path, so a
/// forged `Host` can at worst send its own sender to a page of this site.
#[cfg(feature = "ssr")]
pub fn request_origin(public: &url::Url, headers: &http::HeaderMap) -> Origin {
    headers
        .get(http::header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| url::Url::parse(&format!("{}://{host}", public.scheme())).ok())
        .filter(|url| url.path() == "/" && url.query().is_none())
        .filter(|url| url.username().is_empty() && url.password().is_none())
        .map(|url| Origin::of(&url))
        .unwrap_or_else(|| Origin::of(public))
}

/// Where a guest goes after check-in when `next` is missing or refused.
pub const ROOM: &str = "/room";

/// Longest `next` accepted, in bytes once normalised. Longer ones (a 64 KB `next`, say) would
/// make a `Location` header, and every link that carries them, some browsers and proxies refuse.
pub const MAX_TARGET_BYTES: usize = 2048;

/// `raw` as a path on `origin` (path, query and fragment, normalised), or `None` when a browser
/// would take it anywhere else: another host, port or scheme, `javascript:` and every other
/// scheme, a URL with credentials, or a result that would itself read as scheme-relative
/// (`//host`).
///
/// ```
/// use keycard_app::redirect::{local_target, Origin};
/// let site = Origin::parse("https://hotel.example").unwrap();
/// assert_eq!(local_target("/amenities?x=1#gym", &site).as_deref(), Some("/amenities?x=1#gym"));
/// assert_eq!(local_target("/\\evil.example", &site), None);
/// assert_eq!(local_target("/\t/evil.example", &site), None);
/// assert_eq!(local_target("https://hotel.example/room", &site).as_deref(), Some("/room"));
/// ```
pub fn local_target(raw: &str, origin: &Origin) -> Option<String> {
    let local = resolve_local(raw, origin)?;
    // A path that begins `//` (from `/.//host`, say) is scheme-relative once used on its own.
    let scheme_relative = local.starts_with("//") || local.starts_with("/\\");
    (!scheme_relative && local.starts_with('/')).then_some(local)
}

/// `raw` resolved against `origin`: its path, query and fragment as serialised, when it stays on
/// that origin and carries no credentials.
#[cfg(not(target_arch = "wasm32"))]
fn resolve_local(raw: &str, origin: &Origin) -> Option<String> {
    let resolved = origin.0.join(raw).ok()?;
    let credentials = !resolved.username().is_empty() || resolved.password().is_some();
    if resolved.origin() != origin.0.origin() || credentials {
        return None;
    }
    Some(resolved[url::Position::BeforePath..].to_owned())
}

/// `raw` resolved against `origin` by the browser's `URL`: its serialisation (`href`) starts with
/// the origin when it stays there without credentials, and what follows is the path, query and
/// fragment exactly as serialised (an empty `?` or `#` kept, as on the server).
#[cfg(target_arch = "wasm32")]
fn resolve_local(raw: &str, origin: &Origin) -> Option<String> {
    let resolved = web_sys::Url::new_with_base(raw, &origin.0).ok()?;
    let credentials = !resolved.username().is_empty() || !resolved.password().is_empty();
    if resolved.origin() != origin.0 || credentials {
        return None;
    }
    resolved.href().strip_prefix(origin.0.as_str()).map(str::to_owned)
}

/// The page to open after check-in: `next` when [`local_target`] accepts it, else the room.
/// A `next` that is empty once the URL parser strips its spaces and control characters counts as
/// none (it would otherwise resolve to the lobby).
pub fn next_or_room(next: Option<&str>, origin: &Origin) -> String {
    next.filter(|raw| raw.chars().any(|c| c > ' '))
        .and_then(|raw| local_target(raw, origin))
        .filter(|target| target.len() <= MAX_TARGET_BYTES)
        .unwrap_or_else(|| ROOM.to_owned())
}

/// The first `next` of a raw query string (without its `?`), decoded once, as the browser's
/// `URLSearchParams.get` does. Not leptos_router's query map: it decodes every value a second
/// time (`ParamsMap::insert`), so `%252F` would arrive as `/`, and differently on the server
/// and in the browser.
pub fn next_param(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "next")
        .map(|(_, value)| value.into_owned())
}

/// `path` with `?next=<target>`, the target percent-encoded as one query value.
pub fn with_next(path: &str, target: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    // `path` may carry a query of its own, ending in `&`.
    let joiner = if path.ends_with('&') { "" } else { "?" };
    format!("{path}{joiner}next={encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// One row of the hostile table, shared with the Playwright test (`end2end/tests/redirects.spec.ts`).
    #[derive(Deserialize)]
    struct Row {
        name: String,
        next: String,
        /// Where the guest must land: the room, or the given same-origin path.
        expect: String,
    }

    fn rows() -> Vec<Row> {
        let mut rows: Vec<Row> = serde_json::from_str(include_str!("../hostile-next.json"))
            .expect("hostile-next.json parses");
        // Too long for a JSON table. (The Playwright test uses shorter ones that a browser can carry.)
        rows.push(Row {
            name: "very long path".into(),
            next: format!("/{}", "a".repeat(70_000)),
            expect: ROOM.into(),
        });
        rows.push(Row {
            name: "very long host".into(),
            next: format!("//{}.example", "a".repeat(5_000)),
            expect: ROOM.into(),
        });
        rows
    }

    const SITE: &str = "http://127.0.0.1:3000";

    fn site() -> Origin {
        Origin::parse(SITE).unwrap()
    }

    #[test]
    fn every_hostile_target_stays_on_the_site() {
        let rows = rows();
        assert!(rows.len() >= 25, "the table has {} rows", rows.len());
        for row in &rows {
            let got = next_or_room(Some(&row.next), &site());
            assert_eq!(got, row.expect, "{}: {:?}", row.name, row.next);
            // Whatever it is, a browser resolving it stays here, and it fits in a header.
            let landed = url::Url::parse(SITE).unwrap().join(&got).unwrap();
            assert_eq!(Origin::of(&landed), site(), "{}", row.name);
            assert!(!got.starts_with("//") && got.bytes().all(|b| b.is_ascii_graphic()), "{got:?}");
        }
    }

    #[test]
    fn local_targets_keep_their_path_query_and_fragment() {
        for (raw, want) in [
            ("/amenities", "/amenities"),
            ("/sessions?tab=all#mine", "/sessions?tab=all#mine"),
            ("sessions", "/sessions"),
            ("/room/../amenities", "/amenities"),
            ("http://127.0.0.1:3000/amenities", "/amenities"),
            ("/caf\u{e9}", "/caf%C3%A9"),
        ] {
            assert_eq!(local_target(raw, &site()).as_deref(), Some(want), "{raw:?}");
        }
        assert_eq!(next_or_room(None, &site()), ROOM);
        assert_eq!(next_or_room(Some(""), &site()), ROOM);
        assert_eq!(next_or_room(Some("/"), &site()), "/");
    }

    #[test]
    fn an_origin_is_only_scheme_host_and_port() {
        let url = url::Url::parse("http://user:pw@127.0.0.1:3000/room?x=1#y").unwrap();
        assert_eq!(Origin::of(&url), site());
        assert_eq!(local_target("amenities", &Origin::of(&url)).as_deref(), Some("/amenities"));
    }

    #[test]
    fn next_is_read_from_the_raw_query_and_decoded_once() {
        assert_eq!(
            next_param("next=%2F%252F%252Fevil.example").as_deref(),
            Some("/%2F%2Fevil.example")
        );
        assert_eq!(next_param("a=1&next=/one&next=/two").as_deref(), Some("/one"));
        assert_eq!(next_param("next=%0A&x").as_deref(), Some("\n"));
        assert_eq!(next_param("nextx=/a"), None);
        assert_eq!(next_param("next=%FF").as_deref(), Some("\u{FFFD}"));
    }

    #[test]
    fn with_next_encodes_the_whole_target_as_one_value() {
        assert_eq!(
            with_next("/login", "/room?a=1&b=2#x"),
            "/login?next=%2Froom%3Fa%3D1%26b%3D2%23x"
        );
        let back: Vec<(String, String)> = form_urlencoded::parse(
            with_next("/login", "/a b&c").split_once('?').unwrap().1.as_bytes(),
        )
        .into_owned()
        .collect();
        assert_eq!(back, vec![("next".to_owned(), "/a b&c".to_owned())]);
    }
}
