//! What an unsigned context may do to a flag, and what it was refused: which splits bucket by
//! an unsigned targeting key ([`buckets_unsigned_key`], [`split_reads_unsigned`]) and which
//! attributes sent unsigned a flag's answer ignored ([`unsigned_ignored`], the edge's
//! `unsignedIgnored`).

use alloc::{string::String, vec::Vec};
use serde_json::{Map, Value};

use super::{find_flag, is_targeting_key};
use crate::{
    AttrId, Body, Condition, Context, Flag, FlagKind, MAX_RULE_DEPTH, Serve, Snapshot, Targeting,
};

/// Whether `flag` may bucket by an unsigned targeting key (a device or session id sent in the
/// request body): a split grants nothing by itself, so every flag may but a `permission` one
/// and one that opted out ([`Flag::signed_bucketing_only`], `bucket-unsigned-key: false`).
/// Rules that compare the key's value still read an unsigned one only where the flag lists
/// `targetingKey` in its unsigned attributes.
pub(crate) fn buckets_unsigned_key(flag: &Flag) -> bool {
    flag.kind != FlagKind::Permission && !flag.signed_bucketing_only
}

/// Whether a split of `flag` bucketing by `attr` (the targeting key or not) reads it unsigned:
/// another attribute where the flag lists it; the targeting key where the flag lists it or
/// [`buckets_unsigned_key`], but never on a flag that opted out of unsigned bucketing.
pub(crate) fn split_reads_unsigned(flag: &Flag, attr: AttrId, targeting_key: bool) -> bool {
    if targeting_key {
        !flag.signed_bucketing_only
            && (flag.unsigned_attrs.contains(&attr) || buckets_unsigned_key(flag))
    } else {
        flag.unsigned_attrs.contains(&attr)
    }
}

/// The attributes (dotted paths) flag `key` reads that `ctx` sent unsigned only and the flag
/// does not read unsigned, so its answer ignored them: what the edge reports as
/// `unsignedIgnored`. Reads are native conditions (segments included) and splits; an
/// unsigned targeting key a split may bucket by is read, not ignored (one a flag that opted
/// out of unsigned bucketing did not bucket by is ignored). Imported flagd targeting is not
/// broken down (empty).
pub fn unsigned_ignored(snapshot: &Snapshot, key: &str, ctx: &Context<'_>) -> Vec<String> {
    match (
        ctx.unsigned.filter(|m| !m.is_empty()),
        find_flag(snapshot, key).and_then(|i| snapshot.blob.body.flags.get(i)),
    ) {
        (Some(unsigned), Some(flag)) => ignored_by(&snapshot.blob.body, flag, ctx, unsigned),
        _ => Vec::new(),
    }
}

/// [`unsigned_ignored`] for every flag: `(index, attributes)` for each flag that ignored
/// something, in flag (key) order, so `index` is the flag's position in
/// [`evaluate_all`](crate::evaluate_all)'s result. Allocates nothing when `ctx` has no
/// unsigned attributes.
pub fn unsigned_ignored_all(snapshot: &Snapshot, ctx: &Context<'_>) -> Vec<(usize, Vec<String>)> {
    let Some(unsigned) = ctx.unsigned.filter(|m| !m.is_empty()) else {
        return Vec::new();
    };
    let body = &snapshot.blob.body;
    body.flags
        .iter()
        .enumerate()
        .filter_map(|(index, flag)| {
            let ignored = ignored_by(body, flag, ctx, unsigned);
            (!ignored.is_empty()).then_some((index, ignored))
        })
        .collect()
}

/// [`unsigned_ignored`] of one flag, for a context with `unsigned` attributes.
fn ignored_by(
    body: &Body,
    flag: &Flag,
    ctx: &Context<'_>,
    unsigned: &Map<String, Value>,
) -> Vec<String> {
    let mut ignored = Vec::new();
    // A permission flag reads nothing unsigned on an unverified identity.
    let granting = flag.kind == FlagKind::Permission && !ctx.identity_signed();
    let mut note = |attr: u32, bucketing: bool| {
        let Some(path) = body.attrs.get(attr as usize) else {
            return;
        };
        let allowed = !granting
            && if bucketing {
                split_reads_unsigned(flag, attr, is_targeting_key(path))
            } else {
                flag.unsigned_attrs.contains(&attr)
            };
        if allowed || ctx.lookup(path, false).is_some() {
            return;
        }
        if crate::context::Context::new(unsigned)
            .lookup(path, false)
            .is_some()
        {
            let name = path.join(".");
            if !ignored.contains(&name) {
                ignored.push(name);
            }
        }
    };
    if let Targeting::Rules { rules, fallthrough } = &flag.targeting {
        for serve in rules.iter().map(|r| &r.serve).chain([fallthrough]) {
            if let Serve::Split(split) = serve {
                note(split.bucket_by, true);
            }
        }
        for rule in rules {
            conditions_read(body, &rule.condition, 1, &mut |attr| note(attr, false));
        }
    }
    ignored
}

/// Calls `read` with every attribute `condition` tests (segments followed, depth bounded).
fn conditions_read(body: &Body, condition: &Condition, level: usize, read: &mut dyn FnMut(u32)) {
    if level > MAX_RULE_DEPTH {
        return;
    }
    match condition {
        Condition::All(items) | Condition::Any(items) => {
            for item in items {
                conditions_read(body, item, level + 1, read);
            }
        }
        Condition::Not(inner) => conditions_read(body, inner, level + 1, read),
        Condition::Segment(id) => {
            if let Some(segment) = body.segments.get(*id as usize) {
                conditions_read(body, &segment.condition, level + 1, read);
            }
        }
        Condition::Test(test) => read(test.attr),
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::{
        Blob, ErrorCode, Header, Reason, eval::evaluate_reference, evaluate, evaluate_all,
        evaluate_resolved,
    };

    /// Three release flags with a 50/50 split by the targeting key: `pricing` opted out of
    /// unsigned bucketing, `pricing-listed` opted out while listing the key unsigned (the
    /// opt-out still wins for splits), `rollout` left as is.
    fn snapshot() -> Snapshot {
        let flag = |key: &str, extra: Value| {
            let mut flag = json!({
                "key": key, "kind": "release", "value_type": "boolean",
                "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
                "default_variant": 1, "off_variant": 1, "enabled": true,
                "targeting": {"rules": {"rules": [], "fallthrough":
                    {"split": {"bucket_by": 0, "weights": [[0, 50000], [1, 50000]]}}}}
            });
            for (k, v) in extra.as_object().unwrap() {
                flag[k] = v.clone();
            }
            flag
        };
        let body = serde_json::from_value(json!({
            "attrs": [["targetingKey"]],
            "flags": [
                flag("pricing", json!({"signed_bucketing_only": true})),
                flag("pricing-listed", json!({"signed_bucketing_only": true, "unsigned_attrs": [0]})),
                flag("rollout", json!({})),
            ],
            "eval_order": [0, 1, 2]
        }))
        .unwrap();
        let header = Header {
            environment: "test".into(),
            version: 1,
            previous: None,
            content_hash: String::new(),
            author: "test".into(),
            source_commit: None,
            created_at: "2024-01-01T00:00:00Z".into(),
        };
        Snapshot::from_blob(Blob::new(header, body)).unwrap()
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// `(reason, error)` of `key` by every path (reference, single, resolved, all), which
    /// must agree.
    fn answer(snapshot: &Snapshot, ctx: &Context<'_>, key: &str) -> (Reason, Option<ErrorCode>) {
        let index = find_flag(snapshot, key).unwrap();
        let single = evaluate(snapshot, key, ctx, 0);
        assert_eq!(evaluate_reference(snapshot, index, ctx, 0), single, "{key}");
        assert_eq!(
            evaluate_resolved(&snapshot.resolve(ctx), key, 0),
            single,
            "{key}"
        );
        assert_eq!(evaluate_all(snapshot, ctx, 0)[index].1, single, "{key}");
        (single.reason, single.error)
    }

    #[test]
    fn an_opted_out_flag_buckets_only_by_a_signed_key() {
        let snapshot = snapshot();
        let none = Map::new();
        let device = object(json!({"targetingKey": "device-1"}));
        let user = object(json!({"targetingKey": "u1"}));
        let anonymous = Context::with_unsigned(&none, &device, false);
        let signed = Context::with_unsigned(&user, &none, true);
        let missing = (Reason::Error, Some(ErrorCode::TargetingKeyMissing));
        for key in ["pricing", "pricing-listed"] {
            assert_eq!(answer(&snapshot, &anonymous, key), missing, "{key}");
            assert_eq!(
                answer(&snapshot, &signed, key),
                (Reason::Split, None),
                "{key}"
            );
        }
        assert_eq!(
            answer(&snapshot, &anonymous, "rollout"),
            (Reason::Split, None)
        );
        assert_eq!(answer(&snapshot, &signed, "rollout"), (Reason::Split, None));
    }

    #[test]
    fn an_opted_out_flag_reports_the_unsigned_key_ignored() {
        let snapshot = snapshot();
        let none = Map::new();
        let device = object(json!({"targetingKey": "device-1"}));
        let anonymous = Context::with_unsigned(&none, &device, false);
        let key = vec![String::from("targetingKey")];
        assert_eq!(unsigned_ignored(&snapshot, "pricing", &anonymous), key);
        assert_eq!(
            unsigned_ignored(&snapshot, "pricing-listed", &anonymous),
            key
        );
        assert!(unsigned_ignored(&snapshot, "rollout", &anonymous).is_empty());
    }

    #[test]
    fn every_flags_ignored_attributes_at_once() {
        let snapshot = snapshot();
        let none = Map::new();
        let device = object(json!({"targetingKey": "device-1"}));
        let key = vec![String::from("targetingKey")];
        let anonymous = Context::with_unsigned(&none, &device, false);
        assert_eq!(
            unsigned_ignored_all(&snapshot, &anonymous),
            vec![(0, key.clone()), (1, key)]
        );
        let nothing_unsigned = Context::with_unsigned(&none, &none, false);
        assert_eq!(unsigned_ignored_all(&snapshot, &nothing_unsigned), vec![]);
        assert_eq!(
            unsigned_ignored_all(&snapshot, &Context::new(&device)),
            vec![]
        );
    }
}
