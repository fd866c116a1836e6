//! The publisher: flag files -> compiled blob -> object store -> CDN purge.

pub mod blob_file;
pub mod compile;
pub mod purge;
pub mod token;
