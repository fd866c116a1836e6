//! The console: the management UI over the flags API. Server-rendered HTML from `minijinja`
//! templates (embedded with `include_str!`, auto-escaped because their names end in `.html`)
//! plus one small ES module (`assets/console.js`) that turns buttons into the same
//! `/api/v1/...` calls a script would make, with the session's `X-CSRF-Token`. No business
//! logic lives here: every page reads through the functions the API routes answer with
//! (`routes::flags::list_value`, `routes::changes::show_value`, ...), and every action is an
//! API call the server authorizes on its own (the roles shown only decide which buttons
//! appear).
//!
//! Pages: `GET /flags` (every flag, filters, badges, per-environment toggle and kill),
//! `GET /flags/{key}` (definition, per-environment state, history), `GET /changes` and
//! `GET /changes/{id}` (diff, semantic diff, validation, approvals, Approve / Merge / Close),
//! `GET /environments/{env}` (the status page's section for it, `page/`, with drift Check /
//! Fix, canary Promote / Abort and Rollback after its diff). The status page at `/` links here. Assets are
//! served by `assets.rs` under names carrying their content hash, cached for a year.

pub mod assets;
mod pages;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::Environment;
use serde::Serialize;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::tokens::Role;

/// The console's routes, without state or layers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/flags", get(pages::flags))
        .route("/flags/{key}", get(pages::flag))
        .route("/changes", get(pages::changes))
        .route("/changes/{id}", get(pages::change))
        .route("/environments/{env}", get(pages::environment))
        .route("/console/assets/{name}", get(assets::serve))
        .route("/favicon.ico", get(assets::favicon))
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let templates = [
        ("base.html", include_str!("templates/base.html")),
        ("flags.html", include_str!("templates/flags.html")),
        ("flag.html", include_str!("templates/flag.html")),
        ("changes.html", include_str!("templates/changes.html")),
        ("change.html", include_str!("templates/change.html")),
        (
            "environment.html",
            include_str!("templates/environment.html"),
        ),
    ];
    for (name, source) in templates {
        // The templates are part of the binary: a syntax error is caught by the tests, and
        // shows as the page's error rather than a panic.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "a console template does not parse");
        }
    }
    env
});

/// What the signed-in caller may do per environment: which buttons a page shows.
#[derive(Debug, Serialize)]
struct Can {
    read: bool,
    edit: bool,
    kill: bool,
    approve: bool,
    publish: bool,
}

/// What every page's layout needs: who, their CSRF token, the assets, the environments and
/// what the caller may do in each.
#[derive(Debug, Serialize)]
struct Frame {
    whoami: String,
    csrf: Option<String>,
    script: String,
    style: String,
    envs: Vec<String>,
    can: BTreeMap<String, Can>,
    /// `edit` in at least one environment (prose edits need no more).
    edit_any: bool,
    /// The page's tab in the navigation.
    tab: &'static str,
}

impl Frame {
    fn new(state: &AppState, caller: &Caller, tab: &'static str) -> Frame {
        let allows = |env: &str, role| caller.token.allows(env, role);
        let envs = state.environments();
        let can: BTreeMap<String, Can> = envs
            .iter()
            .map(|env| {
                (
                    env.clone(),
                    Can {
                        read: allows(env, Role::Read),
                        edit: allows(env, Role::Edit),
                        kill: allows(env, Role::Kill),
                        approve: allows(env, Role::Approve),
                        publish: allows(env, Role::Publish),
                    },
                )
            })
            .collect();
        let edit_any = can.values().any(|c: &Can| c.edit);
        Frame {
            edit_any,
            whoami: caller.name().to_owned(),
            csrf: caller.session.as_ref().map(|s| s.csrf_token().to_owned()),
            script: assets::SCRIPT.url(),
            style: assets::STYLE.url(),
            envs,
            can,
            tab,
        }
    }
}

/// `template` rendered with the frame and `page`, or the error as a problem.
fn render(template: &str, frame: &Frame, page: minijinja::Value) -> Result<Response, ApiError> {
    let html = TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(minijinja::context! { frame => frame, page => page }))
        .map_err(|e| ApiError::Internal(format!("console template {template}: {e:#}")))?;
    // What the page shows (and its CSRF token) is for the signed-in browser only.
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}
