//! A JSON Schema of the native flag and segment files (`docs/flag-format.md`), generated from
//! the serde + `schemars` model below, for editors (yaml-language-server, VS Code) and CI.
//!
//! The model describes the files as the compiler (`native/`, `schedule.rs`) accepts them:
//! mappings refuse unknown fields where the compiler does (`additionalProperties: false`), and
//! each operator has its operand's shape. What needs more than one file (a variant or segment
//! that exists, split percentages adding up to 100, cycles) is left to the compiler.
//! Invariants, kept by `flags-compile/tests/schema.rs`: the committed `docs/schema/*.json`
//! equal [`flag_schema`] / [`segment_schema`]; the top-level properties equal the compiler's
//! field lists ([`crate::native::FLAG_FIELDS`], [`crate::native::SEGMENT_FIELDS`]); the
//! operator properties equal [`crate::native::OPERATORS`]; and every example validates.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};

use crate::limits::MAX_RULES_PER_FLAG;
use crate::schedule::MAX_STAGES;

mod condition;
mod values;

pub use condition::{AllOf, AnyOf, Condition, ListOperand, NotOf, SegmentRef, Test};
pub use values::{AttrPath, Date, FlagKey, Scalar, TimeOperand, VariantName, Variants, Weight};

/// `$id` of the flag files' schema (the service serves it at `GET /api/v1/schema/flag.json`).
pub const FLAG_SCHEMA_ID: &str = "https://flags.dev/schema/flag.json";
/// `$id` of the segment files' schema.
pub const SEGMENT_SCHEMA_ID: &str = "https://flags.dev/schema/segment.json";

/// A flag file: `flags/<key>.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(transform = flag_file_constraints)]
pub struct FlagFile {
    /// The flag's key as clients send it. Defaults to the file name without extension; two
    /// files with one key are an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<FlagKey>,
    /// For people; never compiled into the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required: a team or person who answers for the flag.
    #[schemars(extend("pattern" = r"\S"))]
    pub owner: String,
    /// Required: `release` (temporary rollout), `operational` (long-lived toggle), `experiment`
    /// (A/B test), `permission` (grants access: served only to a signed identity),
    /// `kill-switch` (emergency off).
    #[serde(rename = "type")]
    pub kind: FlagType,
    /// A date `YYYY-MM-DD`: after it, `validate` warns "flag expired".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
    /// A date `YYYY-MM-DD`: after it, `validate` warns "past its owner's review date".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_by: Option<Date>,
    /// For people; never compiled into the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Mapping of variant name to value. Values are all booleans, all strings, all numbers, or
    /// all mappings (JSON objects); at most 256. Omitted: the boolean pair `on: true`,
    /// `off: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Variants>,
    /// The safe default variant: served when no rule matches and there is no `fallthrough`,
    /// when the flag is off or killed, and whenever evaluation fails. Required unless
    /// `variants` is omitted (then `off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<VariantName>,
    /// This flag's rules run only if these hold: `{flag: KEY, variants: [NAMES]}`, or just
    /// `KEY` (the other flag must then be boolean and serve a variant whose value is `true`).
    /// If one does not hold, the flag serves its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerequisites: Option<Vec<Prerequisite>>,
    /// Attribute paths this flag may read from the request body (unsigned); every other
    /// attribute must come from the signed identity token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsigned_attributes: Option<Vec<AttrPath>>,
    /// Whether the flag's splits may bucket by an unsigned targeting key (a device or session
    /// id in the request body) when no signed one is presented. Default `true`, except on a
    /// `permission` flag, which never does (`true` there is an error). `false`: splits bucket
    /// only by a signed targeting key; without one a split answers `TARGETING_KEY_MISSING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_unsigned_key: Option<bool>,
    /// Hashed with the bucketing attribute for splits. Defaults to the key; change it only to
    /// reshuffle users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// Per environment name (`dev`, `staging`, `prod`, any name). An environment not listed is
    /// off there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<BTreeMap<String, Environment>>,
}

/// `default` is required once `variants` is given; a permission flag cannot have
/// `bucket-unsigned-key: true`.
fn flag_file_constraints(schema: &mut Schema) {
    schema.insert(
        "dependentRequired".into(),
        serde_json::json!({ "variants": ["default"] }),
    );
    schema.insert(
        "if".into(),
        serde_json::json!({ "properties": { "type": { "const": "permission" } }, "required": ["type"] }),
    );
    schema.insert(
        "then".into(),
        serde_json::json!({ "properties": { "bucket-unsigned-key": { "const": false } } }),
    );
}

/// The kind of flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlagType {
    /// A temporary rollout.
    Release,
    /// A long-lived toggle.
    Operational,
    /// An A/B test.
    Experiment,
    /// Grants access: the edge serves it only to a signed identity.
    Permission,
    /// Emergency off.
    KillSwitch,
}

/// A prerequisite: a flag key, or a flag and the variants of it that satisfy this one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Prerequisite {
    /// Just the key of a boolean flag, which must serve a variant whose value is `true`.
    Key(FlagKey),
    /// `{flag: KEY, variants: [NAMES]}`.
    Variants(PrerequisiteVariants),
}

/// `{flag: KEY, variants: [NAMES]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrerequisiteVariants {
    /// The other flag's key.
    pub flag: FlagKey,
    /// Which of its variants satisfy the prerequisite (at least one). Omitted: the other flag
    /// must be boolean, and its variants whose value is `true` satisfy it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub variants: Option<Vec<VariantName>>,
}

/// One environment's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Required: whether the flag is on in this environment (off serves the default).
    pub enabled: bool,
    /// Ordered: the first rule whose condition holds serves; later rules are not tried.
    /// At most 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Rules>,
    /// What to serve when no rule matches (default: the `default` variant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallthrough: Option<Serve>,
}

/// An environment's rules: a list of at most 500, or nothing (`rules:` with nothing after it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Rules(#[schemars(length(max = MAX_RULES_PER_FLAG))] pub Option<Vec<Rule>>);

/// A rule: when `if` holds, `serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Shown by `explain` and in OFREP metadata. Defaults to the rule's 1-based position;
    /// unique within the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<VariantName>,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The condition; no `if` matches every context.
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Required: a variant name, a `split` or a `rollout`.
    pub serve: Serve,
}

/// What a rule (or `fallthrough`) serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Serve {
    /// One variant, by name.
    Variant(VariantName),
    /// A fixed split.
    Split(SplitServe),
    /// A split whose percentage follows a schedule.
    Rollout(RolloutServe),
}

/// `{split: {VARIANT: PERCENT, ...}, bucket-by: PATH}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SplitServe {
    /// Variant names to percentages adding up to exactly 100, with at most three decimals
    /// (`33.333`); each percentage is a range of buckets, in the order written.
    pub split: BTreeMap<String, Weight>,
    /// The attribute hashed into buckets (default `targetingKey`); use a stable id such as
    /// `org.id` to give everyone in an organisation the same variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<AttrPath>,
}

/// `{rollout: {...}, bucket-by: PATH}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RolloutServe {
    /// A split whose percentage follows ordered stages, advanced by `publisher rollout tick`.
    pub rollout: Rollout,
    /// The attribute hashed into buckets (default `targetingKey`), as for a split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<AttrPath>,
}

/// A rollout schedule (`docs/flag-format.md`, "Rollout schedules").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Rollout {
    /// The treatment variant.
    pub variant: VariantName,
    /// What the rule's other users get (another variant).
    pub others: VariantName,
    /// 1 to 20 stages; percentages never decrease.
    #[schemars(length(min = 1, max = MAX_STAGES))]
    pub stages: Vec<Stage>,
    /// What must pass before a stage advances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// `hold` (default): halt at the stage until `rollout resume`; `revert`: step back one
    /// stage per tick while failing, then hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

/// One stage: a share of the rule's users, or a ring (a whole segment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Stage {
    /// `{percent: N, soak: DURATION}`.
    Percent(PercentStage),
    /// `{segment: KEY, soak: DURATION}`.
    Ring(RingStage),
}

/// `{percent: N, soak: DURATION}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PercentStage {
    /// Share of the rule's users treated: above 0, at most 100.
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 100))]
    pub percent: f64,
    /// Least time at this stage before the next one is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<values::Duration>,
}

/// `{segment: KEY, soak: DURATION}`: from this stage on, every user of the segment who
/// matches the rule is treated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RingStage {
    /// The segment's key (`segments/<key>.yaml`).
    #[schemars(length(min = 1))]
    pub segment: String,
    /// Least time at this stage before the next one is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<values::Duration>,
}

/// `{url: "http(s)://..."}` (must answer a GET with 2xx) or `{command: "..."}` (run with
/// `sh -c`, must exit 0): exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    /// Must answer a GET with 2xx.
    Url(String),
    /// Run with `sh -c`; must exit 0.
    Command(String),
}

impl JsonSchema for HealthCheck {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HealthCheck".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> Schema {
        // The compiler reads `url` or `command` (exactly one) and ignores other keys.
        schemars::json_schema!({
            "description": "What must pass before a stage advances: `{url: \"http(s)://...\"}` (must answer a GET with 2xx) or `{command: \"...\"}` (run with `sh -c`, must exit 0), exactly one.",
            "type": "object",
            "properties": {
                "url": { "type": "string", "pattern": "^https?://" },
                "command": { "type": "string", "pattern": "\\S" }
            },
            "oneOf": [
                { "required": ["url"], "not": { "required": ["command"] } },
                { "required": ["command"], "not": { "required": ["url"] } }
            ]
        })
    }
}

/// What a failing health check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stay at the current stage, halted, until `rollout resume`.
    Hold,
    /// Step back one stage per tick while the check fails, then hold.
    Revert,
}

/// A segment file: `segments/<key>.yaml`, a reusable condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentFile {
    /// The segment's key. Defaults to the file name without extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<FlagKey>,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A team or person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Required: the condition a context must satisfy to be in the segment. It may use other
    /// segments; cycles are errors.
    #[serde(rename = "if")]
    pub condition: Condition,
}

/// The JSON Schema (2020-12) of a flag file.
pub fn flag_schema() -> serde_json::Value {
    schema_for::<FlagFile>(FLAG_SCHEMA_ID, "Flag file")
}

/// The JSON Schema (2020-12) of a segment file.
pub fn segment_schema() -> serde_json::Value {
    schema_for::<SegmentFile>(SEGMENT_SCHEMA_ID, "Segment file")
}

fn schema_for<T: JsonSchema>(id: &str, title: &str) -> serde_json::Value {
    let mut schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("$id".into(), id.into());
    schema.insert("title".into(), title.into());
    let mut value = schema.to_value();
    absent_not_null(&mut value);
    value
}

/// An optional field is left out, never written `null`: the compiler refuses `owner: null`
/// and `expires: null` (only `rules:` may be empty, which [`Rules`] says itself). schemars
/// makes every `Option` field nullable, so this takes `null` back out of every property that
/// is not required.
fn absent_not_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    let is_null = |v: &Value| {
        v.get("type") == Some(&Value::from("null")) && v.as_object().is_some_and(|o| o.len() == 1)
    };
    match value {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for property in properties.values_mut() {
                    let Value::Object(schema) = property else {
                        continue;
                    };
                    if let Some(Value::Array(types)) = schema.get_mut("type") {
                        types.retain(|t| t != "null");
                        if let [only] = types.as_slice() {
                            let only = only.clone();
                            schema.insert("type".into(), only);
                        }
                    }
                    let any_of = schema.get("anyOf").and_then(Value::as_array).cloned();
                    if let Some(mut branches) = any_of
                        && branches.iter().any(is_null)
                    {
                        branches.retain(|b| !is_null(b));
                        schema.remove("anyOf");
                        match branches.as_slice() {
                            [Value::Object(only)] => {
                                for (k, v) in only {
                                    schema.entry(k.clone()).or_insert_with(|| v.clone());
                                }
                            }
                            _ => {
                                schema.insert("anyOf".into(), Value::Array(branches));
                            }
                        }
                    }
                }
            }
            object.values_mut().for_each(absent_not_null);
        }
        Value::Array(items) => items.iter_mut().for_each(absent_not_null),
        _ => {}
    }
}
