//! Authentication and roles as extractors: a handler that takes [`Authorized<R>`] cannot run
//! without a token holding role `R` in the path's `{env}`; one that takes [`Caller`] needs any
//! valid token; one that takes neither is visibly public.
//!
//! Two ways in. `Authorization: Bearer <secret>` (API clients) authorizes anything its token's
//! roles allow. A browser session (the `flags_session` cookie the page's sign-in sets,
//! `sessions.rs`) authorizes reads as it is; a request that may change something (any method
//! but `GET`, `HEAD`, `OPTIONS`) also needs the session's CSRF token in `X-CSRF-Token` and, when
//! the browser names one, an `Origin` (else `Referer`) that is the service's own: 403
//! otherwise. Roles always come from the token file as it is now, so removing or rotating a
//! token ends what its sessions may do; a session signed in through the OpenID provider
//! (`oidc/`) gets its roles from the configured mapping, also at every request, as a token
//! named by its login (e-mail) with its e-mail.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::AppState;
use super::error::ApiError;
use super::sessions::{Identity, Session};
use super::tokens::{Role, Token};

/// The cookie that carries a browser session's id (`sessions.rs`), set by the page's sign-in.
pub const SESSION_COOKIE: &str = "flags_session";

/// The header carrying a session's CSRF token on requests that change something.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token as listed in the token file (name and roles; never the secret).
    pub token: Token,
    /// The client's address (`-` when unknown, e.g. in-process tests).
    pub client: String,
    /// The browser session it came through (`None`: `Authorization: Bearer`).
    pub session: Option<Session>,
    /// The person's name when it is not the token's name (an OIDC identity's `name` claim):
    /// the Git author name of its edits.
    pub display_name: Option<String>,
}

impl Caller {
    /// The token's name.
    pub fn name(&self) -> &str {
        &self.token.name
    }

    /// `Ok` when the caller holds `role` in `env`, else 403.
    pub fn require(&self, env: &str, role: Role) -> Result<(), ApiError> {
        if self.token.allows(env, role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                token: self.token.name.clone(),
                role: role.as_str(),
                env: env.to_owned(),
            })
        }
    }
}

/// The bearer secret of `Authorization: Bearer <secret>`: `None` without the header,
/// `Some(Err)` when it is there but not a bearer secret.
pub fn bearer_secret(parts: &Parts) -> Option<Result<String, ApiError>> {
    let value = parts.headers.get(header::AUTHORIZATION)?;
    let secret = value.to_str().ok().and_then(|value| {
        let (scheme, secret) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| secret.trim().to_owned())
            .filter(|s| !s.is_empty())
    });
    Some(secret.ok_or(ApiError::Unauthorized))
}

/// The value of cookie `name`, if the request carries it (the first non-empty one).
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
        .find(|s| !s.is_empty())
}

/// The client address axum's connection info gives, if served with it.
pub fn client_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |ConnectInfo(addr)| addr.to_string())
}

/// Whether `method` may change something: everything but `GET`, `HEAD` and `OPTIONS` needs
/// the CSRF token when it comes with a session.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `Ok` when `presented` (the `X-CSRF-Token` header, or the sign-out form's field) is
/// `session`'s CSRF token.
pub fn check_csrf(session: &Session, presented: Option<&str>) -> Result<(), ApiError> {
    match presented {
        Some(token) if session.csrf_matches(token) => Ok(()),
        Some(_) => Err(ApiError::Denied(
            "the X-CSRF-Token does not belong to this session; reload the page".into(),
        )),
        None => Err(ApiError::Denied(
            "a request that changes something with a session cookie needs the session's \
             X-CSRF-Token (API clients send Authorization: Bearer instead)"
                .into(),
        )),
    }
}

/// The origin (`scheme://host[:port]`, lowercase, without a default port) of an absolute
/// http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .filter(|a| !a.is_empty() && !a.contains('@'))?
        .to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

/// `Ok` when the request's `Origin` (else its `Referer`) is the service's own, or it carries
/// neither. The service's origin is `public_url`'s when configured; otherwise any scheme on
/// the request's own `Host`.
pub fn check_origin(parts: &Parts, public_url: Option<&str>) -> Result<(), ApiError> {
    let named = |name| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
    };
    let (claimed, which) = match (named(header::ORIGIN), named(header::REFERER)) {
        (Some(origin), _) => (origin, "Origin"),
        (None, Some(referer)) => (referer, "Referer"),
        (None, None) => return Ok(()),
    };
    let claimed_origin = origin_of(&claimed);
    let own = match (&claimed_origin, public_url.and_then(origin_of)) {
        (Some(origin), Some(public)) => *origin == public,
        // Without `public_url`: the scheme the browser used, on the host the request names.
        (Some(origin), None) => parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .zip(origin.split_once("://"))
            .and_then(|(host, (scheme, _))| origin_of(&format!("{scheme}://{host}")))
            .is_some_and(|own| own == *origin),
        (None, _) => false,
    };
    if own {
        Ok(())
    } else {
        Err(ApiError::Denied(format!(
            "{which} {claimed:?} is not this service's: requests with a session cookie must come from its own pages"
        )))
    }
}

/// The caller of a request with a session cookie: the live session, its identity still in the
/// token file (with the secret it signed in with), and, for a request that changes something,
/// its CSRF token and an own origin. A session whose token is gone is ended.
fn session_caller(parts: &Parts, state: &AppState, id: &str) -> Result<Caller, ApiError> {
    let session = state.sessions.get(id).ok_or(ApiError::Unauthorized)?;
    let tokens = state.tokens.current();
    let (token, display_name) = match &session.identity {
        Identity::Token { name, sha256 } => (tokens.by_identity(name, sha256).cloned(), None),
        Identity::Oidc(identity) => match &state.oidc {
            Some(oidc) => (
                Some(Token {
                    name: identity.login(),
                    sha256: String::new(),
                    roles: oidc.roles(identity),
                    email: identity.email.clone(),
                }),
                Some(identity.name.clone()),
            ),
            // OIDC no longer configured: its sessions end.
            None => (None, None),
        },
    };
    let Some(token) = token else {
        state.sessions.end(id);
        return Err(ApiError::Unauthorized);
    };
    if changes_state(&parts.method) {
        let presented = parts
            .headers
            .get(CSRF_HEADER)
            .map(|v| v.to_str().unwrap_or(""));
        check_csrf(&session, presented)?;
        check_origin(parts, state.config.public_url.as_deref())?;
    }
    Ok(Caller {
        token,
        client: client_addr(parts),
        session: Some(session),
        display_name,
    })
}

/// The caller of a request: `Authorization: Bearer` when the header is there (a bad one is
/// 401, whatever cookies come along), else the `flags_session` cookie. Nothing else
/// authenticates: the `flags_token` cookie of older versions is ignored.
fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    if let Some(secret) = bearer_secret(parts) {
        let tokens = state.tokens.current();
        let token = tokens
            .authenticate(&secret?)
            .ok_or(ApiError::Unauthorized)?;
        return Ok(Caller {
            token: token.clone(),
            client: client_addr(parts),
            session: None,
            display_name: None,
        });
    }
    match cookie(parts, SESSION_COOKIE) {
        Some(id) => session_caller(parts, state, id),
        None => Err(ApiError::Unauthorized),
    }
}

/// The token name a request speaks for, without the checks a change needs (the rate limit's
/// key): the bearer token's, else the live session's.
pub fn token_name(parts: &Parts, state: &AppState) -> Option<String> {
    if let Some(secret) = bearer_secret(parts) {
        let tokens = state.tokens.current();
        return tokens.authenticate(&secret.ok()?).map(|t| t.name.clone());
    }
    let session = state.sessions.get(cookie(parts, SESSION_COOKIE)?)?;
    Some(session.identity.name())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(parts, state)?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A role, as a type: `Authorized<Publish>`.
pub trait RoleMarker: Send + Sync + 'static {
    /// The role.
    const ROLE: Role;
}

macro_rules! role_markers {
    ($($name:ident => $role:expr),*) => {$(
        #[doc = concat!("Role marker for [`", stringify!($role), "`].")]
        #[derive(Debug)]
        pub struct $name;
        impl RoleMarker for $name {
            const ROLE: Role = $role;
        }
    )*};
}
role_markers!(Read => Role::Read, Publish => Role::Publish, Kill => Role::Kill, Approve => Role::Approve);

/// A caller holding role `R` in the environment named by the path's `{env}` segment, which is
/// one the service serves.
#[derive(Debug)]
pub struct Authorized<R> {
    /// Who.
    pub caller: Caller,
    /// The environment (checked: it is served).
    pub env: String,
    _role: PhantomData<R>,
}

impl<R: RoleMarker> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Authorized<R>, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let env = params
            .iter()
            .find(|(name, _)| *name == "env")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::Internal("route without {env}".into()))?;
        // The role first: a caller without it learns nothing about which environments exist.
        caller.require(&env, R::ROLE)?;
        if !state.environments().contains(&env) {
            return Err(ApiError::NotFound(format!(
                "no environment {env:?} is served"
            )));
        }
        Ok(Authorized {
            caller,
            env,
            _role: PhantomData,
        })
    }
}
