//! The console's static files, embedded in the binary (no asset build, no Node at run time):
//! one ES module and one stylesheet. Each is served at `/console/assets/<stem>.<hash>.<ext>`,
//! where `<hash>` is the first 12 hex digits of its SHA-256, with a year's `immutable`
//! cache: a new binary with other bytes has other names, so no browser keeps a stale copy.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    /// The bytes served.
    pub body: &'static str,
    hash: String,
}

impl Asset {
    fn new(
        stem: &'static str,
        ext: &'static str,
        content_type: &'static str,
        body: &'static str,
    ) -> Asset {
        let digest = hex::encode(Sha256::digest(body.as_bytes()));
        Asset {
            stem,
            ext,
            content_type,
            body,
            hash: digest.get(..12).unwrap_or(&digest).to_owned(),
        }
    }

    /// Its file name, content hash included.
    pub fn name(&self) -> String {
        format!("{}.{}.{}", self.stem, self.hash, self.ext)
    }

    /// Where the console's pages load it from.
    pub fn url(&self) -> String {
        format!("/console/assets/{}", self.name())
    }
}

/// The console's one script: every button's API call.
pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
});

/// The console's stylesheet (light and dark).
pub static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "console",
        "css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
});

/// `GET /console/assets/{name}`: public (the files hold nothing secret), cached for a year.
pub async fn serve(Path(name): Path<String>) -> Result<Response, ApiError> {
    let asset = [&*SCRIPT, &*STYLE]
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| ApiError::NotFound(format!("no console asset {name:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.body,
    )
        .into_response())
}

/// `GET /favicon.ico`: no icon (`204`, cached a day), so browsers log no 404 on every page.
pub async fn favicon() -> Response {
    (
        axum::http::StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "public, max-age=86400")],
    )
        .into_response()
}
