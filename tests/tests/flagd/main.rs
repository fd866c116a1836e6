//! flagd compatibility: broken flags, the differential test against flagd-core, the flagd-testbed suite.
//!
//! One test binary per group of files that share their setup (linked once).

mod flagd_broken_flags;
mod flagd_differential;
mod flagd_testbed;
