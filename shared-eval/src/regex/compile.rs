//! The publisher's half: a regex source to a serialized DFA, under the limits the edge
//! relies on. Built with the `compile` feature (the publisher) and in tests; the edge worker
//! links none of it, so it carries no regex parser or compiler.

use alloc::{format, string::String};

use base64::{Engine, engine::general_purpose::STANDARD};
use regex_automata::{
    dfa::{StartKind, dense},
    nfa::thompson,
};
use regex_syntax::{
    ast::{self, AssertionKind, Ast, ClassSetItem, Flag, FlagsItemKind, GroupKind, Visitor},
    hir::translate::TranslatorBuilder,
};

use super::{MAX_DFA_BYTES, MAX_REGEX_LEN};
use crate::model::Regex;

/// Largest compiled program (Thompson NFA) accepted, in bytes; bounds the work of building
/// the DFA from it.
const MAX_NFA_BYTES: usize = 256 * 1024;

/// Largest dense DFA (and determinizer working memory) built on the way to the sparse one:
/// bounds the publisher's time and memory on a pattern whose DFA blows up.
const MAX_DENSE_BYTES: usize = 4 * 1024 * 1024;

/// Deepest group/repetition nesting accepted by the parser (bounds its recursion).
const MAX_REGEX_NESTING: u32 = 32;

/// Compiles `src` for the blob: checks it (length, nesting, the Unicode tables the edge does
/// not carry, size), builds its unanchored DFA and serializes it. The error is a sentence
/// fit for a compiler diagnostic.
pub fn compile_regex(src: &str) -> Result<Regex, String> {
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
        .map_err(|e| format!("invalid regex {src:?}: {}", regex_syntax::Error::from(e)))?;
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
    // The same syntax defaults as before the DFA (Unicode mode, UTF-8 only matches), so a
    // pattern means what it meant.
    let hir = TranslatorBuilder::new()
        .build()
        .translate(src, &tree)
        .map_err(|e| format!("invalid regex {src:?}: {}", regex_syntax::Error::from(e)))?;
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().nfa_size_limit(Some(MAX_NFA_BYTES)))
        .build_from_hir(&hir)
        .map_err(|e| match e.size_limit() {
            Some(limit) => {
                format!("regex is too expensive: it compiles to more than {limit} bytes")
            }
            None => format!("invalid regex {src:?}: {e}"),
        })?;
    let too_big = || format!("regex is too expensive: its DFA would be over {MAX_DFA_BYTES} bytes");
    let dense = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Unanchored)
                .minimize(true)
                .dfa_size_limit(Some(MAX_DENSE_BYTES))
                .determinize_size_limit(Some(MAX_DENSE_BYTES)),
        )
        .build_from_nfa(&nfa)
        .map_err(|e| {
            if e.is_size_limit_exceeded() {
                too_big()
            } else {
                format!("invalid regex {src:?}: {e}")
            }
        })?;
    let sparse = dense
        .to_sparse()
        .map_err(|e| format!("invalid regex {src:?}: {e}"))?;
    let bytes = sparse.to_bytes_little_endian();
    if bytes.len() > MAX_DFA_BYTES {
        return Err(too_big());
    }
    Ok(Regex {
        source: String::from(src),
        dfa: STANDARD.encode(bytes),
    })
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
