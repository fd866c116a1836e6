//! Previews report only what a push does: with `csv-export`'s schedule ticked to its last stage,
//! `push --dry-run` and `diff` of the unchanged files show no change (the live stage is not
//! one), a push publishes nothing, and a canary push records only the flag that changed.

use serde_json::json;

use crate::common::{Store, write_flags};

#[test]
fn previews_and_canary_summaries_leave_the_live_stage_alone() {
    let store = Store::new();
    let flags = store.flags();
    let flags = flags.to_str().unwrap();
    write_flags(&store.flags(), "off");
    store.ok(&["push", flags], &["--author", "a"]);
    let out = store.ok(&["rollout", "tick"], &["--author", "cron"]);
    assert!(
        out.contains("csv-export/progressive: stage 1 -> 2"),
        "{out}"
    );

    let out = store.ok(&["push", flags], &["--dry-run"]);
    assert!(
        out.contains("already serves these flags; nothing to publish")
            && !out.contains("csv-export"),
        "{out}"
    );
    let out = store.ok(&["diff", flags], &[]);
    assert!(
        out.contains("no flag changes") && !out.contains("csv-export"),
        "{out}"
    );
    let out = store.ok(&["push", flags], &["--author", "a"]);
    assert!(
        out.contains("already serves these flags as version 2"),
        "{out}"
    );

    // A real change is previewed, and recorded, alone.
    write_flags(&store.flags(), "on");
    let plan = store.json(&["push", flags], &["--dry-run", "--json"]);
    assert_eq!(
        plan["summary"],
        json!({"added": [], "removed": [], "changed": ["report-beta"]}),
        "{plan}"
    );
    let pushed = store.json(
        &["push", flags],
        &["--canary", "20", "--json", "--author", "a"],
    );
    assert_eq!(
        pushed["record"]["summary"],
        json!({"added": [], "removed": [], "changed": ["report-beta"]}),
        "{pushed}"
    );
}
