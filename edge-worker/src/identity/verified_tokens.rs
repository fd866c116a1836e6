//! Per-isolate cache of verified tokens: a dashboard polls with the same token many times a
//! second, and re-checking its HMAC and re-parsing its claims is a fixed cost on every request.
//!
//! Keyed by the SHA-256 of the token's bytes (so a lookup compares digests, and the time an
//! early-exit comparison takes says nothing about a cached token's bytes) and only valid for the secret and environment it was
//! verified under. An entry keeps the token's `exp`/`nbf`, checked against the clock on every
//! hit, so an expired token is refused even when cached. Bounded: the oldest entry goes first.

use std::cell::RefCell;
use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use super::Identity;

/// Most tokens kept per isolate.
pub const CAPACITY: usize = 64;

/// A verified token, with the time window it is valid in (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The identity the token resolved to.
    pub identity: Identity,
    /// `exp`: refused from this second on.
    pub expires_s: f64,
    /// `nbf`: refused before this second.
    pub not_before_s: Option<f64>,
}

/// What a hit says about the cached token at `now`.
#[derive(Debug, PartialEq)]
pub enum Hit {
    /// Valid now.
    Valid(Identity),
    /// Past `exp` or before `nbf`.
    Expired,
}

#[derive(Default)]
struct Cache {
    /// The secret and environment the entries were verified under: others clear the cache.
    scope: Option<(String, String)>,
    entries: VecDeque<([u8; 32], Verified)>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The SHA-256 of a token's bytes: the key of its entry here and of its answers in
/// [`crate::answer_cache`] (computed once per request, shared by both).
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The cached verdict for the token with this [`digest`] under `secret` and `environment`.
pub fn lookup(key: &[u8; 32], secret: &str, environment: &str, now_s: i64) -> Option<Hit> {
    lookup_with(key, secret, environment, now_s, Identity::clone).map(|hit| match hit {
        Ok(identity) => Hit::Valid(identity),
        Err(Expired) => Hit::Expired,
    })
}

/// Past `exp` or before `nbf` (see [`Hit::Expired`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Expired;

/// As [`lookup`], reading the identity through `read` rather than cloning it (a caller that
/// only needs to know the token is still valid reads nothing).
pub fn lookup_with<T>(
    key: &[u8; 32],
    secret: &str,
    environment: &str,
    now_s: i64,
    read: impl FnOnce(&Identity) -> T,
) -> Option<Result<T, Expired>> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !in_scope(&cache, secret, environment) {
            return None;
        }
        let index = cache.entries.iter().position(|(k, _)| k == key)?;
        let (_, verified) = cache.entries.get(index)?;
        let now = now_s as f64;
        let valid = now < verified.expires_s && verified.not_before_s.is_none_or(|nbf| now >= nbf);
        if valid {
            Some(Ok(read(&verified.identity)))
        } else {
            // Expired for good (or not yet valid): verify again from scratch next time.
            cache.entries.remove(index);
            Some(Err(Expired))
        }
    })
}

/// Remembers a token (by its [`digest`]) that verified under `secret` and `environment`.
pub fn store(key: [u8; 32], secret: &str, environment: &str, verified: Verified) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !in_scope(&cache, secret, environment) {
            cache.entries.clear();
            cache.scope = Some((secret.to_owned(), environment.to_owned()));
        }
        if cache.entries.len() >= CAPACITY {
            cache.entries.pop_front();
        }
        cache.entries.push_back((key, verified));
    })
}

fn in_scope(cache: &Cache, secret: &str, environment: &str) -> bool {
    cache
        .scope
        .as_ref()
        .is_some_and(|(s, e)| s == secret && e == environment)
}
