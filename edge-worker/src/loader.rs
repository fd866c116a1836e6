//! Loading the blob: isolate memory first, then the colo Cache API, then the origin; and
//! keeping the last good blob when anything goes wrong.
//!
//! Every `REVALIDATE_MS` a request revalidates before it is answered: it asks the colo cache
//! for the environment's entry (cheap; the body is only read when its SHA-256 differs from the
//! blob in memory). A miss reads `<env>/current.json` from the origin, then the blob it names,
//! and refills the cache. So after a publish purges the colo cache, every isolate serving
//! traffic switches within `REVALIDATE_MS` plus one origin round trip (pointer + blob).
//!
//! Any failure (origin down or slow, 404, bad pointer, hash mismatch, corrupt gzip, bad JSON,
//! unknown schema, wrong environment) keeps the current blob, is recorded for the health
//! endpoint, and delays the next attempt with exponential backoff. The pure parts (pointer
//! and blob decoding, the retry state) live here and test natively; the I/O is the Workers
//! runtime's, in `runtime/loader_io.rs` (wasm32 only).

use std::fmt;

use sha2::{Digest, Sha256};
use shared_eval::{BlobError, CanaryRef, MAX_BLOB_BYTES, Pointer, Sealed, Snapshot};

use crate::gunzip::{GunzipError, gunzip};
use crate::sigv4::hex;

/// Path prefix of the colo cache entries (never routed to a browser: the worker 404s it).
pub const CACHE_KEY_PREFIX: &str = "/_flags/cache/";

/// The colo cache key of an environment's blob, under the worker's own origin.
pub fn cache_key(own_origin: &str, environment: &str) -> String {
    format!("{own_origin}{CACHE_KEY_PREFIX}{environment}")
}

/// Longest wait between failed attempts.
pub const MAX_BACKOFF_MS: u64 = 5_000;

/// Why a load failed. `Display` is what the health endpoint shows: no URLs, no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The worker's bindings are unusable.
    Config(String),
    /// The origin could not be reached.
    Unreachable(&'static str),
    /// The origin did not answer within `ORIGIN_TIMEOUT_MS`.
    Timeout(&'static str),
    /// The origin has no such object.
    NotFound(&'static str),
    /// The origin answered with another unexpected status.
    Status(&'static str, u16),
    /// `current.json` is not a valid pointer.
    BadPointer(&'static str),
    /// The object is larger than the blob size limit.
    TooLarge(&'static str),
    /// The `.gz` bytes do not hash to the pointer's `sha256`.
    HashMismatch {
        /// From the pointer.
        expected: String,
        /// Of the bytes received.
        found: String,
    },
    /// The bytes are not a complete gzip stream.
    Gzip,
    /// The blob was refused by `Snapshot::from_json` (bad JSON, schema, content hash...).
    Blob(BlobError),
    /// The canary's blob failed to load (stable is unaffected; the last good canary, if any,
    /// keeps serving its users).
    Canary(Box<LoadError>),
    /// Public keys are configured and the pointer carries no signature.
    Unsigned,
    /// The pointer is signed by a key that is not configured (key id).
    UnknownKey(String),
    /// The pointer's signature does not verify with the configured key it names (key id).
    BadSignature(String),
    /// The pointer is older than the version this isolate serves: a replay.
    OlderVersion {
        /// The pointer's version.
        found: u64,
        /// The version served.
        served: u64,
    },
    /// The blob belongs to another environment.
    WrongEnvironment {
        /// Configured.
        expected: String,
        /// In the blob's header.
        found: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Config(why) => write!(f, "configuration: {why}"),
            LoadError::Unreachable(what) => write!(f, "origin unreachable fetching {what}"),
            LoadError::Timeout(what) => write!(f, "origin timed out fetching {what}"),
            LoadError::NotFound(what) => write!(f, "origin has no {what} (404)"),
            LoadError::Status(what, status) => write!(f, "origin answered {status} for {what}"),
            LoadError::BadPointer(why) => write!(f, "pointer is invalid: {why}"),
            LoadError::TooLarge(what) => {
                write!(f, "{what} is over the {MAX_BLOB_BYTES}-byte limit")
            }
            LoadError::HashMismatch { expected, found } => {
                write!(f, "blob sha256 is {found}, pointer says {expected}")
            }
            LoadError::Gzip => write!(f, "blob is not a complete gzip stream"),
            LoadError::Blob(error) => write!(f, "{error}"),
            LoadError::Canary(error) => write!(f, "canary: {error}"),
            LoadError::Unsigned => {
                write!(f, "pointer is not signed; this worker requires a signature")
            }
            LoadError::UnknownKey(id) => {
                write!(
                    f,
                    "pointer is signed by key {id:?}, which is not configured"
                )
            }
            LoadError::BadSignature(id) => {
                write!(
                    f,
                    "pointer signature does not verify with key {id:?}: forged or altered"
                )
            }
            LoadError::OlderVersion { found, served } => write!(
                f,
                "pointer is version {found}, older than version {served} already served: refused"
            ),
            LoadError::WrongEnvironment { expected, found } => {
                write!(
                    f,
                    "blob is for environment {found:?}, this worker serves {expected:?}"
                )
            }
        }
    }
}

/// Which users a canary serves: those whose `bucket(salt, targeting key)` is below `buckets`
/// (shared-eval's own bucketing, so it is the same in every isolate and every colo, and a larger
/// share only adds users). Requests without a targeting key get stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanarySplit {
    /// Share in buckets of [`shared_eval::BUCKETS`].
    pub buckets: u32,
    /// The canary's salt.
    pub salt: String,
    /// The version that started it.
    pub since: u64,
}

impl CanarySplit {
    /// Who gets the canary the pointer names.
    pub fn of(canary: &CanaryRef) -> CanarySplit {
        CanarySplit {
            // `Pointer::parse` read the share as buckets (at most `BUCKETS`).
            buckets: canary.percent.buckets(),
            salt: canary.salt.clone(),
            since: canary.since,
        }
    }

    /// Whether the user with this targeting key is served the canary.
    pub fn serves(&self, targeting_key: Option<&str>) -> bool {
        shared_eval::in_canary(&self.salt, self.buckets, targeting_key)
    }

    /// The share as a percentage.
    pub fn percent(&self) -> f64 {
        f64::from(self.buckets) * 100.0 / f64::from(shared_eval::BUCKETS)
    }
}

/// Parses and checks a pointer ([`Pointer::parse`], shared-eval's one definition of the
/// format): the blob key must be the content-addressed name of `sha256`, so a pointer cannot
/// send the worker to an arbitrary key.
pub fn parse_pointer(bytes: &[u8]) -> Result<Pointer, LoadError> {
    Pointer::parse(bytes).map_err(|error| LoadError::BadPointer(error.reason()))
}

/// The canary half as the colo cache entry's header value: what [`CanaryRef::from_json`]
/// reads back as the same canary and [`CanarySplit`].
pub fn canary_header(canary: &CanaryRef) -> String {
    let blob = &canary.blob_ref;
    let percent = match canary.percent.buckets() {
        // A share of nobody (a hand-written percent below one bucket): a percent that reads
        // back as one.
        0 => 0.0001,
        _ => canary.percent.percent(),
    };
    serde_json::json!({
        "blob": blob.blob,
        "sha256": blob.sha256,
        "content_hash": blob.known_content_hash(),
        "percent": percent,
        "salt": canary.salt,
        "since": canary.since,
    })
    .to_string()
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

/// SHA-256, computed in Rust.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Checks and decodes a blob as fetched. Normally `bytes` are the `.gz` object: they must hash
/// to `expected_sha256`, then are gunzipped (bounded by the blob size limit). But the publisher
/// stores blobs with `Content-Encoding: gzip` (so `curl | gunzip | jq` and CDNs work), and the
/// Workers runtime's `fetch` transparently decodes such bodies: then `bytes` are the JSON itself
/// and the `.gz` hash cannot be checked. In that case the pointer's `content_hash` must match
/// the blob's, whose content hash is checked against the body, so a truncated or
/// substituted blob is refused either way. Finally the environment must be ours.
///
/// `body_sha256` hashes the body for the content-hash check: in the worker the runtime's native
/// SHA-256 (`crypto.subtle`), since in Wasm the hash in Rust is ~45% of a cold load.
pub async fn decode_blob_with(
    bytes: &[u8],
    expected_sha256: &str,
    expected_content_hash: Option<&str>,
    environment: &str,
    body_sha256: impl AsyncFnOnce(&[u8]) -> [u8; 32],
) -> Result<Snapshot, LoadError> {
    if bytes.len() > MAX_BLOB_BYTES {
        return Err(LoadError::TooLarge("blob"));
    }
    let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
    let decoded;
    let json: &[u8] = if gzipped {
        let found = sha256_hex(bytes);
        if found != expected_sha256 {
            return Err(LoadError::HashMismatch {
                expected: expected_sha256.to_owned(),
                found,
            });
        }
        decoded = gunzip(bytes, MAX_BLOB_BYTES).map_err(|e| match e {
            GunzipError::Corrupt => LoadError::Gzip,
            GunzipError::TooLarge => LoadError::TooLarge("uncompressed blob"),
        })?;
        &decoded
    } else if expected_content_hash.is_some() {
        bytes
    } else {
        // Not gzip, and nothing else to check it against.
        return Err(LoadError::Gzip);
    };
    let sealed = Sealed::parse(json).map_err(LoadError::Blob)?;
    let digest = body_sha256(sealed.body_bytes()).await;
    let snapshot = sealed.into_snapshot(&digest).map_err(LoadError::Blob)?;
    if let Some(expected) = expected_content_hash.filter(|_| !gzipped)
        && snapshot.header().content_hash != expected
    {
        return Err(LoadError::HashMismatch {
            expected: expected.to_owned(),
            found: snapshot.header().content_hash.clone(),
        });
    }
    if snapshot.header().environment != environment {
        return Err(LoadError::WrongEnvironment {
            expected: environment.to_owned(),
            found: snapshot.header().environment.clone(),
        });
    }
    Ok(snapshot)
}

/// [`decode_blob_with`] hashing the body here, in Rust (native callers: tests, the fuzzer).
pub fn decode_blob(
    bytes: &[u8],
    expected_sha256: &str,
    expected_content_hash: Option<&str>,
    environment: &str,
) -> Result<Snapshot, LoadError> {
    use std::task::{Context, Poll, Waker};
    let decoding = std::pin::pin!(decode_blob_with(
        bytes,
        expected_sha256,
        expected_content_hash,
        environment,
        async |body: &[u8]| sha256(body),
    ));
    match decoding.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        // Nothing above waits: unreachable, but an error rather than a panic.
        Poll::Pending => Err(LoadError::Config("blob decoding did not finish".into())),
    }
}

/// Where a blob (or a revalidation) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Isolate memory, no check needed.
    Memory,
    /// The colo Cache API.
    Cache,
    /// The origin.
    Origin,
}

impl Source {
    /// Lowercase name for JSON and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Cache => "cache",
            Source::Origin => "origin",
        }
    }
}

/// A loaded blob with what the health endpoint reports about it.
#[derive(Debug)]
pub struct Loaded {
    /// The parsed blob.
    pub snapshot: Snapshot,
    /// The `.gz` bytes, kept to refill the colo cache without another origin read.
    pub gz: Vec<u8>,
    /// Hex SHA-256 of `gz`.
    pub sha256: String,
    /// The pointer's version.
    pub version: u64,
    /// When it was loaded (epoch ms).
    pub loaded_at_ms: u64,
    /// Where it came from.
    pub source: Source,
}

/// A loaded canary: its blob and who it serves.
#[derive(Debug)]
pub struct LoadedCanary {
    /// The blob, as for stable (shared when only the share changes).
    pub loaded: std::rc::Rc<Loaded>,
    /// Who it serves.
    pub split: CanarySplit,
}

/// The last failure, for the health endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// When (epoch ms).
    pub at_ms: u64,
    /// When a revalidation next succeeded (epoch ms): the error is history, not the present.
    pub recovered_at_ms: Option<u64>,
}

/// Retry bookkeeping for one isolate.
#[derive(Debug, Default)]
pub struct Schedule {
    /// No revalidation before this instant (epoch ms).
    pub next_check_ms: u64,
    /// When the last revalidation finished (epoch ms).
    pub last_check_ms: Option<u64>,
    /// Failed revalidations in a row.
    pub consecutive_failures: u32,
    /// The most recent failure (kept after recovery, with its time and the recovery's).
    pub last_error: Option<Failure>,
    /// A revalidation is running (other requests of the isolate serve what is loaded).
    pub in_flight: bool,
}

impl Schedule {
    /// Whether a request at `now_ms` should revalidate. Cold isolates back off too: a fleet
    /// of them must not hammer an origin that is down.
    pub fn due(&self, now_ms: u64) -> bool {
        !self.in_flight && now_ms >= self.next_check_ms
    }

    /// Records a successful revalidation.
    pub fn succeeded(&mut self, now_ms: u64, revalidate_ms: u64) {
        self.in_flight = false;
        self.consecutive_failures = 0;
        self.last_check_ms = Some(now_ms);
        self.next_check_ms = now_ms.saturating_add(revalidate_ms);
        if let Some(failure) = self.last_error.as_mut() {
            failure.recovered_at_ms.get_or_insert(now_ms);
        }
    }

    /// Records a failure and backs off.
    pub fn failed(&mut self, error: &LoadError, now_ms: u64, revalidate_ms: u64) {
        self.in_flight = false;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_check_ms = Some(now_ms);
        self.last_error = Some(Failure {
            message: error.to_string(),
            at_ms: now_ms,
            recovered_at_ms: None,
        });
        self.next_check_ms =
            now_ms.saturating_add(backoff_ms(self.consecutive_failures, revalidate_ms));
    }

    /// Forces the next request to revalidate (after a purge).
    pub fn force(&mut self) {
        self.next_check_ms = 0;
    }
}

/// Delay before the next attempt after `failures` failures in a row: the revalidation
/// interval doubled per failure, capped at [`MAX_BACKOFF_MS`].
pub fn backoff_ms(failures: u32, revalidate_ms: u64) -> u64 {
    let doublings = failures.saturating_sub(1).min(16);
    revalidate_ms
        .max(1)
        .saturating_mul(1u64 << doublings)
        .min(MAX_BACKOFF_MS.max(revalidate_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use shared_eval::{Blob, Body, Header};
    use std::io::Write as _;

    fn blob_json(environment: &str) -> Vec<u8> {
        let header = Header {
            environment: environment.into(),
            version: 3,
            previous: Some(2),
            content_hash: String::new(),
            author: "test".into(),
            source_commit: None,
            created_at: "2026-11-21T00:00:00Z".into(),
        };
        serde_json::to_vec(&Blob::new(header, Body::default())).unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_good_blob_loads() {
        let gz = gzip(&blob_json("prod"));
        let snapshot = decode_blob(&gz, &sha256_hex(&gz), None, "prod").unwrap();
        assert_eq!(snapshot.header().version, 3);
    }

    #[test]
    fn every_bad_blob_is_refused_with_its_reason() {
        let good = gzip(&blob_json("prod"));
        assert!(matches!(
            decode_blob(&good, &"0".repeat(64), None, "prod"),
            Err(LoadError::HashMismatch { .. })
        ));
        let truncated = &good[..good.len() - 10];
        assert_eq!(
            decode_blob(truncated, &sha256_hex(truncated), None, "prod").unwrap_err(),
            LoadError::Gzip
        );
        let not_json = gzip(b"{\"schema\":1,");
        assert!(matches!(
            decode_blob(&not_json, &sha256_hex(&not_json), None, "prod"),
            Err(LoadError::Blob(BlobError::Malformed(_)))
        ));
        let mut future: serde_json::Value = serde_json::from_slice(&blob_json("prod")).unwrap();
        future["schema"] = 99.into();
        let future = gzip(&serde_json::to_vec(&future).unwrap());
        assert_eq!(
            decode_blob(&future, &sha256_hex(&future), None, "prod").unwrap_err(),
            LoadError::Blob(BlobError::SchemaMismatch {
                expected: shared_eval::SCHEMA_VERSION,
                found: 99
            })
        );
        let mut tampered: serde_json::Value = serde_json::from_slice(&blob_json("prod")).unwrap();
        tampered["body"]["attrs"] = serde_json::json!([["x"]]);
        let tampered = gzip(&serde_json::to_vec(&tampered).unwrap());
        assert!(matches!(
            decode_blob(&tampered, &sha256_hex(&tampered), None, "prod"),
            Err(LoadError::Blob(BlobError::HashMismatch { .. }))
        ));
        let staging = gzip(&blob_json("staging"));
        assert!(matches!(
            decode_blob(&staging, &sha256_hex(&staging), None, "prod"),
            Err(LoadError::WrongEnvironment { .. })
        ));
    }

    #[test]
    fn gzip_bombs_stop_at_the_size_limit() {
        let bomb = gzip(&vec![b' '; MAX_BLOB_BYTES + 10]);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            decode_blob(&bomb, &sha256_hex(&bomb), None, "prod").unwrap_err(),
            LoadError::TooLarge("uncompressed blob")
        );
    }

    #[test]
    fn pointers_must_name_their_content_addressed_blob() {
        let sha = "ab".repeat(32);
        let good = format!(
            r#"{{"version":4,"blob":"blobs/{sha}.json.gz","sha256":"{sha}","content_hash":"sha256:x"}}"#
        );
        assert_eq!(parse_pointer(good.as_bytes()).unwrap().version, 4);
        for bad in [
            format!(r#"{{"version":4,"blob":"../../etc/passwd","sha256":"{sha}"}}"#),
            format!(
                r#"{{"version":4,"blob":"blobs/{sha}.json.gz","sha256":"{}"}}"#,
                "AB".repeat(32)
            ),
            r#"{"version":-1,"blob":"b","sha256":"s"}"#.to_owned(),
            "nope".to_owned(),
        ] {
            assert!(parse_pointer(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pointer_may_carry_a_checked_canary_and_older_ones_load_without() {
        let (sha, other) = ("ab".repeat(32), "cd".repeat(32));
        let legacy = format!(
            r#"{{"version":4,"blob":"blobs/{sha}.json.gz","sha256":"{sha}","content_hash":"sha256:x"}}"#
        );
        assert_eq!(parse_pointer(legacy.as_bytes()).unwrap().canary, None);
        let with = |canary: &str| {
            format!(
                r#"{{"version":5,"blob":"blobs/{sha}.json.gz","sha256":"{sha}","canary":{canary}}}"#
            )
        };
        let good = with(&format!(
            r#"{{"blob":"blobs/{other}.json.gz","sha256":"{other}","percent":12.5,"salt":"canary-prod-5","since":5}}"#
        ));
        let split = CanarySplit::of(&parse_pointer(good.as_bytes()).unwrap().canary.unwrap());
        assert_eq!(
            (split.buckets, split.salt.as_str(), split.since),
            (12_500, "canary-prod-5", 5)
        );
        for bad in [
            format!(r#"{{"blob":"../x","sha256":"{other}","percent":5,"salt":"s","since":5}}"#),
            format!(
                r#"{{"blob":"blobs/{other}.json.gz","sha256":"{other}","percent":0,"salt":"s","since":5}}"#
            ),
            format!(
                r#"{{"blob":"blobs/{other}.json.gz","sha256":"{other}","percent":101,"salt":"s","since":5}}"#
            ),
            format!(
                r#"{{"blob":"blobs/{other}.json.gz","sha256":"{other}","percent":5,"salt":"","since":5}}"#
            ),
            r#"{"percent":5}"#.to_owned(),
        ] {
            assert!(parse_pointer(with(&bad).as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_cache_entrys_canary_header_reads_back_as_the_same_canary() {
        let other = "cd".repeat(32);
        for (percent, buckets) in [
            ("12.5", 12_500),
            ("5", 5_000),
            ("100", 100_000),
            ("0.0001", 0),
        ] {
            let pointer = format!(
                r#"{{"version":5,"blob":"blobs/{other}.json.gz","sha256":"{other}","canary":
                    {{"blob":"blobs/{other}.json.gz","sha256":"{other}","percent":{percent},
                      "salt":"canary-prod-5","since":5}}}}"#
            );
            let canary = parse_pointer(pointer.as_bytes()).unwrap().canary.unwrap();
            let header = canary_header(&canary);
            let json = shared_eval::parse_json(header.as_bytes()).unwrap();
            let read = CanaryRef::from_json(&json).unwrap();
            assert_eq!(CanarySplit::of(&read), CanarySplit::of(&canary), "{header}");
            assert_eq!(CanarySplit::of(&read).buckets, buckets, "{header}");
            assert_eq!(read.blob_ref, canary.blob_ref);
            assert_eq!(
                json["content_hash"],
                serde_json::Value::Null,
                "none named: null"
            );
        }
    }

    #[test]
    fn the_canary_share_is_shared_evals_bucketing_of_the_targeting_key() {
        let split = CanarySplit {
            buckets: 10_000,
            salt: "canary-prod-5".into(),
            since: 5,
        };
        assert!(!split.serves(None), "no targeting key: stable");
        let keys: Vec<String> = (0..20_000).map(|i| format!("user-{i}")).collect();
        let served = keys.iter().filter(|k| split.serves(Some(k))).count();
        // 10% of 20,000 is 2,000; 3 sigma is about 127.
        assert!((1_873..=2_127).contains(&served), "{served}");
        for key in &keys {
            assert_eq!(
                split.serves(Some(key)),
                shared_eval::bucket("canary-prod-5", key) < 10_000
            );
        }
        // A larger share only adds users.
        let wider = CanarySplit {
            buckets: 25_000,
            ..split.clone()
        };
        assert!(
            keys.iter()
                .all(|k| !split.serves(Some(k)) || wider.serves(Some(k)))
        );
    }

    #[test]
    fn failures_back_off_and_success_resets() {
        let mut schedule = Schedule::default();
        assert!(schedule.due(0));
        schedule.failed(&LoadError::Gzip, 1_000, 250);
        assert_eq!(schedule.next_check_ms, 1_250);
        schedule.failed(&LoadError::Gzip, 1_250, 250);
        assert_eq!(schedule.next_check_ms, 1_750);
        for _ in 0..20 {
            schedule.failed(&LoadError::Gzip, 2_000, 250);
        }
        assert_eq!(schedule.next_check_ms, 2_000 + MAX_BACKOFF_MS);
        assert!(!schedule.due(3_000));
        assert!(schedule.due(7_000));
        assert_eq!(
            schedule.last_error.as_ref().unwrap().message,
            "blob is not a complete gzip stream"
        );
        schedule.succeeded(8_000, 250);
        assert_eq!(
            (schedule.consecutive_failures, schedule.next_check_ms),
            (0, 8_250)
        );
        // The error stays visible as history, marked with when it stopped being the present.
        let failure = schedule.last_error.as_ref().unwrap();
        assert_eq!(
            (failure.at_ms, failure.recovered_at_ms),
            (2_000, Some(8_000))
        );
        schedule.succeeded(9_000, 250);
        assert_eq!(
            schedule.last_error.as_ref().unwrap().recovered_at_ms,
            Some(8_000)
        );
        schedule.failed(&LoadError::Gzip, 9_500, 250);
        assert_eq!(schedule.last_error.as_ref().unwrap().recovered_at_ms, None);
        schedule.in_flight = true;
        assert!(!schedule.due(9_000));
    }

    #[test]
    fn a_blob_gunzipped_in_transit_is_checked_against_the_pointers_content_hash() {
        let json = blob_json("prod");
        let content_hash = Snapshot::from_json(&json)
            .unwrap()
            .header()
            .content_hash
            .clone();
        // The `.gz` hash cannot be checked on decoded bytes: the content hash stands in for it.
        let snapshot = decode_blob(&json, "unused", Some(&content_hash), "prod").unwrap();
        assert_eq!(snapshot.header().version, 3);
        assert!(matches!(
            decode_blob(&json, "unused", Some("sha256:another-version"), "prod"),
            Err(LoadError::HashMismatch { .. })
        ));
        let truncated = &json[..json.len() - 5];
        assert!(matches!(
            decode_blob(truncated, "unused", Some(&content_hash), "prod"),
            Err(LoadError::Blob(_))
        ));
        // Without a content hash to check, plain bytes are refused.
        assert_eq!(
            decode_blob(&json, "unused", None, "prod").unwrap_err(),
            LoadError::Gzip
        );
    }
}
