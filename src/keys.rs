//! The signing key ring: Ed25519 keys that sign key cards and booking confirmations, the JWKS that
//! publishes their public halves, and the secret from which confirmation ids are derived.
//!
//! The ring lives in one JSON file (mode 0600, never committed). In development the server creates
//! it on first run; in production it must be provisioned with `keycard-server rotate-keys`, and a
//! ring made for development is refused.
//!
//! A rotation follows a timetable ([`KeySchedule`]), so that nobody notices it:
//!
//! ```text
//!  rotate-keys      + publish_ahead                  + keep_verifying
//!  ----|-------------------|-----------------------------|---------->
//!      new key published   new key signs;                old key retired
//!      (in the JWKS, not   old key only verifies         (at the next rotate-keys)
//!      yet signing)
//! ```
//!
//! Published first: every instance reloads the ring and every resource server's cached JWKS
//! goes stale before the new key signs anything, so no door ever meets a `kid` it has not seen.
//! Retired last: the old key verifies until every key card and booking confirmation it signed
//! has expired. A retired key's tokens are rejected because their `kid` is no longer known.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::config::Mode;

/// Why the key ring could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    /// The key file could not be read or written.
    Io {
        /// The key file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    #[error("the key file {path} is not a valid key ring: {problem}")]
    /// The key file is not a key ring.
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    #[error(
        "no signing keys at {path}: in production, create them with `keycard-server rotate-keys`"
    )]
    /// No key file, in production (development creates one).
    Missing {
        /// Where the key file should be.
        path: PathBuf,
    },
    #[error(
        "the key file {path} was generated for development; refusing to sign production tokens \
         with it. Run `keycard-server rotate-keys` with KEYCARD_ENV=production on a fresh file"
    )]
    /// A development key ring, in production.
    DevelopmentKeysInProduction {
        /// The key file.
        path: PathBuf,
    },
    #[error("the key file {path} is readable by other users (mode {mode:o}); chmod 600 it")]
    /// Others may read the key file.
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The file's layout. Private keys are PKCS#8 DER in base64.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    generated_for: String,
    /// HMAC key from which each booking confirmation's id is derived; see [`KeySet::derive_id`].
    confirmation_secret: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    created_at: Timestamp,
    /// When the key starts signing; absent (rings written before pre-publication, and a ring's
    /// first key): from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signs_from: Option<Timestamp>,
    private_key_pkcs8: String,
}

impl StoredKey {
    fn signs_from(&self) -> Timestamp {
        self.signs_from.unwrap_or(self.created_at)
    }
}

/// The timetable of a rotation (see the module's diagram), from `KEYCARD_KEY_PUBLISH_AHEAD_SECS`
/// and the token lifetimes: [`crate::Config`]'s `operations.key_schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySchedule {
    /// How long a new key is published before it signs. Zero: it signs at once.
    pub publish_ahead: Duration,
    /// How long a key that stopped signing still verifies: the longest a token it signed lives.
    pub keep_verifying: Duration,
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new key's id.
    pub kid: String,
    /// When it starts signing (Unix seconds).
    pub signs_from: Timestamp,
    /// The keys this rotation retired.
    pub retired: Vec<String>,
}

/// One key that can verify tokens. Deliberately not `Debug`: it is derived from a private key.
pub struct VerifyingKey {
    /// Its key id.
    pub kid: String,
    /// The raw public key, base64url: the JWK `x` member.
    pub x: String,
    /// The key, ready to verify with.
    pub decoding: DecodingKey,
}

/// Public keys by `kid`: all a verifier needs, and all a resource server gets.
pub struct PublicKeys(Vec<VerifyingKey>);

impl PublicKeys {
    /// Looks a `kid` up in this set only; never follows `jku`, `x5u` or `jwk`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.0.iter().find(|k| k.kid == kid)
    }

    /// The JWK Set document for these keys.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self
                .0
                .iter()
                .map(|k| PublicJwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: k.x.clone(),
                    kid: k.kid.clone(),
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                })
                .collect(),
        }
    }
}

/// A loaded ring: the current signing key and the keys that verify (current and previous).
pub struct KeySet {
    current_kid: String,
    current: EncodingKey,
    /// The same key, parsed once: what [`crate::jwt::sign`] signs with.
    signer: SigningKey,
    public: PublicKeys,
    confirmation_secret: [u8; 32],
    /// When a key published ahead starts signing, and this set must be rebuilt.
    switch_at: Option<Timestamp>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("current_kid", &self.current_kid).finish_non_exhaustive()
    }
}

/// A public key as published in `/.well-known/jwks.json` (RFC 8037 OKP key).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicJwk {
    /// Key type: always `OKP`.
    pub kty: String,
    /// Curve: always `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Its key id.
    pub kid: String,
    /// Algorithm: always `EdDSA`.
    pub alg: String,
    #[serde(rename = "use")]
    /// Use: always `sig`.
    pub use_: String,
}

/// The JWK Set document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, newest first: one published ahead (if a rotation is under way), the current
    /// one, then those that only verify.
    pub keys: Vec<PublicJwk>,
}

impl KeySet {
    /// The `kid` new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> &EncodingKey {
        &self.current
    }

    /// The current key, parsed (its public half derived once, not at every signature).
    pub(crate) fn signer(&self) -> &SigningKey {
        &self.signer
    }

    /// The keys that verify, newest first: published ahead, current, previous.
    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// The public keys as a JWK Set, newest first.
    pub fn jwks(&self) -> Jwks {
        self.public.jwks()
    }

    /// Derives a booking confirmation's id from the session's random salt and its generation.
    ///
    /// Why derived rather than stored: the database keeps only a hash of each id, yet within the
    /// grace window the front desk must hand a second tab the *same* current confirmation. With
    /// the salt (128 random bits, in the database) and this secret (outside it), the id can be
    /// recomputed; a stolen database alone cannot mint a confirmation.
    pub fn derive_id(&self, salt: &[u8], session_id: &str, generation: i64) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.confirmation_secret)
            .expect("HMAC takes keys of any length");
        mac.update(salt);
        mac.update(session_id.as_bytes());
        mac.update(&generation.to_be_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The set `file` holds at `now`: the newest key whose time has come signs; every key
    /// verifies, those published ahead included.
    fn from_file(path: &Path, file: &KeyFile, now: Timestamp) -> Result<Self, KeyError> {
        let invalid = |problem: String| KeyError::Invalid { path: path.to_owned(), problem };
        let secret = URL_SAFE_NO_PAD
            .decode(&file.confirmation_secret)
            .map_err(|e| invalid(format!("confirmation_secret: {e}")))?;
        let confirmation_secret: [u8; 32] = secret
            .try_into()
            .map_err(|_| invalid("confirmation_secret must be 32 bytes".into()))?;
        let mut verifying = Vec::new();
        let mut current = None;
        for stored in &file.keys {
            let der = STANDARD
                .decode(&stored.private_key_pkcs8)
                .map_err(|e| invalid(format!("key {}: {e}", stored.kid)))?;
            let signing = {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                SigningKey::from_pkcs8_der(&der)
                    .map_err(|e| invalid(format!("key {}: {e}", stored.kid)))?
            };
            let public = signing.verifying_key().to_bytes();
            let x = URL_SAFE_NO_PAD.encode(public);
            if thumbprint(&x) != stored.kid {
                return Err(invalid(format!("key {} does not match its kid", stored.kid)));
            }
            if current.is_none() && stored.signs_from() <= now {
                current = Some((stored.kid.clone(), EncodingKey::from_ed_der(&der), signing));
            }
            verifying.push(VerifyingKey {
                kid: stored.kid.clone(),
                x,
                decoding: DecodingKey::from_ed_der(&public),
            });
        }
        let (current_kid, current, signer) =
            current.ok_or_else(|| invalid("no key that signs yet".into()))?;
        let switch_at = file.keys.iter().map(StoredKey::signs_from).filter(|&t| t > now).min();
        Ok(Self {
            current_kid,
            current,
            signer,
            public: PublicKeys(verifying),
            confirmation_secret,
            switch_at,
        })
    }
}

/// The ring the server signs and verifies with; reloads itself when the file changes, so a
/// `rotate-keys` run reaches a running server without a restart.
#[derive(Clone)]
pub struct KeyRing {
    path: PathBuf,
    inner: Arc<RwLock<Loaded>>,
}

struct Loaded {
    modified: Option<SystemTime>,
    file: KeyFile,
    set: Arc<KeySet>,
}

fn now() -> Timestamp {
    crate::Clock::system().now()
}

impl KeyRing {
    /// Loads the ring at `path`. In development a missing file is created with a fresh key.
    pub fn open(path: impl Into<PathBuf>, mode: Mode) -> Result<Self, KeyError> {
        let path = path.into();
        if !path.exists() {
            if mode == Mode::Production {
                return Err(KeyError::Missing { path });
            }
            // Several instances may start at once on one shared folder: the first to create the
            // ring wins and the others load it, so they all sign with the same keys.
            if write_file(&path, &new_ring(mode)?.0, Write::IfMissing)? {
                tracing::info!(path = %path.display(), "created development signing keys");
            }
        }
        let (file, modified) = read_file(&path, mode)?;
        if mode == Mode::Production && file.generated_for != "production" {
            return Err(KeyError::DevelopmentKeysInProduction { path });
        }
        let set = Arc::new(KeySet::from_file(&path, &file, now())?);
        Ok(Self { path, inner: Arc::new(RwLock::new(Loaded { modified, file, set })) })
    }

    /// The keys in force now. When a key published ahead reaches its time, the first call after
    /// makes it the signing key (on every instance at the same second: the time is in the file).
    pub fn current(&self) -> Arc<KeySet> {
        let set = self.inner.read().unwrap_or_else(|e| e.into_inner()).set.clone();
        match set.switch_at {
            Some(at) if at <= now() => self.switch(),
            _ => set,
        }
    }

    fn switch(&self) -> Arc<KeySet> {
        let mut loaded = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let now = now();
        if loaded.set.switch_at.is_some_and(|at| at <= now) {
            match KeySet::from_file(&self.path, &loaded.file, now) {
                Ok(set) => {
                    tracing::info!(kid = %set.current_kid, "a key published ahead now signs");
                    loaded.set = Arc::new(set);
                }
                // Cannot happen for a file that loaded; keep signing with the old key.
                Err(e) => tracing::error!(error = %e, "could not switch to the next key"),
            }
        }
        loaded.set.clone()
    }

    /// For a token whose `kid` this ring does not know: re-reads the file if it changed. Another
    /// instance may have picked up a `rotate-keys` before this one's periodic reload; its key
    /// cards are then accepted here at once instead of after the next reload. A forged `kid`
    /// costs one `stat` of the file (the file is parsed only when its modification time moved),
    /// so there is no rate limit for an attacker to use up. Returns whether the ring changed.
    pub fn reload_for_unknown_kid(&self, mode: Mode) -> bool {
        self.reload_if_changed(mode).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not reload the signing keys; keeping the old ones");
            false
        })
    }

    /// Re-reads the file if it changed since the last load. A broken file keeps the old ring.
    pub fn reload_if_changed(&self, mode: Mode) -> Result<bool, KeyError> {
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified == self.inner.read().unwrap_or_else(|e| e.into_inner()).modified {
            return Ok(false);
        }
        let (file, modified) = read_file(&self.path, mode)?;
        let set = Arc::new(KeySet::from_file(&self.path, &file, now())?);
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Loaded { modified, file, set };
        Ok(true)
    }
}

/// `rotate-keys`: adds a new key to the ring at `path` (creating the ring if needed) that signs
/// `schedule.publish_ahead` from now, and retires the keys that stopped signing more than
/// `schedule.keep_verifying` ago. The key that signs now keeps signing until the new one's time.
pub fn rotate(path: &Path, mode: Mode, schedule: &KeySchedule) -> Result<Rotated, KeyError> {
    let now = now();
    if !path.exists() {
        // Nothing was published before: the first key signs at once.
        let (file, kid) = new_ring(mode)?;
        write_file(path, &file, Write::Replace)?;
        return Ok(Rotated { kid, signs_from: now, retired: Vec::new() });
    }
    let mut file = read_file(path, mode)?.0;
    let (mut key, kid) = new_key(path)?;
    let signs_from = now + schedule.publish_ahead.as_secs() as i64;
    if signs_from > now {
        key.signs_from = Some(signs_from);
    }
    file.keys.insert(0, key);
    let retired = retire(&mut file.keys, now, schedule.keep_verifying);
    write_file(path, &file, Write::Replace)?;
    Ok(Rotated { kid, signs_from, retired })
}

/// Drops, from a ring ordered newest first, every key whose successor has been signing for
/// longer than `keep_verifying`: nothing it signed is still valid. Returns their ids.
fn retire(keys: &mut Vec<StoredKey>, now: Timestamp, keep_verifying: Duration) -> Vec<String> {
    let keep = keep_verifying.as_secs() as i64;
    let first_gone = (1..keys.len()).find(|&i| keys[i - 1].signs_from() + keep <= now);
    match first_gone {
        Some(i) => keys.split_off(i).into_iter().map(|k| k.kid).collect(),
        None => Vec::new(),
    }
}

/// A ring with a fresh confirmation secret and one key, and that key's `kid`.
fn new_ring(mode: Mode) -> Result<(KeyFile, String), KeyError> {
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let (key, kid) = new_key(Path::new(""))?;
    let file = KeyFile {
        generated_for: mode_name(mode).into(),
        confirmation_secret: URL_SAFE_NO_PAD.encode(secret),
        keys: vec![key],
    };
    Ok((file, kid))
}

fn new_key(path: &Path) -> Result<(StoredKey, String), KeyError> {
    let signing = SigningKey::generate(&mut OsRng);
    let der = signing
        .to_pkcs8_der()
        .map_err(|e| KeyError::Invalid { path: path.to_owned(), problem: e.to_string() })?;
    let kid = thumbprint(&URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()));
    let key = StoredKey {
        kid: kid.clone(),
        created_at: now(),
        signs_from: None,
        private_key_pkcs8: STANDARD.encode(der.as_bytes()),
    };
    Ok((key, kid))
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Development => "development",
        Mode::Production => "production",
    }
}

/// RFC 7638 JWK thumbprint of an Ed25519 key: a `kid` anyone can recompute from the JWKS.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn read_file(path: &Path, mode: Mode) -> Result<(KeyFile, Option<SystemTime>), KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let bits = meta.permissions().mode() & 0o777;
        if bits & 0o077 != 0 {
            if mode == Mode::Production {
                return Err(KeyError::TooOpen { path: path.to_owned(), mode: bits });
            }
            tracing::warn!(path = %path.display(), mode = format!("{bits:o}"), "signing key file is readable by others");
        }
    }
    let _ = mode;
    let text = std::fs::read_to_string(path).map_err(io)?;
    let file = serde_json::from_str(&text)
        .map_err(|e| KeyError::Invalid { path: path.to_owned(), problem: e.to_string() })?;
    Ok((file, meta.modified().ok()))
}

/// How [`write_file`] treats a file already at the path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Replace,
    IfMissing,
}

/// Writes through a temporary file (named for this writer, so two writers never share one) and
/// a rename, so a reader never sees half a ring, with mode 0600 from the first byte. With
/// [`Write::IfMissing`] a hard link instead of the rename keeps a ring another process wrote
/// first; returns whether this call wrote the file.
fn write_file(path: &Path, file: &KeyFile, how: Write) -> Result<bool, KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp =
        path.with_extension(format!("json.{}.{:08x}.tmp", std::process::id(), OsRng.next_u32()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let json = serde_json::to_vec_pretty(file).expect("the key file serialises");
    {
        use std::io::Write;
        let mut out = options.open(&tmp).map_err(io)?;
        out.write_all(&json).map_err(io)?;
        out.sync_all().map_err(io)?;
    }
    match how {
        Write::Replace => std::fs::rename(&tmp, path).map_err(io).map(|()| true),
        Write::IfMissing => {
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                // A filesystem without hard links: fall back to a rename, which can only lose
                // to a writer that starts in the same instant.
                Err(_) if !path.exists() => {
                    write_file(path, file, Write::Replace)?;
                    Ok(true)
                }
                Err(e) => Err(io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schedule with no pre-publication, for tests about everything else.
    const AT_ONCE: KeySchedule =
        KeySchedule { publish_ahead: Duration::ZERO, keep_verifying: Duration::from_secs(3600) };

    fn kids(set: &KeySet) -> Vec<String> {
        set.jwks().keys.into_iter().map(|k| k.kid).collect()
    }

    #[test]
    fn development_ring_is_created_private_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let ring = KeyRing::open(&path, Mode::Development).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let first = ring.current().current_kid().to_owned();
        assert_eq!(ring.current().jwks().keys.len(), 1);

        let second = rotate(&path, Mode::Development, &AT_ONCE).unwrap();
        let third = rotate(&path, Mode::Development, &AT_ONCE).unwrap();
        assert!(second.retired.is_empty() && third.retired.is_empty(), "all still verify");
        let reopened = KeyRing::open(&path, Mode::Development).unwrap().current();
        assert_eq!(reopened.current_kid(), third.kid);
        assert_eq!(kids(&reopened), vec![third.kid.clone(), second.kid.clone(), first.clone()]);

        // With nothing to keep verifying for, a rotation retires every key but the new one.
        let gone = KeySchedule { keep_verifying: Duration::ZERO, ..AT_ONCE };
        let fourth = rotate(&path, Mode::Development, &gone).unwrap();
        assert_eq!(fourth.retired, vec![third.kid, second.kid, first.clone()]);
        let reopened = KeyRing::open(&path, Mode::Development).unwrap().current();
        assert!(reopened.public().get(&first).is_none(), "the oldest key is retired");
        assert_eq!(kids(&reopened), vec![fourth.kid]);
    }

    /// A ring of keys that start signing at the given times, newest first.
    fn ring_of(starts: &[Timestamp]) -> KeyFile {
        let mut file = new_ring(Mode::Development).unwrap().0;
        file.keys = starts
            .iter()
            .map(|&at| {
                let mut key = new_key(Path::new("")).unwrap().0;
                key.created_at = 0;
                key.signs_from = Some(at);
                key
            })
            .collect();
        file
    }

    #[test]
    fn a_key_published_ahead_verifies_at_once_and_signs_from_its_time() {
        let file = ring_of(&[1_000, 500]);
        let (new, old) = (file.keys[0].kid.clone(), file.keys[1].kid.clone());
        let path = Path::new("keys.json");
        for (now, signer, switch_at) in
            [(999, &old, Some(1_000)), (1_000, &new, None), (5_000, &new, None)]
        {
            let set = KeySet::from_file(path, &file, now).unwrap();
            assert_eq!(set.current_kid(), signer.as_str(), "at {now}");
            assert_eq!(set.switch_at, switch_at, "at {now}");
            assert_eq!(kids(&set), vec![new.clone(), old.clone()], "both published at {now}");
        }
        assert!(KeySet::from_file(path, &file, 499).is_err(), "no key signs before 500");
    }

    #[test]
    fn a_key_retires_once_its_successor_has_signed_for_longer_than_its_tokens_live() {
        // Newest first: one published ahead (from 300), the current (from 200), two before it.
        // A key retires `keep` after its successor started signing; older ones go with it.
        let keep = Duration::from_secs(50);
        for (now, kept) in [(149, 4), (150, 3), (249, 3), (250, 2), (349, 2), (350, 1)] {
            let mut keys = ring_of(&[300, 200, 100, 0]).keys;
            let all: Vec<String> = keys.iter().map(|k| k.kid.clone()).collect();
            let retired = retire(&mut keys, now, keep);
            assert_eq!(keys.len(), kept, "at {now}");
            assert_eq!(retired, all[kept..], "at {now}");
        }
    }

    #[test]
    fn a_running_ring_switches_to_a_key_published_ahead_when_its_time_comes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let ring = KeyRing::open(&path, Mode::Development).unwrap();
        let before = ring.current().current_kid().to_owned();
        std::thread::sleep(Duration::from_millis(20));
        let ahead = KeySchedule { publish_ahead: Duration::from_secs(1), ..AT_ONCE };
        let next = rotate(&path, Mode::Development, &ahead).unwrap();
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert!(ring.reload_if_changed(Mode::Development).unwrap());
        let published = ring.current();
        if now() < next.signs_from {
            assert_eq!(published.current_kid(), before, "published, not signing yet");
            assert!(published.public().get(&next.kid).is_some(), "but it verifies");
        }
        while now() < next.signs_from {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(ring.current().current_kid(), next.kid, "no reload needed to switch");
    }

    #[test]
    fn production_refuses_missing_and_development_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        assert!(matches!(KeyRing::open(&path, Mode::Production), Err(KeyError::Missing { .. })));
        KeyRing::open(&path, Mode::Development).unwrap();
        assert!(matches!(
            KeyRing::open(&path, Mode::Production),
            Err(KeyError::DevelopmentKeysInProduction { .. })
        ));
        let prod = dir.path().join("prod.json");
        rotate(&prod, Mode::Production, &AT_ONCE).unwrap();
        KeyRing::open(&prod, Mode::Production).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn production_refuses_a_world_readable_ring() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        rotate(&path, Mode::Production, &AT_ONCE).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(KeyRing::open(&path, Mode::Production), Err(KeyError::TooOpen { .. })));
    }

    #[test]
    fn a_running_ring_picks_up_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let ring = KeyRing::open(&path, Mode::Development).unwrap();
        let before = ring.current().current_kid().to_owned();
        // Filesystems with coarse timestamps need the mtime to move.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let after = rotate(&path, Mode::Development, &AT_ONCE).unwrap().kid;
        let file = std::fs::File::options().append(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
        assert!(ring.reload_if_changed(Mode::Development).unwrap());
        assert_eq!(ring.current().current_kid(), after);
        assert_ne!(before, after);
    }

    #[test]
    fn instances_starting_together_share_one_development_ring() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let kids: Vec<String> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let ring = KeyRing::open(&path, Mode::Development).unwrap();
                        let set = ring.current();
                        format!("{} {}", set.current_kid(), set.derive_id(b"s", "id", 1))
                    })
                })
                .collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(kids.iter().all(|k| k == &kids[0]), "{kids:?}");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
    }

    #[test]
    fn derived_ids_depend_on_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let set = KeyRing::open(dir.path().join("k.json"), Mode::Development).unwrap().current();
        let a = set.derive_id(b"salt", "s1", 1);
        assert_eq!(a, set.derive_id(b"salt", "s1", 1));
        assert_ne!(a, set.derive_id(b"salt", "s1", 2));
        assert_ne!(a, set.derive_id(b"salt", "s2", 1));
        assert_ne!(a, set.derive_id(b"tlas", "s1", 1));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }
}
