//! The page fuzzer: every page, requested as a browser would (`Accept: text/html`), signed out and
//! checked in, with hostile query strings and paths: every control character raw and
//! percent-encoded, overlong values, broken percent-encoding and UTF-8, tricky unicode, thousands
//! of parameters, repeated `next`, and the hostile redirect table. Each must be answered within
//! 5 s with a status below 500, and nothing may panic.
//!
//! A table rather than random generation: every case is named, the run is the same each time,
//! and a failure prints the exact bytes to replay. Run with `harness = false` so its counts are
//! printed by plain `cargo test`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

static PANICS: AtomicUsize = AtomicUsize::new(0);

const PAGES: [&str; 7] =
    ["/", "/login", "/register", "/room", "/amenities", "/sessions", "/nowhere"];

/// One hostile value, as the raw bytes that go into the request target.
struct Value {
    name: String,
    bytes: Vec<u8>,
}

fn value(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Value {
    Value { name: name.into(), bytes: bytes.into() }
}

fn percent(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| format!("%{b:02X}").into_bytes()).collect()
}

fn values() -> Vec<Value> {
    let mut out = Vec::new();
    for c in (0x00u8..=0x1F).chain([0x7F]) {
        out.push(value(format!("raw 0x{c:02X}"), [b'/', c, b'/', b'x']));
        out.push(value(
            format!("encoded 0x{c:02X}"),
            [b"/".as_slice(), &percent(&[c]), b"/x"].concat(),
        ));
    }
    out.push(value("64 KB", vec![b'a'; 64 * 1024]));
    out.push(value("96 KB encoded", percent(&[b'/'; 32 * 1024])));
    out.push(value("64 KB of slashes", vec![b'/'; 64 * 1024]));
    for (name, bad) in [
        ("lone percent", "%"),
        ("percent, one digit", "%4"),
        ("percent, not hex", "%G1"),
        ("double percent", "%%2F"),
        ("truncated UTF-8", "%E2%82"),
        ("not UTF-8", "%FF%FE"),
        ("overlong slash", "%C0%AF%C0%AFevil.example"),
        ("surrogate", "%ED%A0%80"),
        ("encoded NUL and CRLF", "%00%0D%0ALocation:%20//evil.example"),
    ] {
        out.push(value(name, bad));
    }
    for (name, raw) in [
        ("raw 0xFF", &b"/\xFF/x"[..]),
        ("raw overlong slash", b"\xC0\xAF\xC0\xAFevil.example"),
        ("raw continuation byte", b"/\x80"),
        ("raw space", b"/ x"),
        ("raw backslashes", b"\\\\evil.example"),
    ] {
        out.push(value(name, raw));
    }
    for (name, text) in [
        ("right-to-left override", "/\u{202E}moor"),
        ("right-to-left mark", "/\u{200F}//evil.example"),
        ("zero-width space", "/\u{200B}/evil.example"),
        ("byte order mark", "\u{FEFF}//evil.example"),
        ("fullwidth solidus", "\u{FF0F}\u{FF0F}evil.example"),
        ("ideographic full stop", "//evil\u{3002}example"),
        ("combining marks", "/a\u{0301}\u{0301}\u{0301}\u{0301}\u{0301}\u{0301}"),
        ("emoji", "/\u{1F6CE}\u{FE0F}"),
    ] {
        out.push(value(format!("{name}, raw"), text.as_bytes()));
        out.push(value(format!("{name}, encoded"), percent(text.as_bytes())));
    }
    let table: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../../app/hostile-next.json")).unwrap();
    for row in table {
        let next = row["next"].as_str().unwrap();
        let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        out.push(value(format!("table: {}", row["name"].as_str().unwrap()), encoded));
    }
    out
}

/// Request targets for one page: each value in `next`, in the page's other parameter (`error`
/// on the forms), in a parameter nobody reads, and in the path; plus the many-parameter cases.
fn targets(page: &str, values: &[Value]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let at = |query: &[u8]| [page.as_bytes(), b"?", query].concat();
    for v in values {
        out.push((format!("{page} next={}", v.name), at(&[b"next=", v.bytes.as_slice()].concat())));
        out.push((
            format!("{page} error={}", v.name),
            at(&[b"error=", v.bytes.as_slice()].concat()),
        ));
        out.push((
            format!("{page} x={}", v.name),
            at(&[b"x=", v.bytes.as_slice(), b"&next=/room"].concat()),
        ));
        let path = page.trim_end_matches('/');
        out.push((format!("{page}/<{}>", v.name), [path.as_bytes(), b"/", &v.bytes].concat()));
    }
    out.push((format!("{page} 5000 parameters"), at("a=1&".repeat(5000).as_bytes())));
    out.push((format!("{page} 5000 next"), at("next=//evil.example&".repeat(5000).as_bytes())));
    out.push((
        format!("{page} repeated next"),
        at(b"next=/amenities&next=//evil.example&next=javascript:alert(1)"),
    ));
    out.push((format!("{page} empty names"), at(b"=&&=&next&next=&=x")));
    out
}

fn main() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let failures = runtime.block_on(run());
    let panics = PANICS.load(Ordering::SeqCst);
    if failures > 0 || panics > 0 {
        eprintln!("page fuzzer: {failures} failures, {panics} panics");
        std::process::exit(1);
    }
}

async fn run() -> usize {
    let app = spawn_app_with(|c| c.lifetimes.key_card = Duration::from_secs(3600)).await;
    let ann = app.guest("ann").await;
    let values = values();
    let mut cases = Vec::new();
    for page in PAGES {
        for (name, target) in targets(page, &values) {
            cases.push((format!("signed out: {name}"), target.clone(), None));
            cases.push((format!("checked in: {name}"), target, Some(ann.key_card.clone())));
        }
    }
    let total = cases.len();
    let started = Instant::now();
    let addr = app.addr;
    let gate = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::new();
    for (name, target, key_card) in cases {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let mut head = [b"GET ", target.as_slice(), b" HTTP/1.1\r\nHost: 127.0.0.1"].concat();
            head.extend_from_slice(b"\r\nAccept: text/html,application/xhtml+xml");
            if let Some(card) = key_card {
                head.extend_from_slice(format!("\r\nCookie: __Host-keycard={card}").as_bytes());
            }
            let answer = raw_request(addr, &head, b"", Duration::from_secs(5)).await;
            (name, answer.map(|a| a.status))
        }));
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failures = 0;
    for task in tasks {
        let (name, status) = task.await.unwrap();
        match status {
            Some(status) if status < 500 => *statuses.entry(status).or_default() += 1,
            Some(status) => {
                failures += 1;
                eprintln!("FAILED {name}: {status}");
            }
            None => {
                failures += 1;
                eprintln!("FAILED {name}: no answer within 5 s");
            }
        }
    }
    let took = started.elapsed();
    println!(
        "page fuzzer: {total} requests to {} pages in {took:.1?}; statuses {statuses:?}",
        PAGES.len()
    );
    println!("{} passed, {failures} failed", total - failures);
    failures
}
