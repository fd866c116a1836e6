//! `GET /auth/oidc/login` and `GET /auth/oidc/callback`: the browser's way to the provider and
//! back. Every failure is an HTML page saying what went wrong (the browser is on it, not a
//! script), with the status, and starts no session.

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{OidcError, PENDING_COOKIE, PENDING_TTL};
use crate::AppState;
use crate::auth::{self, SESSION_COOKIE};
use crate::page;
use crate::sessions::{Identity, random_secret};

/// An error page: what failed, and a way back to the sign-in.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=error role=alert>{}</p><p><a href=/>Back to the sign-in</a></p>",
        page::escape(title),
        page::escape(message)
    );
    (status, page::layout(&format!("Flags: {title}"), "", &body)).into_response()
}

fn failed(error: OidcError) -> Response {
    error_page(error.status, "Sign-in failed", &error.message)
}

/// The `flags_oidc` cookie: `HttpOnly; SameSite=Lax` (the provider's redirect back is a
/// cross-site navigation that must carry it), only for `/auth/oidc`, [`PENDING_TTL`] long.
fn pending_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let mut cookie = format!(
        "{PENDING_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/auth/oidc; Max-Age={max_age}"
    );
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("flags_oidc="))
}

/// `GET /auth/oidc/login`: to the provider's authorization endpoint, with a new sign-in bound to
/// this browser.
pub async fn login(State(state): State<AppState>, parts: Parts) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "No single sign-on",
            "This service has no OpenID provider configured (oidc: in serve.yaml); sign in with a token.",
        );
    };
    let binding = match random_secret() {
        Ok(binding) => binding,
        Err(e) => return failed(OidcError::provider(e.to_string())),
    };
    match oidc.start(&binding).await {
        Ok(url) => {
            let secure = page::served_over_https(&state, &parts.headers);
            let mut headers = HeaderMap::new();
            headers.append(
                header::SET_COOKIE,
                pending_cookie(&binding, PENDING_TTL.as_secs(), secure),
            );
            (headers, Redirect::to(&url)).into_response()
        }
        Err(error) => {
            tracing::warn!(error = %error.message, "oidc sign-in cannot start");
            failed(error)
        }
    }
}

/// The provider's redirect back: a code and the state, or an error.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback`: checks the state against this browser's sign-in, exchanges the
/// code, validates the ID token; an identity the role mapping gives nothing gets a page saying
/// so; any other gets a browser session (`flags_session`, `SameSite=Lax`) and goes to `/`.
pub async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return error_page(
            StatusCode::NOT_FOUND,
            "No single sign-on",
            "This service has no OpenID provider configured.",
        );
    };
    let secure = page::served_over_https(&state, &parts.headers);
    // The sign-in in progress is over whatever happens: its cookie goes.
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, pending_cookie("", 0, secure));
    let binding = auth::cookie(&parts, PENDING_COOKIE);
    let callback = match query {
        Ok(Query(callback)) => callback,
        Err(e) => {
            return (headers, failed(OidcError::refused(e.body_text()))).into_response();
        }
    };
    let client = auth::client_addr(&parts);
    let identity = match (callback.error, callback.code, callback.state) {
        (Some(error), _, _) => Err(OidcError::refused(format!(
            "the provider refused the sign-in: {error}{}",
            callback
                .error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ))),
        (None, Some(code), Some(sent)) => oidc.finish(binding, &sent, code).await,
        _ => Err(OidcError::refused(
            "the provider's answer has no code or no state",
        )),
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(error = %error.message, %client, "oidc sign-in refused");
            return (headers, failed(error)).into_response();
        }
    };
    let login = identity.login();
    if oidc.roles(&identity).is_empty() {
        tracing::warn!(identity = %login, groups = ?identity.groups, %client, "oidc identity maps to no role");
        let message = format!(
            "You signed in as {login}, but no role is mapped to this identity or its groups ({}). Ask an administrator to map one in the service's oidc: roles.",
            if identity.groups.is_empty() {
                "none".to_owned()
            } else {
                identity.groups.join(", ")
            }
        );
        return (
            headers,
            error_page(StatusCode::FORBIDDEN, "No access", &message),
        )
            .into_response();
    }
    if let Some(previous) = auth::cookie(&parts, SESSION_COOKIE) {
        state.sessions.end(previous);
    }
    let created = match state.sessions.create(Identity::Oidc(Box::new(identity))) {
        Ok(created) => created,
        Err(e) => return (headers, failed(OidcError::provider(e.to_string()))).into_response(),
    };
    tracing::info!(identity = %login, %client, "signed in through oidc");
    headers.append(
        header::SET_COOKIE,
        page::session_cookie(&created.id, None, "Lax", &state, &parts.headers),
    );
    (headers, Redirect::to("/")).into_response()
}
