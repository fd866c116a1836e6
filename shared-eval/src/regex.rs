//! Regexes for the `matches` operator. The publisher compiles each one to a DFA
//! ([`compile_regex`], feature `compile`) and the blob carries it serialized; loading a blob
//! only deserializes and checks it, so the edge worker links the DFA search of
//! `regex-automata` but no regex parser or compiler.
//!
//! Semantics are those of the `regex` crate's default mode, without Unicode tables (they would
//! be ~35 KB gzipped at the edge, and the DFA would grow with them): `.` and negated classes
//! match whole code points, literals may be any text. What needs a table is refused at compile
//! time with a hint: `\d`, `\w`, `\s`, `\b`, `\p{..}` and `(?i)` in Unicode mode. Write
//! `[0-9]`, or the ASCII forms `(?-u:\d)`, `(?-u:\w)`, `(?i-u:abc)`. The refusal walks the
//! syntax tree, not the build's features: Cargo unifies features, so the native publisher may
//! link the tables, and it must still refuse exactly what the edge would.
//! Matching is a DFA walk, linear in the input; a regex can only be "expensive" through its
//! size, which [`MAX_DFA_BYTES`] caps.

use alloc::{format, string::String, vec::Vec};

use base64::{Engine, engine::general_purpose::STANDARD};
use regex_automata::{
    Input,
    dfa::{Automaton, sparse},
};

use crate::model::Regex;

#[cfg(any(test, feature = "compile"))]
mod compile;
#[cfg(any(test, feature = "compile"))]
pub use compile::compile_regex;

/// Longest regex source accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;

/// Largest serialized DFA accepted for one regex, in bytes: the compiler refuses a pattern
/// whose DFA is bigger, the loader a blob carrying one.
pub const MAX_DFA_BYTES: usize = 64 * 1024;

/// A regex ready to match: its DFA, checked. Matching never fails and never allocates.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRegex(sparse::DFA<Vec<u8>>);

impl CompiledRegex {
    /// Deserializes and checks the DFA the publisher stored. Nothing in it is trusted:
    /// `regex-automata` validates every state and transition before it is searched.
    pub(crate) fn load(regex: &Regex) -> Result<CompiledRegex, String> {
        if regex.dfa.len() > MAX_DFA_BYTES.div_ceil(3) * 4 {
            return Err(format!("its DFA is over the {MAX_DFA_BYTES}-byte limit"));
        }
        let bytes = STANDARD
            .decode(&regex.dfa)
            .map_err(|e| format!("its DFA is not base64: {e}"))?;
        let (dfa, read) =
            sparse::DFA::from_bytes(&bytes).map_err(|e| format!("its DFA is invalid: {e}"))?;
        if read != bytes.len() {
            return Err(String::from("its DFA has trailing bytes"));
        }
        // A DFA built for anchored searches only would fail every search (and so never match).
        if dfa.try_search_fwd(&Input::new("")).is_err() {
            return Err(String::from("its DFA cannot search unanchored"));
        }
        Ok(CompiledRegex(dfa.to_owned()))
    }

    /// Whether the regex matches anywhere in `haystack`. A search error (only possible for
    /// a DFA with quit bytes, which the compiler never builds) counts as no match.
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        matches!(
            self.0.try_search_fwd(&Input::new(haystack).earliest(true)),
            Ok(Some(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(src: &str) -> CompiledRegex {
        CompiledRegex::load(&compile_regex(src).unwrap()).unwrap()
    }

    #[test]
    fn matches_anywhere_unless_anchored() {
        let re = regex(r"@example\.com$");
        assert!(re.is_match("ann@example.com"));
        assert!(!re.is_match("ann@example.com.evil"));
        let dot = regex(r"^.{2}$");
        assert!(dot.is_match("é1"), "`.` matches a whole code point");
        assert!(!dot.is_match("é"));
        assert!(regex(r"^(?i-u:beta)-[0-9]+$").is_match("BETA-12"));
        assert!(regex(r"(?m)^b$").is_match("a\nb\nc"));
        assert!(regex("").is_match(""));
        assert!(regex(r"(?-u:\b)x").is_match("a x"));
        assert!(!regex(r"(?-u:\b)x").is_match("ax"));
    }

    #[test]
    fn refuses_bad_and_expensive_regexes_with_a_reason() {
        assert!(compile_regex("(").unwrap_err().contains("invalid regex"));
        for needs_tables in [
            r"\d",
            r"[\w-]",
            r"\bx",
            r"(?i)abc",
            r"(?i:a)",
            r"\pL",
            r"[\p{Greek}]",
            r"a|(?i)b",
        ] {
            let why = compile_regex(needs_tables).unwrap_err();
            assert!(
                why.contains("Unicode tables") && why.contains("[0-9]"),
                "{needs_tables}: {why}"
            );
        }
        for ascii in [
            r"(?-u:\d)",
            r"(?-u:[\w-])",
            r"(?-u:\b)x",
            r"(?i-u)abc",
            r"(?-u)(?i)a",
            r"(?i)(?-i)a",
            r"(?i)",
        ] {
            assert!(
                compile_regex(ascii).is_ok(),
                "{ascii}: {:?}",
                compile_regex(ascii)
            );
        }
        assert!(
            compile_regex(&"a".repeat(MAX_REGEX_LEN + 1))
                .unwrap_err()
                .contains("limit")
        );
        assert!(
            compile_regex(r"(?:[a-z]{300}){300}")
                .unwrap_err()
                .contains("too expensive")
        );
        // Small NFA, exponential DFA: the n-th byte from the end is an `a`.
        assert!(
            compile_regex(r"a[ab]{20}$")
                .unwrap_err()
                .contains("its DFA would be over")
        );
        let nested = alloc::format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(compile_regex(&nested).is_err());
        // Patterns that could match invalid UTF-8 mean nothing on a string.
        assert!(compile_regex(r"(?-u:\xFF)").is_err());
    }

    #[test]
    fn a_corrupt_or_oversized_dfa_is_refused_not_searched() {
        let good = compile_regex(r"^[a-z]+@example\.com$").unwrap();
        let mut bytes = STANDARD.decode(&good.dfa).unwrap();
        let with = |bytes: &[u8]| Regex {
            source: good.source.clone(),
            dfa: STANDARD.encode(bytes),
        };
        assert!(CompiledRegex::load(&with(&bytes[..bytes.len() / 2])).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(CompiledRegex::load(&with(&trailing)).is_err());
        // Every single-byte corruption is either refused or still a valid DFA: never a panic.
        for at in 0..bytes.len() {
            let original = bytes[at];
            bytes[at] = original.wrapping_add(0x55);
            if let Ok(regex) = CompiledRegex::load(&with(&bytes)) {
                regex.is_match("ann@example.com");
                regex.is_match("\u{10ffff}x");
            }
            bytes[at] = original;
        }
        let not_base64 = Regex {
            source: good.source.clone(),
            dfa: String::from("!!"),
        };
        assert!(
            CompiledRegex::load(&not_base64)
                .unwrap_err()
                .contains("base64")
        );
        let huge = Regex {
            source: good.source.clone(),
            dfa: "A".repeat(MAX_DFA_BYTES * 2),
        };
        assert!(CompiledRegex::load(&huge).unwrap_err().contains("limit"));
    }
}
