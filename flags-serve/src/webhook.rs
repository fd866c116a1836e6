//! The Git push webhook's parts: the GitHub-style signature (`X-Hub-Signature-256: sha256=<hex
//! HMAC-SHA256 of the raw body>`, compared in constant time by `hmac`'s `verify_slice`), the
//! deliveries already handled (so a redelivery is a no-op), and updating the checkout with
//! real `git` (fetch the branch, check the pushed commit out detached).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Mutex;

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::config::WebhookConfig;
use super::error::ApiError;

/// Deliveries remembered for redelivery (GitHub redelivers by hand or on timeouts; a few
/// thousand covers days of pushes in bounded memory).
const REMEMBERED: usize = 4096;

/// A configured webhook.
#[derive(Debug)]
pub struct Webhook {
    /// Branch and remote.
    pub config: WebhookConfig,
    secret: Vec<u8>,
    answered: Mutex<Answered>,
    /// One delivery at a time: a redelivery racing its original waits and then finds it.
    pub serial: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Answered {
    order: VecDeque<String>,
    answers: HashMap<String, (StatusCode, Value)>,
}

impl Webhook {
    /// The webhook of `config`, its secret read.
    pub fn new(config: WebhookConfig) -> Result<Webhook, String> {
        let secret = config.secret()?;
        Ok(Webhook {
            config,
            secret,
            answered: Mutex::default(),
            serial: tokio::sync::Mutex::new(()),
        })
    }

    /// `Ok` when `signature` (the header's value) is `sha256=<hex>` of `body` under the secret.
    pub fn verify(&self, signature: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
        let signature = signature
            .ok_or_else(|| ApiError::BadSignature("missing X-Hub-Signature-256 header".into()))?;
        let digest = signature
            .strip_prefix("sha256=")
            .and_then(|hex| hex::decode(hex).ok())
            .ok_or_else(|| {
                ApiError::BadSignature("X-Hub-Signature-256 must be sha256=<hex>".into())
            })?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .map_err(|e| ApiError::Internal(format!("webhook key: {e}")))?;
        mac.update(body);
        mac.verify_slice(&digest).map_err(|_| {
            ApiError::BadSignature("X-Hub-Signature-256 does not match the body".into())
        })
    }

    /// The answer given to delivery `id` before, if any.
    pub fn answered(&self, id: &str) -> Option<(StatusCode, Value)> {
        let answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        answered.answers.get(id).cloned()
    }

    /// Remembers the answer to delivery `id` (the oldest is forgotten past [`REMEMBERED`]).
    pub fn remember(&self, id: &str, answer: (StatusCode, Value)) {
        let mut answered = self.answered.lock().unwrap_or_else(|e| e.into_inner());
        if answered.answers.insert(id.to_owned(), answer).is_none() {
            answered.order.push_back(id.to_owned());
        }
        while answered.order.len() > REMEMBERED {
            if let Some(old) = answered.order.pop_front() {
                answered.answers.remove(&old);
            }
        }
    }
}

/// Whether `commit` is a full hexadecimal object name (so it can never be read as an option).
pub fn is_object_name(commit: &str) -> bool {
    matches!(commit.len(), 40 | 64) && commit.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn git(dir: &Path, args: &[&str]) -> Result<String, ApiError> {
    let out = crate::changes::git::run(dir, args, None).await?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Fetches `branch` from `remote` into the checkout at `dir` and checks `commit` out (detached,
/// discarding nothing: a checkout with local edits fails instead). Returns the new `HEAD`.
pub async fn update_checkout(
    dir: &Path,
    remote: &str,
    branch: &str,
    commit: &str,
) -> Result<String, ApiError> {
    if !is_object_name(commit) {
        return Err(ApiError::BadRequest(format!(
            "after: {commit:?} is not a commit id"
        )));
    }
    let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
    git(dir, &["fetch", "--quiet", "--", remote, &refspec]).await?;
    git(dir, &["checkout", "--quiet", "--detach", commit]).await?;
    let head = git(dir, &["rev-parse", "HEAD"]).await?;
    if head != commit {
        return Err(ApiError::Internal(format!(
            "checked out {commit} but HEAD is {head}"
        )));
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Webhook {
        Webhook {
            config: WebhookConfig {
                branch: "main".into(),
                remote: "origin".into(),
                secret_file: None,
            },
            // GitHub's documented example: secret "It's a Secret to Everybody".
            secret: b"It's a Secret to Everybody".to_vec(),
            answered: Mutex::default(),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    #[test]
    fn githubs_documented_example_verifies_and_a_changed_byte_does_not() {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let hook = webhook();
        assert!(hook.verify(Some(signature), b"Hello, World!").is_ok());
        assert!(hook.verify(Some(signature), b"Hello, World?").is_err());
        assert!(hook.verify(None, b"Hello, World!").is_err());
        assert!(hook.verify(Some("sha1=00"), b"Hello, World!").is_err());
        assert!(hook.verify(Some("sha256=zz"), b"Hello, World!").is_err());
    }

    #[test]
    fn only_full_object_names_reach_git() {
        assert!(is_object_name(&"a".repeat(40)));
        assert!(!is_object_name("--upload-pack=evil"));
        assert!(!is_object_name("HEAD"));
        assert!(!is_object_name(&"g".repeat(40)));
    }

    #[test]
    fn remembered_deliveries_are_bounded() {
        let hook = webhook();
        for i in 0..REMEMBERED + 10 {
            hook.remember(&i.to_string(), (StatusCode::OK, Value::Null));
        }
        assert!(hook.answered("0").is_none());
        assert!(hook.answered(&(REMEMBERED + 9).to_string()).is_some());
    }
}
