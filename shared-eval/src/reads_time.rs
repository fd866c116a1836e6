//! Which answers depend on the time of evaluation: for callers that keep answers (the edge's
//! per-isolate answer cache) and must know whether one can go stale while the blob stays.
//!
//! The only place an evaluation reads `now_ms` is flagd's `{"var": "$flagd.timestamp"}` in
//! imported JSONLogic targeting ([`Expr::Timestamp`]). Native `before`/`after` tests compare a
//! context attribute with an instant fixed at compile time, so they depend on the context, not
//! on the clock.

use crate::blob::Snapshot;
use crate::logic::{Expr, SemVerTarget};
use crate::model::Targeting;

impl Snapshot {
    /// Whether some flag's answer can change with the evaluation time alone (same blob, same
    /// context). When false, an answer computed once holds for as long as this snapshot is
    /// served. Walks every flag's targeting (depth bounded at load): call it once per snapshot.
    pub fn reads_time(&self) -> bool {
        self.blob
            .body
            .flags
            .iter()
            .any(|flag| match &flag.targeting {
                Targeting::Rules { .. } => false,
                Targeting::Logic(expr) => expr_reads_time(expr),
            })
    }
}

/// Whether evaluating `expr` reads the evaluation time. Exhaustive on purpose: a new kind of
/// expression must say whether it does.
fn expr_reads_time(expr: &Expr) -> bool {
    let any = |items: &[Expr]| items.iter().any(expr_reads_time);
    let maybe = |item: &Option<Expr>| item.as_ref().is_some_and(expr_reads_time);
    let boxed =
        |item: &Option<alloc::boxed::Box<Expr>>| item.as_deref().is_some_and(expr_reads_time);
    match expr {
        Expr::Timestamp => true,
        Expr::Lit(_) | Expr::FlagKey | Expr::Invalid(_) | Expr::Missing(_) => false,
        Expr::Array(items) | Expr::Op(_, items) => any(items),
        Expr::Var(_, default) | Expr::Scoped(_, default) => boxed(default),
        Expr::InList(needle, _) => expr_reads_time(needle),
        Expr::MissingSome(need, _) => expr_reads_time(need),
        Expr::Iterate(iteration) => {
            expr_reads_time(&iteration.over)
                || expr_reads_time(&iteration.body)
                || maybe(&iteration.initial)
        }
        Expr::SemVer(test) => {
            expr_reads_time(&test.value)
                || match &test.target {
                    SemVerTarget::Version(_) => false,
                    SemVerTarget::Expr(target) => expr_reads_time(target),
                }
        }
        Expr::Fractional(fractional) => {
            maybe(&fractional.bucket_by)
                || fractional
                    .buckets
                    .iter()
                    .any(|bucket| expr_reads_time(&bucket.variant) || maybe(&bucket.weight))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::logic::{Expr, LogicOp};
    use crate::{Blob, Body, Header, Snapshot};
    use alloc::{boxed::Box, string::String, vec, vec::Vec};
    use serde_json::json;

    fn snapshot(targeting: serde_json::Value) -> Snapshot {
        let body: Body = serde_json::from_value(json!({
            "attrs": [["targetingKey"]],
            "flags": [{"key": "a", "kind": "release", "value_type": "boolean",
                "variants": [{"name": "on", "value": true}, {"name": "off", "value": false}],
                "default_variant": 1, "enabled": true, "targeting": targeting}],
            "eval_order": [0]
        }))
        .unwrap();
        let header = Header {
            environment: "t".into(),
            version: 1,
            previous: None,
            content_hash: String::new(),
            author: "t".into(),
            source_commit: None,
            created_at: "2026-12-04T00:00:00Z".into(),
        };
        Snapshot::from_json(&serde_json::to_vec(&Blob::new(header, body)).unwrap()).unwrap()
    }

    fn logic(expr: &Expr) -> serde_json::Value {
        json!({ "logic": expr })
    }

    #[test]
    fn native_rules_and_date_tests_do_not_read_the_clock() {
        let native = snapshot(json!({"rules": {"rules": [{"id": "r",
            "condition": {"test": {"attr": 0, "op": {"before": 1_800_000_000_000_i64}}},
            "serve": {"variant": 0}}], "fallthrough": {"variant": 1}}}));
        assert!(!native.reads_time());
    }

    #[test]
    fn flagd_timestamp_reads_the_clock_wherever_it_is_nested() {
        let now = Expr::Timestamp;
        let compare = |left: Expr| Expr::Op(LogicOp::Gt, vec![left, Expr::Lit(json!(5))]);
        let nested: Vec<Expr> = vec![
            compare(now.clone()),
            Expr::Var(0, Some(Box::new(now.clone()))),
            Expr::Op(
                LogicOp::If,
                vec![
                    Expr::Lit(json!(true)),
                    Expr::Array(vec![Expr::Lit(json!(1)), now.clone()]),
                    Expr::Lit(json!("on")),
                ],
            ),
        ];
        for expr in &nested {
            assert!(snapshot(logic(expr)).reads_time(), "{expr:?}");
        }
        let timeless = Expr::Op(
            LogicOp::If,
            vec![
                compare(Expr::Var(0, None)),
                Expr::Lit(json!("on")),
                Expr::Lit(json!("off")),
            ],
        );
        assert!(!snapshot(logic(&timeless)).reads_time());
    }
}
