//! The operations surface over real HTTP against `projector run` on devstore, with tally:
//! metrics that equal what was projected and parse as Prometheus text, lag in events and
//! seconds while a projection is paused, `/ready` flipping, queries that wait for a position,
//! pause/resume/reset/rebuild ending with the tables of an uninterrupted run, and the token a
//! listener off loopback needs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use projector_tests::{guests, tables};

use crate::deploy::{
    PATIENCE, Scene, Writer, deploy, finish_tally, poison, read, tail, tally_model,
    wait_for_history, wait_for_position,
};
use crate::esdb::PROJECTOR;

/// One HTTP/1.1 request with extra headers: the status code and the body.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let (head, body) = crate::dev::exchange_with(address, address, method, path, headers, json)?;
    Ok((crate::api::code(&head), body))
}

fn get_json(api: &str, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let (code, body) = request(api, "GET", path, &[], None)?;
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    Ok((code, value))
}

fn post(api: &str, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let (code, body) = request(api, "POST", path, &[], Some("{}"))?;
    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    Ok((code, value))
}

/// The samples of `/metrics`, parsed by `prometheus-parse`: value by metric name and labels.
fn scrape(api: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let (code, text) = request(api, "GET", "/metrics", &[], None)?;
    anyhow::ensure!(code == 200, "{code} {text}");
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines)?;
    let mut samples = BTreeMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => continue,
        };
        samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
    }
    Ok(samples)
}

/// The value of `name` with `labels` (sorted `k=v`, comma-joined) in `samples`.
fn sample(samples: &BTreeMap<String, f64>, name: &str, labels: &str) -> f64 {
    let key = format!("{name}{{{labels}}}");
    *samples
        .get(&key)
        .unwrap_or_else(|| panic!("{key} not scraped; scraped: {:#?}", samples.keys()))
}

/// Polls `GET /api/projections/tally` until `done` holds for it.
fn wait_for_tally(
    api: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
    log: &std::path::Path,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    loop {
        let (code, tally) = get_json(api, "/api/projections/tally")?;
        if code == 200 && done(&tally) {
            return Ok(tally);
        }
        anyhow::ensure!(
            started.elapsed() < PATIENCE,
            "tally never got {what}: {tally}\n{}",
            tail(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_equal_what_was_projected_and_parse_as_prometheus_text() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let appended = Writer::backlog(&scene.connection, 150).await?;
    deploy(&scene.plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let (run, api) = scene.run_api("info")?;
    let events = appended.lock().unwrap().clone();
    let last = events.last().expect("appended").0;
    wait_for_position(&scene.data, last, PATIENCE, &scene.log)?;
    let refused = poison(&events).len() as f64;
    let tally = wait_for_tally(&api, "no lag", |t| t["lag_events"] == 0, &scene.log)?;
    assert_eq!(tally["state"], "running", "{tally}");
    assert_eq!(tally["lag_seconds"], 0.0, "{tally}");
    assert_eq!(tally["position"], last, "{tally}");
    assert_eq!(tally["head"], last, "{tally}");
    assert_eq!(tally["dead_letters"], refused as u64, "{tally}");
    assert_eq!(tally["eta_seconds"], 0.0, "{tally}");

    let samples = scrape(&api)?;
    let run_labels = "projection=tally,role=serving";
    let projection = "projection=tally";
    let events_total = events.len() as f64;
    assert_eq!(
        sample(&samples, "projector_events_projected_total", run_labels),
        events_total - refused
    );
    assert_eq!(
        sample(&samples, "projector_events_failed_total", run_labels),
        refused
    );
    assert_eq!(
        sample(&samples, "projector_dead_letters_total", run_labels),
        refused
    );
    assert_eq!(
        sample(&samples, "projector_dead_letters_pending", projection),
        refused
    );
    assert_eq!(
        sample(&samples, "projector_projection_position", projection),
        last as f64
    );
    assert_eq!(
        sample(&samples, "projector_projection_head_position", projection),
        last as f64
    );
    assert_eq!(
        sample(&samples, "projector_projection_lag_events", projection),
        0.0
    );
    assert_eq!(
        sample(&samples, "projector_projection_lag_seconds", projection),
        0.0
    );
    assert_eq!(
        sample(
            &samples,
            "projector_projection_state",
            "projection=tally,state=running"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            "projector_projection_state",
            "projection=tally,state=stopped"
        ),
        0.0
    );
    let batches = sample(&samples, "projector_batches_total", run_labels);
    assert!(batches >= 1.0);
    assert!(sample(&samples, "projector_rows_changed_total", run_labels) >= events_total - refused);
    assert!(sample(&samples, "projector_plugin_seconds_total", run_labels) > 0.0);
    assert!(sample(&samples, "projector_sqlite_seconds_total", run_labels) > 0.0);
    assert_eq!(
        sample(
            &samples,
            "projector_reloads_total",
            "outcome=started,projection=tally"
        ),
        1.0
    );
    let source = samples
        .iter()
        .find(|(k, _)| k.starts_with("projector_source_events_received_total{"))
        .map(|(_, v)| *v);
    assert!(source >= Some(events_total), "{source:?}");
    assert_eq!(sample(&samples, "projector_open_databases", ""), 1.0);
    assert!(sample(&samples, "projector_process_resident_memory_bytes", "") > 1e6);
    assert_eq!(
        sample(&samples, "projector_compile_cache_hits_total", "")
            + sample(&samples, "projector_compile_cache_misses_total", ""),
        1.0
    );
    // The histogram's count is the number of batches.
    let (_, text) = request(&api, "GET", "/metrics", &[], None)?;
    assert!(
        text.contains(&format!(
            "projector_batch_duration_seconds_count{{projection=\"tally\",role=\"serving\"}} {batches}"
        )),
        "{text}"
    );
    assert!(
        text.contains("# HELP projector_projection_lag_events "),
        "{text}"
    );
    // Every metric the example alert rules use is one the process exports.
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/alerts.yml"))?;
    let used: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("projector_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            text.contains(&format!("\n{name}{{")),
            "docs/alerts.yml uses {name}, which /metrics lacks"
        );
    }
    drop(run);
    scene.stop().await
}

/// The status code and body of a query with `min_position` (and `wait_ms`).
fn query_at(
    api: &str,
    sql: &str,
    min_position: i64,
    wait_ms: u64,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let body = serde_json::json!({ "sql": sql, "min_position": min_position, "wait_ms": wait_ms })
        .to_string();
    let (code, body) = request(api, "POST", "/api/query", &[], Some(&body))?;
    Ok((code, serde_json::from_str(&body)?))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_projection_lags_in_events_and_seconds_until_resumed() -> anyhow::Result<()> {
    let scene = Scene::new("[api]\nready_max_lag_seconds = 1\n").await?;
    let backlog = Writer::backlog(&scene.connection, 40).await?;
    deploy(&scene.plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let (run, api) = scene.run_api("info")?;
    let mut events = backlog.lock().unwrap().clone();
    wait_for_position(&scene.data, events.last().unwrap().0, PATIENCE, &scene.log)?;
    wait_for_tally(&api, "no lag", |t| t["lag_events"] == 0, &scene.log)?;
    assert_eq!(get_json(&api, "/ready")?.0, 200);

    let (code, answer) = post(&api, "/api/projections/tally/pause")?;
    assert_eq!(code, 200, "{answer}");
    wait_for_tally(&api, "paused", |t| t["state"] == "paused", &scene.log)?;
    let paused_at = tables::checkpoint(&scene.data, "tally");
    // 30 events over about 1.5 s while paused.
    let writer = Writer::start(&scene.connection, 20)?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written = writer.stop().await?;
    events.extend(written.iter().cloned());
    let appended = written.len() as u64;
    let last = written.last().unwrap().0;
    // Every one of them waits: tally's filter takes every type.
    let lagging = wait_for_tally(
        &api,
        "the appended events as lag",
        |t| t["lag_events"] == appended && t["lag_seconds"].as_f64() > Some(1.0),
        &scene.log,
    )?;
    assert_eq!(lagging["lag_events_exact"], true, "{lagging}");
    assert!(
        lagging["eta_seconds"].is_null(),
        "a paused projection never catches up: {lagging}"
    );
    assert_eq!(lagging["head"], last, "{lagging}");
    assert_eq!(
        tables::checkpoint(&scene.data, "tally"),
        paused_at,
        "nothing applied while paused"
    );
    let samples = scrape(&api)?;
    assert_eq!(
        sample(
            &samples,
            "projector_projection_lag_events",
            "projection=tally"
        ),
        appended as f64
    );
    assert!(
        sample(
            &samples,
            "projector_projection_lag_seconds",
            "projection=tally"
        ) > 1.0
    );
    assert_eq!(
        sample(
            &samples,
            "projector_projection_state",
            "projection=tally,state=paused"
        ),
        1.0
    );
    // Growing in seconds while nothing is appended.
    let before = lagging["lag_seconds"].as_f64().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = get_json(&api, "/api/projections/tally")?.1;
    assert!(
        later["lag_seconds"].as_f64().unwrap() >= before + 0.5,
        "{before} then {later}"
    );
    let (code, ready) = get_json(&api, "/ready")?;
    assert_eq!(code, 503, "{ready}");
    assert!(
        ready["reasons"][0].as_str().unwrap().contains("tally is"),
        "{ready}"
    );

    // A query for the last position times out cleanly while paused...
    let sql = "SELECT sum(events) AS n FROM tally";
    let started = Instant::now();
    let (code, answer) = query_at(&api, sql, last, 300)?;
    assert_eq!(code, 504, "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer["positions"]["tally"], paused_at.unwrap(), "{answer}");
    // ...and one waiting for it answers once resumed, reading what the position holds.
    let waiting = {
        let api = api.clone();
        std::thread::spawn(move || query_at(&api, sql, last, 20_000))
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "it answered before the position was committed"
    );
    let (code, answer) = post(&api, "/api/projections/tally/resume")?;
    assert_eq!(code, 200, "{answer}");
    let (code, answer) = waiting.join().unwrap()?;
    assert_eq!(code, 200, "{answer}");
    assert!(
        answer["positions"]["tally"].as_i64() >= Some(last),
        "{answer}"
    );
    let accepted = events.iter().filter(|(_, t)| t != "Poison").count() as i64;
    assert_eq!(answer["rows"][0]["n"], accepted, "{answer}");

    wait_for_tally(
        &api,
        "no lag again",
        |t| t["lag_events"] == 0 && t["state"] == "running",
        &scene.log,
    )?;
    assert_eq!(get_json(&api, "/ready")?.0, 200);
    assert_eq!(
        tables::rows(&scene.data, "tally", "tally")?,
        tally_model(&events, 1)
    );
    // fresh=true: at least the head when the query arrived.
    let body = serde_json::json!({ "sql": sql, "fresh": true }).to_string();
    let (code, body) = request(&api, "POST", "/api/query", &[], Some(&body))?;
    assert_eq!(code, 200, "{body}");
    drop(run);
    scene.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_and_rebuild_end_with_the_tables_of_an_uninterrupted_run() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let earlier = Writer::backlog(&scene.connection, 300).await?;
    let writer = Writer::start(&scene.connection, 100)?;
    deploy(&scene.plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let (run, api) = scene.run_api("info")?;
    let last = earlier.lock().unwrap().last().unwrap().0;
    wait_for_position(&scene.data, last, PATIENCE, &scene.log)?;

    let (code, answer) = post(&api, "/api/projections/tally/reset")?;
    assert_eq!(code, 200, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("from the start of the log"),
        "{answer}"
    );
    wait_for_history(&scene.data, "tally", 0, PATIENCE, &scene.log, |e| {
        e.outcome == "reset"
    })?;
    wait_for_position(&scene.data, last, PATIENCE, &scene.log)?;

    let (code, answer) = post(&api, "/api/projections/tally/rebuild")?;
    assert_eq!(code, 200, "{answer}");
    wait_for_history(&scene.data, "tally", 0, PATIENCE, &scene.log, |e| {
        e.outcome == "cut-over"
    })?;
    let (code, answer) = post(&api, "/api/projections/nothing/pause")?;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no projection is named"),
        "{answer}"
    );
    let (code, answer) = post(&api, "/api/projections/tally/explode")?;
    assert_eq!(code, 404, "{answer}");
    // The command line rolls back through the API too: to the file the rebuild replaced.
    let rolled = std::process::Command::new(PROJECTOR)
        .args(["rollback", "--api", &api, "tally"])
        .env_remove("PROJECTOR_API_TOKEN")
        .output()?;
    assert!(
        rolled.status.success(),
        "{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    assert!(String::from_utf8_lossy(&rolled.stdout).contains("rolling tally back"));
    wait_for_history(&scene.data, "tally", 0, PATIENCE, &scene.log, |e| {
        e.outcome == "rollback-started"
    })?;
    // The metrics counted both.
    let samples = scrape(&api)?;
    assert_eq!(
        sample(
            &samples,
            "projector_reloads_total",
            "outcome=reset,projection=tally"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            "projector_reloads_total",
            "outcome=cut-over,projection=tally"
        ),
        1.0
    );
    finish_tally(writer, &earlier, run, &scene, 1).await?;
    scene.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_off_loopback_needs_a_token_and_every_request_carries_it() -> anyhow::Result<()>
{
    let scene = Scene::new("").await?;
    deploy(&scene.plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let refused = std::process::Command::new(PROJECTOR)
        .args([
            "run",
            "--config",
            scene.config.to_str().unwrap(),
            "--api",
            "0.0.0.0:0",
        ])
        .env_remove("PROJECTOR_API_TOKEN")
        .output()?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");

    let token = "a-token-of-some-length-0123";
    let run = crate::deploy::Running::new(crate::esdb::spawn_run_with(
        &scene.config,
        &scene.log,
        "info",
        &["--api", "0.0.0.0:0", "--api-token", token],
    )?);
    let started = Instant::now();
    let port = loop {
        let text = std::fs::read_to_string(&scene.log).unwrap_or_default();
        if let Some(rest) = text.split("serving the API address=").nth(1) {
            let address = rest.split_whitespace().next().unwrap_or_default();
            break address.rsplit(':').next().unwrap().to_string();
        }
        anyhow::ensure!(started.elapsed() < PATIENCE, "no API\n{}", tail(&scene.log));
        std::thread::sleep(Duration::from_millis(20));
    };
    let api = format!("127.0.0.1:{port}");
    let bearer = format!("Bearer {token}");
    for path in [
        "/api/projections",
        "/metrics",
        "/health",
        "/ready",
        "/api/query?sql=SELECT%201",
    ] {
        let (code, body) = request(&api, "GET", path, &[], None)?;
        assert_eq!(code, 401, "{path}: {body}");
        let (code, body) = request(
            &api,
            "GET",
            path,
            &[("Authorization", "Bearer wrong-token-of-length-00")],
            None,
        )?;
        assert_eq!(code, 401, "{path}: {body}");
    }
    let (code, body) = request(
        &api,
        "POST",
        "/api/projections/tally/pause",
        &[],
        Some("{}"),
    )?;
    assert_eq!(code, 401, "{body}");
    // The console's files hold no data: served without it.
    let (code, page) = request(&api, "GET", "/", &[], None)?;
    assert_eq!(code, 200);
    assert!(page.contains("console.js"), "{page}");
    let (code, body) = request(&api, "GET", "/health", &[("Authorization", &bearer)], None)?;
    assert_eq!(code, 200, "{body}");
    let lower = format!("bearer {token}");
    let (code, body) = request(&api, "GET", "/health", &[("Authorization", &lower)], None)?;
    assert_eq!(code, 200, "the scheme is case-insensitive: {body}");
    // A page elsewhere, even with a GET that carries no Origin, is refused.
    let (code, body) = request(
        &api,
        "GET",
        "/api/query?sql=SELECT%201",
        &[("Authorization", &bearer), ("Sec-Fetch-Site", "cross-site")],
        None,
    )?;
    assert_eq!(code, 403, "{body}");
    // What axum refuses itself is JSON too.
    let (code, body) = request(
        &api,
        "GET",
        "/api/query?sql=SELECT%201&bogus=1",
        &[("Authorization", &bearer)],
        None,
    )?;
    assert_eq!(code, 400, "{body}");
    let refusal: serde_json::Value = serde_json::from_str(&body)?;
    assert!(refusal["error"].is_string(), "{body}");
    // A page of another site cannot change anything, even with the token in hand.
    let (code, body) = request(
        &api,
        "POST",
        "/api/projections/tally/pause",
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        Some("{}"),
    )?;
    assert_eq!(code, 403, "{body}");
    let started = Instant::now();
    loop {
        let (code, body) = request(
            &api,
            "POST",
            "/api/projections/tally/pause",
            &[("Authorization", &bearer)],
            Some("{}"),
        )?;
        if code == 200 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < PATIENCE,
            "{code} {body}\n{}",
            tail(&scene.log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = request(
        &api,
        "GET",
        "/api/projections/tally",
        &[("Authorization", &bearer)],
        None,
    )?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"paused\""), "{body}");
    // The command line talks to it the same way.
    let cli = |args: &[&str], token: Option<&str>| {
        let mut command = std::process::Command::new(PROJECTOR);
        command
            .args(args)
            .args(["--api", &api])
            .env_remove("PROJECTOR_API_TOKEN");
        if let Some(token) = token {
            command.env("PROJECTOR_API_TOKEN", token);
        }
        command.current_dir(scene.data.parent().unwrap()).output()
    };
    let refused = cli(&["status"], None)?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("needs its token") && stderr.contains("401"),
        "{stderr}"
    );
    let status = cli(&["status", "tally"], Some(token))?;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout)?;
    assert_eq!(status["state"], "paused", "{status}");
    let resumed = cli(&["resume", "tally"], Some(token))?;
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("tally resumed"));
    let all = cli(&["status", "--json"], Some(token))?;
    let all: serde_json::Value = serde_json::from_slice(&all.stdout)?;
    assert_ne!(all["projections"][0]["state"], "paused", "{all}");
    drop(run);
    scene.stop().await
}
