//! `publisher serve` as a process against SeaweedFS: the API, approvals and webhook, drift, metrics, the status page.
//!
//! One test binary per group of files that share their setup (linked once).

mod serve_api;
mod serve_changes;
mod serve_drift;
mod serve_metrics;
mod serve_page;
