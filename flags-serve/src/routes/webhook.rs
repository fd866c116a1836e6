//! `POST /api/v1/webhooks/git`: a GitHub-style push event, signed (no bearer token: the HMAC
//! signature is the authentication). A push to the configured branch updates the checkout to
//! the pushed commit and publishes to every `auto_publish` environment (approval rules still
//! apply: those get a pending change). A delivery id already answered gets the same answer
//! again, with `"redelivery": true`, and changes nothing.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::AppState;
use crate::actions::Actor;
use crate::error::ApiError;
use crate::routes::publishing::{checkout_proposal, publish_or_propose};
use crate::webhook::update_checkout;

/// The author recorded for what a webhook publishes.
pub const WEBHOOK_AUTHOR: &str = "webhook";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The handler.
pub async fn git_push(
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (parts, body) = request.into_parts();
    let client = crate::auth::client_addr(&parts);
    let headers = parts.headers;
    // The raw bytes, exactly as signed (a JSON extractor would re-serialize).
    let body = axum::body::to_bytes(body, state.config.limits.body_bytes)
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
    let Some(webhook) = state.webhook.clone() else {
        return Err(ApiError::NotFound("no webhook is configured".into()));
    };
    webhook.verify(header(&headers, "x-hub-signature-256"), &body)?;
    let delivery = header(&headers, "x-github-delivery")
        .ok_or_else(|| ApiError::BadRequest("missing X-GitHub-Delivery header".into()))?
        .to_owned();
    let _one_at_a_time = webhook.serial.lock().await;
    if let Some((status, mut answer)) = webhook.answered(&delivery) {
        tracing::info!(
            delivery,
            "webhook redelivery: answered before, nothing done"
        );
        answer["redelivery"] = json!(true);
        return Ok((status, Json(answer)));
    }
    let event = header(&headers, "x-github-event").unwrap_or("push");
    let answer = match event {
        "ping" => (
            StatusCode::OK,
            json!({ "delivery": delivery, "event": "ping" }),
        ),
        "push" => handle_push(&state, &delivery, &body, client).await?,
        other => (
            StatusCode::ACCEPTED,
            json!({ "delivery": delivery, "event": other, "ignored": "only push events publish" }),
        ),
    };
    // Failures are not remembered: a redelivery of a failed delivery tries again.
    if answer.0.is_success() {
        webhook.remember(&delivery, answer.clone());
    }
    Ok((answer.0, Json(answer.1)))
}

async fn handle_push(
    state: &AppState,
    delivery: &str,
    body: &[u8],
    client: String,
) -> Result<(StatusCode, Value), ApiError> {
    let event: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("push event is not JSON: {e}")))?;
    let Some(webhook) = &state.webhook else {
        return Err(ApiError::NotFound("no webhook is configured".into()));
    };
    let branch = &webhook.config.branch;
    let git_ref = event["ref"].as_str().unwrap_or_default();
    let after = event["after"].as_str().unwrap_or_default();
    let ignored = |why: String| {
        Ok((
            StatusCode::ACCEPTED,
            json!({ "delivery": delivery, "ref": git_ref, "ignored": why }),
        ))
    };
    if git_ref != format!("refs/heads/{branch}") {
        return ignored(format!("not a push to {branch}"));
    }
    if after.bytes().all(|b| b == b'0') {
        return ignored(format!("{branch} was deleted"));
    }
    let head = {
        let _checkout = state.checkout.write().await;
        let updated =
            update_checkout(&state.config.flags, &webhook.config.remote, branch, after).await;
        // Its fetch may have moved the remote-tracking ref the flags API reads.
        if let Some(changes) = &state.changes {
            changes.repo.forget_main();
        }
        updated?
    };
    let pusher = event["pusher"]["name"].as_str().unwrap_or("someone");
    let message = format!(
        "{branch} at {} pushed by {pusher}",
        &head[..12.min(head.len())]
    );
    let actor = Actor {
        name: WEBHOOK_AUTHOR.to_owned(),
        client,
    };
    tracing::info!(delivery, commit = %head, pusher, "webhook: checkout updated");
    let mut results = Vec::new();
    let mut status = StatusCode::OK;
    let auto = state.config.auto_publish();
    for env in auto {
        let result = async {
            let proposal = checkout_proposal(state, &env, WEBHOOK_AUTHOR, None, false).await?;
            publish_or_propose(state, &env, &actor, proposal, Some(message.clone())).await
        }
        .await;
        match result {
            Ok((_, answer)) => results.push(answer),
            Err(error) => {
                // One environment failing (invalid flags, a lost race) does not hide the others.
                status = error.status();
                let mut answer =
                    json!({ "env": env, "published": false, "error": error.to_string() });
                if let ApiError::Invalid(diags) = &error {
                    answer["diagnostics"] =
                        diags.iter().map(crate::error::diagnostic_json).collect();
                }
                results.push(answer);
            }
        }
    }
    Ok((
        status,
        json!({ "delivery": delivery, "commit": head, "environments": results }),
    ))
}
