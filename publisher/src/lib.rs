//! The publisher: flag files -> compiled blob -> object store -> CDN purge.

pub mod blob_file;
pub mod compile;
pub mod diff;
pub mod layout;
pub mod publish;
pub mod purge;
pub mod store;
pub mod token;
