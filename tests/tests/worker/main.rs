//! The worker in workerd: endpoints, hostile input, last-known-good, parity with the CLI's evaluator, the S3 origin.
//!
//! One test binary per group of files that share their setup (linked once).

mod worker_endpoints;
mod worker_hostile;
mod worker_last_known_good;
mod worker_parity;
mod worker_s3_origin;
