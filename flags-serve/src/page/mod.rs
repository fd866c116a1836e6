//! `GET /`: the status page, rendered on the server (no front-end build). A visitor without a
//! token gets the login form; `POST /` with the form's token sets an HttpOnly cookie. The page
//! is read-only whatever the token's roles: it shows, the API changes. It lists only the
//! environments the token may read. The sections are in `sections.rs`, the SVG charts in
//! `charts.rs`.

use std::fmt::Write as _;

mod charts;
mod sections;

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use chrono::{DateTime, Utc};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::routes::environments::status_of;
use super::tokens::Role;

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

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    ))
}

fn login_form(message: &str) -> Html<String> {
    layout(
        "Flags: sign in",
        &format!(
            "<h1>Flags</h1><p>{}</p><form method=post action=/><label>Token <input type=password name=token \
             autocomplete=off></label> <button type=submit>Sign in</button></form>",
            escape(message)
        ),
    )
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
    pending_section(out, state, name);
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
    let stats = state.telemetry.environment(name);
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
            return login_form("Sign in with a token that can read an environment.")
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
    layout("Flags", &body).into_response()
}

/// The environment's changes waiting for approval, each with its author, expiry and summary.
fn pending_section(body: &mut String, state: &AppState, env: &str) {
    let pending = state
        .approvals
        .list(Some(env), std::time::SystemTime::now());
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

/// `POST /`: checks the token and keeps it in an HttpOnly cookie.
pub async fn login(State(state): State<AppState>, Form(login): Form<Login>) -> Response {
    if state.tokens.current().authenticate(&login.token).is_none() {
        return login_form("Unknown token.").into_response();
    }
    let cookie = format!(
        "flags_token={}; HttpOnly; SameSite=Strict; Path=/",
        login.token
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
