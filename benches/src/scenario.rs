//! The single flags the one-flag benches time, and the checks that every engine evaluates them
//! the same way before anything is timed.
//!
//! - [`RULE_FLAG`]: "premium customers in launch countries on app 2.3.0 or later get a 50/50
//!   split between `treatment` and `control`; everyone else gets `off`". One rule of three
//!   conditions (`plan == "premium"`, `country in [...]`, `app_version` semver `>= 2.3.0`)
//!   serving a percentage split bucketed by the targeting key.
//! - [`SIMPLE_FLAG`]: an enabled boolean with no rules, serving `true`: the floor.
//!
//! The peers (module `peers`) express the same two flags in their own models. [`verify`] runs
//! the same cases through any [`Engine`], so a peer whose setup short-circuits (a constraint
//! never evaluated, a split that always lands on one side) fails loudly instead of looking fast.

use serde_json::{Map, Value, json};
use shared_eval::{
    Blob, Body, Condition, Context, Flag, FlagKind, Op, Reason, Rule, SemVer, SemVerCmp, Serve,
    Snapshot, Split, Targeting, Test, ValueType, Variant, evaluate,
};

use crate::fixtures::{NOW_MS, bench_header};

/// Key of the 3-condition, percentage-split flag.
pub const RULE_FLAG: &str = "checkout-redesign";
/// Key of the boolean flag without rules.
pub const SIMPLE_FLAG: &str = "ops.pdf-export";
/// The launch countries of [`RULE_FLAG`], sorted.
pub const COUNTRIES: &[&str] = &[
    "AT", "AU", "CA", "CH", "DE", "FR", "GB", "IE", "NL", "NZ", "US",
];
/// [`RULE_FLAG`] requires an app version at or above this.
pub const MIN_APP_VERSION: &str = "2.3.0";
/// The split's first variant.
pub const TREATMENT: &str = "treatment";
/// The split's second variant.
pub const CONTROL: &str = "control";
/// Served when the rule does not match.
pub const OFF: &str = "off";

/// The targeting key every engine evaluates in the timed loop. Chosen (by the `peers` test
/// `bench_user_lands_in_treatment_everywhere`) so that all three engines, each with its own
/// hash, put it in [`TREATMENT`]: the timed work is then the same path everywhere.
pub const BENCH_USER: &str = "user-1004";

/// The attributes [`RULE_FLAG`] reads, in engine-neutral form.
#[derive(Debug, Clone)]
pub struct Attrs {
    /// Targeting key / user id.
    pub user: String,
    /// Subscription plan.
    pub plan: &'static str,
    /// ISO country code.
    pub country: &'static str,
    /// The dashboard app's version.
    pub app_version: &'static str,
}

/// The context the one-flag benches time: a premium user in Germany on app 2.4.1.
pub fn bench_attrs() -> Attrs {
    Attrs {
        user: BENCH_USER.into(),
        plan: "premium",
        country: "DE",
        app_version: "2.4.1",
    }
}

/// A shared-eval context map for `attrs`.
pub fn context_map(attrs: &Attrs) -> Map<String, Value> {
    match json!({
        "targetingKey": attrs.user,
        "plan": attrs.plan,
        "country": attrs.country,
        "app_version": attrs.app_version,
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// [`RULE_FLAG`] and [`SIMPLE_FLAG`] as a compiled body, exactly as the compiler would emit
/// them (keys sorted, attributes and lists interned).
pub fn scenario_body() -> Body {
    let rule_flag = Flag {
        key: RULE_FLAG.into(),
        kind: FlagKind::Experiment,
        value_type: ValueType::String,
        variants: vec![
            Variant {
                name: TREATMENT.into(),
                value: json!(TREATMENT),
            },
            Variant {
                name: CONTROL.into(),
                value: json!(CONTROL),
            },
            Variant {
                name: OFF.into(),
                value: json!(OFF),
            },
        ],
        default_variant: Some(2),
        off_variant: Some(2),
        enabled: true,
        killed: false,
        prerequisites: Vec::new(),
        targeting: Targeting::Rules {
            rules: vec![Rule {
                id: "premium-launch-markets".into(),
                condition: Condition::All(vec![
                    Condition::Test(Test {
                        attr: 1,
                        op: Op::Equals(json!("premium")),
                    }),
                    Condition::Test(Test {
                        attr: 2,
                        op: Op::In(0),
                    }),
                    Condition::Test(Test {
                        attr: 3,
                        op: Op::SemVer(
                            SemVerCmp::Ge,
                            SemVer {
                                major: 2,
                                minor: 3,
                                patch: 0,
                                pre: Vec::new(),
                            },
                        ),
                    }),
                ]),
                serve: Serve::Split(Split {
                    bucket_by: 0,
                    weights: vec![(0, 50_000), (1, 50_000)],
                }),
            }],
            fallthrough: Serve::Variant(2),
        },
        salt: String::new(),
        unsigned_attrs: Vec::new(),
        signed_bucketing_only: false,
        metadata: Map::new(),
    };
    let simple_flag = Flag {
        key: SIMPLE_FLAG.into(),
        kind: FlagKind::KillSwitch,
        value_type: ValueType::Boolean,
        variants: vec![
            Variant {
                name: "on".into(),
                value: Value::Bool(true),
            },
            Variant {
                name: "off".into(),
                value: Value::Bool(false),
            },
        ],
        default_variant: Some(1),
        off_variant: Some(1),
        enabled: true,
        killed: false,
        prerequisites: Vec::new(),
        targeting: Targeting::Rules {
            rules: Vec::new(),
            fallthrough: Serve::Variant(0),
        },
        salt: String::new(),
        unsigned_attrs: Vec::new(),
        signed_bucketing_only: false,
        metadata: Map::new(),
    };
    Body {
        attrs: ["targetingKey", "plan", "country", "app_version"]
            .iter()
            .map(|a| vec![String::from(*a)])
            .collect(),
        lists: vec![COUNTRIES.iter().map(|c| String::from(*c)).collect()],
        regexes: Vec::new(),
        segments: Vec::new(),
        // Sorted by key: "checkout-redesign" < "ops.pdf-export".
        flags: vec![rule_flag, simple_flag],
        eval_order: vec![0, 1],
    }
}

/// The scenario as a checked snapshot.
pub fn scenario_snapshot() -> Result<Snapshot, shared_eval::BlobError> {
    Snapshot::from_blob(Blob::new(bench_header(), scenario_body()))
}

/// An evaluator under comparison, seen only through the two scenario flags.
pub trait Engine {
    /// For the report.
    fn name(&self) -> &'static str;
    /// The variant name [`RULE_FLAG`] serves for `attrs`, in this crate's vocabulary
    /// ([`TREATMENT`], [`CONTROL`], [`OFF`]); anything else is reported as is.
    fn rule_flag_variant(&self, attrs: &Attrs) -> String;
    /// The value of [`SIMPLE_FLAG`] for a user.
    fn simple_flag_value(&self, user: &str) -> bool;
}

/// shared-eval, through the public API.
#[derive(Debug)]
pub struct Native {
    /// The loaded scenario.
    pub snapshot: Snapshot,
}

impl Engine for Native {
    fn name(&self) -> &'static str {
        "shared-eval"
    }

    fn rule_flag_variant(&self, attrs: &Attrs) -> String {
        let map = context_map(attrs);
        let evaluation = evaluate(&self.snapshot, RULE_FLAG, &Context::new(&map), NOW_MS);
        let variant = evaluation.variant.unwrap_or("<none>");
        // The reason must agree with the variant: a split variant only through the split.
        match (variant, evaluation.reason) {
            (TREATMENT | CONTROL, Reason::Split) | (OFF, Reason::Default) => variant.into(),
            _ => format!(
                "{variant} ({:?}, {:?})",
                evaluation.reason, evaluation.error
            ),
        }
    }

    fn simple_flag_value(&self, user: &str) -> bool {
        let map = context_map(&Attrs {
            user: user.into(),
            ..bench_attrs()
        });
        let evaluation = evaluate(&self.snapshot, SIMPLE_FLAG, &Context::new(&map), NOW_MS);
        evaluation.value == Some(&Value::Bool(true))
    }
}

/// Checks that `engine` evaluates the scenario as specified: the bench context lands in
/// [`TREATMENT`]; failing any one of the three conditions serves [`OFF`] (so each condition is
/// really evaluated); the semver bound is inclusive; the split is about 50/50 over many users
/// (so it is really a split); the simple flag is on.
pub fn verify(engine: &dyn Engine) -> Result<(), String> {
    let name = engine.name();
    let bench = bench_attrs();
    let expect = |attrs: &Attrs, want: &[&str], why: &str| -> Result<(), String> {
        let got = engine.rule_flag_variant(attrs);
        if want.contains(&got.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "{name}: {why}: expected one of {want:?}, got {got:?} for {attrs:?}"
            ))
        }
    };
    expect(
        &Attrs {
            plan: "pro",
            ..bench.clone()
        },
        &[OFF],
        "plan is not premium",
    )?;
    expect(
        &Attrs {
            country: "BR",
            ..bench.clone()
        },
        &[OFF],
        "country not in the list",
    )?;
    expect(
        &Attrs {
            app_version: "2.2.9",
            ..bench.clone()
        },
        &[OFF],
        "app version below 2.3.0",
    )?;
    expect(
        &Attrs {
            app_version: "2.10.0",
            ..bench.clone()
        },
        &[TREATMENT, CONTROL],
        "2.10.0 >= 2.3.0 (semver, not text)",
    )?;
    expect(
        &Attrs {
            app_version: MIN_APP_VERSION,
            ..bench.clone()
        },
        &[TREATMENT, CONTROL],
        "2.3.0 itself",
    )?;
    expect(
        &Attrs {
            country: "US",
            ..bench.clone()
        },
        &[TREATMENT, CONTROL],
        "another listed country",
    )?;

    let users = 4000;
    let mut treatment = 0;
    for i in 0..users {
        let attrs = Attrs {
            user: format!("user-{i}"),
            ..bench.clone()
        };
        let got = engine.rule_flag_variant(&attrs);
        match got.as_str() {
            TREATMENT => treatment += 1,
            CONTROL => {}
            other => return Err(format!("{name}: user-{i} got {other:?} from a 50/50 split")),
        }
    }
    let share = f64::from(treatment) / f64::from(users);
    if !(0.45..=0.55).contains(&share) {
        return Err(format!(
            "{name}: {treatment} of {users} users in treatment: not a 50/50 split"
        ));
    }
    // Last, so that a broken condition above is reported as such rather than as a bucket.
    expect(&bench, &[TREATMENT], "the bench context")?;
    if !engine.simple_flag_value(BENCH_USER) {
        return Err(format!("{name}: the simple flag is off"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_loads_and_keys_are_sorted() {
        let body = scenario_body();
        assert!(body.flags.windows(2).all(|p| p[0].key < p[1].key));
        assert!(COUNTRIES.windows(2).all(|p| p[0] < p[1]));
        let snapshot = scenario_snapshot();
        assert!(snapshot.is_ok(), "{:?}", snapshot.err());
    }

    #[test]
    fn native_engine_evaluates_the_scenario_as_specified() {
        let native = Native {
            snapshot: scenario_snapshot().expect("scenario loads"),
        };
        assert_eq!(verify(&native), Ok(()));
    }
}
