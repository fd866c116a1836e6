//! A realistic compiled flag set for a dashboard company, generated from word lists.
//!
//! The mix follows what a SaaS dashboard team accumulates over a few years: mostly boolean
//! release flags with zero to three rules (plan, country list, app version, the internal-testers
//! segment, beta organisations, percentage rollouts of 1-50%), some string/number/JSON config
//! flags, A/B experiments split 50/50 or 33/33/34, kill switches and maintenance toggles with no
//! rules, permission flags for internal testers, and a few prerequisites.
//!
//! Generation is deterministic: the same `n` always gives the same body, so sizes and timings
//! can be compared between runs and machines.

use std::io::{Read, Write};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde_json::{Map, Value, json};
use shared_eval::{
    AttrId, Blob, Body, Condition, Flag, FlagId, FlagKind, Header, ListId, Op, Prerequisite, Rule,
    SegmentId, SemVer, SemVerCmp, Serve, Split, Targeting, Test, ValueType, Variant, VariantId,
};

/// Seed of the generator. Changing it changes every fixture (and the recorded sizes).
pub const SEED: u64 = 0x5eed_f1a6_2026_1121;

/// A fixed "now" for benchmarks: 2026-11-21T00:00:00Z in milliseconds.
pub const NOW_MS: i64 = 1_795_219_200_000;

/// SplitMix64. Hand-written rather than taken from a crate on purpose: the fixture's exact
/// sequence must never change with a dependency bump, or recorded sizes stop being comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias is irrelevant for fixtures).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, low: u64, high_inclusive: u64) -> u64 {
        low + self.below(high_inclusive - low + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const AREAS: &[&str] = &[
    "billing",
    "checkout",
    "dashboard",
    "reports",
    "search",
    "onboarding",
    "settings",
    "notifications",
    "analytics",
    "admin",
    "auth",
    "exports",
    "charts",
    "team",
    "integrations",
    "api",
    "mobile",
    "inbox",
    "alerts",
    "workspace",
    "sharing",
    "audit",
    "payments",
    "profile",
];

const NOUNS: &[&str] = &[
    "invoice-pdf",
    "chart",
    "table",
    "filters",
    "banner",
    "sidebar",
    "csv-export",
    "widget",
    "tooltips",
    "modal",
    "setup-wizard",
    "toasts",
    "heatmap",
    "timeline",
    "calendar",
    "search-bar",
    "date-picker",
    "summary",
    "weekly-digest",
    "avatars",
    "navbar",
    "pricing-page",
    "trial",
    "coupons",
    "receipts",
    "tax-ids",
    "sso",
    "mfa",
    "webhooks",
    "slack-app",
    "api-keys",
    "usage-meter",
    "quotas",
    "drilldown",
    "pivot-table",
    "forecast",
    "annotations",
    "comments",
    "mentions",
    "saved-views",
    "command-palette",
    "empty-states",
    "activity-feed",
    "bulk-edit",
    "scheduler",
    "sparklines",
    "kpi-cards",
    "data-grid",
];

const MODIFIERS: &[&str] = &[
    "redesign",
    "v2",
    "v3",
    "beta",
    "lazy-load",
    "async",
    "inline",
    "compact",
    "dark-mode",
    "streaming",
    "batched",
    "cached",
    "paginated",
    "virtualized",
    "realtime",
    "preview",
    "refresh",
    "simplified",
    "new-layout",
    "keyboard-nav",
    "a11y",
    "i18n",
];

/// Country lists a dashboard team really targets (launch markets, data-residency regions).
const COUNTRY_LISTS: &[&[&str]] = &[
    &["US", "CA"],
    &["US", "CA", "GB", "AU", "NZ", "IE"],
    &["DE", "AT", "CH"],
    &["BR", "MX", "AR", "CO", "CL", "PE"],
    &["JP", "KR", "SG", "HK", "TW"],
    &["IN"],
    &["GB"],
    &["FR", "BE", "LU"],
    &["NL", "BE", "DK", "SE", "NO", "FI"],
    &[
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
        "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    ],
];

/// The index of the EU list in [`COUNTRY_LISTS`].
const EU: usize = 9;

/// Interning tables, filled as flags are generated: what the compiler does for real.
#[derive(Default)]
struct Tables {
    attrs: Vec<Vec<String>>,
    lists: Vec<Vec<String>>,
}

impl Tables {
    fn attr(&mut self, dotted: &str) -> AttrId {
        let path: Vec<String> = dotted.split('.').map(String::from).collect();
        if let Some(at) = self.attrs.iter().position(|p| *p == path) {
            return at as AttrId;
        }
        self.attrs.push(path);
        (self.attrs.len() - 1) as AttrId
    }

    /// Sorted, deduplicated, and shared between flags that use the same list.
    fn list(&mut self, items: &[&str]) -> ListId {
        let mut list: Vec<String> = items.iter().map(|s| String::from(*s)).collect();
        list.sort();
        list.dedup();
        if let Some(at) = self.lists.iter().position(|l| *l == list) {
            return at as ListId;
        }
        self.lists.push(list);
        (self.lists.len() - 1) as ListId
    }
}

/// Segment ids, in the order [`segments`] defines them.
const SEG_INTERNAL: SegmentId = 0;
const SEG_BETA_ORGS: SegmentId = 1;
const SEG_PAYING: SegmentId = 2;
const SEG_EU: SegmentId = 3;

fn segments(tables: &mut Tables) -> Vec<shared_eval::Segment> {
    let email = tables.attr("email");
    let testers = tables.list(&[
        "dana.whitfield@gmail.com",
        "ops-review@brightlane.co",
        "k.nakamura@tokyo-analytics.jp",
        "pm-team@northwind-retail.com",
        "qa.contractor1@testhouse.io",
        "qa.contractor2@testhouse.io",
        "marta.silva@lojasverdes.com.br",
        "lead.designer@studio-fern.design",
    ]);
    let org = tables.attr("org.id");
    let beta_org_ids: Vec<String> = (0..40)
        .map(|i| format!("org_{:05}", 1000 + i * 37))
        .collect();
    let beta_org_refs: Vec<&str> = beta_org_ids.iter().map(String::as_str).collect();
    let beta_orgs = tables.list(&beta_org_refs);
    let plan = tables.attr("plan");
    let paying = tables.list(&["pro", "premium", "enterprise"]);
    let country = tables.attr("country");
    let eu = tables.list(COUNTRY_LISTS[EU]);
    vec![
        shared_eval::Segment {
            key: "internal-testers".into(),
            condition: Condition::Any(vec![
                test(email, Op::EndsWith("@acme-dash.io".into())),
                test(email, Op::In(testers)),
            ]),
        },
        shared_eval::Segment {
            key: "beta-orgs".into(),
            condition: test(org, Op::In(beta_orgs)),
        },
        shared_eval::Segment {
            key: "paying-customers".into(),
            condition: test(plan, Op::In(paying)),
        },
        shared_eval::Segment {
            key: "eu-residents".into(),
            condition: test(country, Op::In(eu)),
        },
    ]
}

fn test(attr: AttrId, op: Op) -> Condition {
    Condition::Test(Test { attr, op })
}

fn variant(name: &str, value: Value) -> Variant {
    Variant {
        name: name.into(),
        value,
    }
}

/// Boolean variants: `on` (0) and `off` (1).
const ON: VariantId = 0;
const OFF: VariantId = 1;

fn boolean_variants() -> Vec<Variant> {
    vec![
        variant("on", Value::Bool(true)),
        variant("off", Value::Bool(false)),
    ]
}

/// A percentage of users on variant `first`, in buckets of [`shared_eval::BUCKETS`].
fn rollout(bucket_by: AttrId, first: VariantId, rest: VariantId, percent: u32) -> Serve {
    let weight = percent * (shared_eval::BUCKETS / 100);
    Serve::Split(Split {
        bucket_by,
        weights: vec![(first, weight), (rest, shared_eval::BUCKETS - weight)],
    })
}

fn rules_from(conditions: Vec<(Condition, Serve)>) -> Vec<Rule> {
    conditions
        .into_iter()
        .enumerate()
        .map(|(at, (condition, serve))| Rule {
            id: (at + 1).to_string(),
            condition,
            serve,
        })
        .collect()
}

/// Whether a condition reads one of the attributes a browser may send unsigned.
fn reads_attr(condition: &Condition, attr: AttrId) -> bool {
    match condition {
        Condition::All(all) | Condition::Any(all) => all.iter().any(|c| reads_attr(c, attr)),
        Condition::Not(inner) => reads_attr(inner, attr),
        Condition::Segment(_) => false,
        Condition::Test(t) => t.attr == attr,
    }
}

struct Generator {
    rng: Rng,
    tables: Tables,
    keys: std::collections::BTreeSet<String>,
}

impl Generator {
    /// A fresh, realistic key: `checkout-redesign`, `billing.invoice-pdf-v2`,
    /// `dashboard.v2-sidebar`... made unique with a numeric suffix when the words run out.
    fn key(&mut self, prefix: Option<&str>) -> String {
        let mut attempt = 0;
        loop {
            let area = *self.rng.pick(AREAS);
            let noun = *self.rng.pick(NOUNS);
            let modifier = *self.rng.pick(MODIFIERS);
            let stem = match self.rng.below(3) {
                0 => format!("{noun}-{modifier}"),
                1 => format!("{area}.{noun}-{modifier}"),
                _ => format!("{area}-{noun}"),
            };
            let mut key = match prefix {
                Some(prefix) => format!("{prefix}.{area}-{noun}"),
                None => stem,
            };
            if attempt >= 8 {
                key = format!("{key}-{}", attempt - 6);
            }
            if self.keys.insert(key.clone()) {
                return key;
            }
            attempt += 1;
        }
    }

    fn flag(
        &mut self,
        key: String,
        kind: FlagKind,
        value_type: ValueType,
        variants: Vec<Variant>,
    ) -> Flag {
        Flag {
            key,
            kind,
            value_type,
            variants,
            default_variant: Some(0),
            off_variant: Some(0),
            enabled: !self.rng.chance(8),
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
        }
    }

    /// One release-flag rule condition, of the kinds dashboards really use.
    fn release_condition(&mut self) -> Condition {
        let plan = self.tables.attr("plan");
        let country = self.tables.attr("country");
        let app_version = self.tables.attr("app_version");
        let platform = self.tables.attr("platform");
        let signup = self.tables.attr("signup_date");
        match self.rng.below(10) {
            0 => test(plan, Op::Equals(json!("premium"))),
            1 => {
                let list = self.tables.list(&["premium", "enterprise"]);
                test(plan, Op::In(list))
            }
            2 => {
                let countries = *self.rng.pick(COUNTRY_LISTS);
                test(country, Op::In(self.tables.list(countries)))
            }
            3 => {
                let version = SemVer {
                    major: self.rng.range(1, 4),
                    minor: self.rng.range(0, 12),
                    patch: 0,
                    pre: Vec::new(),
                };
                test(app_version, Op::SemVer(SemVerCmp::Ge, version))
            }
            4 | 5 => Condition::Segment(SEG_INTERNAL),
            6 => Condition::Segment(SEG_BETA_ORGS),
            7 => {
                let platform_name = *self.rng.pick(&["ios", "android", "web"]);
                let countries = *self.rng.pick(COUNTRY_LISTS);
                Condition::All(vec![
                    test(platform, Op::Equals(json!(platform_name))),
                    test(country, Op::In(self.tables.list(countries))),
                ])
            }
            8 => Condition::All(vec![
                Condition::Segment(SEG_PAYING),
                test(
                    signup,
                    Op::After(1_704_067_200_000 + self.rng.below(700) as i64 * 86_400_000),
                ),
            ]),
            _ => Condition::Not(Box::new(Condition::Segment(SEG_EU))),
        }
    }

    fn release(&mut self) -> Flag {
        let key = self.key(None);
        let mut flag = self.flag(
            key,
            FlagKind::Release,
            ValueType::Boolean,
            boolean_variants(),
        );
        flag.default_variant = Some(OFF);
        flag.off_variant = Some(OFF);
        let targeting_key = self.tables.attr("targetingKey");
        let rule_count = *self.rng.pick(&[0, 0, 0, 1, 1, 1, 1, 2, 2, 3]);
        let mut rules = Vec::new();
        for _ in 0..rule_count {
            let condition = self.release_condition();
            // A repeated condition would be an unreachable rule, which `validate` warns about.
            if rules.iter().any(|(earlier, _)| *earlier == condition) {
                continue;
            }
            // A third of the rules roll out gradually within their audience.
            let serve = if self.rng.chance(30) {
                rollout(targeting_key, ON, OFF, self.rng.range(1, 50) as u32)
            } else {
                Serve::Variant(ON)
            };
            rules.push((condition, serve));
        }
        // Flags mid-rollout split their fallthrough; shipped ones serve on; new ones serve off.
        let fallthrough = match self.rng.below(10) {
            0..=3 => rollout(
                targeting_key,
                ON,
                OFF,
                *self.rng.pick(&[1, 5, 10, 20, 25, 50]),
            ),
            4..=5 => Serve::Variant(ON),
            _ => Serve::Variant(OFF),
        };
        flag.targeting = Targeting::Rules {
            rules: rules_from(rules),
            fallthrough,
        };
        self.allow_unsigned(&mut flag);
        flag
    }

    /// App version and platform come from the browser, so flags reading them accept them unsigned.
    fn allow_unsigned(&mut self, flag: &mut Flag) {
        let Targeting::Rules { rules, .. } = &flag.targeting else {
            return;
        };
        for name in ["app_version", "platform"] {
            let attr = self.tables.attr(name);
            if rules.iter().any(|r| reads_attr(&r.condition, attr)) {
                flag.unsigned_attrs.push(attr);
            }
        }
    }

    fn config(&mut self) -> Flag {
        let area = *self.rng.pick(AREAS);
        let (name, value_type, variants): (&str, ValueType, Vec<Variant>) = match self.rng.below(8)
        {
            0 => (
                "default-date-range",
                ValueType::String,
                vec![
                    variant("last-7-days", json!("7d")),
                    variant("last-30-days", json!("30d")),
                    variant("last-90-days", json!("90d")),
                ],
            ),
            1 => (
                "chart-renderer",
                ValueType::String,
                vec![
                    variant("canvas", json!("canvas")),
                    variant("svg", json!("svg")),
                    variant("webgl", json!("webgl")),
                ],
            ),
            2 => (
                "page-size",
                ValueType::Number,
                vec![
                    variant("small", json!(25)),
                    variant("medium", json!(50)),
                    variant("large", json!(100)),
                ],
            ),
            3 => (
                "poll-interval-ms",
                ValueType::Number,
                vec![
                    variant("fast", json!(5000)),
                    variant("normal", json!(15000)),
                    variant("slow", json!(60000)),
                ],
            ),
            4 => (
                "max-upload-mb",
                ValueType::Number,
                vec![
                    variant("standard", json!(25)),
                    variant("business", json!(250)),
                ],
            ),
            5 => (
                "widget-config",
                ValueType::Object,
                vec![
                    variant(
                        "default",
                        json!({"columns": 3, "refreshSeconds": 60, "showLegend": true}),
                    ),
                    variant(
                        "dense",
                        json!({"columns": 4, "refreshSeconds": 30, "showLegend": false}),
                    ),
                ],
            ),
            6 => (
                "announcement-banner",
                ValueType::Object,
                vec![
                    variant("none", json!({"show": false})),
                    variant(
                        "maintenance",
                        json!({"show": true, "severity": "warning", "text": "Scheduled maintenance Sunday 02:00-03:00 UTC", "dismissible": true}),
                    ),
                ],
            ),
            _ => (
                "support-widget",
                ValueType::String,
                vec![
                    variant("none", json!("none")),
                    variant("chat", json!("intercom")),
                    variant("email", json!("email-form")),
                ],
            ),
        };
        let mut key = format!("{area}.{name}");
        let mut suffix = 2;
        while !self.keys.insert(key.clone()) {
            key = format!("{area}.{name}-{suffix}");
            suffix += 1;
        }
        let last = (variants.len() - 1) as VariantId;
        let mut flag = self.flag(key, FlagKind::Operational, value_type, variants);
        let plan = self.tables.attr("plan");
        let country = self.tables.attr("country");
        let mut rules = Vec::new();
        if self.rng.chance(50) {
            rules.push((
                test(plan, Op::Equals(json!("enterprise"))),
                Serve::Variant(last),
            ));
        }
        if self.rng.chance(30) {
            let countries = *self.rng.pick(COUNTRY_LISTS);
            rules.push((
                test(country, Op::In(self.tables.list(countries))),
                Serve::Variant(1),
            ));
        }
        flag.targeting = Targeting::Rules {
            rules: rules_from(rules),
            fallthrough: Serve::Variant(0),
        };
        flag
    }

    fn experiment(&mut self) -> Flag {
        let key = self.key(Some("exp"));
        let three_way = self.rng.chance(30);
        let variants = if three_way {
            vec![
                variant("control", json!("control")),
                variant("variant-a", json!("variant-a")),
                variant("variant-b", json!("variant-b")),
            ]
        } else {
            vec![
                variant("control", json!("control")),
                variant("treatment", json!("treatment")),
            ]
        };
        let mut flag = self.flag(key, FlagKind::Experiment, ValueType::String, variants);
        // B2B dashboards often bucket whole organisations, so colleagues see the same variant.
        let bucket_by = if self.rng.chance(40) {
            self.tables.attr("org.id")
        } else {
            self.tables.attr("targetingKey")
        };
        let weights = if three_way {
            vec![(0, 33_000), (1, 33_000), (2, 34_000)]
        } else {
            vec![(0, 50_000), (1, 50_000)]
        };
        let mut rules = vec![(Condition::Segment(SEG_INTERNAL), Serve::Variant(0))];
        if self.rng.chance(40) {
            let countries = *self.rng.pick(COUNTRY_LISTS);
            let country = self.tables.attr("country");
            rules.push((
                Condition::Not(Box::new(test(country, Op::In(self.tables.list(countries))))),
                Serve::Variant(0),
            ));
        }
        flag.targeting = Targeting::Rules {
            rules: rules_from(rules),
            fallthrough: Serve::Split(Split { bucket_by, weights }),
        };
        flag
    }

    fn kill_switch(&mut self) -> Flag {
        let key = self.key(Some("ops"));
        let mut flag = self.flag(
            key,
            FlagKind::KillSwitch,
            ValueType::Boolean,
            boolean_variants(),
        );
        // On means "the feature works"; killing serves the safe default, off.
        flag.default_variant = Some(OFF);
        flag.off_variant = Some(OFF);
        flag.enabled = true;
        flag.targeting = Targeting::Rules {
            rules: Vec::new(),
            fallthrough: Serve::Variant(ON),
        };
        flag
    }

    fn maintenance(&mut self) -> Flag {
        let key = self.key(Some("maintenance"));
        let mut flag = self.flag(
            key,
            FlagKind::Operational,
            ValueType::Boolean,
            boolean_variants(),
        );
        flag.default_variant = Some(OFF);
        flag.off_variant = Some(OFF);
        flag.targeting = Targeting::Rules {
            rules: Vec::new(),
            fallthrough: Serve::Variant(OFF),
        };
        flag
    }

    fn permission(&mut self) -> Flag {
        let key = self.key(Some("internal"));
        let mut flag = self.flag(
            key,
            FlagKind::Permission,
            ValueType::Boolean,
            boolean_variants(),
        );
        flag.default_variant = Some(OFF);
        flag.off_variant = Some(OFF);
        flag.targeting = Targeting::Rules {
            rules: rules_from(vec![(Condition::Segment(SEG_INTERNAL), Serve::Variant(ON))]),
            fallthrough: Serve::Variant(OFF),
        };
        flag
    }
}

/// `n` realistic compiled flags (keys sorted, prerequisites ordered), with their tables.
pub fn realistic_body(n: usize) -> Body {
    let mut generator = Generator {
        rng: Rng(SEED),
        tables: Tables::default(),
        keys: Default::default(),
    };
    // Intern the targeting key first, as the compiler does (`["targetingKey"]` is attribute 0).
    generator.tables.attr("targetingKey");
    let segments = segments(&mut generator.tables);
    let mut flags: Vec<Flag> = (0..n)
        .map(|_| match generator.rng.below(100) {
            0..=69 => generator.release(),
            70..=79 => generator.config(),
            80..=87 => generator.experiment(),
            88..=94 => generator.kill_switch(),
            95..=97 => generator.permission(),
            _ => generator.maintenance(),
        })
        .collect();
    flags.sort_by(|a, b| a.key.cmp(&b.key));

    // About 2% of release flags wait for another release flag to be on (one level deep, so the
    // order below is topological by construction).
    let release: Vec<FlagId> = flags
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FlagKind::Release)
        .map(|(at, _)| at as FlagId)
        .collect();
    let mut dependents = std::collections::BTreeSet::new();
    let mut parents = std::collections::BTreeSet::new();
    for _ in 0..n / 50 {
        if release.len() < 2 {
            break;
        }
        let child = *generator.rng.pick(&release);
        let parent = *generator.rng.pick(&release);
        if child == parent
            || dependents.contains(&parent)
            || parents.contains(&child)
            || dependents.contains(&child)
        {
            continue;
        }
        flags[child as usize].prerequisites.push(Prerequisite {
            flag: parent,
            variants: vec![ON],
        });
        dependents.insert(child);
        parents.insert(parent);
    }
    let eval_order = (0..flags.len() as FlagId)
        .filter(|at| !dependents.contains(at))
        .chain(dependents.iter().copied())
        .collect();

    Body {
        attrs: generator.tables.attrs,
        lists: generator.tables.lists,
        regexes: Vec::new(),
        segments,
        flags,
        eval_order,
    }
}

/// A header like one `publisher push` writes for production.
pub fn bench_header() -> Header {
    Header {
        environment: "prod".into(),
        version: 1042,
        previous: Some(1041),
        content_hash: String::new(),
        author: "Jane Doe <jane.doe@acme-dash.io>".into(),
        source_commit: Some("3f1c9a7e5b2d4c6f8a0e1b3d5c7f9a2e4b6d8c0f".into()),
        created_at: "2026-11-21T06:00:00Z".into(),
    }
}

/// `n` realistic flags as a complete blob, content hash filled in.
pub fn realistic_blob(n: usize) -> Blob {
    Blob::new(bench_header(), realistic_body(n))
}

/// The blob as the publisher uploads it before gzip: compact JSON.
pub fn blob_json(blob: &Blob) -> Vec<u8> {
    serde_json::to_vec(blob).unwrap_or_default()
}

/// gzip at flate2's default level (6), as a publisher would write it.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

/// gunzip, as the edge does after download.
pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// Size in bytes of the blob's compact JSON, gzipped: what is measured against the 25 KB budget.
pub fn gzipped_size(blob: &Blob) -> usize {
    gzip(&blob_json(blob)).len()
}

/// A signed-in dashboard user with every attribute the fixtures read.
pub fn realistic_context() -> Map<String, Value> {
    match json!({
        "targetingKey": "user-48213",
        "email": "maria.keller@example-corp.de",
        "plan": "premium",
        "country": "DE",
        "app_version": "2.4.1",
        "platform": "web",
        "signup_date": "2024-03-14T09:30:00Z",
        "org": { "id": "org_01037" }
    }) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_eval::Snapshot;

    #[test]
    fn realistic_blobs_load_as_valid_snapshots() {
        for n in [1, 10, 100, 1000] {
            let blob = realistic_blob(n);
            assert_eq!(blob.body.flags.len(), n);
            let snapshot = Snapshot::from_blob(blob.clone());
            assert!(snapshot.is_ok(), "{n} flags: {:?}", snapshot.err());
            // And through the edge's path: JSON, gzip, gunzip, parse.
            let bytes = gunzip(&gzip(&blob_json(&blob))).expect("our own gzip");
            let loaded = Snapshot::from_json(&bytes);
            assert!(loaded.is_ok(), "{n} flags from JSON: {:?}", loaded.err());
        }
    }

    #[test]
    fn realistic_flags_evaluate_without_errors_through_every_path() {
        let snapshot = Snapshot::from_blob(realistic_blob(1000)).expect("loads");
        let mut other = realistic_context();
        for (key, value) in [
            ("plan", "free"),
            ("country", "BR"),
            ("app_version", "1.9.0"),
            ("platform", "ios"),
        ] {
            other.insert(key.into(), json!(value));
        }
        let mut seen = Vec::new();
        for context in [realistic_context(), other] {
            for (key, evaluation) in
                shared_eval::evaluate_all(&snapshot, &shared_eval::Context::new(&context), NOW_MS)
            {
                assert_eq!(evaluation.error, None, "{key}: {evaluation:?}");
                assert!(evaluation.value.is_some(), "{key}: {evaluation:?}");
                if !seen.contains(&evaluation.reason) {
                    seen.push(evaluation.reason);
                }
            }
        }
        use shared_eval::Reason::*;
        for reason in [Static, TargetingMatch, Split, Default, Disabled] {
            assert!(
                seen.contains(&reason),
                "no flag evaluated with {reason:?}: the fixtures miss a path"
            );
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(realistic_body(300), realistic_body(300));
    }

    #[test]
    fn keys_are_unique_sorted_and_readable() {
        let body = realistic_body(1000);
        for pair in body.flags.windows(2) {
            assert!(
                pair[0].key < pair[1].key,
                "{} before {}",
                pair[0].key,
                pair[1].key
            );
        }
        for flag in &body.flags {
            assert!(
                flag.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
                "{}",
                flag.key
            );
        }
    }

    #[test]
    fn the_mix_is_what_a_dashboard_team_has() {
        let body = realistic_body(1000);
        let count = |kind| body.flags.iter().filter(|f| f.kind == kind).count();
        assert!((600..800).contains(&count(FlagKind::Release)));
        assert!((50..130).contains(&count(FlagKind::Experiment)));
        assert!((40..110).contains(&count(FlagKind::KillSwitch)));
        assert!(count(FlagKind::Permission) > 10);
        let typed = |t| body.flags.iter().filter(|f| f.value_type == t).count();
        assert!(typed(ValueType::String) > 30);
        assert!(typed(ValueType::Number) > 10);
        assert!(typed(ValueType::Object) > 10);
        let with_prerequisites = body
            .flags
            .iter()
            .filter(|f| !f.prerequisites.is_empty())
            .count();
        assert!(
            (5..=20).contains(&with_prerequisites),
            "{with_prerequisites}"
        );
        let rules: Vec<usize> = body
            .flags
            .iter()
            .filter(|f| f.kind == FlagKind::Release)
            .map(|f| match &f.targeting {
                Targeting::Rules { rules, .. } => rules.len(),
                Targeting::Logic(_) => 99,
            })
            .collect();
        assert!(rules.iter().all(|&r| r <= 3));
        assert!(rules.contains(&0) && rules.contains(&3));
    }

    #[test]
    fn prerequisites_come_first_in_eval_order() {
        let body = realistic_body(1000);
        let mut order = body.eval_order.clone();
        order.sort();
        assert_eq!(
            order,
            (0..1000).collect::<Vec<FlagId>>(),
            "eval_order is a permutation"
        );
        let position = |id: FlagId| body.eval_order.iter().position(|&x| x == id);
        for (at, flag) in body.flags.iter().enumerate() {
            for prerequisite in &flag.prerequisites {
                assert!(
                    position(prerequisite.flag) < position(at as FlagId),
                    "{}",
                    flag.key
                );
            }
        }
    }

    #[test]
    fn splits_sum_to_all_buckets() {
        let body = realistic_body(1000);
        let mut serves = Vec::new();
        for flag in &body.flags {
            if let Targeting::Rules { rules, fallthrough } = &flag.targeting {
                serves.push(fallthrough);
                serves.extend(rules.iter().map(|r| &r.serve));
            }
        }
        let splits: Vec<&Split> = serves
            .iter()
            .filter_map(|s| {
                if let Serve::Split(split) = s {
                    Some(split)
                } else {
                    None
                }
            })
            .collect();
        assert!(splits.len() > 100);
        for split in splits {
            assert_eq!(
                split.weights.iter().map(|(_, w)| w).sum::<u32>(),
                shared_eval::BUCKETS
            );
        }
    }
}
