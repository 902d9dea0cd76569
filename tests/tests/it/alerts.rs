//! Alerts reach a webhook: one per stopped projection, and dead letters collected into
//! debounced alerts, from `projector run` over devstore to a local HTTP listener.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projector_tests::tables;

use crate::deploy::{PATIENCE, Scene, poison, tail, wait_for_position};

/// A webhook on 127.0.0.1 that keeps every JSON document POSTed to it.
struct Hook {
    url: String,
    received: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Hook {
    fn start() -> anyhow::Result<Hook> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(document) = serde_json::from_slice(&body)
                {
                    kept.lock().unwrap().push(document);
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Ok(Hook { url, received })
    }

    /// The documents of `kind` received so far.
    fn of_kind(&self, kind: &str) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == kind)
            .cloned()
            .collect()
    }
}

/// Dead letters come in bursts; the webhook gets them collected per window: the counts add up
/// to every dead letter, in fewer alerts than dead letters.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_alerted_debounced() -> anyhow::Result<()> {
    let hook = Hook::start()?;
    let scene = Scene::new(&format!(
        "[alerts]\nwebhook = {:?}\ndead_letter_debounce_ms = 1000\n",
        hook.url
    ))
    .await?;
    let (_, data, log) = scene.paths();
    let (earlier, writer, run) = scene.start_tally("info", 300).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut all = earlier.lock().unwrap().clone();
    all.extend(writer.stop().await?);
    wait_for_position(&data, all.last().unwrap().0, PATIENCE, &log)?;
    let dead = tables::dead_letters(&data, "tally")?.len();
    assert_eq!(dead, poison(&all).len());
    // The last window closes within its second (or at the shutdown's flush).
    let started = Instant::now();
    let counted = || -> u64 {
        hook.of_kind("dead-letters")
            .iter()
            .map(|d| d["count"].as_u64().unwrap())
            .sum()
    };
    while counted() < dead as u64 && started.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = run.stop()?;
    anyhow::ensure!(status.success(), "exit {status}\n{}", tail(&log));
    let alerts = hook.of_kind("dead-letters");
    assert_eq!(counted(), dead as u64, "{alerts:?}");
    assert!(
        alerts.len() < dead,
        "{} alerts for {dead} dead letters",
        alerts.len()
    );
    assert!(alerts.iter().all(|a| a["projection"] == "tally"));
    assert!(
        alerts[0]["first_error"]
            .as_str()
            .unwrap()
            .contains("refuses Poison"),
        "{alerts:?}"
    );
    assert!(hook.of_kind("projection-stopped").is_empty());
    scene.stop().await
}

/// A projection that stops (here: `on_error = "stop"` and an event its plugin refuses) is
/// alerted once, with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_projection_is_alerted_once() -> anyhow::Result<()> {
    let hook = Hook::start()?;
    let scene = Scene::new(&format!(
        "[alerts]\nwebhook = {:?}\n[projections.tally]\non_error = \"stop\"\n",
        hook.url
    ))
    .await?;
    let (plugins, _, log) = scene.paths();
    let _backlog = crate::deploy::Writer::backlog(&scene.connection, 100).await?;
    projector_tests::modules::deploy(
        &plugins,
        "tally.wasm",
        &std::fs::read(projector_tests::guests::TALLY_V1)?,
    )?;
    let run = scene.run("info")?;
    let started = Instant::now();
    while hook.of_kind("projection-stopped").is_empty() {
        anyhow::ensure!(
            started.elapsed() < PATIENCE,
            "no stop alert\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more comes for the same stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stops = hook.of_kind("projection-stopped");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["projection"], "tally");
    let reason = stops[0]["reason"].as_str().unwrap();
    assert!(reason.contains("refuses Poison"), "{reason}");
    let _ = run.stop()?;
    scene.stop().await
}
