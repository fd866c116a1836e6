//! The routes, one module per resource. Every `/api/v1` handler takes an extractor from
//! `auth.rs` ([`super::auth::Authorized`] or [`super::auth::Caller`]); the public ones
//! (`/healthz`, `/readyz`, `/metrics`, the page's sign-in and sign-out) take none.

pub mod approvals;
pub mod canary;
pub mod drift;
pub mod environments;
pub mod health;
pub mod publishing;
pub mod rollouts;
pub mod telemetry;
pub mod webhook;

use axum::Router;
use axum::routing::{get, post};

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
}
