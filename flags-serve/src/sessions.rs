//! Browser sessions: what the status page's sign-in creates, so that no bearer secret ever sits
//! in a cookie.
//!
//! A session is a random id (256 bits from the operating system's CSPRNG, `getrandom`) that the
//! browser holds in the `flags_session` cookie, and a CSRF token (another 256 bits) that the
//! page embeds for the requests that change something. The map keeps the SHA-256 of each id,
//! never the id, so a memory dump or a log of the map names no live session. Each session holds
//! an [`Identity`], not roles: `auth.rs` resolves the roles from the token file at every
//! request, so a token removed or rotated in the file ends its sessions' power at once.
//!
//! Lifetimes: a session ends [`IDLE`] after its last use or [`ABSOLUTE`] after its creation,
//! whichever comes first, or at `POST /logout`. Sessions live in memory only: a restart signs
//! everyone out. At most [`MAX_SESSIONS`] are held; beyond that the least recently used goes.
//!
//! Time is an argument (`*_at`), so tests need no clock; the plain methods read [`Instant::now`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A session unused this long ends (a browser left open overnight signs in again).
pub const IDLE: Duration = Duration::from_secs(8 * 3600);

/// A session ends this long after its sign-in however busy (a working day and a half of
/// margin: a stolen cookie is worth at most this).
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);

/// Sessions held at once; signing in beyond it ends the least recently used (memory stays
/// bounded whatever a token holder does).
pub const MAX_SESSIONS: usize = 10_000;

/// Random bytes per session id and per CSRF token (256 bits).
const SECRET_BYTES: usize = 32;

/// Who a session speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// Signed in with a token of the token file: its name, and the SHA-256 of the secret it
    /// signed in with (a token rotated under the same name does not keep old sessions alive).
    Token {
        /// The token's name.
        name: String,
        /// SHA-256 of the secret presented at sign-in.
        sha256: [u8; 32],
    },
    /// Signed in through the OpenID provider (`oidc/`): who the ID token named. Its roles come
    /// from the configured mapping at every request.
    Oidc(Box<crate::oidc::OidcIdentity>),
}

impl Identity {
    /// What audit entries and logs call it: the token's name, or the OIDC identity's login
    /// (its e-mail, else `oidc:<sub>`).
    pub fn name(&self) -> String {
        match self {
            Identity::Token { name, .. } => name.clone(),
            Identity::Oidc(identity) => identity.login(),
        }
    }
}

/// A live session, as [`Sessions::get`] hands it out.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub identity: Identity,
    csrf: String,
    created: Instant,
    last_used: Instant,
}

impl Session {
    /// The CSRF token the page embeds (base64url, 43 characters).
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// True when `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    fn live_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_used) < IDLE
            && now.saturating_duration_since(self.created) < ABSOLUTE
    }
}

/// A new session's secrets: the id for the cookie and the CSRF token for the page.
#[derive(Debug)]
pub struct Created {
    /// The session id (base64url, 43 characters): the `flags_session` cookie's value.
    pub id: String,
    /// The session's CSRF token.
    pub csrf: String,
}

/// The operating system's randomness failed: no session can be created.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a session id: {0}")]
pub struct NoRandomness(getrandom::Error);

/// Every live session, by the SHA-256 of its id.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
}

/// 256 random bits, base64url: a session id, a CSRF token, an OIDC sign-in's binding.
pub(crate) fn random_secret() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `identity` now.
    pub fn create(&self, identity: Identity) -> Result<Created, NoRandomness> {
        self.create_at(identity, Instant::now())
    }

    /// Starts a session for `identity` at `now`: a fresh id and CSRF token. Ended sessions are
    /// dropped first; when [`MAX_SESSIONS`] are still held, the least recently used goes.
    pub fn create_at(&self, identity: Identity, now: Instant) -> Result<Created, NoRandomness> {
        let created = Created {
            id: random_secret()?,
            csrf: random_secret()?,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.live_at(now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            key(&created.id),
            Session {
                identity,
                csrf: created.csrf.clone(),
                created: now,
                last_used: now,
            },
        );
        Ok(created)
    }

    /// The live session `id` names, now (its idle time restarts).
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    /// The session `id` names if it is live at `now` (its idle time restarts then); an ended
    /// one is dropped.
    pub fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let key = key(id);
        let mut sessions = self.lock();
        let session = sessions.get_mut(&key)?;
        if !session.live_at(now) {
            sessions.remove(&key);
            return None;
        }
        session.last_used = session.last_used.max(now);
        Some(session.clone())
    }

    /// Ends session `id` (sign-out, or an identity no longer valid); true when it was live.
    pub fn end(&self, id: &str) -> bool {
        self.lock().remove(&key(id)).is_some()
    }

    /// Sessions held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str) -> Identity {
        Identity::Token {
            name: name.into(),
            sha256: [7; 32],
        }
    }

    #[test]
    fn ids_and_csrf_tokens_are_random_256_bit_values_and_the_map_holds_only_their_hashes() {
        let sessions = Sessions::default();
        let a = sessions.create(token("ci")).unwrap();
        let b = sessions.create(token("ci")).unwrap();
        for secret in [&a.id, &a.csrf, &b.id, &b.csrf] {
            assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        }
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, a.csrf);
        let held = format!("{:?}", sessions.inner.lock().unwrap().keys());
        assert!(!held.contains(&a.id), "ids are kept hashed");
        let session = sessions.get(&a.id).unwrap();
        assert_eq!(session.identity.name(), "ci");
        assert!(session.csrf_matches(&a.csrf));
        assert!(!session.csrf_matches(&b.csrf) && !session.csrf_matches(""));
        assert!(sessions.get(&a.csrf).is_none(), "the CSRF token is no id");
    }

    #[test]
    fn a_session_ends_when_idle_after_its_absolute_lifetime_or_at_sign_out() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let idle = sessions.create_at(token("a"), t0).unwrap();
        assert!(sessions.get_at(&idle.id, t0 + IDLE - minute).is_some());
        // Used a minute before its idle end: the idle time restarted then.
        assert!(sessions.get_at(&idle.id, t0 + IDLE + minute).is_some());
        assert!(sessions.get_at(&idle.id, t0 + 2 * IDLE + minute).is_none());

        let busy = sessions.create_at(token("b"), t0).unwrap();
        let mut at = t0;
        while at + IDLE / 2 < t0 + ABSOLUTE {
            at += IDLE / 2;
            assert!(sessions.get_at(&busy.id, at).is_some());
        }
        assert!(sessions.get_at(&busy.id, t0 + ABSOLUTE).is_none());
        assert!(
            sessions.get_at(&busy.id, t0).is_none(),
            "dropped, not paused"
        );

        let out = sessions.create_at(token("c"), t0).unwrap();
        assert!(sessions.end(&out.id));
        assert!(sessions.get_at(&out.id, t0).is_none());
        assert!(!sessions.end(&out.id));
    }

    #[test]
    fn signing_in_sweeps_ended_sessions() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        sessions.create_at(token("a"), t0).unwrap();
        sessions.create_at(token("b"), t0).unwrap();
        assert_eq!(sessions.len(), 2);
        sessions.create_at(token("c"), t0 + ABSOLUTE).unwrap();
        assert_eq!(sessions.len(), 1);
    }
}
