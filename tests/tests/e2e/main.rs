//! End to end with real parts: canaries, the kill switch, event streams, drift, the store and its faults, telemetry, the CLI answering as the edge.
//!
//! One test binary per group of files that share their setup (linked once).

mod change_requests;
mod cli_answers_as_the_edge;
mod drift;
mod e2e_canary;
mod e2e_kill_switch;
mod events_stream;
mod sdk;
mod signed_pointers;
mod store;
mod store_faults;
mod telemetry;
