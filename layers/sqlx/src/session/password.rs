//! Bounded password checks: Argon2 verification with a fixed number of
//! slots, each with its own preallocated memory.
//!
//! One Argon2id check with the recommended parameters fills 19 MiB. Run
//! unbounded, a burst of sign-ins multiplies that by the burst (and the
//! allocator keeps the peak long after); here at most `slots` checks run at
//! once, each in a buffer that is allocated once and reused, so the memory
//! for hashing never exceeds `slots × m_cost` however many clients try.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Checks passwords against Argon2 PHC strings (`$argon2id$v=19$…`) with
/// bounded concurrency, bounded waiting and bounded memory.
///
/// * At most `slots` checks run at once (default: the number of cores), on
///   the blocking pool; a check waits at most `max_wait` (default 2 s) for a
///   slot, else it is refused with [`PasswordCheckError::Busy`].
/// * Each slot owns one block buffer of `max_memory_kib` (default 19 MiB,
///   Argon2's recommended `m`), allocated on first use and kept: memory
///   returns to the same buffers after a burst instead of growing with it.
/// * A stored hash that asks for more memory than a slot has is refused
///   ([`PasswordCheckError::TooCostly`]): a row cannot make the server
///   allocate without bound.
/// * An unknown user is checked against a dummy hash with the default
///   parameters, so an unknown name takes as long as a wrong password.
///
/// A slot is released when its hash is done, even if the client went away
/// meanwhile: no client holds one for longer than one hash.
///
/// ```
/// use channels_binding_sqlx::PasswordCheck;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // Argon2id (m=19 MiB, t=2, p=1) of the password `demo`.
/// let stored = "$argon2id$v=19$m=19456,t=2,p=1$eok8D8N3eaONqwTrIrYO9A$/BkIMtUpQpxnCZBCOI2LZXS2hSQW8u8HAmdKsODrnH4";
/// let check = PasswordCheck::new();
/// assert_eq!(check.verify("demo".into(), Some(stored.to_owned())).await, Ok(true));
/// assert_eq!(check.verify("guess".into(), Some(stored.to_owned())).await, Ok(false));
/// // Unknown user: same work, never a match.
/// assert_eq!(check.verify("demo".into(), None).await, Ok(false));
/// # }
/// ```
#[derive(Clone)]
pub struct PasswordCheck {
    slots: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    max_blocks: usize,
    max_wait: Duration,
    dummy: Arc<Target>,
}

impl fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCheck")
            .field("free_slots", &self.slots.available_permits())
            .field("max_blocks", &self.max_blocks)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl Default for PasswordCheck {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a password could not be checked (as opposed to not matching).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordCheckError {
    /// Every slot stayed busy for the longest wait; retry after the delay.
    #[error("too many password checks at once: retry in {retry_after:?}")]
    Busy {
        /// A sensible delay before retrying.
        retry_after: Duration,
    },
    /// The stored hash needs more memory than a slot has.
    #[error("the stored password hash needs more memory than allowed")]
    TooCostly,
    /// The hashing task failed (it panicked); nothing was decided.
    #[error("the password check failed")]
    Failed,
}

impl PasswordCheck {
    /// One slot per core, 2 s of waiting at most, 19 MiB per slot.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::with_slots(cores)
    }

    fn with_slots(slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            slots: Arc::new(Semaphore::new(slots)),
            buffers: Arc::new(Mutex::new(Vec::with_capacity(slots))),
            max_blocks: Params::DEFAULT_M_COST as usize,
            max_wait: Duration::from_secs(2),
            dummy: Arc::new(Target::dummy()),
        }
    }

    /// At most `slots` checks at once (at least one).
    #[must_use]
    pub fn slots(self, slots: usize) -> Self {
        Self {
            max_wait: self.max_wait,
            max_blocks: self.max_blocks,
            ..Self::with_slots(slots)
        }
    }

    /// Waits at most this long for a free slot.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Each slot holds `kib` KiB (Argon2's `m`); stored hashes asking for
    /// more are refused. Default: 19,456 (19 MiB).
    #[must_use]
    pub fn max_memory_kib(mut self, kib: u32) -> Self {
        self.max_blocks = kib as usize;
        self
    }

    /// Whether `password` matches the PHC string `stored`; `None` (unknown
    /// user) does the same work against a dummy hash and answers `false`.
    /// A stored value that is not an Argon2 PHC string never matches.
    ///
    /// # Errors
    ///
    /// [`PasswordCheckError::Busy`] when no slot frees up in time,
    /// [`TooCostly`](PasswordCheckError::TooCostly) for a hash asking for
    /// more memory than a slot has, [`Failed`](PasswordCheckError::Failed)
    /// if hashing panicked.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordCheckError> {
        let target = match stored.as_deref().map(Target::parse) {
            Some(Some(target)) => Arc::new(target),
            Some(None) => {
                tracing::warn!("a stored password hash is not an Argon2 PHC string");
                self.dummy.clone()
            }
            None => self.dummy.clone(),
        };
        let is_dummy = Arc::ptr_eq(&target, &self.dummy);
        if target.params.block_count() > self.max_blocks {
            return Err(PasswordCheckError::TooCostly);
        }
        let permit = match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a closed one is as good as busy.
            Ok(Err(_)) | Err(_) => {
                return Err(PasswordCheckError::Busy {
                    retry_after: self.max_wait,
                });
            }
        };
        let buffers = self.buffers.clone();
        let max_blocks = self.max_blocks;
        let matches =
            tokio::task::spawn_blocking(move || hash_in_slot(&permit, &buffers, max_blocks, &target, &password))
                .await
                .map_err(|_| PasswordCheckError::Failed)?;
        Ok(matches && !is_dummy)
    }
}

/// Runs one check in a slot's buffer. The permit proves a buffer is free
/// (there are never more buffers than permits) and is released when this
/// returns, after the buffer went back.
fn hash_in_slot(
    _permit: &OwnedSemaphorePermit,
    buffers: &Mutex<Vec<Vec<Block>>>,
    max_blocks: usize,
    target: &Target,
    password: &str,
) -> bool {
    let mut buffer = buffers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_else(|| vec![Block::default(); max_blocks]);
    let matches = target.matches(password.as_bytes(), &mut buffer);
    buffers.lock().unwrap_or_else(PoisonError::into_inner).push(buffer);
    matches
}

/// A parsed stored hash: what to compute and what to compare it with.
struct Target {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl Target {
    fn parse(phc: &str) -> Option<Self> {
        let hash = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = match hash.version {
            Some(version) => Version::try_from(version).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&hash).ok()?;
        let mut salt = [0_u8; 64];
        let salt = hash.salt?.decode_b64(&mut salt).ok()?.to_vec();
        let expected = hash.hash?.as_bytes().to_vec();
        Some(Self {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// Default parameters, a random salt and a random expected output:
    /// computed like a real hash, matched by nothing.
    fn dummy() -> Self {
        let mut salt = vec![0_u8; 16];
        let mut expected = [0_u8; 32];
        // Without randomness the dummy is still a full-cost hash; only its
        // expected bytes would be guessable, and `verify` ignores its match.
        let _ = getrandom::fill(&mut salt);
        let _ = getrandom::fill(&mut expected);
        Self {
            algorithm: Algorithm::default(),
            version: Version::default(),
            params: Params::default(),
            salt,
            expected: expected.to_vec(),
        }
    }

    fn matches(&self, password: &[u8], buffer: &mut [Block]) -> bool {
        let argon2 = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut out = vec![0_u8; self.expected.len()];
        let Some(blocks) = buffer.get_mut(..self.params.block_count()) else {
            return false;
        };
        if argon2
            .hash_password_into_with_memory(password, &self.salt, &mut out, blocks)
            .is_err()
        {
            return false;
        }
        // `Output`'s equality is constant-time.
        match (Output::new(&out), Output::new(&self.expected)) {
            (Ok(computed), Ok(expected)) => computed == expected,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$eok8D8N3eaONqwTrIrYO9A$/BkIMtUpQpxnCZBCOI2LZXS2hSQW8u8HAmdKsODrnH4";

    #[tokio::test]
    async fn buffers_never_outnumber_slots() {
        let check = PasswordCheck::new().slots(2).max_wait(Duration::from_secs(30));
        let tries: Vec<_> = (0..6)
            .map(|n| {
                let check = check.clone();
                tokio::spawn(async move { check.verify(format!("guess{n}"), Some(DEMO.to_owned())).await })
            })
            .collect();
        for attempt in tries {
            assert_eq!(attempt.await.unwrap(), Ok(false));
        }
        assert!(check.buffers.lock().unwrap().len() <= 2);
    }

    #[tokio::test]
    async fn a_full_house_answers_busy_in_bounded_time() {
        let check = PasswordCheck::new().slots(1).max_wait(Duration::from_millis(20));
        let held = check.slots.clone().acquire_owned().await.unwrap();
        assert_eq!(
            check.verify("demo".into(), Some(DEMO.to_owned())).await,
            Err(PasswordCheckError::Busy {
                retry_after: Duration::from_millis(20)
            })
        );
        drop(held);
        assert_eq!(check.verify("demo".into(), Some(DEMO.to_owned())).await, Ok(true));
    }

    #[tokio::test]
    async fn costly_and_malformed_hashes() {
        let check = PasswordCheck::new().max_memory_kib(1024);
        assert_eq!(
            check.verify("demo".into(), Some(DEMO.to_owned())).await,
            Err(PasswordCheckError::TooCostly)
        );
        let check = PasswordCheck::new();
        assert_eq!(check.verify("demo".into(), Some("plain".into())).await, Ok(false));
    }
}
