//! Reading a blob's JSON without serde's derived deserializers.
//!
//! The blob stays the JSON serde writes (the publisher serializes [`Blob`] with serde, an
//! operator reads it with `jq`); only reading it is written out here, for the edge's sake:
//! serde's derived visitors, instantiated for every type of the model, cost ~9 KB more of the
//! worker's gzipped module than this decoder does (see docs/benchmarks.md, "Worker module size"). It reads exactly the shapes serde's derive reads (externally tagged
//! enums, tuples as arrays, optional fields missing or `null`, unknown fields skipped,
//! duplicate fields refused), which `tests` check against the derived `Deserialize` on
//! generated blobs and on every byte-level corruption of one.

mod reader;
#[cfg(test)]
mod tests;

use alloc::{boxed::Box, format, string::String, vec::Vec};
use serde_json::{Map, Value};

use crate::model::*;
pub use reader::JsonError;
use reader::{Reader, Result};

/// The parts of a blob's JSON, each decoded as it was met (one pass over the bytes), with the
/// body's bytes for its content hash. A header or body that is JSON but not of the model's
/// shape keeps its error here, so that the caller reports the more useful finding first (a
/// wrong schema, then a wrong content hash), as when the parts were delimited, then decoded.
pub(crate) struct Parts<'a> {
    pub(crate) schema: u32,
    pub(crate) header: Option<Result<Header>>,
    pub(crate) body: Option<(&'a [u8], Result<Body>)>,
}

/// Reads a field's value into the `Option` of the same name, refusing a second occurrence as
/// serde does. Written as a macro so that each field is plain code, not an instance of a
/// generic helper (the decoder is compiled at the evaluator's opt-level, where generic
/// instances multiply).
macro_rules! field {
    ($r:ident, $slot:ident, $read:expr) => {{
        if $slot.is_some() {
            return duplicate($r, stringify!($slot));
        }
        $slot = Some($read);
        Ok(())
    }};
}

/// [`field!`] for an `Option` field: `null` reads as absent.
macro_rules! optional {
    ($r:ident, $slot:ident, $read:expr) => {
        field!($r, $slot, if $r.null()? { None } else { Some($read) })
    };
}

// After the macros, which it uses.
mod logic;

/// Reads a blob's top-level object: its schema, header and body (see [`Parts`]). Fails only on
/// what is not JSON, or a schema that is not a number.
pub(crate) fn parts(text: &[u8]) -> Result<Parts<'_>> {
    let mut r = Reader::new(text)?;
    let (mut schema, mut header, mut body) = (None, None, None);
    r.object(&mut |r, name| match name {
        "schema" => field!(r, schema, r.u32()?),
        "header" => field!(r, header, r.attempt(header_of)?.1),
        "body" => field!(r, body, r.attempt(body_of)?),
        _ => r.skip(),
    })?;
    r.end()?;
    Ok(Parts {
        schema: required(&r, schema, "schema")?,
        header,
        body,
    })
}

/// Parses JSON into serde_json's [`Value`] exactly as `serde_json::from_slice` does (the same
/// values, the same inputs refused, the same nesting limit) without linking serde's
/// deserializer: the edge's one JSON reader, for request bodies, token claims and pointers.
pub fn parse_json(text: &[u8]) -> core::result::Result<Value, JsonError> {
    let mut r = Reader::new(text)?;
    let value = r.value()?;
    r.end()?;
    Ok(value)
}

/// Whether a schema-1 body lists any regex (they were sources then, not DFAs).
pub(crate) fn has_regexes(text: &[u8]) -> Result<bool> {
    let mut r = Reader::new(text)?;
    let mut any = false;
    r.object(&mut |r, name| match name {
        "regexes" => r.array(&mut |r| {
            any = true;
            r.skip()
        }),
        _ => r.skip(),
    })?;
    r.end()?;
    Ok(any)
}

fn duplicate(r: &Reader<'_>, name: &str) -> Result<()> {
    r.error(format!("duplicate field `{name}`"))
}

fn required<T>(r: &Reader<'_>, slot: Option<T>, name: &'static str) -> Result<T> {
    match slot {
        Some(value) => Ok(value),
        None => r.error(format!("missing field `{name}`")),
    }
}

fn unknown_variant<T>(r: &Reader<'_>, name: &str) -> Result<T> {
    r.error(format!("unknown variant `{name}`"))
}

fn needs_data<T>(r: &Reader<'_>) -> Result<T> {
    r.error("expected the variant's data")
}

fn header_of(r: &mut Reader<'_>) -> Result<Header> {
    let (mut environment, mut version, mut previous) = (None, None, None);
    let (mut content_hash, mut author, mut source_commit, mut created_at) =
        (None, None, None, None);
    r.object(&mut |r, name| match name {
        "environment" => field!(r, environment, r.string()?),
        "version" => field!(r, version, r.u64()?),
        "previous" => optional!(r, previous, r.u64()?),
        "content_hash" => field!(r, content_hash, r.string()?),
        "author" => field!(r, author, r.string()?),
        "source_commit" => optional!(r, source_commit, r.string()?),
        "created_at" => field!(r, created_at, r.string()?),
        _ => r.skip(),
    })?;
    Ok(Header {
        environment: required(r, environment, "environment")?,
        version: required(r, version, "version")?,
        previous: previous.flatten(),
        content_hash: required(r, content_hash, "content_hash")?,
        author: required(r, author, "author")?,
        source_commit: source_commit.flatten(),
        created_at: required(r, created_at, "created_at")?,
    })
}

fn strings(r: &mut Reader<'_>) -> Result<Vec<String>> {
    r.vec(Reader::string)
}

fn body_of(r: &mut Reader<'_>) -> Result<Body> {
    let (mut attrs, mut lists, mut regexes) = (None, None, None);
    let (mut segments, mut flags, mut eval_order) = (None, None, None);
    r.object(&mut |r, name| match name {
        "attrs" => field!(r, attrs, r.vec(strings)?),
        "lists" => field!(r, lists, r.vec(strings)?),
        "regexes" => field!(r, regexes, r.vec(regex)?),
        "segments" => field!(r, segments, r.vec(segment)?),
        "flags" => field!(r, flags, r.vec(flag)?),
        "eval_order" => field!(r, eval_order, r.vec(Reader::u32)?),
        _ => r.skip(),
    })?;
    Ok(Body {
        attrs: required(r, attrs, "attrs")?,
        lists: lists.unwrap_or_default(),
        regexes: regexes.unwrap_or_default(),
        segments: segments.unwrap_or_default(),
        flags: required(r, flags, "flags")?,
        eval_order: required(r, eval_order, "eval_order")?,
    })
}

fn regex(r: &mut Reader<'_>) -> Result<Regex> {
    let (mut source, mut dfa) = (None, None);
    r.object(&mut |r, name| match name {
        "source" => field!(r, source, r.string()?),
        "dfa" => field!(r, dfa, r.string()?),
        _ => r.skip(),
    })?;
    Ok(Regex {
        source: required(r, source, "source")?,
        dfa: required(r, dfa, "dfa")?,
    })
}

fn segment(r: &mut Reader<'_>) -> Result<Segment> {
    let (mut key, mut condition) = (None, None);
    r.object(&mut |r, name| match name {
        "key" => field!(r, key, r.string()?),
        "condition" => field!(r, condition, self::condition(r)?),
        _ => r.skip(),
    })?;
    Ok(Segment {
        key: required(r, key, "key")?,
        condition: required(r, condition, "condition")?,
    })
}

fn flag(r: &mut Reader<'_>) -> Result<Flag> {
    let (mut key, mut kind, mut value_type, mut variants) = (None, None, None, None);
    let (mut default_variant, mut off_variant, mut enabled, mut killed) = (None, None, None, None);
    let (mut prerequisites, mut targeting, mut salt) = (None, None, None);
    let (mut unsigned_attrs, mut signed_bucketing_only, mut metadata) = (None, None, None);
    r.object(&mut |r, name| match name {
        "key" => field!(r, key, r.string()?),
        "kind" => field!(r, kind, flag_kind(r)?),
        "value_type" => field!(r, value_type, self::value_type(r)?),
        "variants" => field!(r, variants, r.vec(variant)?),
        "default_variant" => optional!(r, default_variant, r.u16()?),
        "off_variant" => optional!(r, off_variant, r.u16()?),
        "enabled" => field!(r, enabled, r.bool()?),
        "killed" => field!(r, killed, r.bool()?),
        "prerequisites" => field!(r, prerequisites, r.vec(prerequisite)?),
        "targeting" => field!(r, targeting, self::targeting(r)?),
        "salt" => field!(r, salt, r.string()?),
        "unsigned_attrs" => field!(r, unsigned_attrs, r.vec(Reader::u32)?),
        "signed_bucketing_only" => field!(r, signed_bucketing_only, r.bool()?),
        "metadata" => field!(r, metadata, object(r)?),
        _ => r.skip(),
    })?;
    Ok(Flag {
        key: required(r, key, "key")?,
        kind: required(r, kind, "kind")?,
        value_type: required(r, value_type, "value_type")?,
        variants: required(r, variants, "variants")?,
        default_variant: default_variant.flatten(),
        off_variant: off_variant.flatten(),
        enabled: required(r, enabled, "enabled")?,
        killed: killed.unwrap_or_default(),
        prerequisites: prerequisites.unwrap_or_default(),
        targeting: required(r, targeting, "targeting")?,
        salt: salt.unwrap_or_default(),
        unsigned_attrs: unsigned_attrs.unwrap_or_default(),
        signed_bucketing_only: signed_bucketing_only.unwrap_or_default(),
        metadata: metadata.unwrap_or_default(),
    })
}

fn object(r: &mut Reader<'_>) -> Result<Map<String, Value>> {
    match r.value()? {
        Value::Object(map) => Ok(map),
        _ => r.error("expected an object"),
    }
}

fn flag_kind(r: &mut Reader<'_>) -> Result<FlagKind> {
    let (name, data) = r.tag()?;
    let kind = match &*name {
        "release" => FlagKind::Release,
        "operational" => FlagKind::Operational,
        "experiment" => FlagKind::Experiment,
        "permission" => FlagKind::Permission,
        "kill-switch" => FlagKind::KillSwitch,
        _ => return unknown_variant(r, &name),
    };
    r.unit(data)?;
    r.end_tag(data)?;
    Ok(kind)
}

fn value_type(r: &mut Reader<'_>) -> Result<ValueType> {
    let (name, data) = r.tag()?;
    let ty = match &*name {
        "boolean" => ValueType::Boolean,
        "string" => ValueType::String,
        "number" => ValueType::Number,
        "object" => ValueType::Object,
        _ => return unknown_variant(r, &name),
    };
    r.unit(data)?;
    r.end_tag(data)?;
    Ok(ty)
}

fn variant(r: &mut Reader<'_>) -> Result<Variant> {
    let (mut name, mut value) = (None, None);
    r.object(&mut |r, field| match field {
        "name" => field!(r, name, r.string()?),
        "value" => field!(r, value, r.value()?),
        _ => r.skip(),
    })?;
    Ok(Variant {
        name: required(r, name, "name")?,
        value: required(r, value, "value")?,
    })
}

fn prerequisite(r: &mut Reader<'_>) -> Result<Prerequisite> {
    let (mut flag, mut variants) = (None, None);
    r.object(&mut |r, name| match name {
        "flag" => field!(r, flag, r.u32()?),
        "variants" => field!(r, variants, r.vec(Reader::u16)?),
        _ => r.skip(),
    })?;
    Ok(Prerequisite {
        flag: required(r, flag, "flag")?,
        variants: required(r, variants, "variants")?,
    })
}

fn targeting(r: &mut Reader<'_>) -> Result<Targeting> {
    let (name, data) = r.tag()?;
    let targeting = match (&*name, data) {
        ("rules", true) => {
            let (mut rules, mut fallthrough) = (None, None);
            r.object(&mut |r, name| match name {
                "rules" => field!(r, rules, r.vec(rule)?),
                "fallthrough" => field!(r, fallthrough, serve(r)?),
                _ => r.skip(),
            })?;
            Targeting::Rules {
                rules: required(r, rules, "rules")?,
                fallthrough: required(r, fallthrough, "fallthrough")?,
            }
        }
        ("logic", true) => Targeting::Logic(logic::expr(r)?),
        ("rules" | "logic", false) => return needs_data(r),
        _ => return unknown_variant(r, &name),
    };
    r.end_tag(data)?;
    Ok(targeting)
}

fn rule(r: &mut Reader<'_>) -> Result<Rule> {
    let (mut id, mut condition, mut serve) = (None, None, None);
    r.object(&mut |r, name| match name {
        "id" => field!(r, id, r.string()?),
        "condition" => field!(r, condition, self::condition(r)?),
        "serve" => field!(r, serve, self::serve(r)?),
        _ => r.skip(),
    })?;
    Ok(Rule {
        id: required(r, id, "id")?,
        condition: required(r, condition, "condition")?,
        serve: required(r, serve, "serve")?,
    })
}

fn serve(r: &mut Reader<'_>) -> Result<Serve> {
    let (name, data) = r.tag()?;
    let serve = match (&*name, data) {
        ("variant", true) => Serve::Variant(r.u16()?),
        ("split", true) => Serve::Split(split(r)?),
        ("variant" | "split", false) => return needs_data(r),
        _ => return unknown_variant(r, &name),
    };
    r.end_tag(data)?;
    Ok(serve)
}

fn split(r: &mut Reader<'_>) -> Result<Split> {
    let (mut bucket_by, mut weights) = (None, None);
    r.object(&mut |r, name| match name {
        "bucket_by" => field!(r, bucket_by, r.u32()?),
        "weights" => field!(r, weights, r.vec(weight)?),
        _ => r.skip(),
    })?;
    Ok(Split {
        bucket_by: required(r, bucket_by, "bucket_by")?,
        weights: required(r, weights, "weights")?,
    })
}

fn weight(r: &mut Reader<'_>) -> Result<(VariantId, u32)> {
    let (mut variant, mut weight) = (0, 0);
    r.tuple::<2>(&mut |r, i| {
        if i == 0 {
            variant = r.u16()?;
        } else {
            weight = r.u32()?;
        }
        Ok(())
    })?;
    Ok((variant, weight))
}

fn condition(r: &mut Reader<'_>) -> Result<Condition> {
    let (name, data) = r.tag()?;
    let condition = match (&*name, data) {
        ("all", true) => Condition::All(r.vec(condition)?),
        ("any", true) => Condition::Any(r.vec(condition)?),
        ("not", true) => Condition::Not(Box::new(condition(r)?)),
        ("segment", true) => Condition::Segment(r.u32()?),
        ("test", true) => Condition::Test(test(r)?),
        ("all" | "any" | "not" | "segment" | "test", false) => return needs_data(r),
        _ => return unknown_variant(r, &name),
    };
    r.end_tag(data)?;
    Ok(condition)
}

fn test(r: &mut Reader<'_>) -> Result<Test> {
    let (mut attr, mut op) = (None, None);
    r.object(&mut |r, name| match name {
        "attr" => field!(r, attr, r.u32()?),
        "op" => field!(r, op, self::op(r)?),
        _ => r.skip(),
    })?;
    Ok(Test {
        attr: required(r, attr, "attr")?,
        op: required(r, op, "op")?,
    })
}

fn op(r: &mut Reader<'_>) -> Result<Op> {
    let (name, data) = r.tag()?;
    let op = match (&*name, data) {
        ("exists", _) => {
            r.unit(data)?;
            Op::Exists
        }
        (_, false) => {
            return match &*name {
                "equals" | "not_equals" | "in" | "not_in" | "contains" | "starts_with"
                | "ends_with" | "matches" | "lt" | "le" | "gt" | "ge" | "sem_ver" | "before"
                | "after" => needs_data(r),
                _ => unknown_variant(r, &name),
            };
        }
        ("equals", _) => Op::Equals(r.value()?),
        ("not_equals", _) => Op::NotEquals(r.value()?),
        ("in", _) => Op::In(r.u32()?),
        ("not_in", _) => Op::NotIn(r.u32()?),
        ("contains", _) => Op::Contains(r.value()?),
        ("starts_with", _) => Op::StartsWith(r.string()?),
        ("ends_with", _) => Op::EndsWith(r.string()?),
        ("matches", _) => Op::Matches(r.u32()?),
        ("lt", _) => Op::Lt(r.f64()?),
        ("le", _) => Op::Le(r.f64()?),
        ("gt", _) => Op::Gt(r.f64()?),
        ("ge", _) => Op::Ge(r.f64()?),
        ("sem_ver", _) => {
            let (mut cmp, mut version) = (None, None);
            r.tuple::<2>(&mut |r, i| {
                if i == 0 {
                    cmp = Some(semver_cmp(r)?);
                } else {
                    version = Some(semver(r)?);
                }
                Ok(())
            })?;
            Op::SemVer(
                required(r, cmp, "sem_ver")?,
                required(r, version, "sem_ver")?,
            )
        }
        ("before", _) => Op::Before(r.i64()?),
        ("after", _) => Op::After(r.i64()?),
        _ => return unknown_variant(r, &name),
    };
    r.end_tag(data)?;
    Ok(op)
}

fn semver_cmp(r: &mut Reader<'_>) -> Result<SemVerCmp> {
    let (name, data) = r.tag()?;
    let Some(cmp) = SemVerCmp::from_name(&name) else {
        return unknown_variant(r, &name);
    };
    r.unit(data)?;
    r.end_tag(data)?;
    Ok(cmp)
}

fn semver(r: &mut Reader<'_>) -> Result<SemVer> {
    let (mut major, mut minor, mut patch, mut pre) = (None, None, None, None);
    r.object(&mut |r, name| match name {
        "major" => field!(r, major, r.u64()?),
        "minor" => field!(r, minor, r.u64()?),
        "patch" => field!(r, patch, r.u64()?),
        "pre" => field!(r, pre, strings(r)?),
        _ => r.skip(),
    })?;
    Ok(SemVer {
        major: required(r, major, "major")?,
        minor: required(r, minor, "minor")?,
        patch: required(r, patch, "patch")?,
        pre: pre.unwrap_or_default(),
    })
}
