//! What answers a request: the blob being served (stable, and the canary beside it while one
//! runs) and, for one user, which of the two answers ([`Served::for_user`]) and under which
//! [`Track`].
//!
//! The floor below [`crate::ofrep`] and [`crate::answer_cache`]: both speak of these types, the
//! cache to scope its answers by the blobs that computed them, the pipeline to pick a side.

use shared_eval::Snapshot;

use crate::loader::CanarySplit;

/// The blob being served, with the environment version that named it.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// The parsed blob.
    pub snapshot: &'a Snapshot,
    /// The pointer's version (after a rollback it differs from the blob header's).
    pub version: u64,
    /// The canary beside it, if one runs (and has loaded).
    pub canary: Option<(&'a Snapshot, &'a CanarySplit)>,
    /// Whether bulk answers offer the environment's event stream (`eventStreams`).
    pub event_streams: bool,
}

/// Which blob answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The stable version.
    Stable,
    /// The canary.
    Canary,
}

impl Track {
    /// `stable` / `canary`, for headers and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Stable => "stable",
            Track::Canary => "canary",
        }
    }
}

/// The blob picked for one user.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    /// The blob that answers.
    pub snapshot: &'a Snapshot,
    /// The pointer's version (the same for both tracks).
    pub version: u64,
    /// Which side it is.
    pub track: Track,
    /// Whether bulk answers offer the environment's event stream.
    pub event_streams: bool,
}

impl<'a> Served<'a> {
    /// The blob of `track` (stable when no canary runs any more: the cache's scope rules
    /// that out for a cached answer).
    pub fn answering(&self, track: Track) -> Answering<'a> {
        let snapshot = match (track, self.canary) {
            (Track::Canary, Some((snapshot, _))) => snapshot,
            _ => self.snapshot,
        };
        Answering {
            snapshot,
            version: self.version,
            track,
            event_streams: self.event_streams,
        }
    }

    /// The canary for users in its share, stable for everyone else (and for requests without
    /// a targeting key). Deterministic in the key alone, so a user never flips between
    /// versions across requests, isolates or colos.
    pub fn for_user(self, targeting_key: Option<&str>) -> Answering<'a> {
        match self.canary {
            Some((snapshot, split)) if split.serves(targeting_key) => Answering {
                snapshot,
                version: self.version,
                track: Track::Canary,
                event_streams: self.event_streams,
            },
            _ => Answering {
                snapshot: self.snapshot,
                version: self.version,
                track: Track::Stable,
                event_streams: self.event_streams,
            },
        }
    }
}
