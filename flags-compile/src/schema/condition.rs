//! Conditions (`docs/flag-format.md`, "Conditions"): `{attr, OPERATOR: OPERAND}` tests,
//! `all`/`any`/`not`/`segment` combinators, and a bare list as shorthand for `all`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{MAX_LIST_LEN, MAX_REGEX_LEN};

use super::values::{AttrPath, Scalar, TimeOperand};

/// A condition: a test on an attribute, `all`, `any`, `not`, `segment`, or a bare list
/// (shorthand for `all`). Conditions nest at most 32 levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Condition {
    /// `[C, ...]`: every condition holds (an empty list always holds).
    List(Vec<Condition>),
    /// `{all: [C, ...]}`.
    All(AllOf),
    /// `{any: [C, ...]}`.
    Any(AnyOf),
    /// `{not: C}`.
    Not(NotOf),
    /// `{segment: KEY}`.
    Segment(SegmentRef),
    /// `{attr: PATH, OPERATOR: OPERAND}`.
    Test(Box<Test>),
}

/// `{all: [C, ...]}`: every condition holds (an empty list always holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllOf {
    /// The conditions.
    pub all: Vec<Condition>,
}

/// `{any: [C, ...]}`: at least one holds (an empty list never holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnyOf {
    /// The conditions.
    pub any: Vec<Condition>,
}

/// `{not: C}`: `C` does not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotOf {
    /// The negated condition.
    pub not: Box<Condition>,
}

/// `{segment: KEY}`: the context is in the segment `segments/KEY.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentRef {
    /// The segment's key.
    pub segment: String,
}

/// `in` / `not-in`: a list of strings and numbers, or `{file: lists/NAME.txt}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ListOperand {
    /// Up to 100,000 strings or numbers.
    Values(#[schemars(length(max = MAX_LIST_LEN))] Vec<ListItem>),
    /// A list file.
    File(ListFile),
}

/// A list value: a string or a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ListItem {
    /// A string.
    Str(String),
    /// A number (looked up by its canonical text).
    Number(f64),
}

/// `{file: lists/NAME.txt}`: one value per line, `#` comments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFile {
    /// A path relative to the flags directory (no `..`).
    pub file: String,
}

/// `{attr: PATH, OPERATOR: OPERAND}`: exactly one operator per test; a missing attribute
/// makes every operator false except `not-equals`, `not-in` and `exists: false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(extend("minProperties" = 2, "maxProperties" = 2))]
pub struct Test {
    /// A dot-separated attribute path: `user.plan` reads `{"user": {"plan": ...}}`;
    /// `targetingKey` is OpenFeature's targeting key.
    pub attr: AttrPath,
    /// Equals it (numbers compare as numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Scalar>,
    /// Does not equal it (true when the attribute is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Scalar>,
    /// Is one of the values (up to 100,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "in")]
    pub is_in: Option<ListOperand>,
    /// Is none of the values (true when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_in: Option<ListOperand>,
    /// Is a string containing the substring, or a list containing the element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Scalar>,
    /// Is a string with that prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<String>,
    /// Is a string with that suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<String>,
    /// Is a string the regex matches anywhere (anchor with `^...$`); at most 1,024
    /// characters, without Unicode classes: write `[0-9]` for `\d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_REGEX_LEN))]
    pub matches: Option<String>,
    /// Is a number `<` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<f64>,
    /// Is a number `<=` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub le: Option<f64>,
    /// Is a number `>` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<f64>,
    /// Is a number `>=` it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ge: Option<f64>,
    /// Is a semantic version equal to it (a quoted version string: `"3.2.0"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_eq: Option<String>,
    /// Is a semantic version other than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_ne: Option<String>,
    /// Is a semantic version below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_lt: Option<String>,
    /// Is a semantic version at most it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_le: Option<String>,
    /// Is a semantic version above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_gt: Option<String>,
    /// Is a semantic version at least it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_ge: Option<String>,
    /// Is a semantic version with the same major (`^`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_caret: Option<String>,
    /// Is a semantic version with the same major and minor (`~`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_tilde: Option<String>,
    /// Is a time strictly before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<TimeOperand>,
    /// Is a time strictly after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<TimeOperand>,
    /// `true`: is present and not null; `false`: is absent or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}
