//! The compiled blob's data model: what the publisher writes and the edge reads.
//!
//! Everything here is plain serde data. Indices (`AttrId`, `ListId`, ...) point into the
//! tables of [`Body`], so the evaluator never hashes or compares an attribute path or a
//! segment name per request. The compiler guarantees the invariants listed on each type;
//! [`crate::Snapshot::from_json`] checks them again, because a blob is untrusted input at the edge.

use alloc::{boxed::Box, string::String, vec::Vec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The blob schema this crate writes. Bumped on any incompatible change.
///
/// 2: each regex is stored compiled (a serialized DFA next to its source, see [`Regex`]);
/// schema 1 stored only the source. A schema-1 blob without regexes reads as schema 2 (the rest
/// is the same); one with regexes is refused, see [`crate::BlobError::NeedsRepublish`].
pub const SCHEMA_VERSION: u32 = 2;

/// Index into [`Body::attrs`].
pub type AttrId = u32;
/// Index into [`Body::lists`].
pub type ListId = u32;
/// Index into [`Body::regexes`].
pub type RegexId = u32;
/// Index into [`Body::segments`].
pub type SegmentId = u32;
/// Index into [`Body::flags`].
pub type FlagId = u32;
/// Index into [`Flag::variants`].
pub type VariantId = u16;

/// A whole compiled blob: header first (checked before anything else), then the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blob {
    /// Always [`SCHEMA_VERSION`] for blobs this crate writes.
    pub schema: u32,
    /// Provenance; `content_hash` covers `body`.
    pub header: Header,
    /// The compiled flags.
    pub body: Body,
}

impl Blob {
    /// Assembles a blob, filling `header.content_hash` from `body`.
    pub fn new(mut header: Header, body: Body) -> Blob {
        header.content_hash = crate::content_hash(&body);
        Blob {
            schema: SCHEMA_VERSION,
            header,
            body,
        }
    }
}

/// Who made this blob, from what, and which version of the environment it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Environment name, e.g. `prod`.
    pub environment: String,
    /// Strictly increasing per environment; 0 for a blob built locally and never pushed.
    pub version: u64,
    /// The version this one replaced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    /// `sha256:<hex>` of the compact JSON serialization of [`Body`] (see [`crate::content_hash`]).
    pub content_hash: String,
    /// Who published it (Git identity or an override).
    pub author: String,
    /// Git commit of the flags directory, when it was in a Git repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// RFC 3339 UTC time of compilation.
    pub created_at: String,
}

/// The compiled flags and the interned tables they point into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Body {
    /// Interned attribute paths, each a list of segments: `["user", "plan"]` for `user.plan`.
    /// The targeting key is the path `["targetingKey"]`.
    pub attrs: Vec<Vec<String>>,
    /// Large string lists for `in` / `not_in`, each sorted and deduplicated (binary search).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<Vec<String>>,
    /// Regexes of `matches` tests, compiled by the publisher.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regexes: Vec<Regex>,
    /// Reusable conditions, referenced by [`Condition::Segment`]. A segment only refers to
    /// segments with a smaller index (no cycles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// Flags sorted by key (binary search), each prerequisite pointing at another flag.
    /// `eval_order` gives a topological order for evaluate-all.
    pub flags: Vec<Flag>,
    /// Flag indices, prerequisites before the flags that depend on them.
    pub eval_order: Vec<FlagId>,
}

/// A regex as the publisher compiled it (see `compile_regex`, feature `compile`): the edge
/// carries no regex compiler, only the DFA search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regex {
    /// The pattern as written in the flag file (for diffs, `explain` and diagnostics).
    pub source: String,
    /// Base64 of the pattern's sparse DFA (`regex-automata`, little-endian serialization),
    /// unanchored; checked when a blob is loaded, never trusted.
    pub dfa: String,
}

/// A named, reusable condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The segment's key as written in the flag files.
    pub key: String,
    /// What a context must satisfy to be in the segment.
    pub condition: Condition,
}

/// What a flag is for: drives lints, UI and the permission rule at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagKind {
    /// Temporary, to ship a feature gradually.
    Release,
    /// Long-lived operational toggle.
    Operational,
    /// A/B test.
    Experiment,
    /// Grants access; never served on unsigned identity.
    Permission,
    /// Emergency off switch.
    KillSwitch,
}

/// The type all of a flag's variants share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// `true` / `false`.
    Boolean,
    /// A JSON string.
    String,
    /// A JSON number (integer or float).
    Number,
    /// A JSON object.
    Object,
}

/// One flag, compiled for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Unique key, as sent by clients.
    pub key: String,
    /// What the flag is for.
    pub kind: FlagKind,
    /// The type of every variant's value.
    pub value_type: ValueType,
    /// Named values; at least one unless imported from flagd.
    pub variants: Vec<Variant>,
    /// The safe default: served as DEFAULT when nothing matches. `None` only for flags imported
    /// from flagd without `defaultVariant`, where the caller's own default applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_variant: Option<VariantId>,
    /// Served (reason DISABLED) when the flag is off or killed. `None` means "the caller's
    /// default", which is flagd's semantics for disabled flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variant: Option<VariantId>,
    /// On/off in this environment.
    pub enabled: bool,
    /// Set by `publisher kill`: forces `off_variant` whatever `enabled` says.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub killed: bool,
    /// Flags that must be on and evaluate (without error) to one of the given variants for this
    /// flag's targeting to run; otherwise the flag serves its safe default (`default_variant`)
    /// with reason DEFAULT. Chains are at most [`crate::MAX_PREREQUISITE_DEPTH`] flags long.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// How a variant is picked when the flag is on.
    pub targeting: Targeting,
    /// Salt for percentage splits, hashed with the bucketing attribute. Empty means "the flag's
    /// key" (the common case, kept out of the blob to keep it small). Changing it reshuffles users.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
    /// Attributes that a caller may send unsigned (in the request body) for this flag. Every
    /// other attribute must come from the signed identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsigned_attrs: Vec<AttrId>,
    /// Splits bucket only by a signed targeting key (the flag file's
    /// `bucket-unsigned-key: false`): an unsigned one (a device or session id from the request
    /// body) is not read for a split, as for a `permission` flag. For splits that must not be
    /// gamed by rotating device ids. `false` (the default, left out of the blob) lets every
    /// flag but a permission one bucket by an unsigned key.
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub signed_bucketing_only: bool,
    /// OFREP `metadata`: the flag's own merged over its flag set's.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// A named value of a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// Variant name, returned to clients as `variant`.
    pub name: String,
    /// The value, of the flag's [`ValueType`].
    pub value: Value,
}

/// "Only when flag `flag` evaluates to one of `variants`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prerequisite {
    /// The flag this one depends on; evaluated first.
    pub flag: FlagId,
    /// Acceptable variants of that flag.
    pub variants: Vec<VariantId>,
}

/// How an enabled flag picks its variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targeting {
    /// Native flags: the first matching rule serves; otherwise `fallthrough`.
    Rules {
        /// Tried in order.
        rules: Vec<Rule>,
        /// Served when no rule matches.
        fallthrough: Serve,
    },
    /// Flags imported from flagd: a compiled JSONLogic expression evaluating to a variant
    /// name (or null for the default). See [`crate::logic`].
    Logic(crate::logic::Expr),
}

/// One targeting rule: when `condition` holds, `serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable id for `explain` and OFREP metadata: the rule's `id` in the file, or its 1-based index.
    pub id: String,
    /// What the context must satisfy.
    pub condition: Condition,
    /// What the rule serves.
    pub serve: Serve,
}

/// A variant, or a deterministic percentage split over variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Serve {
    /// Always this variant.
    Variant(VariantId),
    /// Bucket the context and pick by weight.
    Split(Split),
}

/// A percentage split. Weights are in buckets out of [`crate::BUCKETS`] and sum to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// The attribute hashed into a bucket; the targeting key unless overridden.
    pub bucket_by: AttrId,
    /// `(variant, weight)` in order; a bucket falls into the first variant whose cumulative
    /// weight exceeds it, so raising the first weight only ever adds users to it.
    pub weights: Vec<(VariantId, u32)>,
}

/// A boolean condition over the context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Every one holds (true when empty).
    All(Vec<Condition>),
    /// At least one holds (false when empty).
    Any(Vec<Condition>),
    /// The inner one does not hold.
    Not(Box<Condition>),
    /// The context is in the segment.
    Segment(SegmentId),
    /// A test on one attribute.
    Test(Test),
}

/// `attr op operand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Test {
    /// Attribute looked up in the context.
    pub attr: AttrId,
    /// The comparison.
    pub op: Op,
}

/// Operators on one attribute. A missing attribute makes every operator false except
/// `NotEquals`/`NotIn` (true: "is not x") and `Exists` (false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// JSON equality (numbers compared as numbers).
    Equals(Value),
    /// Negated `Equals`.
    NotEquals(Value),
    /// Value (a string, or a number's canonical string) is in the list.
    In(ListId),
    /// Negated `In`.
    NotIn(ListId),
    /// String contains the substring; an array attribute contains the element.
    Contains(Value),
    /// String prefix.
    StartsWith(String),
    /// String suffix.
    EndsWith(String),
    /// Regex match anywhere in the string (anchor with `^...$`).
    Matches(RegexId),
    /// Numeric `<`.
    Lt(f64),
    /// Numeric `<=`.
    Le(f64),
    /// Numeric `>`.
    Gt(f64),
    /// Numeric `>=`.
    Ge(f64),
    /// Semantic-version comparison against a version parsed at compile time.
    SemVer(SemVerCmp, SemVer),
    /// Date/time strictly before, in milliseconds since the Unix epoch. The attribute may be an
    /// RFC 3339 string or epoch seconds/milliseconds (numbers above 1e11 are milliseconds).
    Before(i64),
    /// Date/time strictly after (same encodings as `Before`).
    After(i64),
    /// The attribute is present and not null.
    Exists,
}

/// Semver comparison operators, including flagd's `^` (same major) and `~` (same minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SemVerCmp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `^`: same major version.
    Caret,
    /// `~`: same major and minor version.
    Tilde,
}

impl SemVerCmp {
    /// The comparison named `name` as the blob writes it (`ge`, `caret`, ...), which is also
    /// how flag files spell it after `semver-`.
    pub fn from_name(name: &str) -> Option<SemVerCmp> {
        Some(match name {
            "eq" => SemVerCmp::Eq,
            "ne" => SemVerCmp::Ne,
            "lt" => SemVerCmp::Lt,
            "le" => SemVerCmp::Le,
            "gt" => SemVerCmp::Gt,
            "ge" => SemVerCmp::Ge,
            "caret" => SemVerCmp::Caret,
            "tilde" => SemVerCmp::Tilde,
            _ => return None,
        })
    }
}

/// A parsed semantic version (build metadata dropped: it never affects precedence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemVer {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// Pre-release identifiers, e.g. `["rc", "1"]`; empty for a release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre: Vec<String>,
}
