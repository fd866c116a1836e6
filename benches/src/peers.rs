//! The scenario flags for the peer evaluators, in each one's own model, loaded once.
//!
//! - Unleash (`unleash-yggdrasil`): [`RULE_FLAG`] is a toggle with one `flexibleRollout`
//!   strategy (rollout 100%) carrying three constraints (`plan IN [premium]`, `country IN
//!   [...]`, `appVersion SEMVER_LT 2.3.0` inverted, i.e. `>= 2.3.0`) and two strategy variants
//!   of weight 500 each; evaluated with `get_variant`, which is what picks a variant.
//!   [`SIMPLE_FLAG`] is an enabled toggle with the `default` strategy, evaluated with `is_enabled`.
//! - LaunchDarkly (`launchdarkly-server-sdk-evaluation`): [`RULE_FLAG`] is a flag with one rule
//!   of three clauses (`plan in [premium]`, `country in [...]`, `appVersion semVerLessThan
//!   2.3.0` negated) and a 50000/50000 rollout; off/fallthrough serve `off`. [`SIMPLE_FLAG`] is
//!   on with no rules and a fallthrough of `true`. Evaluated with `evaluate` against a store.
//!
//! Unleash and LaunchDarkly both spell equality as a one-element `in`, and neither has a semver
//! `>=`: a negated `<` is the usual way to write it in both.
//!
//! Both are built from the JSON their servers send, through the crates' own serde types,
//! exactly as their SDKs ingest it.

use std::collections::HashMap;

use launchdarkly_server_sdk_evaluation as ld;
use serde_json::json;
use unleash_yggdrasil as unleash;

use crate::scenario::{
    Attrs, CONTROL, COUNTRIES, Engine, MIN_APP_VERSION, OFF, RULE_FLAG, SIMPLE_FLAG, TREATMENT,
};

/// Unleash's engine with the scenario loaded through `take_state`.
pub struct Unleash {
    /// The engine, state loaded.
    pub engine: unleash::EngineState,
}

impl std::fmt::Debug for Unleash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unleash")
    }
}

impl Unleash {
    /// Loads the scenario as an Unleash `/api/client/features` response.
    pub fn load() -> Result<Unleash, String> {
        let features = json!({
            "version": 2,
            "features": [
                {
                    "name": RULE_FLAG,
                    "type": "experiment",
                    "enabled": true,
                    "project": "default",
                    "strategies": [{
                        "name": "flexibleRollout",
                        "parameters": { "rollout": "100", "stickiness": "default", "groupId": RULE_FLAG },
                        "constraints": [
                            { "contextName": "plan", "operator": "IN", "values": ["premium"],
                              "caseInsensitive": false, "inverted": false },
                            { "contextName": "country", "operator": "IN", "values": COUNTRIES,
                              "caseInsensitive": false, "inverted": false },
                            { "contextName": "appVersion", "operator": "SEMVER_LT", "value": MIN_APP_VERSION,
                              "caseInsensitive": false, "inverted": true }
                        ],
                        "variants": [
                            { "name": TREATMENT, "weight": 500, "weightType": "variable", "stickiness": "default" },
                            { "name": CONTROL, "weight": 500, "weightType": "variable", "stickiness": "default" }
                        ]
                    }]
                },
                {
                    "name": SIMPLE_FLAG,
                    "type": "kill-switch",
                    "enabled": true,
                    "project": "default",
                    "strategies": [{ "name": "default", "parameters": {}, "constraints": [] }]
                }
            ]
        });
        let message: unleash::UpdateMessage =
            serde_json::from_value(features).map_err(|e| format!("Unleash features JSON: {e}"))?;
        let engine = unleash::EngineState::default();
        if let Some(warnings) = engine.take_state(message) {
            return Err(format!("Unleash warned while compiling: {warnings:?}"));
        }
        Ok(Unleash { engine })
    }

    /// The Unleash context for `attrs` (built once, outside any timed loop).
    pub fn context(attrs: &Attrs) -> unleash::Context {
        let properties: HashMap<String, String> = [
            ("plan", attrs.plan),
            ("country", attrs.country),
            ("appVersion", attrs.app_version),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        unleash::Context {
            user_id: Some(attrs.user.clone()),
            session_id: None,
            environment: None,
            app_name: None,
            current_time: None,
            remote_address: None,
            properties: Some(properties),
        }
    }
}

impl Engine for Unleash {
    fn name(&self) -> &'static str {
        "unleash-yggdrasil"
    }

    fn rule_flag_variant(&self, attrs: &Attrs) -> String {
        let variant = self
            .engine
            .get_variant(RULE_FLAG, &Unleash::context(attrs), &None);
        match (
            variant.name.as_str(),
            variant.enabled,
            variant.feature_enabled,
        ) {
            (TREATMENT | CONTROL, true, true) => variant.name,
            // Unleash's answer when no strategy matched.
            ("disabled", false, false) => OFF.into(),
            _ => format!("{variant:?}"),
        }
    }

    fn simple_flag_value(&self, user: &str) -> bool {
        let attrs = Attrs {
            user: user.into(),
            ..crate::scenario::bench_attrs()
        };
        self.engine
            .is_enabled(SIMPLE_FLAG, &Unleash::context(&attrs), &None)
    }
}

/// LaunchDarkly's flags, held as its SDK's in-memory store holds them.
#[derive(Debug)]
pub struct LaunchDarkly {
    /// Flags by key.
    pub flags: HashMap<String, ld::Flag>,
}

impl ld::Store for LaunchDarkly {
    fn flag(&self, flag_key: &str) -> Option<ld::Flag> {
        self.flags.get(flag_key).cloned()
    }

    fn segment(&self, _segment_key: &str) -> Option<ld::Segment> {
        None
    }
}

impl LaunchDarkly {
    /// Loads the scenario from flag JSON as LaunchDarkly's streaming API sends it.
    pub fn load() -> Result<LaunchDarkly, String> {
        let rule_flag = json!({
            "key": RULE_FLAG,
            "version": 1,
            "on": true,
            "targets": [],
            "contextTargets": [],
            "prerequisites": [],
            "rules": [{
                "id": "premium-launch-markets",
                "clauses": [
                    { "attribute": "plan", "op": "in", "values": ["premium"], "negate": false },
                    { "attribute": "country", "op": "in", "values": COUNTRIES, "negate": false },
                    { "attribute": "appVersion", "op": "semVerLessThan", "values": [MIN_APP_VERSION], "negate": true }
                ],
                "rollout": { "variations": [
                    { "variation": 0, "weight": 50000 },
                    { "variation": 1, "weight": 50000 }
                ] },
                "trackEvents": false
            }],
            "fallthrough": { "variation": 2 },
            "offVariation": 2,
            "variations": [TREATMENT, CONTROL, OFF],
            "salt": RULE_FLAG,
            "trackEvents": false,
            "trackEventsFallthrough": false,
            "clientSide": false
        });
        let simple_flag = json!({
            "key": SIMPLE_FLAG,
            "version": 1,
            "on": true,
            "targets": [],
            "prerequisites": [],
            "rules": [],
            "fallthrough": { "variation": 0 },
            "offVariation": 1,
            "variations": [true, false],
            "salt": SIMPLE_FLAG,
            "clientSide": false
        });
        let mut flags = HashMap::new();
        for value in [rule_flag, simple_flag] {
            let flag: ld::Flag = serde_json::from_value(value)
                .map_err(|e| format!("LaunchDarkly flag JSON: {e}"))?;
            flags.insert(flag.key.clone(), flag);
        }
        Ok(LaunchDarkly { flags })
    }

    /// The LaunchDarkly context for `attrs` (built once, outside any timed loop).
    pub fn context(attrs: &Attrs) -> Result<ld::Context, String> {
        ld::ContextBuilder::new(attrs.user.clone())
            .set_string("plan", attrs.plan)
            .set_string("country", attrs.country)
            .set_string("appVersion", attrs.app_version)
            .build()
    }

    /// One evaluation as the SDK does it: find the flag by key, evaluate it.
    pub fn evaluate<'a>(
        &'a self,
        key: &str,
        context: &'a ld::Context,
    ) -> Option<ld::Detail<&'a ld::FlagValue>> {
        let flag = self.flags.get(key)?;
        Some(ld::evaluate(self, flag, context, None))
    }
}

impl Engine for LaunchDarkly {
    fn name(&self) -> &'static str {
        "launchdarkly-server-sdk-evaluation"
    }

    fn rule_flag_variant(&self, attrs: &Attrs) -> String {
        let context = match LaunchDarkly::context(attrs) {
            Ok(context) => context,
            Err(e) => return format!("context: {e}"),
        };
        let Some(detail) = self.evaluate(RULE_FLAG, &context) else {
            return "flag not loaded".into();
        };
        match (detail.value, &detail.reason) {
            (Some(ld::FlagValue::Str(s)), ld::Reason::RuleMatch { .. })
                if s == TREATMENT || s == CONTROL =>
            {
                s.clone()
            }
            (Some(ld::FlagValue::Str(s)), ld::Reason::Fallthrough { .. }) if s == OFF => s.clone(),
            _ => format!("{detail:?}"),
        }
    }

    fn simple_flag_value(&self, user: &str) -> bool {
        let Ok(context) = LaunchDarkly::context(&Attrs {
            user: user.into(),
            ..crate::scenario::bench_attrs()
        }) else {
            return false;
        };
        matches!(
            self.evaluate(SIMPLE_FLAG, &context).and_then(|d| d.value),
            Some(ld::FlagValue::Bool(true))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{BENCH_USER, Native, bench_attrs, scenario_snapshot, verify};

    #[test]
    fn unleash_evaluates_the_scenario_as_specified() {
        let unleash = Unleash::load().expect("load");
        verify(&unleash).expect("verify");
    }

    #[test]
    fn launchdarkly_evaluates_the_scenario_as_specified() {
        let launchdarkly = LaunchDarkly::load().expect("load");
        verify(&launchdarkly).expect("verify");
    }

    /// `BENCH_USER` must land in `treatment` in all three engines (each hashes differently),
    /// so the timed path is the same everywhere. If this fails after a change to bucketing,
    /// the message names users that would work.
    #[test]
    fn bench_user_lands_in_treatment_everywhere() {
        let engines: Vec<Box<dyn Engine>> = vec![
            Box::new(Native {
                snapshot: scenario_snapshot().expect("scenario"),
            }),
            Box::new(Unleash::load().expect("unleash")),
            Box::new(LaunchDarkly::load().expect("launchdarkly")),
        ];
        let everywhere = |user: &str| {
            let attrs = Attrs {
                user: user.into(),
                ..bench_attrs()
            };
            engines
                .iter()
                .all(|e| e.rule_flag_variant(&attrs) == TREATMENT)
        };
        let candidates: Vec<String> = (1000..1100)
            .map(|i| format!("user-{i}"))
            .filter(|u| everywhere(u))
            .take(5)
            .collect();
        assert!(
            everywhere(BENCH_USER),
            "{BENCH_USER} is not in treatment everywhere; candidates: {candidates:?}"
        );
    }
}
