//! The service in-process: each test builds a scratch directory and an [`harness::Service`]
//! over it, and drives `flags_serve::app(state)` with `oneshot` requests (no port, no store
//! server: the local-directory store). One binary, one module per subject; `harness.rs` is
//! the shared part.

mod harness;

mod approvals;
mod changes;
mod console;
mod diagnostics;
mod drift;
mod headers;
mod impact;
mod notify;
mod oidc;
mod page;
mod replicas;
mod sessions;
