//! Regexes for the `matches` operator: compiled once per blob, with the same limits in the
//! compiler (through [`validate_regex`]) and in the loader.
//!
//! Engine: `regex-automata`'s meta regex, built without std, without its lazy DFA and literal
//! optimizations, and **without Unicode tables**, to keep the edge worker's Wasm small (the
//! tables alone add ~35 KB gzipped). Matching stays Unicode-aware for what needs no table: `.`
//! and negated classes match whole code points, literals may be any text. What needs a table
//! is refused at compile time with a hint: `\d`, `\w`, `\s`, `\b`, `\p{..}` and `(?i)` in
//! Unicode mode. Write `[0-9]`, or the ASCII forms `(?-u:\d)`, `(?-u:\w)`, `(?i-u:abc)`.
//! The refusal is made by walking the syntax tree ([`UnicodeTableCheck`]), not by relying on
//! the build's features: Cargo unifies features, so the native publisher may well link the
//! tables, and it must still refuse exactly what the edge would.
//! Matching is linear in the input (no backtracking blow-up), so a regex can only be
//! "expensive" through its size, which the limits below cap.

use alloc::{format, string::String};

use regex_automata::{
    meta::{self, Regex},
    util::syntax,
};
use regex_syntax::ast::{
    self, AssertionKind, Ast, ClassSetItem, Flag, FlagsItemKind, GroupKind, Visitor,
};

/// Longest regex source accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;

/// Largest compiled program (Thompson NFA) accepted, in bytes; bounds memory and match time.
const MAX_NFA_BYTES: usize = 256 * 1024;

/// Deepest group/repetition nesting accepted by the parser (bounds its recursion).
const MAX_REGEX_NESTING: u32 = 32;

/// A compiled regex. Matching never fails and never allocates after the first use per thread.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRegex(Regex);

impl CompiledRegex {
    /// Compiles `src` under the limits, or says why not in words fit for a compiler diagnostic.
    pub(crate) fn new(src: &str) -> Result<CompiledRegex, String> {
        if src.len() > MAX_REGEX_LEN {
            return Err(format!(
                "regex is {} bytes long, over the {MAX_REGEX_LEN}-byte limit",
                src.len()
            ));
        }
        let tree = ast::parse::ParserBuilder::new()
            .nest_limit(MAX_REGEX_NESTING)
            .build()
            .parse(src)
            .map_err(|e| format!("invalid regex {src:?}: {e}"))?;
        if let Err(what) = ast::visit(
            &tree,
            UnicodeTableCheck {
                scopes: alloc::vec![Mode::default()],
            },
        ) {
            return Err(format!(
                "regex {src:?} uses {what}, which needs Unicode tables the edge does not carry: write [0-9] \
                 for \\d, (?-u:\\w) or (?-u:\\s) for ASCII classes, (?i-u:...) for ASCII case-insensitivity"
            ));
        }
        let regex = Regex::builder()
            .syntax(syntax::Config::new().nest_limit(MAX_REGEX_NESTING))
            .configure(meta::Config::new().nfa_size_limit(Some(MAX_NFA_BYTES)))
            .build(src)
            .map_err(|e| describe(src, &e))?;
        Ok(CompiledRegex(regex))
    }

    /// Whether the regex matches anywhere in `haystack`.
    pub(crate) fn is_match(&self, haystack: &str) -> bool {
        self.0.is_match(haystack)
    }
}

fn describe(src: &str, error: &meta::BuildError) -> String {
    if let Some(limit) = error.size_limit() {
        return format!("regex is too expensive: it compiles to more than {limit} bytes");
    }
    match error.syntax_error() {
        Some(syntax) => format!("invalid regex {src:?}: {syntax}"),
        None => format!("invalid regex {src:?}: {error}"),
    }
}

/// Flags in force at a point of the pattern.
#[derive(Debug, Clone, Copy)]
struct Mode {
    unicode: bool,
    case_insensitive: bool,
}

impl Default for Mode {
    fn default() -> Self {
        Mode {
            unicode: true,
            case_insensitive: false,
        }
    }
}

/// Finds the first construct whose meaning needs a Unicode table. Conservative: a flag set
/// inside a group is taken to hold until the group ends, across alternation branches too.
struct UnicodeTableCheck {
    scopes: alloc::vec::Vec<Mode>,
}

impl UnicodeTableCheck {
    fn mode(&self) -> Mode {
        self.scopes.last().copied().unwrap_or_default()
    }

    fn apply(&mut self, flags: &ast::Flags) {
        let mut mode = self.mode();
        let mut on = true;
        for item in &flags.items {
            match item.kind {
                FlagsItemKind::Negation => on = false,
                FlagsItemKind::Flag(Flag::Unicode) => mode.unicode = on,
                FlagsItemKind::Flag(Flag::CaseInsensitive) => mode.case_insensitive = on,
                FlagsItemKind::Flag(_) => {}
            }
        }
        if let Some(top) = self.scopes.last_mut() {
            *top = mode;
        }
    }

    fn case_check(&self) -> Result<(), &'static str> {
        let mode = self.mode();
        if mode.unicode && mode.case_insensitive {
            Err("(?i) in Unicode mode")
        } else {
            Ok(())
        }
    }
}

impl Visitor for UnicodeTableCheck {
    type Output = ();
    type Err = &'static str;

    fn finish(self) -> Result<(), &'static str> {
        Ok(())
    }

    fn visit_pre(&mut self, tree: &Ast) -> Result<(), &'static str> {
        match tree {
            Ast::Group(group) => {
                self.scopes.push(self.mode());
                if let GroupKind::NonCapturing(flags) = &group.kind {
                    self.apply(flags);
                }
            }
            Ast::Flags(set) => self.apply(&set.flags),
            Ast::ClassUnicode(_) => return Err("a \\p{..} Unicode class"),
            Ast::ClassPerl(_) if self.mode().unicode => {
                return Err("\\d, \\s or \\w in Unicode mode");
            }
            Ast::Assertion(assertion)
                if self.mode().unicode
                    && !matches!(
                        assertion.kind,
                        AssertionKind::StartLine
                            | AssertionKind::EndLine
                            | AssertionKind::StartText
                            | AssertionKind::EndText
                    ) =>
            {
                return Err("a word boundary in Unicode mode");
            }
            Ast::Literal(_) | Ast::ClassBracketed(_) => self.case_check()?,
            _ => {}
        }
        Ok(())
    }

    fn visit_post(&mut self, tree: &Ast) -> Result<(), &'static str> {
        if let Ast::Group(_) = tree {
            self.scopes.pop();
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), &'static str> {
        match item {
            ClassSetItem::Unicode(_) => Err("a \\p{..} Unicode class"),
            ClassSetItem::Perl(_) if self.mode().unicode => Err("\\d, \\s or \\w in Unicode mode"),
            _ => Ok(()),
        }
    }
}

/// Checks that `src` compiles under the limits the edge applies (length, nesting, compiled
/// size, no Unicode tables). The compiler calls this so that a blob it writes always loads.
///
/// # Example
/// ```
/// assert!(shared_eval::validate_regex(r"^[0-9]+@example\.com$").is_ok());
/// assert!(shared_eval::validate_regex(r"(unclosed").is_err());
/// ```
pub fn validate_regex(src: &str) -> Result<(), String> {
    CompiledRegex::new(src).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_anywhere_unless_anchored() {
        let re = CompiledRegex::new(r"@example\.com$").unwrap();
        assert!(re.is_match("ann@example.com"));
        assert!(!re.is_match("ann@example.com.evil"));
        let dot = CompiledRegex::new(r"^.{2}$").unwrap();
        assert!(dot.is_match("é1"), "`.` matches a whole code point");
        assert!(
            CompiledRegex::new(r"^(?i-u:beta)-[0-9]+$")
                .unwrap()
                .is_match("BETA-12")
        );
    }

    #[test]
    fn refuses_bad_and_expensive_regexes_with_a_reason() {
        assert!(validate_regex("(").unwrap_err().contains("invalid regex"));
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
            let why = validate_regex(needs_tables).unwrap_err();
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
                validate_regex(ascii).is_ok(),
                "{ascii}: {:?}",
                validate_regex(ascii)
            );
        }
        assert!(
            validate_regex(&"a".repeat(MAX_REGEX_LEN + 1))
                .unwrap_err()
                .contains("limit")
        );
        assert!(
            validate_regex(r"(?:[a-z]{300}){300}")
                .unwrap_err()
                .contains("too expensive")
        );
        let nested = alloc::format!("{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(validate_regex(&nested).is_err());
    }
}
