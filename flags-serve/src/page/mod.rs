//! `GET /`: the status page, rendered on the server (no front-end build, no script). A visitor
//! without a token gets the sign-in form; `POST /` with the form's token starts a browser
//! session (`sessions.rs`: the `flags_session` cookie holds a random id, never the token) and
//! `POST /logout` ends it. The page embeds the session's CSRF token (`<meta name=csrf-token>`,
//! and the sign-out form's hidden field), which a request that changes something with the
//! session cookie must carry (`auth.rs`). The page is read-only whatever the token's roles: it
//! shows, the API changes. It lists only the environments the token may read. The sections
//! are in `sections.rs`, the SVG charts in `charts.rs`.

use std::fmt::Write as _;

mod charts;
mod sections;

use std::sync::LazyLock;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use chrono::{DateTime, Utc};

use super::AppState;
use super::auth::{self, Caller, SESSION_COOKIE};
use super::error::ApiError;
use super::routes::environments::status_of;
use super::sessions::Identity;
use super::tokens::{Role, secret_sha256};

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
th{background:#f4f4f4}.killed{color:#b00;font-weight:bold}.lint.error{color:#b00}\
time{border-bottom:1px dotted #999}figure{display:inline-block;margin:0 1em 1em 0}";

/// The service's `Content-Security-Policy` (`layers.rs` sets it on every answer): nothing
/// loads or runs but the page's own stylesheet (by its hash: inline, yet no `unsafe-inline`);
/// forms post only to the service; no one frames it. `connect-src 'self'` lets the page's
/// own origin call the API (with the CSRF token) once it has a script of its own.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// A whole page: `title`, extra `head` markup, `body` (both already escaped), the stylesheet
/// the Content-Security-Policy allows, `Cache-Control: no-store`.
pub(crate) fn layout(title: &str, head: &str, body: &str) -> Response {
    let html = Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title>{head}<style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    ));
    // What the page shows (and its CSRF token) is for the signed-in browser only.
    ([(header::CACHE_CONTROL, "no-store")], html).into_response()
}

fn login_form(state: &AppState, message: &str) -> Response {
    // With an OpenID provider configured: a link to its sign-in (`oidc/routes.rs`).
    let sso = state
        .oidc
        .as_ref()
        .map(|oidc| {
            format!(
                "<p><a class=sso href=/auth/oidc/login>Sign in with {}</a></p>",
                escape(&oidc.config().name)
            )
        })
        .unwrap_or_default();
    layout(
        "Flags: sign in",
        "",
        &format!(
            "<h1>Flags</h1><p>{}</p>{sso}<form method=post action=/><label>Token <input type=password name=token \
             autocomplete=off></label> <button type=submit>Sign in</button></form>",
            escape(message)
        ),
    )
}

/// Whether the service is reached over HTTPS: `public_url` is `https://...`, or the request
/// says so in `X-Forwarded-Proto` (a header any client may send; it is trusted only to add
/// `Secure` to cookies, which no client gains from faking).
pub(crate) fn served_over_https(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .config
        .public_url
        .as_deref()
        .is_some_and(|url| url.to_ascii_lowercase().starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` for the session cookie: `HttpOnly; SameSite=<same_site>; Path=/`, and
/// `Secure` when [`served_over_https`]. The token form's sessions are `Strict`; the OIDC
/// callback's are `Lax`, since the provider's redirect back (a cross-site navigation) and the
/// redirect to `/` after it must carry the cookie.
pub(crate) fn session_cookie(
    value: &str,
    max_age: Option<u64>,
    same_site: &str,
    state: &AppState,
    headers: &HeaderMap,
) -> HeaderValue {
    let https = served_over_https(state, headers);
    let mut cookie = format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite={same_site}; Path=/");
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if https {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("flags_session="))
}

/// The headers that drop what a browser should no longer hold: the session cookie when
/// `session` (it names no live session), and the `flags_token` cookie of older versions (it
/// held the bearer secret itself) whenever the request still carries one.
fn forget(state: &AppState, parts: &Parts, session: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if session {
        headers.append(
            header::SET_COOKIE,
            session_cookie("", Some(0), "Strict", state, &parts.headers),
        );
    }
    if auth::cookie(parts, "flags_token").is_some() {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("flags_token=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/"),
        );
    }
    headers
}

/// `?now=RFC3339`: the page as of another instant (ages and telemetry lints), to see what will
/// fire, as `GET .../telemetry?now=` does.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    now: Option<DateTime<Utc>>,
}

/// One environment's section: versions, pending approvals, rollouts, lints, recent changes and
/// evaluations.
async fn env_section(
    out: &mut String,
    state: &AppState,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let environment = state.environment(name, "-")?;
    let deployed = state.deployed.read(&environment).await?;
    let env = status_of(state, name, deployed.as_deref());
    let fleet = crate::fleet::check(state, &environment, deployed.as_deref()).await;
    let history = environment.history().await?.records;
    let canary = env
        .canary
        .as_ref()
        .and_then(|c| history.iter().find(|r| r.version == c.since));
    let _ = write!(
        out,
        "<section class=env id=\"env-{0}\"><h2>{0}</h2>",
        escape(name)
    );
    sections::versions(out, &env, canary, now);
    if let Some((edges, fleet)) = &fleet {
        sections::edges(out, edges, fleet, now);
    }
    sections::drift(
        out,
        &flags_store::drift::audit::entries(&environment).await?,
        now,
    );
    pending_section(out, state, name).await;
    sections::rollouts(out, &environment.rollouts().await?, &history, now);
    let deployed: Vec<String> = match &deployed {
        Some(deployed) => deployed
            .blob
            .body
            .flags
            .iter()
            .map(|f| f.key.clone())
            .collect(),
        None => Vec::new(),
    };
    let stats = state.telemetry.environment(name).await;
    sections::lints(out, state, name, &deployed, &stats, now).await?;
    sections::audit(out, &environment.audit().await?, now);
    sections::evaluations(out, &deployed, &stats);
    out.push_str("</section>");
    Ok(())
}

/// `GET /`.
pub async fn status_page(State(state): State<AppState>, mut parts: Parts) -> Response {
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(_) => {
            let stale = auth::cookie(&parts, SESSION_COOKIE).is_some();
            return (
                forget(&state, &parts, stale),
                login_form(&state, "Sign in with a token that can read an environment."),
            )
                .into_response();
        }
    };
    let now = match Query::<PageQuery>::from_request_parts(&mut parts, &state).await {
        Ok(Query(query)) => query.now.unwrap_or_else(Utc::now),
        Err(e) => return (StatusCode::BAD_REQUEST, e.body_text()).into_response(),
    };
    let mut body = format!(
        "<h1>Flags</h1><p>signed in as <b id=whoami>{}</b></p>",
        escape(caller.name())
    );
    // With a session: its CSRF token for the page's own requests, and the sign-out form.
    let head = match &caller.session {
        Some(session) => {
            let csrf = escape(session.csrf_token());
            let _ = write!(
                body,
                "<form class=signout method=post action=/logout><input type=hidden name=csrf value=\"{csrf}\">\
                 <button type=submit>Sign out</button></form>"
            );
            format!("<meta name=csrf-token content=\"{csrf}\">")
        }
        None => String::new(),
    };
    // Every environment at once: each may wait up to `edge_timeout` for a dead edge, and the
    // page should wait that long once, not once per environment.
    let readable: Vec<String> = state
        .environments()
        .into_iter()
        .filter(|name| caller.token.allows(name, Role::Read))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, name) in readable.iter().enumerate() {
        let (state, name) = (state.clone(), name.clone());
        tasks.spawn(async move {
            let mut section = String::new();
            let result = env_section(&mut section, &state, &name, now).await;
            (index, result.map(|()| section))
        });
    }
    let mut sections: Vec<Option<Result<String, String>>> = readable.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => {
                if let Some(slot) = sections.get_mut(index) {
                    *slot = Some(result.map_err(|e| e.to_string()));
                }
            }
            Err(e) => tracing::error!(error = %e, "a status page section failed"),
        }
    }
    for (name, section) in readable.iter().zip(sections) {
        match section.unwrap_or_else(|| Err("the section did not finish".into())) {
            Ok(section) => body.push_str(&section),
            Err(e) => {
                let _ = write!(
                    body,
                    "<section class=env id=\"env-{0}\"><h2>{0}</h2><p>cannot read: {1}</p></section>",
                    escape(name),
                    escape(&e)
                );
            }
        }
    }
    (forget(&state, &parts, false), layout("Flags", &head, &body)).into_response()
}

/// The environment's changes waiting for approval, each with its author, expiry and summary.
async fn pending_section(body: &mut String, state: &AppState, env: &str) {
    let pending = match state
        .approvals
        .list(Some(env), std::time::SystemTime::now())
        .await
    {
        Ok(pending) => pending,
        Err(e) => {
            let _ = write!(
                body,
                "<p class=error>Pending approvals cannot be read: {}</p>",
                escape(&e.to_string())
            );
            return;
        }
    };
    if pending.is_empty() {
        return;
    }
    let _ = write!(
        body,
        "<h3>Pending approval ({})</h3><ul class=pending>",
        pending.len()
    );
    for change in pending {
        let summary = &change.diff["summary"];
        let keys = |side: &str| {
            summary[side]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let _ = write!(
            body,
            "<li data-pending={}>#{} {} by <b>{}</b>, expires {}: added [{}] removed [{}] changed [{}]</li>",
            change.id,
            change.id,
            escape(change.action),
            escape(&change.author),
            escape(&change.expires_at),
            escape(&keys("added")),
            escape(&keys("removed")),
            escape(&keys("changed")),
        );
    }
    body.push_str("</ul>");
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /`: checks the token and starts a browser session for it: the `flags_session` cookie
/// holds the session's random id (the token itself is never in a cookie). A form posted from
/// another origin is refused (403), as is every change a session makes (`auth.rs`).
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(login): Form<Login>,
) -> Result<Response, ApiError> {
    auth::check_origin(&parts, state.config.public_url.as_deref())?;
    let Some(token) = state.tokens.current().authenticate(&login.token).cloned() else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            login_form(&state, "Unknown token."),
        )
            .into_response());
    };
    if let Some(previous) = auth::cookie(&parts, SESSION_COOKIE) {
        state.sessions.end(previous);
    }
    let created = state
        .sessions
        .create(Identity::Token {
            name: token.name.clone(),
            sha256: secret_sha256(&login.token),
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(token = %token.name, client = %auth::client_addr(&parts), "signed in");
    let mut headers = forget(&state, &parts, false);
    headers.append(
        header::SET_COOKIE,
        session_cookie(&created.id, None, "Strict", &state, &parts.headers),
    );
    Ok((headers, Redirect::to("/")).into_response())
}

/// The sign-out form's field.
#[derive(Debug, Deserialize)]
pub struct Logout {
    csrf: Option<String>,
}

/// `POST /logout`: ends the session and drops its cookie. The session's CSRF token must come
/// along (the form's `csrf` field, or `X-CSRF-Token`), from the service's own origin, so that
/// no other site can sign a browser out. Without a live session it only drops the cookie.
pub async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    form: Result<Form<Logout>, FormRejection>,
) -> Result<Response, ApiError> {
    if let Some(id) = auth::cookie(&parts, SESSION_COOKIE)
        && let Some(session) = state.sessions.get(id)
    {
        let field = form.ok().and_then(|Form(logout)| logout.csrf);
        let header = parts
            .headers
            .get(auth::CSRF_HEADER)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        auth::check_csrf(&session, field.or(header).as_deref())?;
        auth::check_origin(&parts, state.config.public_url.as_deref())?;
        state.sessions.end(id);
        tracing::info!(token = %session.identity.name(), client = %auth::client_addr(&parts), "signed out");
    }
    Ok((forget(&state, &parts, true), Redirect::to("/")).into_response())
}
