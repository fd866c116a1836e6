//! The built `publisher` binary against a local directory store (`--store <dir>`), in one test
//! binary: recovering from a damaged pointer (`recovery`), asking what production serves a user
//! now (`deployed`), and previews that report only what a push does (`previews`).

mod common;
mod deployed;
mod impact;
mod previews;
mod recovery;
