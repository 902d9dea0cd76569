//! Tests of `Alerts` against a real HTTP listener on 127.0.0.1.
//!
//! Delivery runs on the real clock, so these wait with generous timeouts, and claim "nothing
//! more arrived" only after a stretch of silence.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::message::MAX_TEXT_BYTES;
use super::{AlertCounts, AlertSettings, Alerts, ProjectionAlerts, Webhook};

const PATIENCE: Duration = Duration::from_secs(10);
const SILENCE: Duration = Duration::from_millis(700);

/// A webhook on 127.0.0.1 that answers the n-th request with the n-th of its answers (200 once
/// they run out) and hands over every request's JSON body.
struct Receiver {
    webhook: Webhook,
    bodies: mpsc::UnboundedReceiver<Value>,
    requests: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, bodies) = mpsc::unbounded_channel();
        let requests = Arc::new(AtomicUsize::new(0));
        let answers = answers.to_vec();
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let status = *answers
                    .get(counter.fetch_add(1, Ordering::SeqCst))
                    .unwrap_or(&200);
                tokio::spawn(answer(stream, status, sender.clone()));
            }
        });
        Receiver {
            webhook: Webhook::parse(&format!("http://{address}/hooks/secret")).unwrap(),
            bodies,
            requests,
        }
    }

    async fn next(&mut self) -> Value {
        tokio::time::timeout(PATIENCE, self.bodies.recv())
            .await
            .expect("no alert arrived in time")
            .expect("the receiver stopped")
    }

    async fn assert_silence(&mut self) {
        if let Ok(body) = tokio::time::timeout(SILENCE, self.bodies.recv()).await {
            panic!("an unexpected alert arrived: {body:?}");
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request, checks it is a JSON POST to the configured path, answers `status`.
async fn answer(mut stream: TcpStream, status: u16, bodies: mpsc::UnboundedSender<Value>) {
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    let (head, body_start) = loop {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection closed mid-request");
        request.extend_from_slice(&buffer[..read]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8(request[..end].to_vec()).unwrap(), end + 4);
        }
    };
    assert!(head.starts_with("POST /hooks/secret HTTP/1.1"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .expect("a content-length")
        .parse()
        .unwrap();
    while request.len() < body_start + length {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "the connection closed mid-body");
        request.extend_from_slice(&buffer[..read]);
    }
    let reply =
        format!("HTTP/1.1 {status} Whatever\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
    stream.write_all(reply.as_bytes()).await.unwrap();
    let _ = stream.shutdown().await;
    bodies
        .send(serde_json::from_slice(&request[body_start..]).unwrap())
        .unwrap();
}

fn settings(webhook: &Webhook) -> AlertSettings {
    AlertSettings {
        webhook: Some(webhook.clone()),
        dead_letter_debounce: Duration::from_millis(400),
        retry_backoff: Duration::from_millis(20),
        ..AlertSettings::default()
    }
}

/// Waits until the counts satisfy `done`, and returns them.
async fn counts_when(alerts: &Alerts, done: impl Fn(&AlertCounts) -> bool) -> AlertCounts {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts = alerts.snapshot();
        if done(&counts) {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "counts never got there: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The body without its timestamps, after checking they are RFC 3339.
fn without_times(mut body: Value) -> Value {
    let object = body.as_object_mut().unwrap();
    for field in ["at", "since"] {
        if let Some(time) = object.remove(field) {
            let time = time.as_str().unwrap();
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|error| panic!("{field} {time:?}: {error}"));
        }
    }
    body
}

#[tokio::test]
async fn each_stop_is_posted() {
    let mut receiver = Receiver::start(&[]).await;
    let alerts = Alerts::start(settings(&receiver.webhook)).unwrap();
    alerts.stopped("orders", "memory limit of 64 MiB reached");
    alerts.stopped("payments", "plugin trapped");
    assert_eq!(
        without_times(receiver.next().await),
        json!({"kind": "projection-stopped", "projection": "orders",
               "reason": "memory limit of 64 MiB reached", "host": "projector"})
    );
    assert_eq!(
        without_times(receiver.next().await)["projection"],
        "payments"
    );
    let counts = counts_when(&alerts, |c| c.delivered == 2).await;
    assert_eq!((counts.failed, counts.dropped, counts.pending), (0, 0, 0));
    assert_eq!(counts.projections["orders"].stops, 1);
}

#[tokio::test]
async fn dead_letters_are_summed_over_a_window() {
    let mut receiver = Receiver::start(&[]).await;
    let alerts = Alerts::start(settings(&receiver.webhook)).unwrap();
    for n in 0..50 {
        alerts.dead_letters("orders", 2, &format!("bad event {n}"));
    }
    alerts.dead_letters("payments", 1, "other");
    let mut bodies = vec![receiver.next().await, receiver.next().await];
    bodies.sort_by_key(|body| body["projection"].as_str().unwrap().to_string());
    assert_eq!(
        without_times(bodies.remove(0)),
        json!({"kind": "dead-letters", "projection": "orders", "count": 100,
               "first_error": "bad event 0", "host": "projector"})
    );
    assert_eq!(bodies[0]["count"], 1);
    receiver.assert_silence().await;

    alerts.dead_letters("orders", 3, "later");
    let body = receiver.next().await;
    assert_eq!(
        (&body["count"], &body["first_error"]),
        (&json!(3), &json!("later"))
    );
    let counts = counts_when(&alerts, |c| c.delivered == 3).await;
    assert_eq!(
        counts.projections["orders"],
        ProjectionAlerts {
            stops: 0,
            dead_letters: 103,
            dead_letter_alerts: 2
        }
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let mut receiver = Receiver::start(&[500, 500]).await;
    let alerts = Alerts::start(settings(&receiver.webhook)).unwrap();
    alerts.stopped("orders", "boom");
    for _ in 0..3 {
        assert_eq!(receiver.next().await["reason"], "boom");
    }
    let counts = counts_when(&alerts, |c| c.delivered == 1).await;
    assert_eq!((counts.failed, receiver.requests()), (0, 3));
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let receiver = Receiver::start(&[400]).await;
    let alerts = Alerts::start(settings(&receiver.webhook)).unwrap();
    alerts.stopped("orders", "boom");
    let counts = counts_when(&alerts, |c| c.failed == 1).await;
    assert_eq!((counts.delivered, receiver.requests()), (0, 1));
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let receiver = Receiver::start(&[429, 408]).await;
    let alerts = Alerts::start(settings(&receiver.webhook)).unwrap();
    alerts.stopped("orders", "boom");
    counts_when(&alerts, |c| c.delivered == 1).await;
    assert_eq!(receiver.requests(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_given_up_after_the_retries() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let webhook = Webhook::parse(&format!("http://{address}/")).unwrap();
    let alerts = Alerts::start(AlertSettings {
        retries: 2,
        ..settings(&webhook)
    })
    .unwrap();
    alerts.stopped("orders", "boom");
    let counts = counts_when(&alerts, |c| c.failed == 1).await;
    assert_eq!((counts.delivered, counts.pending), (0, 0));
}

#[tokio::test]
async fn a_webhook_that_never_answers_never_holds_up_the_caller() {
    // Accepts connections and reads nothing: every attempt waits out its timeout.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = Webhook::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let alerts = Alerts::start(AlertSettings {
        queue_capacity: 100,
        ..settings(&webhook)
    })
    .unwrap();
    let started = Instant::now();
    // From a plain thread, as projection threads call it.
    let caller = alerts.clone();
    tokio::task::spawn_blocking(move || {
        for _ in 0..10_000 {
            caller.stopped("orders", "boom");
        }
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let counts = alerts.snapshot();
    assert_eq!(counts.projections["orders"].stops, 10_000);
    assert_eq!(counts.dropped + counts.pending + counts.failed, 10_000);
    assert!(counts.dropped >= 10_000 - 101, "{counts:?}");
}

#[tokio::test]
async fn long_text_is_cut() {
    let mut receiver = Receiver::start(&[]).await;
    let alerts = Alerts::start(settings(&receiver.webhook)).unwrap();
    alerts.stopped("orders", &"é".repeat(5000));
    let body = receiver.next().await;
    let reason = body["reason"].as_str().unwrap();
    assert!(reason.len() <= MAX_TEXT_BYTES, "{}", reason.len());
    assert!(reason.starts_with("éé"));
    assert!(reason.ends_with("[cut from 10000 bytes]"), "{reason}");
}

#[tokio::test]
async fn flush_sends_open_windows_and_stops_retrying() {
    let mut receiver = Receiver::start(&[500, 500, 500, 500]).await;
    let alerts = Alerts::start(AlertSettings {
        dead_letter_debounce: Duration::from_secs(3600),
        retry_backoff: Duration::from_secs(3600),
        ..settings(&receiver.webhook)
    })
    .unwrap();
    alerts.dead_letters("orders", 7, "bad event");
    let started = Instant::now();
    assert!(alerts.flush(PATIENCE).await);
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(receiver.next().await["count"], 7);
    let counts = alerts.snapshot();
    assert_eq!(
        (counts.failed, counts.pending, receiver.requests()),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn without_a_webhook_alerts_are_only_counted_and_logged() {
    let alerts = Alerts::start(AlertSettings {
        dead_letter_debounce: Duration::from_millis(10),
        ..AlertSettings::default()
    })
    .unwrap();
    alerts.stopped("orders", "boom");
    alerts.dead_letters("orders", 4, "bad");
    let counts = counts_when(&alerts, |c| c.projections["orders"].dead_letter_alerts == 1).await;
    assert_eq!(counts.projections["orders"].stops, 1);
    assert_eq!((counts.delivered, counts.dropped), (0, 0));
    assert!(alerts.flush(Duration::from_millis(10)).await);
}
