//! Project automation, run as `cargo xtask <task>`:
//! `setup` (install what the tests need), `test` (the whole suite), `demo`, `worker-build`.

fn main() {}
