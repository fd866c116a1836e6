//! Unit tests of the compiler and evaluator, one behaviour each.

use super::value::is_whole;
use super::*;
use crate::{FlagKind, Targeting, ValueType, Variant};
use serde_json::json;

/// A flag named `flag-key` whose variants are named (and valued) by `variants`.
fn flag(variants: &[&str]) -> Flag {
    Flag {
        key: "flag-key".to_string(),
        kind: FlagKind::Release,
        value_type: ValueType::String,
        variants: variants
            .iter()
            .map(|v| Variant {
                name: v.to_string(),
                value: json!(v),
            })
            .collect(),
        default_variant: None,
        off_variant: None,
        enabled: true,
        killed: false,
        prerequisites: Vec::new(),
        targeting: Targeting::Logic(Expr::Lit(Value::Null)),
        salt: String::new(),
        unsigned_attrs: Vec::new(),
        signed_bucketing_only: false,
        metadata: Map::new(),
    }
}

fn compile(rule: Value, evaluators: Value, body: &mut Body) -> Result<Expr, String> {
    let evaluators = evaluators.as_object().cloned().unwrap_or_default();
    compile_targeting(&rule, &evaluators, body)
}

/// Evaluates `rule` against `ctx` at `now_ms` = 1_700_000_000_500 and returns the raw value.
fn value_of(rule: Value, ctx: Value) -> Result<Value, &'static str> {
    let mut body = Body::default();
    let expr = compile(rule, json!({}), &mut body).expect("compiles");
    eval_expr(&expr, &body, ctx)
}

/// Evaluates a compiled expression (checked first, as the edge loads it).
fn eval_expr(expr: &Expr, body: &Body, ctx: Value) -> Result<Value, &'static str> {
    check(expr, body).expect("checks");
    let flag = flag(&[]);
    let attrs = ctx.as_object().cloned().unwrap_or_default();
    let ctx = Context::new(&attrs);
    let budget = core::cell::Cell::new(MAX_EVAL_STEPS);
    let env = Env::new(&flag, body, &ctx, 1_700_000_000_500, &budget);
    expr.eval(&env, 0).map(|v| to_json(&v))
}

fn to_json(v: &Val<'_>) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => json!(b),
        Val::Num(n) if is_whole(*n) => json!(*n as i64),
        Val::Num(n) => json!(n),
        Val::Str(s) => json!(s.as_ref()),
        Val::Json(v) => (*v).clone(),
        Val::Arr(items) => Value::Array(items.iter().map(to_json).collect()),
    }
}

#[track_caller]
fn assert_value(rule: Value, ctx: Value, expected: Value) {
    let got = value_of(rule.clone(), ctx).expect("evaluates");
    // Numbers compare by value: 2 and 2.0 are the same JSONLogic result.
    let same = match (got.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => got == expected,
    };
    assert!(same, "{rule} gave {got}, expected {expected}");
}

fn outcome(rule: Value, evaluators: Value, variants: &[&str], ctx: Value) -> Outcome {
    let mut body = Body::default();
    let expr = compile(rule, evaluators, &mut body).expect("compiles");
    check(&expr, &body).expect("checks");
    let attrs = ctx.as_object().cloned().unwrap_or_default();
    evaluate_targeting(&expr, &flag(variants), &body, &Context::new(&attrs), 0)
}

#[test]
fn var_reads_nested_paths_array_indices_and_defaults() {
    let ctx = json!({"user": {"plan": "pro", "tags": ["a", "b"]}, "n": null, "targetingKey": "tk"});
    assert_value(json!({"var": "user.plan"}), ctx.clone(), json!("pro"));
    assert_value(json!({"var": ["user.plan"]}), ctx.clone(), json!("pro"));
    assert_value(json!({"var": "user.tags.1"}), ctx.clone(), json!("b"));
    assert_value(json!({"var": "user.tags.5"}), ctx.clone(), Value::Null);
    assert_value(json!({"var": "user.nope"}), ctx.clone(), Value::Null);
    assert_value(
        json!({"var": ["user.nope", "dflt"]}),
        ctx.clone(),
        json!("dflt"),
    );
    // flagd (Go JSONLogic) treats a null attribute as missing: the default applies.
    assert_value(json!({"var": ["n", 7]}), ctx.clone(), json!(7));
    assert_value(json!({"var": "targetingKey"}), ctx.clone(), json!("tk"));
    assert_value(
        json!({"var": "$flagd.flagKey"}),
        ctx.clone(),
        json!("flag-key"),
    );
    assert_value(
        json!({"var": "$flagd.timestamp"}),
        ctx.clone(),
        json!(1_700_000_000),
    );
    // The context cannot override flagd's own properties.
    assert_value(
        json!({"var": "$flagd.flagKey"}),
        json!({"$flagd": {"flagKey": "x"}}),
        json!("flag-key"),
    );
}

#[test]
fn var_paths_are_interned_once() {
    let mut body = Body::default();
    compile(
        json!({"and": [{"var": "a.b"}, {"var": "a.b"}, {"var": "c"}]}),
        json!({}),
        &mut body,
    )
    .unwrap();
    assert_eq!(
        body.attrs,
        vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string()]
        ]
    );
}

#[test]
fn if_chains_and_defaults_to_null() {
    let rule =
        |x: i64| json!({"if": [{"<": [x, 10]}, "small", {"<": [x, 100]}, "medium", "large"]});
    assert_value(rule(5), json!({}), json!("small"));
    assert_value(rule(50), json!({}), json!("medium"));
    assert_value(rule(500), json!({}), json!("large"));
    assert_value(json!({"if": [false, "x"]}), json!({}), Value::Null);
    assert_value(json!({"if": []}), json!({}), Value::Null);
    assert_value(json!({"?:": [true, "a", "b"]}), json!({}), json!("a"));
}

#[test]
fn equality_is_loose_or_strict() {
    for (a, b, loose, strict) in [
        (json!(1), json!("1"), true, false),
        (json!(1), json!(1.0), true, true),
        (json!(true), json!(1), true, false),
        (json!(null), json!(null), true, true),
        // flagd-core: null equals a falsy non-string (json-logic-engine's compareCheck).
        (json!(null), json!(0), true, false),
        (json!(null), json!(false), true, false),
        (json!(null), json!(""), false, false),
        (json!("a"), json!("a"), true, true),
        (json!("a"), json!("b"), false, false),
        (json!(0), json!(""), true, false),
    ] {
        assert_value(json!({"==": [a, b]}), json!({}), json!(loose));
        assert_value(json!({"!=": [a, b]}), json!({}), json!(!loose));
        assert_value(json!({"===": [a, b]}), json!({}), json!(strict));
        assert_value(json!({"!==": [a, b]}), json!({}), json!(!strict));
    }
}

#[test]
fn negation_follows_jsonlogic_truthiness() {
    for (v, truthy) in [
        (json!(0), false),
        (json!(""), false),
        (json!(null), false),
        (json!([]), false),
        (json!("0"), true),
        (json!(-1), true),
        (json!(["x"]), true),
    ] {
        assert_value(json!({"!": [v.clone()]}), json!({}), json!(!truthy));
        assert_value(json!({"!!": [v]}), json!({}), json!(truthy));
    }
    assert_value(json!({"!": true}), json!({}), json!(false));
}

#[test]
fn and_or_return_the_deciding_value_and_short_circuit() {
    assert_value(json!({"and": [1, "x", 0, "y"]}), json!({}), json!(0));
    assert_value(json!({"and": [1, "x"]}), json!({}), json!("x"));
    assert_value(json!({"or": [0, "", "z", 1]}), json!({}), json!("z"));
    assert_value(json!({"or": [0, false]}), json!({}), json!(false));
    // What fails to evaluate (here a broken flag's targeting) is never reached after the
    // deciding value.
    let after = |op, first: bool| {
        let expr = Expr::Op(op, vec![Expr::Lit(json!(first)), Expr::Invalid("x".into())]);
        eval_expr(&expr, &Body::default(), json!({})).map_err(|_| ())
    };
    assert_eq!(after(LogicOp::And, false), Ok(json!(false)));
    assert_eq!(after(LogicOp::Or, true), Ok(json!(true)));
    assert_eq!(after(LogicOp::And, true), Err(()));
}

#[test]
fn comparisons_cover_numbers_strings_and_between() {
    assert_value(json!({"<": [1, 2]}), json!({}), json!(true));
    assert_value(json!({"<": [2, 2]}), json!({}), json!(false));
    assert_value(json!({"<=": [2, 2]}), json!({}), json!(true));
    assert_value(json!({">": [3, 2]}), json!({}), json!(true));
    assert_value(json!({">=": [2, 3]}), json!({}), json!(false));
    assert_value(json!({"<": ["a", "b"]}), json!({}), json!(true));
    assert_value(json!({"<": ["10", 9]}), json!({}), json!(false));
    assert_value(
        json!({"<": [1, {"var": "x"}, 3]}),
        json!({"x": 2}),
        json!(true),
    );
    assert_value(
        json!({"<": [1, {"var": "x"}, 3]}),
        json!({"x": 3}),
        json!(false),
    );
    assert_value(
        json!({"<=": [1, {"var": "x"}, 3]}),
        json!({"x": 3}),
        json!(true),
    );
    assert_value(json!({"<": ["abc", 1]}), json!({}), json!(false)); // NaN never compares
    assert_value(json!({">=": ["abc", 1]}), json!({}), json!(false));
    assert_eq!(
        value_of(json!({"<": [1]}), json!({})),
        Err("a comparison needs two arguments")
    );
    assert!(value_of(json!({"<": [1, {"var": "l"}]}), json!({"l": [1]})).is_err());
}

#[test]
fn in_checks_substrings_and_elements() {
    assert_value(json!({"in": ["ell", "hello"]}), json!({}), json!(true));
    assert_value(json!({"in": ["xyz", "hello"]}), json!({}), json!(false));
    assert_value(
        json!({"in": [{"var": "c"}, ["de", "fr"]]}),
        json!({"c": "fr"}),
        json!(true),
    );
    assert_value(
        json!({"in": [{"var": "c"}, ["de", "fr"]]}),
        json!({"c": "it"}),
        json!(false),
    );
    assert_value(json!({"in": [2, [1, 2, 3]]}), json!({}), json!(true));
    assert_value(
        json!({"in": ["a", {"var": "tags"}]}),
        json!({"tags": ["a", "b"]}),
        json!(true),
    );
    // flagd-core: `(haystack || []).includes(needle)`.
    assert!(value_of(json!({"in": ["a", 5]}), json!({})).is_err());
    assert_value(
        json!({"in": ["a", {"var": "none"}]}),
        json!({}),
        json!(false),
    );
    assert_value(json!({"in": [2, [1, "2"]]}), json!({}), json!(false));
    assert_value(json!({"in": [1, "a1"]}), json!({}), json!(true));
}

#[test]
fn long_literal_lists_become_sorted_interned_sets() {
    let emails: Vec<String> = (0..40)
        .rev()
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let rule = json!({"in": [{"var": "email"}, emails]});
    let mut body = Body::default();
    let expr = compile(rule.clone(), json!({}), &mut body).unwrap();
    assert!(matches!(expr, Expr::InList(_, 0)), "{expr:?}");
    assert_eq!(body.lists.len(), 1);
    assert!(
        body.lists[0].windows(2).all(|w| w[0] < w[1]),
        "sorted and deduplicated"
    );
    assert_value(
        rule.clone(),
        json!({"email": "user7@example.com"}),
        json!(true),
    );
    assert_value(
        rule.clone(),
        json!({"email": "user77@example.com"}),
        json!(false),
    );
    assert_value(rule, json!({}), json!(false));
    // The same list twice is stored once.
    compile(json!({"in": ["x", emails]}), json!({}), &mut body).unwrap();
    assert_eq!(body.lists.len(), 1);
}

#[test]
fn strings_concatenate_and_slice() {
    // A context null is "null" (JavaScript's `+`), as flagd-core answers.
    assert_value(
        json!({"cat": ["a", 1, 1.5, {"var": "n"}, true, [1, null]]}),
        json!({"n": null}),
        json!("a11.5nulltrue1,"),
    );
    assert_value(json!({"cat": "solo"}), json!({}), json!("solo"));
    assert_value(
        json!({"cat": [{"var": "$flagd.flagKey"}, {"var": "id"}]}),
        json!({"id": 42}),
        json!("flag-key42"),
    );
    // jsonlogic.com's examples.
    assert_value(
        json!({"substr": ["jsonlogic", 4]}),
        json!({}),
        json!("logic"),
    );
    assert_value(
        json!({"substr": ["jsonlogic", -5]}),
        json!({}),
        json!("logic"),
    );
    assert_value(
        json!({"substr": ["jsonlogic", 1, 3]}),
        json!({}),
        json!("son"),
    );
    assert_value(
        json!({"substr": ["jsonlogic", 4, -2]}),
        json!({}),
        json!("log"),
    );
    assert_value(json!({"substr": ["héllo", 1, 2]}), json!({}), json!("él"));
    assert_value(json!({"substr": ["abc", 9]}), json!({}), json!(""));
    assert_value(json!({"substr": ["abc", 2, -2]}), json!({}), json!(""));
    assert!(value_of(json!({"substr": [{"var": "n"}, 0]}), json!({"n": 5})).is_err());
}

#[test]
fn arithmetic_coerces_to_numbers() {
    assert_value(json!({"+": [1, "2", true]}), json!({}), json!(4));
    assert_value(json!({"-": [10, 3, 2]}), json!({}), json!(5));
    assert_value(json!({"-": [4]}), json!({}), json!(-4));
    assert_value(json!({"*": [2, 3, 4]}), json!({}), json!(24));
    assert_value(json!({"/": [9, 2]}), json!({}), json!(4.5));
    assert_value(json!({"%": [10, 3]}), json!({}), json!(1));
    assert_value(json!({"min": [3, 1, 2]}), json!({}), json!(1));
    assert_value(json!({"max": [3, 1, 2]}), json!({}), json!(3));
    // flagd-core refuses what is not a number where JSONLogic would coerce.
    assert!(value_of(json!({"max": []}), json!({})).is_err());
    assert!(value_of(json!({"max": [1, "2"]}), json!({})).is_err());
    assert!(value_of(json!({"+": [1, {"var": "s"}]}), json!({"s": "x"})).is_err());
    assert!(value_of(json!({"+": [1, {"var": "l"}]}), json!({"l": [1]})).is_err());
    assert!(value_of(json!({"/": [1, {"var": "z"}]}), json!({"z": 0})).is_err());
    assert!(value_of(json!({"%": [1, {"var": "z"}]}), json!({"z": 0})).is_err());
    assert_value(
        json!({"+": [1, {"var": "n"}]}),
        json!({"n": null}),
        json!(1),
    );
    assert_value(
        json!({"merge": [[1, 2], 3, [[4]]]}),
        json!({}),
        json!([1, 2, 3, [4]]),
    );
}

#[test]
fn missing_lists_absent_attributes_not_null_ones() {
    // As flagd-core: an attribute present with a null value is not missing.
    assert_value(
        json!({"missing": ["a", "b.c", "d"]}),
        json!({"a": 1, "b": {"c": null}}),
        json!(["d"]),
    );
    assert_value(json!({"missing": "a"}), json!({"a": 1}), json!([]));
    let some = |need: i64| json!({"missing_some": [need, ["a", "b", "c"]]});
    assert_value(some(1), json!({"a": 1}), json!([]));
    assert_value(some(2), json!({"a": 1}), json!(["b", "c"]));
    assert_value(some(2), json!({"a": 1, "c": null}), json!([]));
}

#[test]
fn array_operators_read_the_element_with_var() {
    let ctx = json!({"l": [1, 2, 3], "people": [{"age": 20}, {"age": 40}]});
    assert_value(
        json!({"map": [{"var": "l"}, {"*": [{"var": ""}, 2]}]}),
        ctx.clone(),
        json!([2, 4, 6]),
    );
    assert_value(
        json!({"map": [{"var": "people"}, {"var": "age"}]}),
        ctx.clone(),
        json!([20, 40]),
    );
    assert_value(
        json!({"filter": [{"var": "l"}, {">": [{"var": ""}, 1]}]}),
        ctx.clone(),
        json!([2, 3]),
    );
    let sum =
        json!({"reduce": [{"var": "l"}, {"+": [{"var": "accumulator"}, {"var": "current"}]}, 10]});
    assert_value(sum, ctx.clone(), json!(16));
    assert_value(
        json!({"some": [{"var": "people"}, {">": [{"var": "age"}, 30]}]}),
        ctx.clone(),
        json!(true),
    );
    assert_value(
        json!({"all": [{"var": "people"}, {">": [{"var": "age"}, 30]}]}),
        ctx.clone(),
        json!(false),
    );
    assert_value(
        json!({"none": [{"var": "l"}, {">": [{"var": ""}, 5]}]}),
        ctx.clone(),
        json!(true),
    );
    // JSONLogic: `all` of an empty array is false; a missing array is empty.
    assert_value(json!({"all": [[], true]}), ctx.clone(), json!(false));
    assert_value(json!({"map": [{"var": "nope"}, 1]}), ctx.clone(), json!([]));
    // A string is not an array: flagd-core throws (GENERAL).
    assert!(value_of(json!({"map": ["abc", {"var": ""}]}), ctx).is_err());
}

#[test]
fn evaluation_is_bounded_by_a_step_budget() {
    // A reduce that rebuilds a growing array copies ~500,000 elements for 1,000 inputs: an
    // error once the budget is spent rather than unbounded work.
    let l: Vec<i64> = (0..1000).collect();
    let rule = json!({"reduce": [{"var": "l"}, {"merge": [{"var": "accumulator"}, [{"var": "current"}]]}, []]});
    assert_value(rule.clone(), json!({"l": [1, 2]}), json!([1, 2]));
    assert_eq!(
        value_of(rule, json!({"l": l})),
        Err("targeting exceeded its evaluation budget")
    );
}

#[test]
fn starts_and_ends_with_are_null_on_bad_input() {
    assert_value(
        json!({"starts_with": [{"var": "id"}, "abc"]}),
        json!({"id": "abcdef"}),
        json!(true),
    );
    assert_value(
        json!({"starts_with": [{"var": "id"}, "abc"]}),
        json!({"id": "xabc"}),
        json!(false),
    );
    assert_value(
        json!({"ends_with": [{"var": "id"}, "xyz"]}),
        json!({"id": "uvwxyz"}),
        json!(true),
    );
    assert_value(
        json!({"ends_with": [{"var": "id"}, "xyz"]}),
        json!({"id": 123}),
        Value::Null,
    );
    assert_value(json!({"starts_with": ["abc"]}), json!({}), Value::Null);
    assert_value(
        json!({"starts_with": [{"var": "missing"}, "a"]}),
        json!({}),
        Value::Null,
    );
}

#[test]
fn sem_ver_operators() {
    let test = |version: Value, op: &str, target: &str| {
        value_of(
            json!({"sem_ver": [{"var": "v"}, op, target]}),
            json!({"v": version}),
        )
        .unwrap()
    };
    assert_eq!(test(json!("2.0.0"), "=", "2.0.0"), json!(true));
    assert_eq!(test(json!("2.0.1"), "!=", "2.0.0"), json!(true));
    assert_eq!(test(json!("1.9.9"), "<", "2.0.0"), json!(true));
    assert_eq!(test(json!("2.0.0"), "<=", "2.0.0"), json!(true));
    assert_eq!(test(json!("2.0.0-alpha"), ">", "1.99.0"), json!(true));
    assert_eq!(test(json!("2.0.0-alpha"), ">=", "2.0.0"), json!(false));
    assert_eq!(test(json!("3.9.1"), "^", "3.0.0"), json!(true));
    assert_eq!(test(json!("4.0.0"), "^", "3.0.0"), json!(false));
    assert_eq!(test(json!("3.0.9"), "~", "3.0.0"), json!(true));
    assert_eq!(test(json!("3.1.0"), "~", "3.0.0"), json!(false));
    // Numbers are printed first, as flagd does: 1.2 is 1.2.0, 2 is 2.0.0.
    assert_eq!(test(json!(1.2), ">", "1.1"), json!(true));
    assert_eq!(test(json!(2), ">", "1.1"), json!(true));
    assert_eq!(test(json!(1), ">", "1.1"), json!(false));
    // Bad versions, operators or arity give null (the default variant), never false.
    assert_eq!(test(json!("not-a-version"), "=", "1.0.0"), Value::Null);
    assert_eq!(test(json!("1.0.0"), "===", "1.0.0"), Value::Null);
    assert_eq!(test(json!("1.0.0"), "=", "1.0"), json!(true));
    assert_eq!(
        value_of(
            json!({"sem_ver": [{"var": "v"}, "="]}),
            json!({"v": "1.0.0"})
        )
        .unwrap(),
        Value::Null
    );
    // A computed target is parsed at evaluation.
    let rule = json!({"sem_ver": [{"var": "v"}, ">=", {"var": "min"}]});
    assert_value(
        rule.clone(),
        json!({"v": "1.4.0", "min": "1.3.0"}),
        json!(true),
    );
    assert_value(rule, json!({"v": "1.4.0", "min": "x"}), Value::Null);
}

#[test]
fn literal_sem_ver_targets_are_parsed_at_compile_time() {
    let mut body = Body::default();
    let expr = compile(
        json!({"sem_ver": [{"var": "v"}, "^", "v1.2"]}),
        json!({}),
        &mut body,
    )
    .unwrap();
    let Expr::SemVer(test) = expr else {
        panic!("{expr:?}")
    };
    assert_eq!(
        test.target,
        SemVerTarget::Version(SemVer {
            major: 1,
            minor: 2,
            patch: 0,
            pre: Vec::new()
        })
    );
}

/// The bucket of `key` in `total` by flagd's v2 formula, computed here independently of
/// `flagd_fractional_bucket`.
fn bucket_of(key: &str, total: u64) -> u64 {
    (u64::from(crate::murmur3_x86_32(key.as_bytes(), 0)) * total) >> 32
}

#[test]
fn fractional_buckets_with_murmur3_v2() {
    let rule = json!({"fractional": [
        {"cat": [{"var": "$flagd.flagKey"}, {"var": "name"}]},
        ["clubs", 25], ["diamonds", 25], ["hearts", 25], ["spades", 25]
    ]});
    let suits = ["clubs", "diamonds", "hearts", "spades"];
    for name in ["jack", "queen", "ten", "nine", "3", "ünïcode"] {
        let expected = suits[(bucket_of(&format!("flag-key{name}"), 100) / 25) as usize];
        assert_value(rule.clone(), json!({"name": name}), json!(expected));
    }
    // The testbed's vector: murmur3("fractional-flagjack") = 0x9fe843e0 -> 62 of 100 -> hearts.
    assert_eq!(bucket_of("fractional-flagjack", 100), 62);
}

#[test]
fn fractional_defaults_to_flag_key_and_targeting_key() {
    let rule = json!({"fractional": [["heads"], ["tails", 1]]});
    for tk in ["jon@company.com", "jane@company.com", "x"] {
        let expected = if bucket_of(&format!("flag-key{tk}"), 2) == 0 {
            "heads"
        } else {
            "tails"
        };
        assert_value(rule.clone(), json!({"targetingKey": tk}), json!(expected));
    }
    // No targeting key (or an empty one): null, so the default variant is served.
    assert_value(rule.clone(), json!({}), Value::Null);
    assert_value(rule.clone(), json!({"targetingKey": ""}), Value::Null);
    // A bucketing value that is missing or not a string gives null (flagd-core 4.0.1 reads
    // the entries then, and the first one is not a [variant, weight] pair).
    let with_missing = json!({"fractional": [{"var": "nope"}, ["heads"], ["tails", 1]]});
    assert_value(
        with_missing.clone(),
        json!({"targetingKey": "jon@company.com"}),
        Value::Null,
    );
    assert_value(with_missing, json!({}), Value::Null);
}

/// Evaluates `rule` for `kind` on an anonymous context whose attributes are all unsigned.
fn value_unsigned(rule: Value, kind: FlagKind, unsigned: Value) -> Value {
    let mut body = Body::default();
    let expr = compile(rule, json!({}), &mut body).expect("compiles");
    check(&expr, &body).expect("checks");
    let mut flag = flag(&[]);
    flag.kind = kind;
    let signed = Map::new();
    let unsigned = unsigned.as_object().cloned().unwrap_or_default();
    let ctx = Context::with_unsigned(&signed, &unsigned, false);
    let budget = core::cell::Cell::new(MAX_EVAL_STEPS);
    let env = Env::new(&flag, &body, &ctx, 0, &budget);
    expr.eval(&env, 0).map(|v| to_json(&v)).expect("evaluates")
}

#[test]
fn fractional_buckets_by_an_unsigned_targeting_key_but_var_does_not_read_it() {
    let tk = "jon@company.com";
    let expected = if bucket_of(&format!("flag-key{tk}"), 2) == 0 {
        "heads"
    } else {
        "tails"
    };
    let rule = json!({"fractional": [["heads"], ["tails", 1]]});
    let ctx = json!({"targetingKey": tk});
    assert_eq!(
        value_unsigned(rule.clone(), FlagKind::Release, ctx.clone()),
        json!(expected)
    );
    // A permission flag grants: it never buckets by what the caller says.
    assert_eq!(
        value_unsigned(rule, FlagKind::Permission, ctx.clone()),
        Value::Null
    );
    // Comparing the key's value still needs a signed one (or `unsigned-attributes`).
    assert_eq!(
        value_unsigned(json!({"var": "targetingKey"}), FlagKind::Release, ctx),
        Value::Null
    );
}

#[test]
fn fractional_weights_are_validated_at_evaluation() {
    let ctx = json!({"targetingKey": "any-user"});
    assert_value(
        json!({"fractional": [{"var": "targetingKey"}, ["one", 0], ["two", 0]]}),
        ctx.clone(),
        Value::Null,
    );
    assert_value(
        json!({"fractional": [{"var": "targetingKey"}, ["one", -50], ["two", 100]]}),
        ctx.clone(),
        json!("two"),
    );
    assert_value(
        json!({"fractional": [["only", 1]]}),
        ctx.clone(),
        json!("only"),
    );
    // Computed weights and variants.
    let rule = json!({"fractional": [["red", {"if": [{"var": "premium"}, 100, 0]}], ["blue", 10]]});
    assert_value(
        rule.clone(),
        json!({"targetingKey": "u", "premium": false}),
        json!("blue"),
    );
    let premium = value_of(rule, json!({"targetingKey": "u", "premium": true})).unwrap();
    let expected = if bucket_of("flag-keyu", 110) < 100 {
        "red"
    } else {
        "blue"
    };
    assert_eq!(premium, json!(expected));
    assert_value(
        json!({"fractional": [[{"var": "v"}, 1]]}),
        json!({"targetingKey": "u", "v": [1]}),
        Value::Null,
    );
    assert_value(
        json!({"fractional": [["a", {"var": "w"}]]}),
        json!({"targetingKey": "u", "w": 0.5}),
        Value::Null,
    );
    // A bucketing value that is neither a string nor null is an error: null.
    assert_value(
        json!({"fractional": [{"var": "n"}, ["a", 1]]}),
        json!({"n": 5}),
        Value::Null,
    );
    // Boolean variants, e.g. fractional as a condition.
    assert_value(
        json!({"fractional": [[false, 0], [true, 100]]}),
        ctx,
        json!(true),
    );
}

#[test]
fn malformed_fractional_is_a_compile_error() {
    let mut body = Body::default();
    for bad in [
        json!({"fractional": "x"}),
        json!({"fractional": [{"var": "x"}]}),
        json!({"fractional": [["a", 1], "b"]}),
        json!({"fractional": [["a", 1.5]]}),
        json!({"fractional": [["a", 1, 2]]}),
        json!({"fractional": [["a", 3_000_000_000u64]]}),
    ] {
        assert!(compile(bad.clone(), json!({}), &mut body).is_err(), "{bad}");
    }
}

#[test]
fn results_map_to_variants_like_flagd() {
    let variants = ["on", "off", "true", "false", "1"];
    let o = |rule: Value, ctx: Value| outcome(rule, json!({}), &variants, ctx);
    assert_eq!(
        o(json!("off"), json!({})),
        Outcome::Variant(1, Reason::TargetingMatch)
    );
    assert_eq!(
        o(json!({"==": [1, 1]}), json!({})),
        Outcome::Variant(2, Reason::TargetingMatch)
    );
    assert_eq!(
        o(json!({"==": [1, 2]}), json!({})),
        Outcome::Variant(3, Reason::TargetingMatch)
    );
    assert_eq!(
        o(json!({"+": [0.5, 0.5]}), json!({})),
        Outcome::Variant(4, Reason::TargetingMatch)
    );
    assert_eq!(o(json!(null), json!({})), Outcome::Default);
    assert_eq!(o(json!({"if": [false, "on"]}), json!({})), Outcome::Default);
    assert!(matches!(
        o(json!("nope"), json!({})),
        Outcome::Error(ErrorCode::General, _)
    ));
    // An array names the variant by its text, as flagd-core's `toString()`.
    assert_eq!(
        o(json!({"var": "list"}), json!({"list": ["on"]})),
        Outcome::Variant(0, Reason::TargetingMatch)
    );
    assert!(matches!(
        o(json!({"var": "o"}), json!({"o": {"a": 1}})),
        Outcome::Error(ErrorCode::General, _)
    ));
}

#[test]
fn refs_resolve_and_dangling_refs_fail_to_compile() {
    let evaluators = json!({"is_vip": {"in": [{"var": "email"}, ["a@x.com", "b@x.com"]]}, "vip_or_beta": {"or": [{"$ref": "is_vip"}, {"var": "beta"}]}});
    let rule = json!({"if": [{"$ref": "vip_or_beta"}, "on", "off"]});
    let o = |ctx: Value| outcome(rule.clone(), evaluators.clone(), &["on", "off"], ctx);
    assert_eq!(
        o(json!({"email": "a@x.com"})),
        Outcome::Variant(0, Reason::TargetingMatch)
    );
    assert_eq!(
        o(json!({"beta": true})),
        Outcome::Variant(0, Reason::TargetingMatch)
    );
    assert_eq!(o(json!({})), Outcome::Variant(1, Reason::TargetingMatch));
    let dangling = compile(
        json!({"if": [{"$ref": "gone"}, "on", "off"]}),
        evaluators,
        &mut Body::default(),
    );
    assert_eq!(
        dangling,
        Err("`$ref` to `gone`, which is not in `$evaluators`".to_string())
    );
}

#[test]
fn ref_cycles_and_unknown_operators_are_compile_errors() {
    let mut body = Body::default();
    let cyclic = json!({"a": {"!": {"$ref": "b"}}, "b": {"!": {"$ref": "a"}}});
    let err = compile(json!({"$ref": "a"}), cyclic, &mut body).unwrap_err();
    assert!(err.contains("cycle"), "{err}");
    let err = compile(
        json!({"if": [{"regex_match": ["a", "b"]}, "x"]}),
        json!({}),
        &mut body,
    )
    .unwrap_err();
    assert!(err.contains("regex_match"), "{err}");
    // flagd-core's engine has no `log`: the flag is a broken flag, as there.
    let err = compile(json!({"log": "x"}), json!({}), &mut body).unwrap_err();
    assert!(err.contains("log"), "{err}");
    assert!(compile(json!({"var": {"cat": ["a", "b"]}}), json!({}), &mut body).is_err());
}

#[test]
fn multi_key_objects_are_literals() {
    assert_value(json!({"a": 1, "b": 2}), json!({}), json!({"a": 1, "b": 2}));
    assert_value(json!([1, {"var": "x"}]), json!({"x": "y"}), json!([1, "y"]));
}

#[test]
fn nesting_is_bounded_at_compile_and_load_time() {
    let mut deep = json!(true);
    for _ in 0..MAX_RULE_DEPTH + 1 {
        deep = json!({"!": [deep]});
    }
    let mut body = Body::default();
    assert!(
        compile(deep, json!({}), &mut body)
            .unwrap_err()
            .contains("deeper")
    );
    // A hand-made blob bypassing the compiler is caught by `check`.
    let mut expr = Expr::Lit(Value::Bool(true));
    for _ in 0..MAX_RULE_DEPTH + 1 {
        expr = Expr::Op(LogicOp::Not, vec![expr]);
    }
    assert!(check(&expr, &body).is_err());
    // And evaluation of an unchecked one errors instead of recursing further.
    let flag = flag(&[]);
    let attrs = Map::new();
    assert!(matches!(
        evaluate_targeting(&expr, &flag, &body, &Context::new(&attrs), 0),
        Outcome::Error(ErrorCode::General, _)
    ));
}

#[test]
fn check_rejects_out_of_range_indices() {
    let body = Body::default();
    assert!(check(&Expr::Var(0, None), &body).is_err());
    assert!(check(&Expr::Missing(vec![3]), &body).is_err());
    assert!(check(&Expr::InList(Box::new(Expr::Lit(Value::Null)), 0), &body).is_err());
    // Evaluating one anyway is an error, not a panic.
    assert_eq!(
        value_of(json!({"var": "x"}), json!({})).unwrap(),
        Value::Null
    );
}

#[test]
fn compiled_expressions_round_trip_through_json() {
    let mut body = Body::default();
    let rule = json!({"if": [
        {"and": [{"sem_ver": [{"var": "app.version"}, ">=", "1.2.0"]}, {"starts_with": [{"var": "email"}, "a"]}]},
        {"fractional": [["on", 50], ["off", 50]]},
        {"$ref": "off"}
    ]});
    let expr = compile(rule, json!({"off": "off"}), &mut body).unwrap();
    let text = serde_json::to_string(&expr).unwrap();
    let back: Expr = serde_json::from_str(&text).unwrap();
    assert_eq!(back, expr);
}
