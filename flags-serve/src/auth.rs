//! Authentication and roles as extractors: a handler that takes [`Authorized<R>`] cannot run
//! without a token holding role `R` in the path's `{env}`; one that takes [`Caller`] needs any
//! valid token; one that takes neither is visibly public.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use super::tokens::{Role, Token};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token as listed in the token file (name and roles; never the secret).
    pub token: Token,
    /// The client's address (`-` when unknown, e.g. in-process tests).
    pub client: String,
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

/// The bearer secret of a request, if any (`Authorization: Bearer <secret>`, or the
/// `flags_token` cookie the status page's login form sets).
pub fn bearer_secret(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, secret) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| secret.trim().to_owned())
            .filter(|s| !s.is_empty());
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("flags_token="))
        .map(str::to_owned)
        .find(|s| !s.is_empty())
}

/// The client address axum's connection info gives, if served with it.
pub fn client_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |ConnectInfo(addr)| addr.to_string())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let secret = bearer_secret(parts).ok_or(ApiError::Unauthorized)?;
        let tokens = state.tokens.current();
        let token = tokens.authenticate(&secret).ok_or(ApiError::Unauthorized)?;
        let caller = Caller {
            token: token.clone(),
            client: client_addr(parts),
        };
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
