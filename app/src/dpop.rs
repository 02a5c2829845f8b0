//! The browser's DPoP key (RFC 9449), and the proof that goes with every request the page makes.
//!
//! The key pair is made by WebCrypto (ECDSA P-256, ES256) with a private half that cannot be
//! exported: no script, this page's included, can read it; it can only ask the browser to sign.
//! It is kept in IndexedDB (a `CryptoKey` is stored there as the object, never as bytes), so a
//! reload keeps the binding, and deleted at check-out. The fetch wrapper ([`crate::wire`]) asks
//! [`for_request`] what to add to each request to the hotel: a proof at check-in (which binds the
//! key card and the booking to this key) and at the front desk, and `Authorization: DPoP` with
//! a proof over the key card for every other call while the key card is bound.
//!
//! What it stops: a copy of the key card or of the booking confirmation, taken anywhere else,
//! opens nothing. What it does not: a script running in this page can still have the browser
//! sign, and so use the key while the page is open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// What a proof says, decoded for the wire panel (no token in it, only the key card's hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofNote {
    pub htm: String,
    pub htu: String,
    pub iat: i64,
    pub jti: String,
    /// The key card's hash, when one went with the proof.
    pub ath: Option<String>,
    /// The RFC 7638 thumbprint of the key that signed it (the key card's `cnf.jkt`).
    pub jkt: String,
}

/// Whether a key card is bound to a key (its payload has `cnf`). Unverified: only to decide
/// how the page presents it.
pub fn is_bound(key_card: &str) -> bool {
    key_card
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&b).ok())
        .is_some_and(|claims| claims.contains_key("cnf"))
}

#[cfg(feature = "hydrate")]
pub use browser::*;

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::{Cell, RefCell};

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
    use serde_json::json;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{CryptoKey, IdbDatabase, IdbRequest, IdbTransactionMode, SubtleCrypto};

    use super::{is_bound, ProofNote};

    const DATABASE: &str = "keycard";
    const STORE: &str = "dpop";
    const ENTRY: &str = "key";

    /// The page's key: the private half (unreadable), and the public half as the proofs' `jwk`.
    #[derive(Clone)]
    pub struct Key {
        private: CryptoKey,
        x: String,
        y: String,
        /// Its RFC 7638 thumbprint.
        pub jkt: String,
    }

    thread_local! {
        /// The key, once read from IndexedDB (or made).
        static KEY: RefCell<Option<Key>> = const { RefCell::new(None) };
        /// Whether IndexedDB was read already.
        static LOADED: Cell<bool> = const { Cell::new(false) };
        /// The key card the page holds now (set by the auth context).
        static CARD: RefCell<Option<String>> = const { RefCell::new(None) };
        /// The server's clock minus this browser's, in seconds, from answers' `Date`: a proof's
        /// `iat` is checked against the server's clock, within a minute.
        static SKEW: Cell<i64> = const { Cell::new(0) };
        /// Whether the next check-in binds the stay to this browser's key (the check-in form's
        /// choice; on unless the learner wants the article's bearer tokens).
        static BIND: Cell<bool> = const { Cell::new(true) };
    }

    /// Whether the next check-in binds the stay to this browser's key.
    pub fn bind_at_check_in(bind: bool) {
        BIND.with(|b| b.set(bind));
    }

    /// See [`bind_at_check_in`].
    pub fn binds_at_check_in() -> bool {
        BIND.with(Cell::get)
    }

    /// Tells the wrapper which key card the page holds now.
    pub fn set_card(card: Option<String>) {
        CARD.with(|c| *c.borrow_mut() = card);
    }

    /// Takes the server's `Date` from an answer, to date proofs on the server's clock.
    pub fn observe_server_date(date: &str) {
        let server_ms = js_sys::Date::parse(date);
        if server_ms.is_finite() {
            let skew = ((server_ms - js_sys::Date::now()) / 1000.0).round() as i64;
            SKEW.with(|s| s.set(skew));
        }
    }

    /// Now, on the server's clock.
    pub fn server_now() -> i64 {
        (js_sys::Date::now() / 1000.0) as i64 + SKEW.with(Cell::get)
    }

    fn subtle() -> Result<SubtleCrypto, JsValue> {
        let window = web_sys::window().ok_or("no window")?;
        Ok(window.crypto()?.subtle())
    }

    /// An IndexedDB request's result.
    async fn done(request: &IdbRequest) -> Result<JsValue, JsValue> {
        let promise = Promise::new(&mut |resolve, reject| {
            let ok = request.clone();
            let on_success = Closure::once_into_js(move || {
                let _ = resolve.call1(&JsValue::NULL, &ok.result().unwrap_or(JsValue::UNDEFINED));
            });
            let on_error = Closure::once_into_js(move || {
                let _ = reject.call1(&JsValue::NULL, &"IndexedDB refused".into());
            });
            request.set_onsuccess(Some(on_success.unchecked_ref()));
            request.set_onerror(Some(on_error.unchecked_ref()));
        });
        JsFuture::from(promise).await
    }

    async fn database() -> Result<IdbDatabase, JsValue> {
        let factory = web_sys::window().ok_or("no window")?.indexed_db()?.ok_or("no IndexedDB")?;
        let open = factory.open_with_u32(DATABASE, 1)?;
        let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            let db = e
                .target()
                .and_then(|t| t.dyn_into::<IdbRequest>().ok())
                .and_then(|r| r.result().ok())
                .and_then(|r| r.dyn_into::<IdbDatabase>().ok());
            if let Some(db) = db {
                let _ = db.create_object_store(STORE);
            }
        });
        open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let db = done(&open).await?;
        drop(upgrade);
        db.dyn_into()
    }

    async fn read() -> Result<Option<Key>, JsValue> {
        let db = database().await?;
        let store = db.transaction_with_str(STORE)?.object_store(STORE)?;
        let stored = done(&store.get(&ENTRY.into())?).await?;
        if stored.is_undefined() {
            return Ok(None);
        }
        let field = |name: &str| Reflect::get(&stored, &name.into());
        let private: CryptoKey = field("private")?.dyn_into()?;
        let (x, y) = (field("x")?.as_string(), field("y")?.as_string());
        let (Some(x), Some(y)) = (x, y) else { return Ok(None) };
        let jkt = thumbprint(&x, &y).await?;
        Ok(Some(Key { private, x, y, jkt }))
    }

    async fn write(key: &Key) -> Result<(), JsValue> {
        let db = database().await?;
        let tx = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)?;
        let stored = Object::new();
        Reflect::set(&stored, &"private".into(), &key.private)?;
        Reflect::set(&stored, &"x".into(), &key.x.as_str().into())?;
        Reflect::set(&stored, &"y".into(), &key.y.as_str().into())?;
        done(&tx.object_store(STORE)?.put_with_key(&stored, &ENTRY.into())?).await?;
        Ok(())
    }

    /// The key this browser holds for the hotel, if any.
    pub async fn current_key() -> Option<Key> {
        if !LOADED.with(Cell::get) {
            let read = read().await.ok().flatten();
            LOADED.with(|l| l.set(true));
            KEY.with(|k| {
                let mut slot = k.borrow_mut();
                if slot.is_none() {
                    *slot = read;
                }
            });
        }
        KEY.with(|k| k.borrow().clone())
    }

    /// The key, made now if this browser has none.
    pub async fn ensure_key() -> Result<Key, JsValue> {
        if let Some(key) = current_key().await {
            return Ok(key);
        }
        let key = make_key().await?;
        write(&key).await?;
        KEY.with(|k| *k.borrow_mut() = Some(key.clone()));
        Ok(key)
    }

    /// A new key pair, its private half not exportable; kept only in memory (the lab's "another
    /// key" makes one of these, and forgets it).
    pub async fn make_key() -> Result<Key, JsValue> {
        let algorithm = Object::new();
        Reflect::set(&algorithm, &"name".into(), &"ECDSA".into())?;
        Reflect::set(&algorithm, &"namedCurve".into(), &"P-256".into())?;
        let usages = Array::of1(&"sign".into());
        let subtle = subtle()?;
        let pair =
            JsFuture::from(subtle.generate_key_with_object(&algorithm, false, &usages)?).await?;
        let private: CryptoKey = Reflect::get(&pair, &"privateKey".into())?.dyn_into()?;
        let public: CryptoKey = Reflect::get(&pair, &"publicKey".into())?.dyn_into()?;
        let jwk = JsFuture::from(subtle.export_key("jwk", &public)?).await?;
        let coordinate =
            |name: &str| Reflect::get(&jwk, &name.into()).ok().and_then(|v| v.as_string());
        let (Some(x), Some(y)) = (coordinate("x"), coordinate("y")) else {
            return Err("the public key has no coordinates".into());
        };
        let jkt = thumbprint(&x, &y).await?;
        Ok(Key { private, x, y, jkt })
    }

    /// Deletes the key (check-out): the next check-in binds a new one.
    pub async fn forget() {
        KEY.with(|k| *k.borrow_mut() = None);
        LOADED.with(|l| l.set(true));
        if let Ok(db) = database().await {
            let deleted = db
                .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
                .and_then(|tx| tx.object_store(STORE))
                .and_then(|store| store.delete(&ENTRY.into()));
            if let Ok(request) = deleted {
                let _ = done(&request).await;
            }
        }
    }

    async fn sha256(data: &[u8]) -> Result<Vec<u8>, JsValue> {
        let digest =
            JsFuture::from(subtle()?.digest_with_str_and_u8_array("SHA-256", data)?).await?;
        Ok(Uint8Array::new(&digest).to_vec())
    }

    /// RFC 7638: SHA-256 over the key's required members, in order, without spaces.
    async fn thumbprint(x: &str, y: &str) -> Result<String, JsValue> {
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        Ok(URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()).await?))
    }

    /// What a proof may differ in from the one a request calls for (the lab's forgeries).
    #[derive(Clone, Debug, Default)]
    pub struct Claims {
        pub method: String,
        pub url: String,
        /// The key card whose hash goes in `ath`.
        pub access_token: Option<String>,
        pub iat: Option<i64>,
    }

    /// A proof by `key` for `claims`, and what it says.
    pub async fn sign(key: &Key, claims: &Claims) -> Result<(String, ProofNote), JsValue> {
        let mut jti = [0u8; 16];
        web_sys::window()
            .ok_or("no window")?
            .crypto()?
            .get_random_values_with_u8_array(&mut jti)?;
        let ath = match &claims.access_token {
            Some(token) => Some(URL_SAFE_NO_PAD.encode(sha256(token.as_bytes()).await?)),
            None => None,
        };
        let note = ProofNote {
            htm: claims.method.clone(),
            htu: without_query(&claims.url),
            iat: claims.iat.unwrap_or_else(server_now),
            jti: URL_SAFE_NO_PAD.encode(jti),
            ath,
            jkt: key.jkt.clone(),
        };
        let header = json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": { "kty": "EC", "crv": "P-256", "x": key.x, "y": key.y },
        });
        let mut payload =
            json!({ "jti": note.jti, "htm": note.htm, "htu": note.htu, "iat": note.iat });
        if let Some(ath) = &note.ath {
            payload["ath"] = json!(ath);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let algorithm = Object::new();
        Reflect::set(&algorithm, &"name".into(), &"ECDSA".into())?;
        Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into())?;
        let signed =
            subtle()?.sign_with_object_and_u8_array(&algorithm, &key.private, input.as_bytes())?;
        // WebCrypto's ECDSA signature is r || s: exactly the JWS form of ES256.
        let signature = Uint8Array::new(&JsFuture::from(signed).await?).to_vec();
        Ok((format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)), note))
    }

    /// An absolute URL without its query and fragment (a proof's `htu`).
    fn without_query(url: &str) -> String {
        match web_sys::Url::new(url) {
            Ok(u) => format!("{}{}", u.origin(), u.pathname()),
            Err(_) => url.to_owned(),
        }
    }

    /// What the page adds to a request to `url` (absolute) with `method`: the headers, and what
    /// the proof says (for the wire). Nothing for another site, or a bearer stay.
    pub async fn for_request(
        method: &str,
        url: &str,
    ) -> (Vec<(&'static str, String)>, Option<ProofNote>) {
        let location = web_sys::window().map(|w| w.location());
        let here = location.as_ref().and_then(|l| l.origin().ok()).unwrap_or_default();
        let base = location.and_then(|l| l.href().ok()).unwrap_or_default();
        let Ok(target) = web_sys::Url::new_with_base(url, &base) else { return (Vec::new(), None) };
        if target.origin() != here {
            return (Vec::new(), None);
        }
        let path = target.pathname();
        let absolute = target.href();
        let claims = |access_token: Option<String>| Claims {
            method: method.to_owned(),
            url: absolute.clone(),
            access_token,
            iat: None,
        };
        let card = CARD.with(|c| c.borrow().clone()).filter(|card| is_bound(card));
        let key = match path.as_str() {
            // Check-in: the key is made now if need be, and the stay is bound to it; a bearer
            // check-in drops any key left over, so that a key here always means a bound stay.
            "/api/auth/login" | "/api/auth/register" => {
                if binds_at_check_in() {
                    ensure_key().await.ok()
                } else {
                    forget().await;
                    None
                }
            }
            // The front desk: a bound stay's confirmation goes only with its key's proof. The
            // page may hold no key card by then (a reload after it expired), so the key decides.
            "/api/auth/refresh" => current_key().await,
            _ => None,
        };
        if let Some(key) = key {
            return match sign(&key, &claims(None)).await {
                Ok((proof, note)) => (vec![("dpop", proof)], Some(note)),
                Err(_) => (Vec::new(), None),
            };
        }
        let calls = path.starts_with("/api/") || path.starts_with("/amenities/");
        let (true, Some(card), Some(key)) = (calls, card, current_key().await) else {
            return (Vec::new(), None);
        };
        match sign(&key, &claims(Some(card.clone()))).await {
            Ok((proof, note)) => {
                (vec![("authorization", format!("DPoP {card}")), ("dpop", proof)], Some(note))
            }
            Err(_) => (Vec::new(), None),
        }
    }
}
