//! Guests' passwords: the policy a new one must meet, and Argon2id hashing that never blocks the
//! async runtime.
//!
//! Hashing is deliberately slow (19 MiB and two passes each), so it runs on threads of its own,
//! `concurrency` of them, at the lowest CPU priority (nice 19, on Linux). A flood of check-ins
//! queues there and uses every idle cycle, while everything else (refreshes, page loads, the
//! doors), which needs no hash, preempts it: the scheduler gives a nice-0 thread about 68 times
//! the CPU share of a nice-19 one. An unknown user is checked against a dummy hash so that "no
//! such guest" and "wrong password" take the same time.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id memory cost in KiB (OWASP Password Storage Cheat Sheet minimum).
pub const MEMORY_KIB: u32 = 19_456;
/// Argon2id passes.
pub const ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const PARALLELISM: u32 = 1;
/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in characters: bounds the work one request can cause.
pub const MAX_LEN: usize = 128;

const COMMON: &str = include_str!("common-passwords.txt");

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password must be {MIN_LEN} to {MAX_LEN} characters long")]
    /// Too short or too long.
    Length,
    #[error("the password is one of the most common passwords; choose another")]
    /// One of the most common passwords.
    Common,
    #[error("the password must not be the username")]
    /// The username, or contains it.
    SameAsUsername,
}

/// Checks a new password against the policy.
pub fn check_policy(username: &str, password: &str) -> Result<(), PolicyError> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(PolicyError::Length);
    }
    let lower = password.to_lowercase();
    if COMMON.lines().any(|common| common == lower) {
        return Err(PolicyError::Common);
    }
    if lower == username.to_lowercase() {
        return Err(PolicyError::SameAsUsername);
    }
    Ok(())
}

/// The result of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, or no such guest.
    Rejected,
    /// Right password.
    Accepted {
        /// A stronger hash to store, when the stored one was made with weaker parameters.
        rehash: Option<String>,
    },
}

/// Hashes and verifies passwords on `concurrency` low-priority threads of its own.
#[derive(Clone)]
pub struct Passwords {
    pool: Arc<HashPool>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads. They end when the last `Passwords` clone is dropped.
struct HashPool {
    jobs: mpsc::Sender<Job>,
}

impl HashPool {
    fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            let spawned =
                std::thread::Builder::new().name(format!("keycard-hash-{n}")).spawn(move || {
                    lowest_priority();
                    loop {
                        // The lock is held only while waiting for the next job, not while hashing.
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(mpsc::RecvError) => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { jobs }
    }
}

/// Lowers the calling thread to nice 19, so that any other work on the machine goes first.
/// (`SCHED_IDLE` was tried too: no better for other requests' p99 in `checkin_flood`, and it
/// starves hashing altogether whenever anything else on the machine is busy.)
#[cfg(target_os = "linux")]
fn lowest_priority() {
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared with them.
    let result = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19)
    };
    if result != 0 {
        tracing::warn!("could not lower the priority of a password hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lowest_priority() {}

/// A hash failed for a reason other than a wrong password (a task panicked or a stored hash is
/// corrupt).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Passwords {
    /// Hashes at most `concurrency` passwords at once (each takes tens of milliseconds of CPU).
    pub fn new(concurrency: usize) -> Self {
        Self { pool: Arc::new(HashPool::new(concurrency.max(1))) }
    }

    /// Hashes a new password as a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move || {
            let started = std::time::Instant::now();
            let hashed = hash_now(&password);
            crate::audit::password_hash(false, started.elapsed());
            hashed
        })
        .await?
    }

    /// Checks `password` against `stored` (a PHC string), or against a dummy hash when there is no
    /// such guest, so both cases cost one hash.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verdict, HashError> {
        let password = password.to_owned();
        let stored = stored.map(str::to_owned);
        self.run(move || {
            let started = std::time::Instant::now();
            let known = stored.is_some();
            let stored = stored.as_deref().unwrap_or(DUMMY_HASH);
            let parsed = PasswordHash::new(stored).map_err(|e| HashError(e.to_string()))?;
            let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
            crate::audit::password_hash(true, started.elapsed());
            if !(ok && known) {
                return Ok(Verdict::Rejected);
            }
            let rehash = if is_current(&parsed) { None } else { Some(hash_now(&password)?) };
            Ok(Verdict::Accepted { rehash })
        })
        .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A request that gave up while queued (a timeout, a closed connection) costs no hash.
            if done.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = done.send(outcome.map_err(|_| HashError("a hashing task panicked".into())));
        });
        let sent = self.pool.jobs.send(job);
        sent.map_err(|_| HashError("the hashing threads are gone".into()))?;
        result.await.map_err(|_| HashError("the hashing threads are gone".into()))?
    }
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// True when a stored hash is Argon2id with at least today's costs.
fn is_current(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else { return false };
    hash.algorithm.as_str() == "argon2id"
        && params.m_cost() >= MEMORY_KIB
        && params.t_cost() >= ITERATIONS
        && params.p_cost() >= PARALLELISM
}

/// What an unknown user's password is checked against: a hash of a throwaway password with
/// exactly today's parameters (a test keeps them in step), so that the check costs what a real one
/// does. A constant, not made on first use, so that the first unknown user costs no extra hash.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ResziDoUOfJ7JTBdLkjv8A$Hdq7WUl8mlgEN2uo4ZHUbDjC9Xs0gqEFfxowTLCoWPo";

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of every thread of this process named `name`, from /proc.
    #[cfg(target_os = "linux")]
    fn nice_of_threads(name: &str) -> Vec<i64> {
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            // Fields after the command's closing parenthesis; nice is field 19 of stat(5).
            let after = stat.rsplit_once(')').unwrap().1;
            nice.push(after.split_whitespace().nth(16).unwrap().parse().unwrap());
        }
        nice
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_on_threads_of_its_own_at_the_lowest_priority() {
        // Seven threads: no other test's pool has a seventh (pools are as big as the core count).
        let passwords = Passwords::new(7);
        let stored = passwords.hash("correct horse battery").await.unwrap();
        let verdict = passwords.verify("correct horse battery", Some(&stored)).await.unwrap();
        assert!(matches!(verdict, Verdict::Accepted { .. }));
        let nice = nice_of_threads("keycard-hash-6");
        assert!(!nice.is_empty() && nice.iter().all(|n| *n == 19), "{nice:?}");
    }

    #[test]
    fn policy_checks_length_commonness_and_username() {
        assert_eq!(check_policy("ann", "short"), Err(PolicyError::Length));
        assert_eq!(check_policy("ann", &"x".repeat(129)), Err(PolicyError::Length));
        assert_eq!(check_policy("ann", "Password1"), Err(PolicyError::Common));
        assert_eq!(check_policy("annabelle", "AnnaBelle"), Err(PolicyError::SameAsUsername));
        assert_eq!(check_policy("ann", "correct horse battery"), Ok(()));
        // Characters, not bytes: eight accented letters are enough.
        assert_eq!(check_policy("ann", "éééééééé"), Ok(()));
    }

    #[tokio::test]
    async fn hashes_are_argon2id_at_the_required_cost() {
        let p = Passwords::new(2);
        let hash = p.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert_eq!(
            p.verify("correct horse battery", Some(&hash)).await.unwrap(),
            Verdict::Accepted { rehash: None }
        );
        assert_eq!(p.verify("wrong horse", Some(&hash)).await.unwrap(), Verdict::Rejected);
        assert_eq!(p.verify("correct horse battery", None).await.unwrap(), Verdict::Rejected);
    }

    /// The unknown-user check costs one real hash only while the dummy has today's parameters
    /// and the same salt and output lengths as a real hash.
    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_text = hash_now("correct horse battery").unwrap();
        let real = PasswordHash::new(&real_text).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(Params::try_from(&dummy).unwrap(), Params::try_from(&real).unwrap());
        assert_eq!(dummy.salt.map(|s| s.len()), real.salt.map(|s| s.len()));
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        // A genuine hash (of a known throwaway password), so checking against it is full work.
        assert!(Argon2::default().verify_password(b"keycard timing equaliser", &dummy).is_ok());
    }

    /// Not a timing test: if hashing ran on the async thread, the first poll of `verify` would
    /// finish it before the other branch ever got a turn.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_thread_free() {
        let p = Passwords::new(1);
        let verify = p.verify("not the password", None);
        tokio::pin!(verify);
        let mut other_turns = 0;
        let verdict = loop {
            tokio::select! {
                biased;
                v = &mut verify => break v.unwrap(),
                _ = tokio::task::yield_now() => other_turns += 1,
            }
        };
        assert_eq!(verdict, Verdict::Rejected);
        assert!(other_turns > 0, "the hash ran on the async thread");
    }

    #[tokio::test]
    async fn weaker_hashes_are_upgraded_on_login() {
        let weak_params = Params::new(4096, 1, 1, None).unwrap();
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, weak_params)
            .hash_password(b"correct horse battery", &SaltString::generate(&mut rand::rngs::OsRng))
            .unwrap()
            .to_string();
        let p = Passwords::new(1);
        match p.verify("correct horse battery", Some(&weak)).await.unwrap() {
            Verdict::Accepted { rehash: Some(new) } => {
                assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"))
            }
            other => panic!("expected an upgrade, got {other:?}"),
        }
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::default())
            .hash_password(b"correct horse battery", &SaltString::generate(&mut rand::rngs::OsRng))
            .unwrap()
            .to_string();
        assert!(matches!(
            p.verify("correct horse battery", Some(&argon2i)).await.unwrap(),
            Verdict::Accepted { rehash: Some(_) }
        ));
    }
}
