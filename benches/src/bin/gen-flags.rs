//! Writes the realistic fixture set as a native flags directory (docs/flag-format.md), for
//! timing the publisher on 1,000 realistic flags: `cargo run -p benches --bin gen-flags -- DIR N`.
//!
//! Each compiled flag is turned back into its source form: `DIR/flags/<key>.json` (JSON is
//! accepted beside YAML) and `DIR/segments/<key>.json`, with the `prod` environment holding the
//! rules. `publisher build DIR --env prod` then compiles to the same logical flags.

use std::path::Path;

use benches::fixtures::realistic_body;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};
use shared_eval::{Body, Condition, Flag, FlagKind, Op, SemVerCmp, Serve, Targeting};

/// JSON whose object keys keep the order they were written in: variant order gives variant
/// indices and split order gives bucket ranges, so neither may be sorted alphabetically (and
/// turning on serde_json's `preserve_order` would change shared-eval's `Map` in the benchmarks).
enum Node {
    Json(Value),
    Object(Vec<(String, Node)>),
    List(Vec<Node>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Json(value) => value.serialize(serializer),
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::List(items) => serializer.collect_seq(items),
        }
    }
}

fn path(body: &Body, attr: u32) -> String {
    body.attrs
        .get(attr as usize)
        .map(|p| p.join("."))
        .unwrap_or_default()
}

fn condition(body: &Body, c: &Condition) -> Value {
    match c {
        Condition::All(items) => {
            json!({ "all": items.iter().map(|i| condition(body, i)).collect::<Vec<_>>() })
        }
        Condition::Any(items) => {
            json!({ "any": items.iter().map(|i| condition(body, i)).collect::<Vec<_>>() })
        }
        Condition::Not(inner) => json!({ "not": condition(body, inner) }),
        Condition::Segment(id) => {
            json!({ "segment": body.segments.get(*id as usize).map(|s| s.key.as_str()).unwrap_or_default() })
        }
        Condition::Test(test) => {
            let list = |id: &u32| json!(body.lists.get(*id as usize).cloned().unwrap_or_default());
            let (name, operand) = match &test.op {
                Op::Equals(v) => ("equals", v.clone()),
                Op::NotEquals(v) => ("not-equals", v.clone()),
                Op::In(id) => ("in", list(id)),
                Op::NotIn(id) => ("not-in", list(id)),
                Op::Contains(v) => ("contains", v.clone()),
                Op::StartsWith(s) => ("starts-with", json!(s)),
                Op::EndsWith(s) => ("ends-with", json!(s)),
                Op::Matches(id) => (
                    "matches",
                    json!(body.regexes.get(*id as usize).map(|regex| &regex.source)),
                ),
                Op::Lt(n) => ("lt", json!(n)),
                Op::Le(n) => ("le", json!(n)),
                Op::Gt(n) => ("gt", json!(n)),
                Op::Ge(n) => ("ge", json!(n)),
                Op::SemVer(cmp, v) => {
                    let name = match cmp {
                        SemVerCmp::Eq => "semver-eq",
                        SemVerCmp::Ne => "semver-ne",
                        SemVerCmp::Lt => "semver-lt",
                        SemVerCmp::Le => "semver-le",
                        SemVerCmp::Gt => "semver-gt",
                        SemVerCmp::Ge => "semver-ge",
                        SemVerCmp::Caret => "semver-caret",
                        SemVerCmp::Tilde => "semver-tilde",
                    };
                    let pre = if v.pre.is_empty() {
                        String::new()
                    } else {
                        format!("-{}", v.pre.join("."))
                    };
                    (
                        name,
                        json!(format!("{}.{}.{}{pre}", v.major, v.minor, v.patch)),
                    )
                }
                // Epoch milliseconds are accepted as is (numbers above 10^11).
                Op::Before(ms) => ("before", json!(ms)),
                Op::After(ms) => ("after", json!(ms)),
                Op::Exists => ("exists", json!(true)),
            };
            let mut test_map = Map::new();
            test_map.insert("attr".into(), json!(path(body, test.attr)));
            test_map.insert(name.into(), operand);
            Value::Object(test_map)
        }
    }
}

fn serve(body: &Body, flag: &Flag, serve: &Serve) -> Node {
    let name = |id: u16| {
        flag.variants
            .get(usize::from(id))
            .map(|v| v.name.clone())
            .unwrap_or_default()
    };
    match serve {
        Serve::Variant(id) => Node::Json(json!(name(*id))),
        Serve::Split(split) => {
            let percentages = split
                .weights
                .iter()
                .map(|(id, weight)| (name(*id), Node::Json(json!(f64::from(*weight) / 1000.0))))
                .collect();
            let mut out = vec![("split".to_string(), Node::Object(percentages))];
            let bucket_by = path(body, split.bucket_by);
            if bucket_by != "targetingKey" {
                out.push(("bucket-by".into(), Node::Json(json!(bucket_by))));
            }
            Node::Object(out)
        }
    }
}

fn flag_source(body: &Body, flag: &Flag) -> Node {
    // The owning team is the key's area: `billing.invoice-pdf-v2`, `exp.billing-trial`.
    let area = flag
        .key
        .split(['.', '-'])
        .find(|word| !["exp", "ops", "internal", "maintenance"].contains(word))
        .unwrap_or("platform");
    let kind = match flag.kind {
        FlagKind::Release => "release",
        FlagKind::Operational => "operational",
        FlagKind::Experiment => "experiment",
        FlagKind::Permission => "permission",
        FlagKind::KillSwitch => "kill-switch",
    };
    let variant_name = |id: u16| {
        flag.variants
            .get(usize::from(id))
            .map(|v| v.name.clone())
            .unwrap_or_default()
    };
    let variants = flag
        .variants
        .iter()
        .map(|v| (v.name.clone(), Node::Json(v.value.clone())))
        .collect();
    let mut prod = vec![("enabled".to_string(), Node::Json(json!(flag.enabled)))];
    if let Targeting::Rules { rules, fallthrough } = &flag.targeting {
        let rules: Vec<Node> = rules
            .iter()
            .map(|r| {
                Node::Object(vec![
                    ("id".into(), Node::Json(json!(r.id))),
                    ("if".into(), Node::Json(condition(body, &r.condition))),
                    ("serve".into(), serve(body, flag, &r.serve)),
                ])
            })
            .collect();
        if !rules.is_empty() {
            prod.push(("rules".into(), Node::List(rules)));
        }
        prod.push(("fallthrough".into(), serve(body, flag, fallthrough)));
    }
    let mut source = vec![
        ("key".to_string(), Node::Json(json!(flag.key))),
        ("owner".into(), Node::Json(json!(format!("team-{area}")))),
        ("type".into(), Node::Json(json!(kind))),
        ("variants".into(), Node::Object(variants)),
        (
            "default".into(),
            Node::Json(json!(flag.default_variant.map(variant_name))),
        ),
    ];
    if !flag.prerequisites.is_empty() {
        let prerequisites: Vec<Value> = flag
            .prerequisites
            .iter()
            .map(|p| {
                json!({
                    "flag": body.flags.get(p.flag as usize).map(|f| f.key.as_str()),
                    "variants": p.variants.iter().map(|v| variant_name(*v)).collect::<Vec<_>>(),
                })
            })
            .collect();
        source.push(("prerequisites".into(), Node::Json(json!(prerequisites))));
    }
    if !flag.unsigned_attrs.is_empty() {
        let attrs: Vec<String> = flag.unsigned_attrs.iter().map(|a| path(body, *a)).collect();
        source.push(("unsigned-attributes".into(), Node::Json(json!(attrs))));
    }
    if flag.signed_bucketing_only {
        source.push(("bucket-unsigned-key".into(), Node::Json(json!(false))));
    }
    source.push((
        "environments".into(),
        Node::Object(vec![("prod".into(), Node::Object(prod))]),
    ));
    Node::Object(source)
}

fn write(file: &Path, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(file, text + "\n").map_err(|e| format!("{}: {e}", file.display()))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(n)) = (args.get(1), args.get(2)) else {
        return Err("usage: gen-flags DIR N".into());
    };
    let n: usize = n.parse().map_err(|e| format!("N: {e}"))?;
    let dir = Path::new(dir);
    let body = realistic_body(n);
    for sub in ["flags", "segments"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| format!("{}: {e}", dir.join(sub).display()))?;
    }
    for segment in &body.segments {
        let source = json!({
            "key": segment.key,
            "owner": "team-platform",
            "if": condition(&body, &segment.condition),
        });
        write(
            &dir.join("segments").join(format!("{}.json", segment.key)),
            &source,
        )?;
    }
    for flag in &body.flags {
        write(
            &dir.join("flags").join(format!("{}.json", flag.key)),
            &flag_source(&body, flag),
        )?;
    }
    println!(
        "wrote {} flags and {} segments to {}",
        body.flags.len(),
        body.segments.len(),
        dir.display()
    );
    Ok(())
}
