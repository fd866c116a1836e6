//! Compiler diagnostics: every problem names the file, the line and, where there is one, the rule.

use std::fmt;
use std::path::PathBuf;

/// How bad a diagnostic is: errors stop compilation, warnings (lints) do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A lint: printed, exit code unaffected unless `--deny-warnings`.
    Warning,
    /// The blob cannot be built.
    Error,
}

/// One problem found in the flag files, printed as `file:line: flag K: rule R: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as given (relative to the flags directory when possible).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The flag key, when the problem is inside a flag.
    pub flag: Option<String>,
    /// The rule (its id or 1-based index), when the problem is inside a rule.
    pub rule: Option<String>,
    /// What is wrong, and where possible how to fix it.
    pub message: String,
}

impl Diagnostic {
    /// An error at `file:line`.
    pub fn error(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.into(),
            line,
            flag: None,
            rule: None,
            message: message.into(),
        }
    }

    /// A warning (lint) at `file:line`.
    pub fn warning(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, message)
        }
    }

    /// Names the flag the problem is in.
    pub fn in_flag(mut self, key: impl Into<String>) -> Self {
        self.flag = Some(key.into());
        self
    }

    /// Names the rule the problem is in.
    pub fn in_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {level}:")?;
        if let Some(flag) = &self.flag {
            write!(f, " flag {flag}:")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " rule {rule}:")?;
        }
        write!(f, " {}", self.message)
    }
}
