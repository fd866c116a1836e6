//! The fetch state machine: what to fetch next and when, fed with responses and the time
//! (sans I/O: every language shell runs the same decisions, tested once here).
//!
//! - **Polling**: the pointer every `poll_ms` while no change stream is up, every
//!   `safety_poll_ms` while one is (a missed message costs at most that), each interval
//!   jittered by `±jitter` so a fleet does not poll in step. A stream message
//!   ([`Machine::on_signal`]) polls at once.
//! - **Accepting**: a pointer is taken only if its version is newer than the one served
//!   (rollbacks are new versions naming old blobs); its blobs are fetched by content address
//!   (ones already loaded are reused) and checked ([`crate::blob::load_blob`]); the swap happens
//!   when every blob it names has loaded. Any bad pointer or blob keeps the last good snapshot.
//! - **Failing**: each failure backs off exponentially (`backoff_base_ms` doubled per failure,
//!   at most `backoff_max_ms`, drawn from the upper half so retries spread); after
//!   `breaker_threshold` failures in a row the breaker opens for `breaker_open_ms` (no requests),
//!   then lets one probe through (half-open): success closes it, failure opens it again.
//! - **Fatal**: 401 or 403 on any request stops syncing for good: the key is wrong or revoked,
//!   and retrying would not fix it.

use shared_eval::{BlobRef, Pointer};

/// What the shell's transport got for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// 200 with the body and the `ETag`, if any.
    Ok {
        /// The body.
        body: Vec<u8>,
        /// The `ETag` header.
        etag: Option<String>,
    },
    /// 304: unchanged since the `If-None-Match` sent.
    NotModified,
    /// Any other status.
    Status(u16),
    /// No answer: timeout, refused connection, reset (the text says which).
    Failed(String),
}

/// A request the shell should make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The environment's pointer, with `If-None-Match: etag` when given.
    Pointer {
        /// The last accepted pointer's `ETag`.
        etag: Option<String>,
    },
    /// The blob with this content address (hex SHA-256 of its gzipped bytes).
    Blob {
        /// Its SHA-256.
        sha256: String,
    },
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make this request, then feed its response back.
    Fetch(Request),
    /// Nothing until this instant (epoch ms), or until a signal.
    Wait(u64),
    /// A request is out: wait for its response.
    Busy,
    /// Syncing stopped for good ([`Machine::fatal`] says why).
    Stopped,
}

/// Timing of the machine; defaults in [`SyncConfig::default`].
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// Pointer poll interval while no change stream is up.
    pub poll_ms: u64,
    /// Pointer poll interval while a change stream is up.
    pub safety_poll_ms: u64,
    /// Each interval is drawn from `[1 - jitter, 1 + jitter]` times its value.
    pub jitter: f64,
    /// First retry delay after a failure.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// Failures in a row that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the open breaker lets nothing through before a probe.
    pub breaker_open_ms: u64,
}

impl Default for SyncConfig {
    /// Poll every 5 s without a stream (the stream carries changes in tens of ms), 60 s with
    /// one; back off from 250 ms to 30 s; open after 5 failures for 30 s.
    fn default() -> SyncConfig {
        SyncConfig {
            poll_ms: 5_000,
            safety_poll_ms: 60_000,
            jitter: 0.2,
            backoff_base_ms: 250,
            backoff_max_ms: 30_000,
            breaker_threshold: 5,
            breaker_open_ms: 30_000,
        }
    }
}

/// The circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Requests flow.
    Closed,
    /// No requests until this instant (epoch ms).
    Open(u64),
    /// One probe is allowed through.
    HalfOpen,
}

/// A pointer whose blobs are being fetched.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) pointer: Pointer,
    pub(crate) pointer_bytes: Vec<u8>,
    pub(crate) etag: Option<String>,
    /// Blobs still to fetch, in order.
    pub(crate) wanted: Vec<BlobRef>,
    /// Fetched and checked: `(sha256, gzipped bytes, snapshot)`.
    pub(crate) loaded: Vec<(String, Vec<u8>, shared_eval::Snapshot)>,
}

/// What happened to the machine after a response.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to install.
    Nothing,
    /// A pointer whose blobs are all here (or reused): install it.
    Install(Box<Pending>),
}

/// The machine's state (inside [`crate::Core`]).
#[derive(Debug)]
pub struct Machine {
    config: SyncConfig,
    environment: String,
    rng: fastrand::Rng,
    next_poll_ms: u64,
    in_flight: Option<Request>,
    poll_again: bool,
    stream_up: bool,
    pub(crate) etag: Option<String>,
    pub(crate) pending: Option<Pending>,
    consecutive_failures: u32,
    breaker: Breaker,
    last_error: Option<String>,
    fatal: Option<String>,
    synced: bool,
}

impl Machine {
    /// A machine that polls at once; `seed` feeds the jitter.
    pub fn new(environment: &str, config: SyncConfig, seed: u64) -> Machine {
        Machine {
            config,
            environment: environment.to_owned(),
            rng: fastrand::Rng::with_seed(seed),
            next_poll_ms: 0,
            in_flight: None,
            poll_again: false,
            stream_up: false,
            etag: None,
            pending: None,
            consecutive_failures: 0,
            breaker: Breaker::Closed,
            last_error: None,
            fatal: None,
            synced: false,
        }
    }

    /// The next step at `now_ms`.
    pub fn next(&mut self, now_ms: u64) -> Step {
        if self.fatal.is_some() {
            return Step::Stopped;
        }
        if self.in_flight.is_some() {
            return Step::Busy;
        }
        if let Breaker::Open(until) = self.breaker {
            if now_ms < until {
                return Step::Wait(until);
            }
            self.breaker = Breaker::HalfOpen;
        }
        let request = match &mut self.pending {
            // The blobs of an arrived pointer are due at once (a failure drops the pointer).
            Some(pending) => match pending.wanted.first() {
                Some(blob) => Request::Blob {
                    sha256: blob.sha256.clone(),
                },
                None => return Step::Wait(self.next_poll_ms),
            },
            _ if now_ms >= self.next_poll_ms || self.poll_again => {
                self.poll_again = false;
                Request::Pointer {
                    etag: self.etag.clone(),
                }
            }
            _ => return Step::Wait(self.next_poll_ms),
        };
        self.in_flight = Some(request.clone());
        Step::Fetch(request)
    }

    /// A change stream's message: poll the pointer now (after the request in flight, if any).
    pub fn on_signal(&mut self) {
        self.poll_again = true;
    }

    /// Whether a change stream is connected (the safety poll applies) or not (polling does).
    pub fn on_stream(&mut self, now_ms: u64, up: bool) {
        if self.stream_up == up {
            return;
        }
        self.stream_up = up;
        if self.consecutive_failures == 0 && self.pending.is_none() {
            // Lost the stream: poll soon; gained it: the safety poll from now.
            let next = now_ms + self.interval();
            self.next_poll_ms = if up {
                next
            } else {
                next.min(self.next_poll_ms)
            };
        }
    }

    /// The pointer's response. `has_version` is the version served (None before the first).
    pub(crate) fn on_pointer(
        &mut self,
        now_ms: u64,
        response: Response,
        served: Option<(u64, &[&str])>,
    ) -> Outcome {
        self.in_flight = None;
        let (body, etag) = match response {
            Response::Ok { body, etag } => (body, etag),
            Response::NotModified => {
                self.succeeded(now_ms);
                return Outcome::Nothing;
            }
            other => {
                self.failed(now_ms, "pointer", &other);
                return Outcome::Nothing;
            }
        };
        let pointer = match Pointer::parse(&body) {
            Ok(pointer) => pointer,
            Err(error) => {
                self.error(now_ms, format!("pointer refused: {}", error.reason()));
                return Outcome::Nothing;
            }
        };
        if let Some((version, _)) = served
            && pointer.version <= version
        {
            // Not newer (a lagging replica, a cached answer): keep what is served.
            self.succeeded(now_ms);
            return Outcome::Nothing;
        }
        let have: &[&str] = served.map_or(&[], |(_, have)| have);
        let mut wanted: Vec<BlobRef> = Vec::new();
        let named =
            std::iter::once(&pointer.stable).chain(pointer.canary.as_ref().map(|c| &c.blob_ref));
        for blob in named {
            if !have.contains(&blob.sha256.as_str()) && !wanted.contains(blob) {
                wanted.push(blob.clone());
            }
        }
        let pending = Pending {
            pointer,
            pointer_bytes: body,
            etag,
            wanted,
            loaded: Vec::new(),
        };
        if pending.wanted.is_empty() {
            self.succeeded(now_ms);
            return Outcome::Install(Box::new(pending));
        }
        self.pending = Some(pending);
        Outcome::Nothing
    }

    /// A blob's response.
    pub(crate) fn on_blob(&mut self, now_ms: u64, sha256: &str, response: Response) -> Outcome {
        self.in_flight = None;
        let Some(mut pending) = self.pending.take() else {
            return Outcome::Nothing;
        };
        let body = match response {
            Response::Ok { body, .. } => body,
            other => {
                self.failed(now_ms, "blob", &other);
                return Outcome::Nothing;
            }
        };
        let Some(at) = pending.wanted.iter().position(|b| b.sha256 == sha256) else {
            self.pending = Some(pending);
            return Outcome::Nothing;
        };
        let named = pending.wanted.remove(at);
        match crate::blob::load_blob(&body, &named, &self.environment) {
            Ok(snapshot) => pending.loaded.push((named.sha256, body, snapshot)),
            Err(refused) => {
                // Last-known-good stays; the pointer is polled again after the backoff.
                self.error(now_ms, refused.to_string());
                return Outcome::Nothing;
            }
        }
        if pending.wanted.is_empty() {
            self.succeeded(now_ms);
            return Outcome::Install(Box::new(pending));
        }
        self.pending = Some(pending);
        Outcome::Nothing
    }

    /// A failure that is not a response's status (a snapshot restored from disk that did not
    /// check out is the shell's, not the machine's).
    fn failed(&mut self, now_ms: u64, what: &str, response: &Response) {
        match response {
            Response::Status(status @ (401 | 403)) => {
                self.pending = None;
                self.fatal = Some(format!(
                    "{what} request answered {status}: the SDK key is missing, wrong, revoked \
                     or for another environment; syncing stopped (serving what was loaded)"
                ));
            }
            Response::Status(404) if what == "pointer" => self.error(
                now_ms,
                format!(
                    "no pointer: nothing is published for {:?}",
                    self.environment
                ),
            ),
            Response::Status(status) => self.error(now_ms, format!("{what}: status {status}")),
            Response::Failed(why) => self.error(now_ms, format!("{what}: {why}")),
            Response::Ok { .. } | Response::NotModified => {
                self.error(now_ms, format!("{what}: unexpected answer"))
            }
        }
    }

    fn error(&mut self, now_ms: u64, message: String) {
        self.pending = None;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(message);
        // A failed half-open probe is one more failure past the threshold: open again.
        if self.consecutive_failures >= self.config.breaker_threshold {
            let until = now_ms + self.config.breaker_open_ms;
            self.breaker = Breaker::Open(until);
            self.next_poll_ms = until;
            return;
        }
        let exponent = self.consecutive_failures.saturating_sub(1).min(30);
        let delay = self
            .config
            .backoff_base_ms
            .saturating_mul(1 << exponent)
            .min(self.config.backoff_max_ms);
        // Drawn from [delay/2, delay]: retries of a fleet spread out.
        let half = delay / 2;
        self.next_poll_ms = now_ms + half + self.rng.u64(0..=delay - half);
    }

    fn succeeded(&mut self, now_ms: u64) {
        self.consecutive_failures = 0;
        self.breaker = Breaker::Closed;
        self.last_error = None;
        self.synced = true;
        self.next_poll_ms = now_ms + self.interval();
    }

    /// Records that the pointer `etag` names is the one served now.
    pub(crate) fn installed(&mut self, etag: Option<String>) {
        self.etag = etag;
    }

    fn interval(&mut self) -> u64 {
        let base = if self.stream_up {
            self.config.safety_poll_ms
        } else {
            self.config.poll_ms
        };
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let factor = 1.0 + jitter * (2.0 * self.rng.f64() - 1.0);
        (base as f64 * factor) as u64
    }

    /// Failed syncs in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// The last failure, while failing.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Why syncing stopped for good, if it did.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Whether a sync has succeeded since the machine started.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The circuit breaker's state.
    pub fn breaker(&self) -> Breaker {
        self.breaker
    }
}
