//! Every rule of RFC 9449, section 4.3 that [`verify`] checks, one row each, with proofs made by
//! an ES256 key (a P-256 key signed by the `p256` crate, not by this crate) and by [`ProofKey`].

use super::*;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::json;

const NOW: i64 = 1_800_000_000;
const URL: &str = "https://hotel.example/api/auth/refresh";
const TOKEN: &str = "eyJ.a-key-card.sig";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A P-256 key and its public JWK, as a browser's WebCrypto would export it.
struct Es256 {
    key: SigningKey,
    jwk: Value,
}

impl Es256 {
    fn new() -> Self {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let point = key.verifying_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC", "crv": "P-256",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        });
        Self { key, jwk }
    }

    /// A proof with `header` and `claims` merged over a valid one's.
    fn proof(&self, header: Value, claims: Value) -> String {
        let mut h = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        merge(&mut h, header);
        let mut c = json!({ "jti": "jti-1", "htm": "POST", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN) });
        merge(&mut c, claims);
        let input = format!("{}.{}", b64(h.to_string()), b64(c.to_string()));
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_bytes()))
    }
}

/// `over`'s members replace `base`'s; a `null` removes one.
fn merge(base: &mut Value, over: Value) {
    for (k, v) in over.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
}

fn expected(access_token: Option<&'static str>) -> Expected<'static> {
    Expected { method: "POST", url: URL, access_token, now: NOW }
}

#[test]
fn a_valid_proof_names_its_key() {
    let key = Es256::new();
    let proof = verify(&key.proof(json!({}), json!({})), &expected(Some(TOKEN))).unwrap();
    assert_eq!(proof.jti, "jti-1");
    assert_eq!(proof.remember_until(), NOW + MAX_AGE_SECS);
    // RFC 7638: SHA-256 over the required members in order, computed here by hand.
    let jwk = &key.jwk;
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    assert_eq!(proof.jkt, b64(Sha256::digest(canonical)));
}

#[test]
fn each_rule_of_section_4_3_refuses_its_forgery() {
    let key = Es256::new();
    let other = Es256::new();
    let valid = key.proof(json!({}), json!({}));
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, _signature) = rest.split_once('.').unwrap();
    let with_private = {
        let mut jwk = key.jwk.clone();
        jwk["d"] = json!(b64([7u8; 32]));
        key.proof(json!({ "jwk": jwk }), json!({}))
    };
    #[rustfmt::skip]
    let table: Vec<(&str, String, Expected, ProofError)> = vec![
        ("not a JWT", "not-a-jwt".into(), expected(None), ProofError::Malformed),
        ("too long", "a".repeat(MAX_PROOF_BYTES + 1), expected(None), ProofError::Malformed),
        ("unsigned", format!("{head}.{payload}."), expected(None), ProofError::Algorithm),
        ("typ JWT", key.proof(json!({ "typ": "JWT" }), json!({})), expected(None), ProofError::WrongType),
        ("no typ", key.proof(json!({ "typ": null }), json!({})), expected(None), ProofError::WrongType),
        ("alg none", key.proof(json!({ "alg": "none" }), json!({})), expected(None), ProofError::Algorithm),
        ("alg HS256", key.proof(json!({ "alg": "HS256" }), json!({})), expected(None), ProofError::Algorithm),
        ("alg RS256", key.proof(json!({ "alg": "RS256" }), json!({})), expected(None), ProofError::Algorithm),
        ("no jwk", key.proof(json!({ "jwk": null }), json!({})), expected(None), ProofError::BadKey),
        ("a jku", key.proof(json!({ "jku": "https://evil.example/keys" }), json!({})), expected(None), ProofError::BadKey),
        ("an EdDSA alg with an EC key", key.proof(json!({ "alg": "EdDSA" }), json!({})), expected(None), ProofError::BadKey),
        ("a P-384 curve", key.proof(json!({ "jwk": { "kty": "EC", "crv": "P-384", "x": key.jwk["x"], "y": key.jwk["y"] } }), json!({})), expected(None), ProofError::BadKey),
        ("a private key in jwk", with_private, expected(None), ProofError::PrivateKey),
        ("another key's signature", other.proof(json!({ "jwk": key.jwk }), json!({})), expected(None), ProofError::BadSignature),
        ("no jti", key.proof(json!({}), json!({ "jti": null })), expected(None), ProofError::MissingClaim),
        ("a jti too long", key.proof(json!({}), json!({ "jti": "j".repeat(MAX_JTI_CHARS + 1) })), expected(None), ProofError::MissingClaim),
        ("no htm", key.proof(json!({}), json!({ "htm": null })), expected(None), ProofError::MissingClaim),
        ("no htu", key.proof(json!({}), json!({ "htu": null })), expected(None), ProofError::MissingClaim),
        ("no iat", key.proof(json!({}), json!({ "iat": null })), expected(None), ProofError::MissingClaim),
        ("iat a string", key.proof(json!({}), json!({ "iat": "now" })), expected(None), ProofError::MissingClaim),
        ("another method", key.proof(json!({}), json!({ "htm": "GET" })), expected(None), ProofError::WrongMethod),
        ("the method in lower case", key.proof(json!({}), json!({ "htm": "post" })), expected(None), ProofError::WrongMethod),
        ("another path", key.proof(json!({}), json!({ "htu": "https://hotel.example/api/me" })), expected(None), ProofError::WrongUrl),
        ("another host", key.proof(json!({}), json!({ "htu": "https://evil.example/api/auth/refresh" })), expected(None), ProofError::WrongUrl),
        ("plain http", key.proof(json!({}), json!({ "htu": "http://hotel.example/api/auth/refresh" })), expected(None), ProofError::WrongUrl),
        ("a relative htu", key.proof(json!({}), json!({ "htu": "/api/auth/refresh" })), expected(None), ProofError::WrongUrl),
        ("made 61 s ago", key.proof(json!({}), json!({ "iat": NOW - MAX_AGE_SECS - 1 })), expected(None), ProofError::IssuedAt),
        ("made 6 s ahead", key.proof(json!({}), json!({ "iat": NOW + MAX_AHEAD_SECS + 1 })), expected(None), ProofError::IssuedAt),
        ("no ath with a token", key.proof(json!({}), json!({ "ath": null })), expected(Some(TOKEN)), ProofError::AccessTokenHash),
        ("another token's ath", key.proof(json!({}), json!({ "ath": access_token_hash("another") })), expected(Some(TOKEN)), ProofError::AccessTokenHash),
    ];
    for (case, proof, expect, error) in table {
        assert_eq!(verify(&proof, &expect), Err(error), "{case}");
    }
}

#[test]
fn what_section_4_3_leaves_alone_is_accepted() {
    let key = Es256::new();
    #[rustfmt::skip]
    let table: Vec<(&str, String, Expected)> = vec![
        ("a query and a fragment on htu", key.proof(json!({}), json!({ "htu": format!("{URL}?x=1#top") })), expected(None)),
        ("a query on the request", key.proof(json!({}), json!({})), Expected { url: "https://hotel.example/api/auth/refresh?next=/room", ..expected(None) }),
        ("the host in capitals, the default port", key.proof(json!({}), json!({ "htu": "https://HOTEL.example:443/api/auth/refresh" })), expected(None)),
        ("typ in capitals", key.proof(json!({ "typ": "DPOP+JWT" }), json!({})), expected(None)),
        ("an ath when no token goes with it", key.proof(json!({}), json!({})), expected(None)),
        ("made 60 s ago", key.proof(json!({}), json!({ "iat": NOW - MAX_AGE_SECS })), expected(None)),
        ("made 5 s ahead", key.proof(json!({}), json!({ "iat": NOW + MAX_AHEAD_SECS })), expected(None)),
        ("a nonce this server did not ask for", key.proof(json!({}), json!({ "nonce": "n" })), expected(None)),
    ];
    for (case, proof, expect) in table {
        assert!(verify(&proof, &expect).is_ok(), "{case}");
    }
}

#[test]
fn a_proof_key_makes_proofs_that_verify_and_no_two_alike() {
    let key = ProofKey::generate();
    let a = key.proof("GET", "https://hotel.example/amenities/gym?x=1", Some(TOKEN), NOW);
    let b = key.proof("GET", "https://hotel.example/amenities/gym", Some(TOKEN), NOW);
    let expect = Expected {
        method: "GET",
        url: "https://hotel.example/amenities/gym",
        ..expected(Some(TOKEN))
    };
    let (a, b) = (verify(&a, &expect).unwrap(), verify(&b, &expect).unwrap());
    assert_eq!(a.jkt, key.jkt());
    assert_eq!(b.jkt, key.jkt());
    assert_ne!(a.jti, b.jti, "a fresh jti each time");
    // Kept between runs by its secret, it is the same key.
    assert_eq!(ProofKey::from_secret(key.secret()).jkt(), key.jkt());
    assert_ne!(ProofKey::generate().jkt(), key.jkt());
}

#[test]
fn one_header_only() {
    assert_eq!(one_proof([]), Err(ProofError::Missing));
    assert_eq!(one_proof([" p "]), Ok("p"));
    assert_eq!(one_proof(["p", "q"]), Err(ProofError::Multiple));
}

#[test]
fn every_rule_has_a_name_and_a_section() {
    use ProofError::*;
    let all = [
        Missing,
        Multiple,
        Malformed,
        MissingClaim,
        WrongType,
        Algorithm,
        BadKey,
        PrivateKey,
        BadSignature,
        WrongMethod,
        WrongUrl,
        IssuedAt,
        AccessTokenHash,
        Replayed,
        WrongKey,
        Unbound,
    ];
    let names: std::collections::BTreeSet<_> = all.iter().map(|e| e.rule()).collect();
    assert_eq!(names.len(), all.len(), "each rule its own name");
    assert!(all.iter().all(|e| e.section().starts_with("RFC 9449, section ")));
}
