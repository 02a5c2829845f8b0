//! Two processes, two doors: Keycard (this test binary started again as a child, serving the real
//! application) and the spa next door (the `keycard-resource-server` binary), which knows only
//! Keycard's JWKS URL. A key card opens both; after a key rotation new key cards open the spa
//! without restarting it; every forgery is refused by both, with the same error code.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keycard::config::Mode;
use keycard::keys::KeyRing;
use serde_json::{json, Value};

const ISSUER: &str = "http://hotel.test";
const PASSWORD: &str = "correct horse battery";
/// Set in the child's environment: the child serves Keycard from this data folder.
const CHILD: &str = "KEYCARD_TEST_CHILD_DATA_DIR";

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
        let config = keycard::Config::from_lookup(|name| match name {
            "KEYCARD_DATA_DIR" => Some(dir.clone()),
            "KEYCARD_ADDR" => Some(addr.clone()),
            "KEYCARD_PUBLIC_URL" => Some(ISSUER.into()),
            _ => None,
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

fn start_keycard(dir: &Path) -> Process {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["keycard_child_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, dir)
        .env("RUST_LOG", "off");
    start(command)
}

fn start_spa(keycard: &Process) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keycard-resource-server"));
    command
        .env("RESOURCE_SERVER_ADDR", "127.0.0.1:0")
        .env("KEYCARD_JWKS_URL", format!("{}/.well-known/jwks.json", keycard.base))
        .env("KEYCARD_ISSUER", ISSUER)
        .env("KEYCARD_JWKS_MIN_REFETCH_SECS", "1")
        .env("RUST_LOG", "off");
    start(command)
}

struct Hotel {
    keycard: Process,
    spa: Process,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Hotel {
    fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keycard = start_keycard(dir.path());
        let spa = start_spa(&keycard);
        Self { keycard, spa, http: reqwest::Client::new(), dir }
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

    let new_kid = keycard::keys::rotate(&hotel.keys_file(), Mode::Development).unwrap();
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
