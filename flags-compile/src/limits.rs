//! What the compiler refuses, and why. The edge re-checks the ones that protect it
//! ([`shared_eval::MAX_RULE_DEPTH`], [`shared_eval::MAX_BLOB_BYTES`]) when it loads a blob; the
//! rest keep blobs small and load times short, and catch mistakes early.

/// Largest flag or segment file read. Bounds parser memory; a real flag file is a few KB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Largest list file (`in: {file: ...}`): it lands in the blob whole, so the blob cap bounds it.
pub const MAX_LIST_FILE_BYTES: usize = shared_eval::MAX_BLOB_BYTES;

/// Most entries in one `in` / `not-in` list. 100,000 e-mail addresses is ~3 MB of blob that
/// every edge isolate parses on load; beyond that, put the attribute in the signed token.
pub const MAX_LIST_LEN: usize = 100_000;

/// Longest regex source: the evaluator's own limit (long patterns are how expensive ones
/// usually arrive; the publisher compiles each to a DFA the edge loads with the blob).
pub const MAX_REGEX_LEN: usize = shared_eval::MAX_REGEX_LEN;

/// Most rules in one environment of one flag: each request may try them all, in order.
pub const MAX_RULES_PER_FLAG: usize = 500;

/// Most variants of one flag (variant ids are `u16` in the blob; this is far below that).
pub const MAX_VARIANTS: usize = 256;

/// Longest flag or segment key. Keys travel in OFREP URLs and responses.
pub const MAX_KEY_LEN: usize = 128;

/// Whether `key` is a valid flag or segment key: 1 to [`MAX_KEY_LEN`] characters among
/// `a-z A-Z 0-9 - _ .`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Deepest condition nesting (all/any/not, a test, and each segment reference counting as
/// the segment's own depth plus one): the evaluator recurses this deep per request.
pub const MAX_RULE_DEPTH: usize = shared_eval::MAX_RULE_DEPTH;

/// Largest compiled body (uncompressed JSON), leaving room for the header within
/// [`shared_eval::MAX_BLOB_BYTES`], which the edge refuses to load.
pub const MAX_BODY_BYTES: usize = shared_eval::MAX_BLOB_BYTES - 4 * 1024;

/// Longest prerequisite chain (A requires B requires C ... counting each flag): the evaluator
/// recurses through prerequisites, and the edge refuses longer chains.
pub const MAX_PREREQUISITE_DEPTH: usize = shared_eval::MAX_PREREQUISITE_DEPTH;
