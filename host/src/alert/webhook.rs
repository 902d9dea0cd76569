//! Delivering alerts to the webhook: a bounded queue in front of one background task that POSTs
//! them one at a time, retrying failures with capped exponential backoff.
//!
//! One at a time because alerts are rare and a webhook that fails fails for all of them; the
//! queue is what keeps a slow or dead webhook away from the projections.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use super::message::Alert;
use super::{AlertCounts, AlertSettings};

/// The longest pause between two attempts at one alert.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);
/// A full queue is warned about at most this often, with the number dropped meanwhile.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(60);
/// The most bytes of a failed answer's body read, to say why it failed.
const ANSWER_EXCERPT_BYTES: usize = 256;

/// A webhook address: an absolute `http` or `https` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook(reqwest::Url);

impl Webhook {
    /// Checks that `text` is an absolute `http://` or `https://` URL with a host. The error says
    /// what is wrong without repeating the address, whose path may be a secret.
    pub fn parse(text: &str) -> Result<Webhook, String> {
        let url = reqwest::Url::parse(text).map_err(|error| {
            format!("is not a URL ({error}); write it in full, as https://host/path")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "must be an http:// or https:// URL, not {}://",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host; write it in full, as https://host/path".to_string());
        }
        Ok(Webhook(url))
    }

    /// Scheme, host and port only: chat webhooks carry their secret in the path, and these
    /// addresses end up in logs.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let host = url.host_str().unwrap_or_default();
        match url.port() {
            Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
            None => format!("{}://{host}/…", url.scheme()),
        }
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The sending side: where alerts are offered, and the counters of what became of them.
pub(super) struct Queue {
    sender: mpsc::Sender<Alert>,
    state: Arc<DeliveryState>,
    webhook: Webhook,
}

/// Shared by the queue and the delivery task.
struct DeliveryState {
    capacity: usize,
    /// Alerts queued or being delivered; `drain` waits for zero.
    pending: watch::Sender<u64>,
    /// Set by `drain`: stop retrying, so that the queue empties before shutdown.
    hurry: watch::Sender<bool>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    drop_warning: Mutex<DropWarning>,
}

#[derive(Default)]
struct DropWarning {
    last: Option<Instant>,
    unreported: u64,
}

/// The background task.
pub(super) struct Delivery {
    client: reqwest::Client,
    webhook: Webhook,
    retries: u32,
    retry_backoff: Duration,
    receiver: mpsc::Receiver<Alert>,
    state: Arc<DeliveryState>,
}

/// Why one attempt failed.
enum Failure {
    /// Another attempt may succeed.
    Transient(String),
    /// Another attempt would get the same answer.
    Final(String),
}

impl Delivery {
    /// Spawns the delivery task for `settings.webhook` on `runtime`.
    pub fn start(settings: &AlertSettings, runtime: &Handle) -> anyhow::Result<Queue> {
        let webhook = settings
            .webhook
            .clone()
            .context("a delivery task needs a webhook")?;
        let client = reqwest::Client::builder()
            // A redirect is a misconfigured address; following it would hide that, and send the
            // alert somewhere nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("projector/", env!("CARGO_PKG_VERSION")));
        // Tests talk to 127.0.0.1, which a proxy from the environment would not reach.
        let client = if cfg!(test) {
            client.no_proxy()
        } else {
            client
        };
        let client = client.build().context(
            "could not set up the HTTP client for the alert webhook: check that the system's \
             TLS root certificates are readable",
        )?;
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let state = Arc::new(DeliveryState {
            capacity: settings.queue_capacity,
            pending: watch::Sender::new(0),
            hurry: watch::Sender::new(false),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            drop_warning: Mutex::default(),
        });
        let delivery = Delivery {
            client,
            webhook: webhook.clone(),
            retries: settings.retries,
            retry_backoff: settings.retry_backoff,
            receiver,
            state: state.clone(),
        };
        runtime.spawn(delivery.run());
        Ok(Queue {
            sender,
            state,
            webhook,
        })
    }

    /// Delivers alerts until every sender is gone.
    async fn run(mut self) {
        while let Some(alert) = self.receiver.recv().await {
            let (kind, projection) = alert.summary();
            match self.deliver(&alert).await {
                Ok(attempts) => {
                    self.state.delivered.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(kind, projection, attempts, "alert delivered");
                }
                Err(reason) => {
                    self.state.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        webhook = %self.webhook,
                        kind,
                        projection,
                        error = reason,
                        "alert not delivered to the webhook (it is still in the log)"
                    );
                }
            }
            self.state.pending.send_modify(|pending| *pending -= 1);
        }
    }

    /// Posts `alert` until it is accepted, refused for good, or out of retries; the number of
    /// attempts it took, or why it was given up.
    async fn deliver(&self, alert: &Alert) -> Result<u32, String> {
        let body = alert.body();
        let mut hurry = self.state.hurry.subscribe();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(body.clone()).await {
                Ok(()) => return Ok(attempts),
                Err(Failure::Final(reason)) => return Err(reason),
                Err(Failure::Transient(reason)) => reason,
            };
            if attempts > self.retries {
                return Err(format!("{attempts} attempt(s) failed, the last: {failure}"));
            }
            let not_retried = || format!("{failure} (not retried: shutting down)");
            if *hurry.borrow() {
                return Err(not_retried());
            }
            let pause = retry_pause(self.retry_backoff, attempts - 1);
            tracing::debug!(error = failure, ?pause, "alert delivery failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = hurry.wait_for(|hurry| *hurry) => return Err(not_retried()),
            }
        }
    }

    async fn attempt(&self, body: Vec<u8>) -> Result<(), Failure> {
        let response = self
            .client
            .post(self.webhook.0.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|error| Failure::Transient(describe(error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let answer = format!("the webhook answered {status}{}", excerpt(response).await);
        if status.is_redirection() {
            return Err(Failure::Final(format!(
                "{answer}; redirects are not followed: configure the address it redirects to"
            )));
        }
        let worth_retrying = matches!(status.as_u16(), 408 | 429) || !status.is_client_error();
        if worth_retrying {
            Err(Failure::Transient(answer))
        } else {
            Err(Failure::Final(format!(
                "{answer}; not retried: check the webhook address and what it accepts"
            )))
        }
    }
}

impl Queue {
    /// Queues `alert`, or drops it when the queue is full. Never waits.
    pub fn offer(&self, alert: Alert) {
        // Counted before it is sent, so the task can never count it done first.
        self.state.pending.send_modify(|pending| *pending += 1);
        if self.sender.try_send(alert).is_err() {
            self.state.pending.send_modify(|pending| *pending -= 1);
            self.dropped();
        }
    }

    /// Stops retrying and waits until nothing is pending, or `within` has passed. True when
    /// nothing is pending.
    pub async fn drain(&self, within: Duration) -> bool {
        self.state.hurry.send_replace(true);
        let mut pending = self.state.pending.subscribe();
        let emptied = pending.wait_for(|pending| *pending == 0);
        if matches!(tokio::time::timeout(within, emptied).await, Ok(Ok(_))) {
            return true;
        }
        tracing::warn!(
            webhook = %self.webhook,
            pending = *pending.borrow(),
            "alerts not delivered before shutdown (they are in the log)"
        );
        false
    }

    pub fn add_counts(&self, counts: &mut AlertCounts) {
        counts.delivered = self.state.delivered.load(Ordering::Relaxed);
        counts.failed = self.state.failed.load(Ordering::Relaxed);
        counts.dropped = self.state.dropped.load(Ordering::Relaxed);
        counts.pending = *self.state.pending.borrow();
    }

    pub fn webhook(&self) -> &Webhook {
        &self.webhook
    }

    fn dropped(&self) {
        self.state.dropped.fetch_add(1, Ordering::Relaxed);
        let mut warning = self
            .state
            .drop_warning
            .lock()
            .expect("drop warning poisoned");
        warning.unreported += 1;
        if warning
            .last
            .is_none_or(|last| last.elapsed() >= DROP_WARNING_INTERVAL)
        {
            tracing::warn!(
                webhook = %self.webhook,
                dropped = warning.unreported,
                queued = self.state.capacity,
                "the alert queue is full: new alerts are dropped (still logged) until the \
                 webhook catches up; it is slow or unreachable"
            );
            warning.last = Some(Instant::now());
            warning.unreported = 0;
        }
    }
}

/// The pause before retry `retry` (from 0): `first` doubled each time, at most a minute.
fn retry_pause(first: Duration, retry: u32) -> Duration {
    let doubled = first.saturating_mul(2u32.saturating_pow(retry));
    doubled.min(MAX_RETRY_PAUSE.max(first))
}

/// `error` and its causes, without the URL (whose path may be a secret).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = if error.is_timeout() {
        "no answer in time".to_string()
    } else {
        error.to_string()
    };
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

/// The start of a failed answer's body, as `: "…"`; empty when there is none. Reads no more
/// than `ANSWER_EXCERPT_BYTES`: an error page can be large, and only its start says anything.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut start = Vec::new();
    while start.len() < ANSWER_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => start.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&start[..start.len().min(ANSWER_EXCERPT_BYTES)]);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_double_up_to_a_minute() {
        let pauses: Vec<u64> = (0..9)
            .map(|retry| retry_pause(Duration::from_secs(1), retry).as_secs())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_pause(Duration::from_secs(1), 500).as_secs(), 60);
    }

    #[test]
    fn only_absolute_http_urls_are_webhooks() {
        let webhook = Webhook::parse("https://hooks.example.com:8443/services/T0/B0/secret?x=1");
        assert_eq!(
            webhook.unwrap().redacted(),
            "https://hooks.example.com:8443/…"
        );
        assert!(Webhook::parse("http://10.0.0.1/alert").is_ok());
        let ftp = Webhook::parse("ftp://example.com/x").unwrap_err();
        assert!(ftp.contains("http:// or https://"), "{ftp}");
        let relative = Webhook::parse("hooks.example.com/x").unwrap_err();
        assert!(relative.contains("not a URL"), "{relative}");
    }
}
