//! Random blobs and contexts for the native/worker parity test, from a seeded generator so a
//! failure reproduces. The blobs use every operator the model has, nested conditions, segments,
//! splits, prerequisites, kill/off states, permission flags and unsigned-attribute allowances.

use serde_json::{Map, Value, json};
use shared_eval::{
    BUCKETS, Blob, Body, Condition, Flag, FlagKind, Header, Op, Prerequisite, Rule, Segment,
    SemVer, SemVerCmp, Serve, Split, Targeting, Test, ValueType, Variant,
};

/// SplitMix64: small, seeded, good enough to spread test cases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Attribute paths the generated rules test (index = `AttrId`).
pub const ATTRS: [&[&str]; 8] = [
    &["targetingKey"],
    &["plan"],
    &["country"],
    &["user", "age"],
    &["appVersion"],
    &["email"],
    &["beta"],
    &["signupAt"],
];

const PLANS: [&str; 4] = ["free", "pro", "enterprise", "trial"];
const COUNTRIES: [&str; 6] = ["CA", "DE", "FR", "JP", "US", "ZZ"];
const EMAILS: [&str; 4] = ["ann@example.com", "bob@corp.test", "eve@example.com", "x"];
const VERSIONS: [&str; 5] = ["1.2.3", "2.0.0", "2.0.0-rc.1", "10.1.0", "not-a-version"];

fn random_test(rng: &mut Rng) -> Test {
    let attr = rng.below(ATTRS.len()) as u32;
    let op = match attr {
        0 => match rng.below(3) {
            0 => Op::StartsWith("user-1".into()),
            1 => Op::EndsWith("7".into()),
            _ => Op::Contains(json!("2")),
        },
        1 => match rng.below(4) {
            0 => Op::Equals(json!(rng.pick(&PLANS))),
            1 => Op::NotEquals(json!(rng.pick(&PLANS))),
            2 => Op::In(0),
            _ => Op::NotIn(0),
        },
        2 => {
            if rng.chance(50) {
                Op::In(1)
            } else {
                Op::NotIn(1)
            }
        }
        3 => {
            let n = rng.below(80) as f64;
            match rng.below(4) {
                0 => Op::Lt(n),
                1 => Op::Le(n),
                2 => Op::Gt(n),
                _ => Op::Ge(n),
            }
        }
        4 => Op::SemVer(
            *rng.pick(&[
                SemVerCmp::Eq,
                SemVerCmp::Ne,
                SemVerCmp::Lt,
                SemVerCmp::Ge,
                SemVerCmp::Caret,
                SemVerCmp::Tilde,
            ]),
            SemVer {
                major: 2,
                minor: 0,
                patch: 0,
                pre: Vec::new(),
            },
        ),
        5 => {
            if rng.chance(50) {
                Op::Matches(0)
            } else {
                Op::EndsWith("@example.com".into())
            }
        }
        6 => {
            if rng.chance(50) {
                Op::Equals(json!(true))
            } else {
                Op::Exists
            }
        }
        _ => {
            // 2024-01-01T00:00:00Z
            if rng.chance(50) {
                Op::After(1_704_067_200_000)
            } else {
                Op::Before(1_704_067_200_000)
            }
        }
    };
    Test { attr, op }
}

fn random_condition(rng: &mut Rng, depth: usize, segments: u32) -> Condition {
    match if depth == 0 { 4 } else { rng.below(6) } {
        0 => Condition::All(
            (0..1 + rng.below(3))
                .map(|_| random_condition(rng, depth - 1, segments))
                .collect(),
        ),
        1 => Condition::Any(
            (0..1 + rng.below(3))
                .map(|_| random_condition(rng, depth - 1, segments))
                .collect(),
        ),
        2 => Condition::Not(Box::new(random_condition(rng, depth - 1, segments))),
        3 if segments > 0 => Condition::Segment(rng.below(segments as usize) as u32),
        _ => Condition::Test(random_test(rng)),
    }
}

fn random_serve(rng: &mut Rng, variants: usize) -> Serve {
    if rng.chance(40) {
        let mut weights = Vec::new();
        let mut left = BUCKETS;
        for v in 0..variants {
            let w = if v + 1 == variants {
                left
            } else {
                (rng.next_u64() % (u64::from(left) + 1)) as u32
            };
            left -= w;
            weights.push((v as u16, w));
        }
        let bucket_by = if rng.chance(80) { 0 } else { 1 };
        Serve::Split(Split { bucket_by, weights })
    } else {
        Serve::Variant(rng.below(variants) as u16)
    }
}

fn variants_of(value_type: ValueType) -> Vec<Variant> {
    let values: Vec<(&str, Value)> = match value_type {
        ValueType::Boolean => vec![("off", json!(false)), ("on", json!(true))],
        ValueType::String => vec![
            ("a", json!("alpha")),
            ("b", json!("beta")),
            ("c", json!("gamma")),
        ],
        ValueType::Number => vec![
            ("one", json!(1)),
            ("half", json!(2.5)),
            ("big", json!(1_000_000)),
        ],
        ValueType::Object => vec![
            ("small", json!({"rows": 5})),
            ("large", json!({"rows": 50, "dense": true})),
        ],
    };
    values
        .into_iter()
        .map(|(name, value)| Variant {
            name: name.into(),
            value,
        })
        .collect()
}

/// A random blob of `flags` flags for `environment`.
pub fn blob(rng: &mut Rng, environment: &str, version: u64, flags: usize) -> Blob {
    let segments: Vec<Segment> = (0..3)
        .map(|i| Segment {
            key: format!("segment-{i}"),
            condition: random_condition(rng, 2, 0),
        })
        .collect();
    let mut list_plans: Vec<String> = PLANS.iter().take(2).map(|s| s.to_string()).collect();
    list_plans.sort();
    let mut list_countries: Vec<String> = COUNTRIES.iter().take(3).map(|s| s.to_string()).collect();
    list_countries.sort();
    let mut out = Vec::with_capacity(flags);
    for i in 0..flags {
        let value_type = *rng.pick(&[
            ValueType::Boolean,
            ValueType::String,
            ValueType::Number,
            ValueType::Object,
        ]);
        let variants = variants_of(value_type);
        let n = variants.len();
        let rules = (0..rng.below(4))
            .map(|r| Rule {
                id: format!("rule-{}", r + 1),
                condition: random_condition(rng, 3, segments.len() as u32),
                serve: random_serve(rng, n),
            })
            .collect();
        let prerequisites = if i > 0 && rng.chance(15) {
            vec![Prerequisite {
                flag: rng.below(i) as u32,
                variants: vec![rng.below(2) as u16],
            }]
        } else {
            Vec::new()
        };
        let mut metadata = Map::new();
        if rng.chance(30) {
            metadata.insert("owner".into(), json!("team-a"));
        }
        out.push(Flag {
            key: format!("flag-{i:03}"),
            kind: *rng.pick(&[
                FlagKind::Release,
                FlagKind::Operational,
                FlagKind::Experiment,
                FlagKind::Permission,
                FlagKind::KillSwitch,
            ]),
            value_type,
            variants,
            default_variant: Some(rng.below(n) as u16),
            off_variant: Some(0),
            enabled: rng.chance(90),
            killed: rng.chance(5),
            prerequisites,
            targeting: Targeting::Rules {
                rules,
                fallthrough: random_serve(rng, n),
            },
            salt: String::new(),
            unsigned_attrs: (1..ATTRS.len() as u32).filter(|_| rng.chance(30)).collect(),
            signed_bucketing_only: rng.chance(20),
            metadata,
        });
    }
    let body = Body {
        attrs: ATTRS
            .iter()
            .map(|path| path.iter().map(|s| s.to_string()).collect())
            .collect(),
        lists: vec![list_plans, list_countries],
        regexes: vec![shared_eval::compile_regex("^[a-z]+@example\\.com$").unwrap()],
        segments,
        eval_order: (0..flags as u32).collect(),
        flags: out,
    };
    let header = Header {
        environment: environment.into(),
        version,
        previous: version.checked_sub(1).filter(|v| *v > 0),
        content_hash: String::new(),
        author: "parity-test".into(),
        source_commit: None,
        created_at: "2026-11-21T00:00:00Z".into(),
    };
    Blob::new(header, body)
}

fn random_attrs(rng: &mut Rng) -> Map<String, Value> {
    let mut attrs = Map::new();
    if rng.chance(80) {
        attrs.insert("plan".into(), json!(rng.pick(&PLANS)));
    }
    if rng.chance(80) {
        attrs.insert("country".into(), json!(rng.pick(&COUNTRIES)));
    }
    if rng.chance(70) {
        attrs.insert("user".into(), json!({"age": rng.below(90)}));
    }
    if rng.chance(60) {
        attrs.insert("appVersion".into(), json!(rng.pick(&VERSIONS)));
    }
    if rng.chance(60) {
        attrs.insert("email".into(), json!(rng.pick(&EMAILS)));
    }
    if rng.chance(50) {
        attrs.insert("beta".into(), json!(rng.chance(50)));
    }
    if rng.chance(50) {
        let at = rng
            .pick(&[
                json!("2023-06-01T00:00:00Z"),
                json!("2025-02-03T04:05:06Z"),
                json!(1_600_000_000),
            ])
            .clone();
        attrs.insert("signupAt".into(), at);
    }
    attrs
}

/// One caller: token claims (`None` for anonymous) and the request body's context.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Claims to sign (with `sub`), or anonymous.
    pub claims: Option<Map<String, Value>>,
    /// The body's `context`.
    pub body_context: Map<String, Value>,
}

/// A random caller; body attributes overlap signed ones on purpose.
pub fn caller(rng: &mut Rng, n: usize) -> Caller {
    let claims = rng.chance(75).then(|| {
        let mut claims = random_attrs(rng);
        claims.insert("sub".into(), json!(format!("user-{n}")));
        claims
    });
    let mut body_context = random_attrs(rng);
    if rng.chance(60) {
        body_context.insert(
            "targetingKey".into(),
            json!(format!("user-{}", rng.below(50))),
        );
    }
    Caller {
        claims,
        body_context,
    }
}
