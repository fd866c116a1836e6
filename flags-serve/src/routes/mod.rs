//! The routes, one module per resource. Every `/api/v1` handler takes an extractor from
//! `auth.rs` ([`super::auth::Authorized`] or [`super::auth::Caller`]); the public ones
//! (`/healthz`, `/readyz`, `/metrics`, the page's sign-in and sign-out, the OIDC sign-in's
//! `/auth/oidc/*`) take none.

pub mod approvals;
pub mod canary;
pub mod changes;
pub mod drift;
pub mod environments;
pub mod flags;
pub mod health;
pub mod publishing;
pub mod rollouts;
pub mod telemetry;
pub mod webhook;

use axum::Router;
use axum::routing::{get, post, put};

use super::AppState;
use super::page;

/// Every route, without state or layers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(super::metrics::render))
        .route("/", get(page::status_page).post(page::login))
        .route("/logout", post(page::logout))
        .route("/auth/oidc/login", get(super::oidc::routes::login))
        .route("/auth/oidc/callback", get(super::oidc::routes::callback))
        .route("/api/v1/environments", get(environments::list))
        .route("/api/v1/environments/{env}", get(environments::show))
        .route(
            "/api/v1/environments/{env}/history",
            get(environments::history),
        )
        .route("/api/v1/environments/{env}/audit", get(environments::audit))
        .route("/api/v1/environments/{env}/drift", post(drift::check))
        .route("/api/v1/environments/{env}/drift/fix", post(drift::fix))
        .route("/api/v1/telemetry", post(telemetry::ingest))
        .route("/api/v1/environments/{env}/telemetry", get(telemetry::show))
        .route("/api/v1/environments/{env}/rollouts", get(rollouts::status))
        .route(
            "/api/v1/environments/{env}/rollouts/tick",
            post(rollouts::tick),
        )
        .route(
            "/api/v1/environments/{env}/rollouts/resume",
            post(rollouts::resume),
        )
        .route("/api/v1/environments/{env}/diff", get(environments::diff))
        .route(
            "/api/v1/environments/{env}/validate",
            get(environments::validate).post(environments::validate),
        )
        .route("/api/v1/environments/{env}/push", post(publishing::push))
        .route(
            "/api/v1/environments/{env}/rollback",
            post(publishing::rollback),
        )
        .route(
            "/api/v1/environments/{env}/flags/{key}/kill",
            post(publishing::kill),
        )
        .route(
            "/api/v1/environments/{env}/flags/{key}/unkill",
            post(publishing::unkill),
        )
        .route("/api/v1/environments/{env}/promote", post(canary::promote))
        .route("/api/v1/environments/{env}/abort", post(canary::abort))
        .route("/api/v1/environments/{env}/approvals", get(approvals::list))
        .route(
            "/api/v1/environments/{env}/approvals/{id}/approve",
            post(approvals::approve),
        )
        .route(
            "/api/v1/environments/{env}/approvals/{id}/reject",
            post(approvals::reject),
        )
        .route("/api/v1/webhooks/git", post(webhook::git_push))
        .route("/api/v1/flags", get(flags::list_flags))
        .route(
            "/api/v1/flags/{key}",
            get(flags::get_flag)
                .put(flags::put_flag)
                .patch(flags::patch_flag)
                .delete(flags::delete_flag),
        )
        .route("/api/v1/segments", get(flags::list_segments))
        .route(
            "/api/v1/segments/{key}",
            put(flags::put_segment)
                .get(flags::get_segment)
                .patch(flags::patch_segment)
                .delete(flags::delete_segment),
        )
        .route("/api/v1/schema/{file}", get(flags::schema))
        .route("/api/v1/changes", get(changes::list).post(changes::open))
        .route("/api/v1/changes/{id}", get(changes::show))
        .route("/api/v1/changes/{id}/approve", post(changes::approve))
        .route("/api/v1/changes/{id}/merge", post(changes::merge))
        .route("/api/v1/changes/{id}/close", post(changes::close))
}
