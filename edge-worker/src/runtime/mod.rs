//! The Workers runtime glue, and the only code that touches the `worker` crate, wasm-bindgen
//! or `web_sys` (so it exists only on wasm32; everything else builds and tests natively):
//!
//! - [`handlers`]: one handler per route of [`crate::route`], from a `Request` to a `Reply`;
//! - [`glue`]: the bindings read once per isolate, `Reply` to `Response`, outbound requests;
//! - [`loader_io`]: the isolate's blobs and retry schedule, the colo Cache API, the origins
//!   (HTTP, SigV4-signed S3, R2), acting on [`crate::loader`]'s decisions;
//! - [`hub`]: the `EventHub` Durable Object and the calls the routes make to it;
//! - [`telemetry`]: sending the isolate's evaluation counts after an answer.
//!
//! **Architecture Invariant:** nothing here decides what an answer says: the handlers read
//! the request and the bindings, call the plain modules and write their `Reply` out. Nothing
//! here (or anywhere) calls back up into `lib.rs`, which only routes.

pub(crate) mod glue;
pub(crate) mod handlers;
pub mod hub;
pub(crate) mod loader_io;
pub(crate) mod telemetry;

/// Epoch milliseconds from the runtime's clock.
pub(crate) use loader_io::now_ms;
