//! An environment's edge fleet (its `edges:` in serve.yaml) as the status page and
//! `GET /api/v1/environments` show it: drift's edge layer
//! ([`flags_store::drift::edge::check_against`]) against the deployed pointer. Every edge is asked at
//! once with the configured `edge_timeout`, so a dead edge costs the page at most that and shows
//! as unreachable. Only configured URLs are asked: a caller cannot make the service fetch others.

use crate::AppState;
use crate::deployed::Deployed;
use flags_store::drift::edge::{EdgeReport, Fleet, check_against};
use flags_store::publish::Environment;

/// Each configured edge of `env` and the fleet summary; `None` when it has no edges configured.
pub async fn check(
    state: &AppState,
    env: &Environment,
    deployed: Option<&Deployed>,
) -> Option<(Vec<EdgeReport>, Fleet)> {
    let urls = &state.config.environment(env.name())?.edges;
    if urls.is_empty() {
        return None;
    }
    let pointer = deployed.map(|d| &d.pointer);
    let body = deployed.map(|d| &d.blob.body);
    let reports = check_against(env, pointer, body, urls, state.config.edge_timeout).await;
    let fleet = Fleet::of(&reports);
    Some((reports, fleet))
}
