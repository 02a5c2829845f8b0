//! Benchmarks of the hot paths: cutting and checking a key card (with and without the verified
//! key card cache), making and checking a DPoP proof (EdDSA and ES256), one front-desk rotation
//! on SQLite (a real file in WAL mode), and the password check for a known guest against an
//! unknown one (the two must cost the same, or login tells who has an account). Run with
//! `cargo bench --bench tokens`.

use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion};
use keycard::front_desk::ClientInfo;
use keycard::key_card::{self, KeyCardRequest};
use keycard::keys::KeyRing;
use keycard::passwords::Passwords;
use keycard::storage::sqlite::SqliteStore;
use keycard::{Clock, Config, FrontDesk};

fn key_cards(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_data_dir(dir.path());
    let ring = KeyRing::open(&config.keys_file, config.mode).unwrap();
    let keys = ring.current();
    let clock = Clock::system();
    let request = KeyCardRequest {
        issuer: &config.issuer,
        audience: &config.audience,
        client_id: &config.client_id,
        user_id: "guest-id",
        username: "ann",
        session_id: "session-id",
        lifetime_secs: 120,
        extra: Default::default(),
        jkt: None,
    };
    c.bench_function("key card: issue (Ed25519 sign)", |b| {
        b.iter(|| key_card::issue(&keys, &request, clock.now()))
    });
    let (token, _) = key_card::issue(&keys, &request, clock.now());
    c.bench_function("key card: verify (header checks + Ed25519 verify)", |b| {
        b.iter(|| {
            key_card::verify(&token, keys.public(), &config.issuer, &config.audience, &clock)
                .unwrap()
        })
    });
}

/// A DPoP proof's stateless checks (RFC 9449, section 4.3: the `jti` store and the binding
/// aside), for each algorithm the doors accept, and making one (what a client pays).
fn dpop_proofs(c: &mut Criterion) {
    use keycard::dpop::{access_token_hash, ProofKey};
    use keycard_dpop::Expected;
    const URL: &str = "https://hotel.example/amenities/gym";
    const TOKEN: &str = "a key card's bytes";
    let now = 1_800_000_000;
    let expected = Expected { method: "GET", url: URL, access_token: Some(TOKEN), now };
    let eddsa = ProofKey::generate();
    let proof = eddsa.proof("GET", URL, Some(TOKEN), now);
    let es256 = es256_proof(now);
    let mut group = c.benchmark_group("DPoP proof");
    group.bench_function("make (EdDSA, client side)", |b| {
        b.iter(|| eddsa.proof("GET", URL, Some(TOKEN), now))
    });
    group.bench_function("verify (EdDSA)", |b| {
        b.iter(|| keycard_dpop::verify(&proof, &expected).unwrap())
    });
    group.bench_function("verify (ES256, as browsers make them)", |b| {
        b.iter(|| keycard_dpop::verify(&es256, &expected).unwrap())
    });
    group.finish();

    /// An ES256 proof, made with the `p256` crate as a browser's WebCrypto would sign it.
    fn es256_proof(now: i64) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use p256::ecdsa::signature::Signer;
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let header = serde_json::json!({
            "typ": "dpop+jwt", "alg": "ES256",
            "jwk": { "kty": "EC", "crv": "P-256",
                     "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                     "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()) },
        });
        let claims = serde_json::json!({
            "jti": "bench", "htm": "GET", "htu": URL, "iat": now, "ath": access_token_hash(TOKEN),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

fn rotation(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_data_dir(dir.path());
    let desk = rt.block_on(async {
        let store = SqliteStore::connect(&config.database_url).await.unwrap();
        let keys = KeyRing::open(&config.keys_file, config.mode).unwrap();
        FrontDesk::new(&config, Arc::new(store), keys, Clock::system())
    });
    let client = ClientInfo::default();
    let first = rt.block_on(desk.register("ann", "correct horse battery", &client)).unwrap();
    let current = Mutex::new(first.confirmation);
    c.bench_function("front desk: one rotation on SQLite", |b| {
        b.to_async(&rt).iter(|| async {
            let token = current.lock().unwrap().clone();
            let issued = desk.refresh(&token, &client).await.unwrap();
            *current.lock().unwrap() = issued.confirmation;
        })
    });
}

/// The amenity door's check through the front desk, with the verified key card cache
/// (`keycard::verified`): a hit, a miss (lookup, full verification, remembering it), and no cache.
fn key_card_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desk_with = |cache: usize| {
        let mut config = Config::for_data_dir(dir.path());
        config.key_card_cache_size = cache;
        rt.block_on(async {
            let store = SqliteStore::connect(&config.database_url).await.unwrap();
            let keys = KeyRing::open(&config.keys_file, config.mode).unwrap();
            FrontDesk::new(&config, Arc::new(store), keys, Clock::system())
        })
    };
    let (cached, uncached) = (desk_with(10_000), desk_with(0));
    let client = ClientInfo::default();
    let stay = rt.block_on(cached.register("ann", "correct horse battery", &client)).unwrap();
    let token = stay.key_card;
    let mut group = c.benchmark_group("amenity door: FrontDesk::verify_key_card");
    cached.verify_key_card(&token).unwrap();
    group.bench_function("cache hit", |b| b.iter(|| cached.verify_key_card(&token).unwrap()));
    group.bench_function("cache miss (verify and remember)", |b| {
        b.iter_batched(
            || cached.verified_cards().clear(),
            |()| cached.verify_key_card(&token).unwrap(),
            // Per iteration: each run starts from an empty cache (cleared outside the timing).
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("no cache", |b| b.iter(|| uncached.verify_key_card(&token).unwrap()));
    group.finish();
}

fn password_checks(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let passwords = Passwords::new(1);
    let stored = rt.block_on(passwords.hash("correct horse battery")).unwrap();
    let mut group = c.benchmark_group("login password check");
    group.sample_size(30);
    group.bench_function("known guest, wrong password", |b| {
        b.to_async(&rt).iter(|| passwords.verify("not the password", Some(&stored)))
    });
    group.bench_function("unknown guest (dummy hash)", |b| {
        b.to_async(&rt).iter(|| passwords.verify("not the password", None))
    });
    group.finish();
}

criterion_group!(benches, key_cards, key_card_cache, dpop_proofs, rotation, password_checks);
criterion_main!(benches);
