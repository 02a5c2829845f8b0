//! Two processes, two doors: Keycard (this test binary started again as a child, serving the real
//! application) and the spa next door (the `keycard-resource-server` binary), which knows only
//! Keycard's JWKS URL. A key card opens both; after a key rotation new key cards open the spa
//! without restarting it; a rotation under load, on one Keycard instance and on two, refuses no
//! key card at either door (the new key is published before it signs); every forgery is refused
//! by both, with the same error code.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keycard::config::Mode;
use keycard::keys::{KeyRing, KeySchedule};
use serde_json::{json, Value};

const ISSUER: &str = "http://hotel.test";
const PASSWORD: &str = "correct horse battery";
/// Set in the child's environment: the child serves Keycard from this data folder.
const CHILD: &str = "KEYCARD_TEST_CHILD_DATA_DIR";
/// Set in the child's environment: more settings, `NAME=VALUE` lines.
const CHILD_SETTINGS: &str = "KEYCARD_TEST_CHILD_SETTINGS";
/// `rotate-keys` as it was before pre-publication: the new key signs at once.
const AT_ONCE: KeySchedule =
    KeySchedule { publish_ahead: Duration::ZERO, keep_verifying: Duration::from_secs(3600) };

/// Not a test of its own: the Keycard process of the tests below (this binary, started again
/// with `CHILD` set and `--ignored --exact`). It checks the key file every 200 ms, so a rotation
/// is picked up at once.
#[test]
#[ignore = "the Keycard child process of the other tests"]
fn keycard_child_process() {
    let Some(dir) = std::env::var_os(CHILD) else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let dir = PathBuf::from(dir).display().to_string();
        let settings = std::env::var(CHILD_SETTINGS).unwrap_or_default();
        let config = keycard::Config::from_lookup(|name| match name {
            "KEYCARD_DATA_DIR" => Some(dir.clone()),
            "KEYCARD_ADDR" => Some(addr.clone()),
            "KEYCARD_PUBLIC_URL" => Some(ISSUER.into()),
            _ => settings.lines().find_map(|l| {
                Some(l.split_once('=')?).filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned())
            }),
        })
        .unwrap();
        let limits = config.limits.clone();
        let (router, desk) = keycard_server::build(config).await.unwrap();
        keycard_server::spawn_housekeeping(desk, Duration::from_millis(200));
        println!("Keycard is open at http://{addr}");
        keycard_server::serve(listener, router, limits, std::future::pending()).await.unwrap();
    });
}

/// A child process, killed when dropped.
struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` and reads its base URL from the first line it prints that names one.
fn start(mut command: Command) -> Process {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let at = line.find("http://127.0.0.1:")?;
            Some(line[at..].split_whitespace().next()?.to_owned())
        })
        .expect("the process printed where it listens");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Process { child, base }
}

fn start_keycard(dir: &Path, settings: &[(&str, &str)]) -> Process {
    let mut command = Command::new(std::env::current_exe().unwrap());
    let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    command
        .args(["keycard_child_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .env(CHILD_SETTINGS, settings.join("\n"))
        .env("RUST_LOG", "off");
    start(command)
}

fn start_spa(keycard: &Process, min_refetch_secs: u64) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keycard-resource-server"));
    command
        .env("RESOURCE_SERVER_ADDR", "127.0.0.1:0")
        .env("KEYCARD_JWKS_URL", format!("{}/.well-known/jwks.json", keycard.base))
        .env("KEYCARD_ISSUER", ISSUER)
        .env("KEYCARD_JWKS_MIN_REFETCH_SECS", min_refetch_secs.to_string())
        .env("RUST_LOG", "off");
    start(command)
}

struct Hotel {
    keycard: Process,
    /// More Keycard instances on the same data folder (database and key file), if any.
    more: Vec<Process>,
    spa: Process,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Hotel {
    fn open() -> Self {
        Self::open_with(1, &[], 1)
    }

    /// `instances` Keycard processes with `settings`, and a spa that fetches the JWKS (from the
    /// first) at most once per `min_refetch_secs`.
    fn open_with(instances: usize, settings: &[(&str, &str)], min_refetch_secs: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keycard = start_keycard(dir.path(), settings);
        let more = (1..instances).map(|_| start_keycard(dir.path(), settings)).collect();
        let spa = start_spa(&keycard, min_refetch_secs);
        Self { keycard, more, spa, http: reqwest::Client::new(), dir }
    }

    /// The Keycard instances' base URLs.
    fn instances(&self) -> Vec<String> {
        std::iter::once(&self.keycard).chain(&self.more).map(|p| p.base.clone()).collect()
    }

    /// Registers `name`: their key card and booking confirmation.
    async fn guest(&self, name: &str) -> (String, String) {
        let res = self
            .http
            .post(format!("{}/api/auth/register", self.keycard.base))
            .form(&[("username", name), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        tokens_of(res).await
    }

    /// The status and error code (or "ok") of `token` at one door.
    async fn try_door(&self, url: String, token: &str) -> (u16, String) {
        let res = self.http.get(url).bearer_auth(token).send().await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or_default();
        (status, body["error"].as_str().unwrap_or("ok").to_owned())
    }

    /// What the hotel's gym and the spa next door say to `token`.
    async fn both(&self, token: &str) -> [(u16, String); 2] {
        [
            self.try_door(format!("{}/amenities/gym", self.keycard.base), token).await,
            self.try_door(format!("{}/spa", self.spa.base), token).await,
        ]
    }

    async fn spa_fetches(&self) -> u64 {
        let health: Value = self
            .http
            .get(format!("{}/healthz", self.spa.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        health["jwks_fetches"].as_u64().unwrap()
    }

    fn keys_file(&self) -> PathBuf {
        self.dir.path().join("signing-keys.json")
    }
}

/// The key card (body) and booking confirmation (cookie) of a check-in or front-desk answer.
async fn tokens_of(res: reqwest::Response) -> (String, String) {
    let confirmation = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("__Secure-confirmation="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let body: Value = res.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), confirmation)
}

fn ok() -> [(u16, String); 2] {
    [(200, "ok".into()), (200, "ok".into())]
}

fn refused(code: &str) -> [(u16, String); 2] {
    [(401, code.into()), (401, code.into())]
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let mut json = || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap());
    let (header, claims) = (json().unwrap(), json().unwrap());
    (header, claims, token.rsplit('.').next().unwrap().to_owned())
}

#[tokio::test]
async fn a_key_card_opens_both_doors_and_every_forgery_is_refused_by_both() {
    let hotel = Hotel::open();
    let (key_card, confirmation) = hotel.guest("ann").await;
    assert_eq!(hotel.both(&key_card).await, ok());

    let (header, claims, signature) = parts(&key_card);
    let ring = KeyRing::open(hotel.keys_file(), Mode::Development).unwrap();
    let keys = ring.current();
    // Signs `claims` with the hotel's real key under `header` (genuine signatures, wrong content).
    let signed = |header: Header, claims: &Value| {
        jsonwebtoken::encode(&header, claims, keys.signing_key()).unwrap()
    };
    let genuine_header = || {
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = Some("at+jwt".into());
        h.kid = header["kid"].as_str().map(str::to_owned);
        h
    };
    let with = |changes: Value| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().extend(changes.as_object().unwrap().clone());
        c
    };
    let now = claims["iat"].as_i64().unwrap();

    let tampered_signature = {
        let mut s = signature.clone();
        let last = if s.ends_with('A') { "B" } else { "A" };
        s.replace_range(s.len() - 1.., last);
        format!("{}.{}.{s}", b64(&header), b64(&claims))
    };
    let another_guest = format!("{}.{}.{signature}", b64(&header), b64(&with(json!({"sub": "x"}))));
    let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "at+jwt"})), b64(&claims));
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = header["kid"].as_str().map(str::to_owned);
        let public = ring.current().jwks().keys[0].x.clone();
        let key = EncodingKey::from_secret(public.as_bytes());
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    };
    let unknown_kid = {
        let mut h = genuine_header();
        h.kid = Some("made-up".into());
        signed(h, &claims)
    };
    let jku = {
        let mut h = genuine_header();
        h.jku = Some("https://evil.example/jwks.json".into());
        signed(h, &claims)
    };
    let no_typ = {
        let mut h = genuine_header();
        h.typ = None;
        signed(h, &claims)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("a changed signature", tampered_signature, "key_card_invalid"),
        ("another guest's sub, old signature", another_guest, "key_card_invalid"),
        ("alg none, no signature", alg_none, "key_card_invalid"),
        ("HS256 keyed with the public key", hs256, "key_card_invalid"),
        ("a kid the hotel never published", unknown_kid, "key_card_invalid"),
        ("a jku header", jku, "key_card_invalid"),
        ("no typ", no_typ, "key_card_invalid"),
        ("the booking confirmation", confirmation, "key_card_invalid"),
        (
            "another audience",
            signed(genuine_header(), &with(json!({"aud": "x"}))),
            "key_card_invalid",
        ),
        (
            "another issuer",
            signed(genuine_header(), &with(json!({"iss": "x"}))),
            "key_card_invalid",
        ),
        (
            "no exp",
            signed(genuine_header(), &{
                let mut c = claims.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            "key_card_invalid",
        ),
        (
            "made an hour ahead",
            signed(
                genuine_header(),
                &with(json!({
                    "iat": now + 3600, "nbf": now + 3600, "exp": now + 3700
                })),
            ),
            "key_card_invalid",
        ),
        (
            "expired a minute ago",
            signed(
                genuine_header(),
                &with(json!({
                    "iat": now - 180, "nbf": now - 180, "exp": now - 60
                })),
            ),
            "key_card_expired",
        ),
        ("five kilobytes", format!("{key_card}{}", "A".repeat(5000)), "key_card_invalid"),
        ("not a JWT", "not-a-jwt".into(), "key_card_invalid"),
    ];
    for (what, token, code) in &cases {
        assert_eq!(hotel.both(token).await, refused(code), "{what}");
    }
    // The genuine card still opens both after all that.
    assert_eq!(hotel.both(&key_card).await, ok());
}

#[tokio::test]
async fn after_a_key_rotation_new_key_cards_open_the_spa_without_a_restart() {
    let hotel = Hotel::open();
    let (old_card, _) = hotel.guest("ann").await;
    assert_eq!(hotel.both(&old_card).await, ok());
    let fetches = hotel.spa_fetches().await;
    let old_kid = parts(&old_card).0["kid"].clone();

    let new_kid =
        keycard::keys::rotate(&hotel.keys_file(), Mode::Development, &AT_ONCE).unwrap().kid;
    // Keycard picks the new key up at its next look at the file (every 200 ms here).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tries = 0;
    let new_card = loop {
        tries += 1;
        let (card, _) = hotel.guest(&format!("bob{tries}")).await;
        if parts(&card).0["kid"] == json!(new_kid) {
            break card;
        }
        assert!(Instant::now() < deadline, "Keycard never signed with the new key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(json!(new_kid), old_kid);
    // The spa fetches at most once a second here (KEYCARD_JWKS_MIN_REFETCH_SECS=1), and it last
    // fetched at the first check: a new kid within that second would wait for the next one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The spa has never seen this kid: it fetches the JWKS again, once, and lets the guest in.
    assert_eq!(hotel.both(&new_card).await, ok());
    assert_eq!(hotel.spa_fetches().await, fetches + 1);
    // The previous key still verifies until its key cards have expired.
    assert_eq!(hotel.both(&old_card).await, ok());
}

#[tokio::test]
async fn made_up_kids_cannot_make_the_spa_flood_the_hotel() {
    let hotel = Hotel::open();
    let (key_card, _) = hotel.guest("ann").await;
    assert_eq!(hotel.both(&key_card).await, ok());
    let fetches = hotel.spa_fetches().await;
    let (header, claims, signature) = parts(&key_card);
    let started = Instant::now();
    for i in 0..50 {
        let mut h = header.clone();
        h["kid"] = json!(format!("made-up-{i}"));
        let token = format!("{}.{}.{signature}", b64(&h), b64(&claims));
        assert_eq!(
            hotel.try_door(format!("{}/spa", hotel.spa.base), &token).await,
            (401, "key_card_invalid".into())
        );
    }
    // At most one fetch per second (KEYCARD_JWKS_MIN_REFETCH_SECS=1) however many kids came.
    let allowed = started.elapsed().as_secs() + 1;
    let made = hotel.spa_fetches().await - fetches;
    assert!(made <= allowed, "{made} fetches in {:?}", started.elapsed());
}

/// A key card bound to a DPoP key (RFC 9449) opens the spa only with a fresh proof of that key:
/// the spa checks it by the hotel's rules, knowing only the JWKS URL, and accepts each proof once.
#[tokio::test]
async fn a_bound_key_card_opens_the_spa_only_with_its_proof() {
    use keycard::dpop::ProofKey;
    let hotel = Hotel::open();
    let key = ProofKey::generate();
    let now = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    };
    // Check-in with a proof: the hotel's public URL is what the proof names.
    let proof = key.proof("POST", &format!("{ISSUER}/api/auth/register"), None, now());
    let res = hotel
        .http
        .post(format!("{}/api/auth/register", hotel.keycard.base))
        .form(&[("username", "ann"), ("password", PASSWORD)])
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let card = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let spa = format!("{}/spa", hotel.spa.base);
    let visit = |scheme: &str, proof: Option<String>| {
        let mut req = hotel.http.get(&spa).header("authorization", format!("{scheme} {card}"));
        if let Some(proof) = proof {
            req = req.header("dpop", proof);
        }
        req.send()
    };
    let proof = key.proof("GET", &spa, Some(&card), now());
    let res = visit("DPoP", Some(proof.clone())).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["bound_to_key"], true);
    for (what, scheme, proof, rule) in [
        ("the same proof again", "DPoP", Some(proof), "jti"),
        ("as a bearer token", "Bearer", None, "missing"),
        ("without a proof", "DPoP", None, "missing"),
        (
            "another key's proof",
            "DPoP",
            Some(ProofKey::generate().proof("GET", &spa, Some(&card), now())),
            "key",
        ),
        (
            "a proof for the hotel",
            "DPoP",
            Some(key.proof("GET", &format!("{ISSUER}/amenities/gym"), Some(&card), now())),
            "htu",
        ),
    ] {
        let res = visit(scheme, proof).await.unwrap();
        assert_eq!(res.status(), 401, "{what}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("DPoP error=\"invalid_dpop_proof\""), "{what}: {challenge}");
        assert_eq!(res.json::<Value>().await.unwrap()["rule"], rule, "{what}");
    }
}

/// What a rotation under load saw.
#[derive(Default)]
struct Load {
    /// Every answer other than 200: (door, status, error code, kid of the key card shown).
    refusals: Vec<(String, u16, String, String)>,
    /// Key cards shown at the doors, by kid.
    shown: std::collections::BTreeMap<String, u64>,
}

/// Guests visit the front desk (of each instance in turn) and show each new key card at the
/// hotel's gym (of the next instance) and at the spa, without pause, while `rotate-keys` runs
/// with `schedule` just after the spa fetched the JWKS (so its copy is as old as it will get
/// before the new key is needed). The load goes on until key cards of the new key have been
/// shown for two seconds.
async fn rotate_under_load(hotel: &Hotel, schedule: KeySchedule) -> (Load, String) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let instances = hotel.instances();
    let load = Arc::new(Mutex::new(Load::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for n in 0..4 {
        let (_, mut confirmation) = hotel.guest(&format!("guest{n}")).await;
        let (http, spa) = (hotel.http.clone(), format!("{}/spa", hotel.spa.base));
        let (instances, load, stop) = (instances.clone(), load.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut turn = n;
            while !stop.load(Ordering::Relaxed) {
                turn += 1;
                let desk = &instances[turn % instances.len()];
                let gym = format!("{}/amenities/gym", instances[(turn + 1) % instances.len()]);
                let res = http
                    .post(format!("{desk}/api/auth/refresh"))
                    .header("cookie", format!("__Secure-confirmation={confirmation}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200, "the front desk refused a current confirmation");
                let key_card;
                (key_card, confirmation) = tokens_of(res).await;
                let kid = parts(&key_card).0["kid"].as_str().unwrap().to_owned();
                for (door, url) in [("gym", &gym), ("spa", &spa)] {
                    let res = http.get(url).bearer_auth(&key_card).send().await.unwrap();
                    let status = res.status().as_u16();
                    let body: Value = res.json().await.unwrap_or_default();
                    let mut load = load.lock().unwrap();
                    *load.shown.entry(kid.clone()).or_default() += 1;
                    if status != 200 {
                        let code = body["error"].as_str().unwrap_or("").to_owned();
                        load.refusals.push((door.into(), status, code, kid.clone()));
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetched = hotel.spa_fetches().await;
    while hotel.spa_fetches().await == fetched {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let new_kid =
        keycard::keys::rotate(&hotel.keys_file(), Mode::Development, &schedule).unwrap().kid;
    let deadline = Instant::now() + schedule.publish_ahead + Duration::from_secs(10);
    let mut first_seen = None;
    while first_seen.is_none_or(|at: Instant| at.elapsed() < Duration::from_secs(2)) {
        assert!(Instant::now() < deadline, "no key card of the new key within the deadline");
        if first_seen.is_none() && load.lock().unwrap().shown.contains_key(&new_kid) {
            first_seen = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let load = std::mem::take(&mut *load.lock().unwrap());
    (load, new_kid)
}

/// Keycard's JWKS may be kept 1 s, the spa fetches it at most every 3 s, and a new key is
/// published 6 s before it signs: longer than both, and than the instances' 200 ms reload.
const ROTATION_SETTINGS: &[(&str, &str)] = &[
    ("KEYCARD_JWKS_MAX_AGE_SECS", "1"),
    ("KEYCARD_KEY_PUBLISH_AHEAD_SECS", "6"),
    ("KEYCARD_REFRESH_PER_ADDRESS_PER_MINUTE", "1000000"),
    ("KEYCARD_LOGIN_PER_ADDRESS_PER_MINUTE", "1000"),
];
const SPA_MIN_REFETCH_SECS: u64 = 3;
const PUBLISHED_AHEAD: KeySchedule = KeySchedule {
    publish_ahead: Duration::from_secs(6),
    keep_verifying: Duration::from_secs(3600),
};

async fn a_rotation_under_load_refuses_nothing(instances: usize) {
    let hotel = Hotel::open_with(instances, ROTATION_SETTINGS, SPA_MIN_REFETCH_SECS);
    let (load, new_kid) = rotate_under_load(&hotel, PUBLISHED_AHEAD).await;
    assert!(load.refusals.is_empty(), "refused during the rotation: {:?}", load.refusals);
    assert_eq!(load.shown.len(), 2, "key cards of the old key, then of the new: {:?}", load.shown);
    assert!(load.shown[&new_kid] > 0);
    println!("{instances} instance(s): {:?} key cards shown by kid, none refused", load.shown);
}

#[tokio::test]
async fn a_rotation_under_load_refuses_no_key_card_at_either_door_on_one_instance() {
    a_rotation_under_load_refuses_nothing(1).await;
}

#[tokio::test]
async fn a_rotation_under_load_refuses_no_key_card_at_either_door_on_two_instances() {
    a_rotation_under_load_refuses_nothing(2).await;
}

/// The same load with a key that signs at once (`rotate-keys` before pre-publication): the spa
/// meets key cards of a key its copy of the JWKS lacks, and refuses them until it may fetch
/// again. What the tests above would see if the key were not published ahead.
#[tokio::test]
async fn without_pre_publication_the_same_rotation_gets_key_cards_refused_at_the_spa() {
    let hotel = Hotel::open_with(1, ROTATION_SETTINGS, SPA_MIN_REFETCH_SECS);
    let (load, new_kid) = rotate_under_load(&hotel, AT_ONCE).await;
    assert!(
        load.refusals.iter().any(|(door, status, code, kid)| {
            (door.as_str(), *status, code.as_str(), kid)
                == ("spa", 401, "key_card_invalid", &new_kid)
        }),
        "{:?}",
        load.refusals
    );
    // The hotel's own door reloads its ring on an unknown kid: only the spa refused.
    assert!(load.refusals.iter().all(|(door, ..)| door == "spa"), "{:?}", load.refusals);
}
