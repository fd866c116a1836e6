//! How long a change takes to reach clients: the measuring loop of the kill-switch, canary and
//! event-stream tests, and the flags copy they change.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::worker::scratch_dir;
use crate::{copy_dir, repo_root};

/// Runs `step` and has one thread per client poll `sees(client)` every `poll` from the moment
/// `step` returned (so only propagation is timed, not the step itself). Each entry is the
/// client's delay, or `None` if it had not seen the change after `give_up`.
pub fn delays_after<C: Sync>(
    clients: &[C],
    poll: Duration,
    give_up: Duration,
    sees: impl Fn(&C) -> bool + Sync,
    step: impl FnOnce() -> Instant,
) -> Vec<Option<Duration>> {
    let returned_at = OnceLock::<Instant>::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .map(|client| {
                let (returned_at, sees) = (&returned_at, &sees);
                scope.spawn(move || {
                    let returned = loop {
                        match returned_at.get() {
                            Some(at) => break *at,
                            None => std::thread::sleep(Duration::from_millis(1)),
                        }
                    };
                    loop {
                        if sees(client) {
                            return Some(returned.elapsed());
                        }
                        if returned.elapsed() > give_up {
                            return None;
                        }
                        std::thread::sleep(poll);
                    }
                })
            })
            .collect();
        let _ = returned_at.set(step());
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    })
}

/// The indices of clients that did not see the change within `bound`.
pub fn missed(delays: &[Option<Duration>], bound: Duration) -> Vec<usize> {
    delays
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.is_some_and(|d| d < bound))
        .map(|(i, _)| i)
        .collect()
}

/// The `p` quantile (0..=1) of sorted durations, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let Some(last) = sorted.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    let index = ((last as f64) * p).round() as usize;
    sorted[index.min(last)]
}

/// A scratch copy of `examples/flags` with the beta banner switched off in `dev`: the change
/// the propagation tests publish.
pub fn banner_off_flags(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    copy_dir(&repo_root().join("examples/flags"), &dir);
    let file = dir.join("flags/beta-banner.yaml");
    let text = std::fs::read_to_string(&file).expect("read beta-banner.yaml");
    let changed = text.replacen("  dev:\n    enabled: true", "  dev:\n    enabled: false", 1);
    assert_ne!(
        text, changed,
        "examples/flags/flags/beta-banner.yaml changed shape; update tests/propagation.rs"
    );
    std::fs::write(&file, changed).expect("write beta-banner.yaml");
    dir
}
