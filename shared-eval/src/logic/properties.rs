//! Property tests: whatever the targeting and context, compiling, checking and evaluating
//! never panics, and evaluation is deterministic.

use super::*;
use crate::{FlagKind, Targeting, ValueType, Variant};
use proptest::prelude::*;
use serde_json::json;

const OPERATORS: &[&str] = &[
    "var",
    "if",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "and",
    "or",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "cat",
    "substr",
    "+",
    "-",
    "*",
    "/",
    "%",
    "min",
    "max",
    "merge",
    "missing",
    "starts_with",
    "ends_with",
    "sem_ver",
    "fractional",
    "$ref",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "a",
            "b.c",
            "on",
            "1.2.3",
            "v2",
            "",
            "=",
            "^",
            "targetingKey",
            "ev"
        ])
        .prop_map(|s| json!(s)),
    ]
}

/// JSON shaped like targeting: operators applied to arrays of sub-expressions and literals.
pub(crate) fn rule() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            (
                prop::sample::select(OPERATORS),
                prop::collection::vec(inner.clone(), 0..5)
            )
                .prop_map(|(op, args)| json!({ op: args })),
            (prop::sample::select(OPERATORS), inner).prop_map(|(op, arg)| json!({ op: arg })),
        ]
    })
}

fn context() -> impl Strategy<Value = Value> {
    (leaf(), leaf(), leaf()).prop_map(|(a, b, c)| json!({"a": a, "b": {"c": b}, "targetingKey": c}))
}

proptest! {
    /// Whatever the targeting and the context, compiling either fails cleanly or yields an
    /// expression that passes `check` and evaluates without panicking.
    #[test]
    fn arbitrary_targeting_never_panics(rule in rule(), ctx in context(), ev in rule()) {
        let evaluators = json!({"ev": ev});
        let mut body = Body::default();
        let Ok(expr) = compile_targeting(&rule, evaluators.as_object().unwrap(), &mut body) else {
            return Ok(());
        };
        prop_assert!(check(&expr, &body).is_ok());
        let flag = Flag {
            key: "k".to_string(),
            kind: FlagKind::Release,
            value_type: ValueType::String,
            variants: vec![Variant { name: "on".to_string(), value: json!("on") }],
            default_variant: None,
            off_variant: None,
            enabled: true,
            killed: false,
            prerequisites: Vec::new(),
            targeting: Targeting::Logic(expr.clone()),
            salt: String::new(),
            unsigned_attrs: Vec::new(),
            signed_bucketing_only: false,
            metadata: Map::new(),
        };
        let attrs = ctx.as_object().cloned().unwrap_or_default();
        let _ = evaluate_targeting(&expr, &flag, &body, &Context::new(&attrs), 0);
    }
}
