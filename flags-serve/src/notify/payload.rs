//! The bytes a webhook receives and how they are signed: the JSON envelope (the event plus the
//! delivery id and send time, both covered by the signature, against replays) or a Slack
//! incoming-webhook message; and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`,
//! GitHub's scheme, so any GitHub webhook verifier checks it.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Event;
use super::config::Format;

/// The signature header (GitHub's name and format).
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The delivery id header (the same id on every attempt of one delivery).
pub const DELIVERY_HEADER: &str = "x-flags-delivery";
/// The event name header.
pub const EVENT_HEADER: &str = "x-flags-event";
/// The send time header, Unix seconds (also `sent_at` in the signed JSON body).
pub const TIMESTAMP_HEADER: &str = "x-flags-timestamp";

/// The payload's schema version (`schema` in the JSON body).
pub const SCHEMA: u32 = 1;

/// Slack's limit on a section block's text.
const SLACK_SECTION_CHARS: usize = 3000;

/// The body of one attempt of delivery `delivery`, sent at `sent_at` (Unix seconds).
pub fn body(format: Format, event: &Event, delivery: &str, sent_at: i64) -> Vec<u8> {
    let value = match format {
        Format::Json => json_body(event, delivery, sent_at),
        Format::Slack => slack_body(event),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn json_body(event: &Event, delivery: &str, sent_at: i64) -> Value {
    let mut value = json!({
        "schema": SCHEMA,
        "delivery": delivery,
        "sent_at": sent_at,
    });
    if let (Some(out), Ok(Value::Object(fields))) =
        (value.as_object_mut(), serde_json::to_value(event))
    {
        out.extend(fields);
    }
    value
}

/// Slack's incoming-webhook shape: `text` (the notification's fallback) and `blocks`, a
/// `section` with the summary in `mrkdwn` and a `context` line naming the event, environment
/// and actor.
fn slack_body(event: &Event) -> Value {
    let mut context = format!("`{}`", event.event.as_str());
    if let Some(env) = &event.env {
        context.push_str(&format!(" · env `{}`", escape(env)));
    }
    context.push_str(&format!(" · by {}", escape(&event.actor)));
    let section: String = escape(&event.summary)
        .chars()
        .take(SLACK_SECTION_CHARS)
        .collect();
    json!({
        "text": event.summary,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": section } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] },
        ],
    })
}

/// Slack's three control characters in `mrkdwn`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::EventKind;

    fn event() -> Event {
        Event {
            event: EventKind::Kill,
            occurred_at: "2026-01-01T00:00:00Z".into(),
            env: Some("prod".into()),
            actor: "alice <ops>".into(),
            summary: "prod: killed v3 by alice <ops>: dark-mode".into(),
            details: json!({ "flags": ["dark-mode"] }),
        }
    }

    #[test]
    fn the_signature_is_github_s_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_bodies_escape_mrkdwn_and_json_bodies_carry_the_delivery() {
        let slack: Value = serde_json::from_slice(&body(Format::Slack, &event(), "d1", 7)).unwrap();
        assert_eq!(slack["text"], "prod: killed v3 by alice <ops>: dark-mode");
        assert_eq!(
            slack["blocks"][0]["text"]["text"],
            "prod: killed v3 by alice &lt;ops&gt;: dark-mode"
        );
        assert_eq!(slack["blocks"][1]["type"], "context");
        let json: Value = serde_json::from_slice(&body(Format::Json, &event(), "d1", 7)).unwrap();
        assert_eq!(
            (&json["delivery"], &json["sent_at"], &json["event"]),
            (&json!("d1"), &json!(7), &json!("kill"))
        );
    }
}
