//! Telling a person that a projection stopped or dead-lettered events: one ERROR line in the log,
//! and a JSON document POSTed to the `[alerts] webhook` when one is configured (with reqwest,
//! which only `api/client.rs` uses besides).
//!
//! Callers are projection threads and async tasks alike, so every method returns at once: alerts
//! wait in a bounded queue for a background task that delivers them one at a time, and when the
//! queue is full the newest is dropped (and counted) rather than slowing a projection down.
//! Dead letters come in bursts, so they are collected per projection over a window and alerted
//! once per window.
//!
//! A leaf module: it knows projections only by name.

mod debounce;
mod message;
#[cfg(test)]
mod tests;
mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::runtime::Handle;

use debounce::{DeadLetterWindows, Opened};
use message::Alert;
pub use webhook::Webhook;
use webhook::{Delivery, Queue};

/// How alerts are sent (`[alerts]` in the config).
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// Where alerts are POSTed. `None`: they are only logged.
    pub webhook: Option<Webhook>,
    /// How long dead letters of one projection are collected into one alert, counted from the
    /// first. Default 10 s.
    pub dead_letter_debounce: Duration,
    /// The longest one delivery attempt may take, connecting included. Default 5 s.
    pub timeout: Duration,
    /// Attempts after the first that failed, before an alert is given up. Default 5.
    pub retries: u32,
    /// The pause before the first retry; it doubles up to a minute. Default 1 s. Not in the
    /// config file: only tests need another.
    pub retry_backoff: Duration,
    /// Alerts waiting for the webhook at most; more are dropped. Default 1,000. Not in the
    /// config file: an alert is small, and a webhook that far behind is down.
    pub queue_capacity: usize,
}

impl Default for AlertSettings {
    fn default() -> AlertSettings {
        AlertSettings {
            webhook: None,
            dead_letter_debounce: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            retries: 5,
            retry_backoff: Duration::from_secs(1),
            queue_capacity: 1000,
        }
    }
}

/// The alerts of one process. Cheap to clone; every clone feeds the same queue and counters.
#[derive(Clone)]
pub struct Alerts {
    shared: Arc<Shared>,
}

struct Shared {
    dead_letter_debounce: Duration,
    /// Where dead-letter windows are timed: callers may be threads outside any runtime.
    runtime: Handle,
    /// `None` without a webhook.
    queue: Option<Queue>,
    windows: DeadLetterWindows,
    per_projection: Mutex<BTreeMap<String, ProjectionAlerts>>,
}

/// What has been alerted so far, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertCounts {
    /// By projection name.
    pub projections: BTreeMap<String, ProjectionAlerts>,
    /// Alerts the webhook answered with a 2xx.
    pub delivered: u64,
    /// Alerts given up: retries exhausted, or an answer that retrying cannot change.
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
    /// Alerts queued or being delivered right now.
    pub pending: u64,
}

/// What has been alerted about one projection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectionAlerts {
    /// Times it was reported stopped.
    pub stops: u64,
    /// Dead letters reported, summed over windows.
    pub dead_letters: u64,
    /// Dead-letter alerts (one per window).
    pub dead_letter_alerts: u64,
}

impl Alerts {
    /// Starts the alerts of `settings` on the current tokio runtime: the webhook's delivery
    /// task, if there is a webhook. Fails outside a runtime, or if the HTTP client cannot be set
    /// up (no usable TLS root certificates).
    pub fn start(settings: AlertSettings) -> anyhow::Result<Alerts> {
        let runtime = Handle::try_current()
            .context("alerts must be started inside the tokio runtime that will deliver them")?;
        let queue = match &settings.webhook {
            Some(_) => Some(Delivery::start(&settings, &runtime)?),
            None => None,
        };
        Ok(Alerts {
            shared: Arc::new(Shared {
                dead_letter_debounce: settings.dead_letter_debounce,
                runtime,
                queue,
                windows: DeadLetterWindows::default(),
                per_projection: Mutex::default(),
            }),
        })
    }

    /// Alerts that `projection` stopped, and why.
    pub fn stopped(&self, projection: &str, reason: &str) {
        let alert = Alert::stopped(projection, reason, SystemTime::now());
        alert.log();
        self.count(projection, |counts| counts.stops += 1);
        self.send(alert);
    }

    /// Reports `count` new dead letters of `projection`, the first failing with `first_error`.
    /// Alerted once per window of `dead_letter_debounce`, with the window's total.
    pub fn dead_letters(&self, projection: &str, count: u64, first_error: &str) {
        if count == 0 {
            return;
        }
        let opened = self
            .shared
            .windows
            .add(projection, count, first_error, SystemTime::now());
        if let Some(Opened { id }) = opened {
            let alerts = self.clone();
            let projection = projection.to_string();
            self.shared.runtime.spawn(async move {
                tokio::time::sleep(alerts.shared.dead_letter_debounce).await;
                if let Some(window) = alerts.shared.windows.close(&projection, id) {
                    alerts.dead_letters_alert(window);
                }
            });
        }
    }

    /// Gives alerts not sent yet until `within` to go out, for shutdown: open dead-letter windows
    /// are closed and alerted now, and failed deliveries are no longer retried (also after
    /// this returns). True when nothing is left waiting.
    pub async fn flush(&self, within: Duration) -> bool {
        for window in self.shared.windows.close_all() {
            self.dead_letters_alert(window);
        }
        match &self.shared.queue {
            Some(queue) => queue.drain(within).await,
            None => true,
        }
    }

    /// What has been alerted so far.
    pub fn snapshot(&self) -> AlertCounts {
        let projections = self
            .shared
            .per_projection
            .lock()
            .expect("alert counts poisoned")
            .clone();
        let mut counts = AlertCounts {
            projections,
            ..AlertCounts::default()
        };
        if let Some(queue) = &self.shared.queue {
            queue.add_counts(&mut counts);
        }
        counts
    }

    fn dead_letters_alert(&self, window: debounce::Window) {
        let alert = Alert::dead_letters(&window, SystemTime::now());
        alert.log();
        self.count(&window.projection, |counts| {
            counts.dead_letters += window.count;
            counts.dead_letter_alerts += 1;
        });
        self.send(alert);
    }

    fn count(&self, projection: &str, change: impl FnOnce(&mut ProjectionAlerts)) {
        let mut per_projection = self
            .shared
            .per_projection
            .lock()
            .expect("alert counts poisoned");
        change(per_projection.entry(projection.to_string()).or_default());
    }

    fn send(&self, alert: Alert) {
        if let Some(queue) = &self.shared.queue {
            queue.offer(alert);
        }
    }
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerts")
            .field("webhook", &self.shared.queue.as_ref().map(Queue::webhook))
            .finish_non_exhaustive()
    }
}
