//! Outbound notifications: webhooks configured under `notify:` in `serve.yaml`
//! (`config.rs`) receive an [`Event`] (`event.rs`) for each publish, kill, drift finding and
//! fix, approval request, approval and merge, as signed JSON or as a Slack message
//! (`payload.rs`). `docs/notifications.md` has the payloads and how to verify a signature.
//!
//! Publishing never waits for a receiver: [`Notifier::emit`] puts the event in a bounded queue
//! and returns (a full queue drops the event, counted and logged); a background task takes each
//! event and starts one delivery per webhook that wants it, at most `concurrency` at once.
//! A delivery (`deliver.rs`) retries with jittered exponential backoff up to `attempts`, each
//! attempt bounded by `timeout`; one that gives up is logged, counted and written to the store
//! under `_notify/failed/` (the trail of failed deliveries).
//!
//! Each action emits from the one place it happens: `actions.rs` (every publish, kill and
//! unkill), `routes/publishing.rs` (approval requested), `routes/approvals.rs` and
//! `changes/review.rs` (approved, merged), `routes/drift.rs` (found, fixed).

pub mod config;
mod deliver;
mod event;
pub mod payload;

use std::sync::Arc;

use prometheus::{IntCounter, IntCounterVec, Opts};
use tokio::sync::{Semaphore, mpsc};

pub use config::NotifyConfig;
pub use event::{Event, EventKind};

use crate::metrics::Metrics;
use flags_store::store::ObjectStore;

/// Where failed deliveries are recorded in the store, one object each.
pub const FAILED_PREFIX: &str = "_notify/failed/";

/// The notification counters (registered in the service's `/metrics`).
#[derive(Debug, Clone)]
pub struct Counters {
    /// Deliveries by webhook, event and result (`delivered`, `failed`).
    pub deliveries: IntCounterVec,
    /// Attempts after the first, by webhook.
    pub retries: IntCounterVec,
    /// Events dropped because the queue was full.
    pub dropped: IntCounter,
}

impl Counters {
    fn new(metrics: &Metrics) -> Counters {
        // Names and labels are constants: creation cannot fail.
        let deliveries = IntCounterVec::new(
            Opts::new(
                "flags_notifications_total",
                "Webhook deliveries, by webhook name, event and result (delivered, failed: gave up after its attempts)",
            ),
            &["webhook", "event", "result"],
        )
        .expect("valid metric");
        let retries = IntCounterVec::new(
            Opts::new(
                "flags_notification_retries_total",
                "Webhook delivery attempts after the first, by webhook name",
            ),
            &["webhook"],
        )
        .expect("valid metric");
        let dropped = IntCounter::new(
            "flags_notifications_dropped_total",
            "Events not delivered to any webhook because the notification queue was full",
        )
        .expect("valid metric");
        metrics.register(Box::new(deliveries.clone()));
        metrics.register(Box::new(retries.clone()));
        metrics.register(Box::new(dropped.clone()));
        Counters {
            deliveries,
            retries,
            dropped,
        }
    }
}

/// The queue's sending end; cheap to share. Without webhooks, [`Notifier::emit`] does nothing.
#[derive(Debug)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Event>>,
    counters: Option<Counters>,
}

impl Notifier {
    /// No webhooks: events go nowhere.
    pub fn disabled() -> Notifier {
        Notifier {
            queue: None,
            counters: None,
        }
    }

    /// Starts the delivery task for `config` (on the current Tokio runtime); failed deliveries
    /// are recorded in `store`. Fails when a secret cannot be read.
    pub fn start(
        config: &NotifyConfig,
        store: Arc<dyn ObjectStore>,
        metrics: &Metrics,
    ) -> Result<Notifier, String> {
        if config.webhooks.is_empty() {
            return Ok(Notifier::disabled());
        }
        let counters = Counters::new(metrics);
        let client = reqwest::Client::builder()
            .user_agent(concat!("flags-serve/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("notify: HTTP client: {e}"))?;
        let mut hooks = Vec::new();
        for (i, hook) in config.webhooks.iter().enumerate() {
            hooks.push(Arc::new(deliver::Hook {
                name: hook.name(i),
                secret: hook
                    .secret()
                    .map_err(|e| format!("notify: {}: {e}", hook.name(i)))?,
                config: hook.clone(),
            }));
        }
        let (sender, mut receiver) = mpsc::channel::<Event>(config.queue);
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let sender_side = deliver::Sender {
            client,
            store,
            counters: counters.clone(),
        };
        tokio::spawn(async move {
            // Ends when every sender is gone (the service's state dropped).
            while let Some(event) = receiver.recv().await {
                let event = Arc::new(event);
                for hook in hooks.iter().filter(|h| h.config.events.wants(event.event)) {
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let sender = sender_side.clone();
                    let hook = hook.clone();
                    let event = event.clone();
                    tokio::spawn(async move {
                        sender.deliver(&hook, &event).await;
                        drop(slot);
                    });
                }
            }
        });
        Ok(Notifier {
            queue: Some(sender),
            counters: Some(counters),
        })
    }

    /// Queues `event` for every webhook that wants it, without waiting: when the queue is full
    /// the event is dropped (counted in `flags_notifications_dropped_total`, logged).
    pub fn emit(&self, event: Event) {
        let Some(queue) = &self.queue else {
            return;
        };
        if let Err(e) = queue.try_send(event) {
            let event = match &e {
                mpsc::error::TrySendError::Full(event)
                | mpsc::error::TrySendError::Closed(event) => event,
            };
            if let Some(counters) = &self.counters {
                counters.dropped.inc();
            }
            tracing::warn!(event = event.event.as_str(), env = event.env.as_deref().unwrap_or("-"), summary = %event.summary, "notification dropped: the queue is full");
        }
    }

    /// [`Notifier::emit`] of an optional event.
    pub fn emit_some(&self, event: Option<Event>) {
        if let Some(event) = event {
            self.emit(event);
        }
    }
}
