//! Hot reload with the real binary, devstore and events appended continuously by the official
//! client: same-version swaps, a shadow rebuild with its cut-over, refused modules, a failing
//! rebuild, a file that changes its name, and twelve projections in one data directory.

use std::path::Path;
use std::time::{Duration, Instant};

use projector_tests::{guests, shop, tables};

use crate::deploy::{
    PATIENCE, Running, Scene, Writer, deploy, finish_tally, history, read, rebuilt, replace_all,
    sha256, tail, wait_for_history, wait_for_position,
};
use crate::esdb::{append, spawn_run_with};

/// Five new builds of order-summary (same name and version, other bytes) deployed while the
/// shop workload is appended: each is swapped in at a batch boundary and continues from the
/// checkpoint, and the tables and dead letters equal an uninterrupted run's (the model's).
#[tokio::test(flavor = "multi_thread")]
async fn same_version_swaps_lose_and_double_nothing() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let connection = scene.connection.clone();
    // About ten seconds of appends: the swaps land while events flow.
    let events = shop::generate(6000, 21);
    let writer = {
        let client = crate::esdb::client(&connection)?;
        let events = events.clone();
        tokio::spawn(async move {
            let mut first = None;
            for chunk in events.chunks(30) {
                first.get_or_insert(append(&client, chunk).await?.0);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            anyhow::Ok(first.expect("events"))
        })
    };
    let (plugins, data, log) = scene.paths();
    crate::util::example_plugins(&plugins)?;
    let run = scene.run("info")?;
    let original = read(guests::ORDER_SUMMARY)?;
    let mut last = sha256(&original);
    for round in 0..5 {
        // Let some events through between swaps.
        let before = tables::checkpoint(&data, "order_summary").unwrap_or(0);
        let started = Instant::now();
        while tables::checkpoint(&data, "order_summary").unwrap_or(0) <= before
            && !writer.is_finished()
        {
            anyhow::ensure!(started.elapsed() < PATIENCE, "no progress\n{}", tail(&log));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wasm = rebuilt(&original, &format!("build {round}"));
        last = sha256(&wasm);
        let seen = history(&data, "order_summary").len();
        deploy(&plugins, "order_summary.wasm", &wasm)?;
        let swapped = wait_for_history(&data, "order_summary", seen, PATIENCE, &log, |e| {
            e.to_sha256.as_deref() == Some(last.as_str())
        })?;
        assert_eq!(swapped.outcome, "swapped", "{swapped:?}");
    }
    let first = writer.await??;
    crate::esdb::wait_for(&data, &events, first, PATIENCE, &log)?;
    let status = run.stop()?;
    assert!(status.success(), "exit {status}\n{}", tail(&log));
    crate::esdb::assert_model(&data, &events, first)?;
    let swaps = history(&data, "order_summary")
        .iter()
        .filter(|e| e.outcome == "swapped")
        .count();
    assert_eq!(swaps, 5);
    let recorded = projector::store::Reader::open(&data)?
        .query("SELECT wasm_sha256 FROM order_summary._projector_plugin")?
        .rows;
    assert_eq!(recorded, vec![vec![projector::value::Value::Text(last)]]);
    scene.stop().await?;
    Ok(())
}

/// tally 2.0.0 deployed over 1.0.0 while events are appended: it rebuilds from the start of the
/// log into its own file while queries, polled throughout, keep answering from 1.0.0 (never an
/// error, never a mix of the two); the API shows the rebuild's progress; after the cut-over the
/// tables equal the model of 2.0.0 over every event, and 1.0.0's file is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_rebuilds_in_the_shadow_and_cuts_over_atomically() -> anyhow::Result<()> {
    // Small batches make the rebuild last long enough to be watched through the API.
    let scene = Scene::new("[batching]\nmax_events = 10\n").await?;
    let connection = scene.connection.clone();
    let backlog = Writer::backlog(&connection, 5000).await?;
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let run = Running::new(spawn_run_with(
        &scene.config,
        &log,
        "info",
        &["--api", "127.0.0.1:0"],
    )?);
    let last_backlog = backlog.lock().unwrap().last().unwrap().0;
    wait_for_position(&data, last_backlog, PATIENCE, &log)?;

    let v2 = read(guests::TALLY_V2)?;
    deploy(&plugins, "tally.wasm", &v2)?;
    let mut answered = (0, 0);
    let mut saw_rebuilding = false;
    let started = Instant::now();
    loop {
        // Every query answers, from one version whole.
        let result = projector::store::Reader::open(&data)?
            .query("SELECT DISTINCT version FROM tally.tally")?;
        match result.rows.as_slice() {
            [row] if row[0] == projector::value::Value::Text("1".into()) => answered.0 += 1,
            [row] if row[0] == projector::value::Value::Text("2".into()) => answered.1 += 1,
            rows => panic!("a query saw {rows:?}"),
        }
        if !saw_rebuilding && let Some(api) = api_address(&log) {
            let (_, body) = crate::dev::http_get(&api, "/api/projections")?;
            let status: serde_json::Value = serde_json::from_str(&body)?;
            let tally = &status["projections"][0];
            if tally["state"] == "rebuilding" {
                assert_eq!(tally["version"], "1.0.0", "{body}");
                assert_eq!(tally["rebuild"]["version"], "2.0.0", "{body}");
                assert_eq!(tally["rebuild"]["kind"], "shadow", "{body}");
                assert!(
                    tally["rebuild"]["position"].is_u64() || tally["rebuild"]["position"].is_null(),
                    "{body}"
                );
                saw_rebuilding = true;
            }
        }
        if answered.1 > 20 {
            break;
        }
        anyhow::ensure!(started.elapsed() < PATIENCE, "no cut-over\n{}", tail(&log));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(
        answered.0 > 0,
        "no query answered from 1.0.0 during the rebuild"
    );
    let outcomes: Vec<String> = history(&data, "tally")
        .iter()
        .map(|e| e.outcome.clone())
        .collect();
    assert!(
        outcomes.contains(&"shadow-started".to_string()),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"cut-over".to_string()), "{outcomes:?}");

    // The API reaches the supervisor for rollbacks; one to a version never kept is refused.
    let api = api_address(&log).expect("the API address");
    let (status_line, body) = crate::dev::http(
        &api,
        "POST",
        "/api/projections/tally/rollback",
        Some(r#"{"to": "9.9.9"}"#),
    )?;
    assert!(status_line.contains("400"), "{status_line} {body}");
    assert!(body.contains("no kept version 9.9.9 of tally"), "{body}");

    finish_tally(writer, &backlog, run, &scene, 2).await?;
    let kept: Vec<String> = std::fs::read_dir(data.join("tally"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".db"))
        .collect();
    assert!(kept.iter().any(|n| n.starts_with("1.0.0-")), "{kept:?}");
    assert!(kept.iter().any(|n| n.starts_with("2.0.0-")), "{kept:?}");
    assert!(saw_rebuilding, "the API never showed the rebuild");
    scene.stop().await?;
    Ok(())
}

/// The API address a run logged.
fn api_address(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let rest = text.split("serving the API address=").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

/// Broken modules deployed over a running tally are each refused with their reason, and the
/// running version's position keeps advancing between them: a truncated file, random bytes, a
/// core module, a component of another world, a `describe` that traps, DDL that does not run,
/// and a second file claiming the name.
#[tokio::test(flavor = "multi_thread")]
async fn broken_modules_are_refused_and_the_running_version_carries_on() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (backlog, writer, run) = scene.start_tally("info", 0).await?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let candidates: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            "tally.wasm",
            v1[..v1.len() / 2].to_vec(),
            "compiling the component",
        ),
        (
            "random bytes",
            "tally.wasm",
            random,
            "not a WebAssembly file",
        ),
        (
            "a core module",
            "tally.wasm",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module",
        ),
        (
            "another world",
            "tally.wasm",
            read(guests::WRONG_WORLD)?,
            "projector:plugin",
        ),
        (
            "describe traps",
            "tally.wasm",
            read(guests::TALLY_DESCRIBE_TRAPS)?,
            "calling describe",
        ),
        (
            "bad DDL",
            "tally.wasm",
            read(guests::TALLY_BAD_DDL)?,
            "schema statement 1 (\"CREATE TABLE tally (event_type TEXT PRIMARY KEY) WITHOUT NONSENSE\") failed: unknown table option: NONSENSE",
        ),
        (
            "a taken name",
            "tally-copy.wasm",
            rebuilt(&v1, "copy"),
            "both declare projection tally",
        ),
        (
            "the same version with another schema",
            "tally.wasm",
            replace_all(
                &v1,
                b"last_position INTEGER NOT NULL)",
                b"last_position INTEGER NULL)    ",
            ),
            "keeps version 1.0.0 but changes its schema",
        ),
    ];
    for (what, file, wasm, reason) in candidates {
        let before = tables::checkpoint(&data, "tally").unwrap_or(0);
        let seen = history(&data, "tally").len();
        let unnamed = unnamed_refusals(&data).len();
        deploy(&plugins, file, &wasm)?;
        let sha = sha256(&wasm);
        let started = Instant::now();
        let refusal = loop {
            let mut entries: Vec<projector::store::HistoryEntry> =
                history(&data, "tally").into_iter().skip(seen).collect();
            entries.extend(unnamed_refusals(&data).into_iter().skip(unnamed));
            if let Some(entry) = entries
                .into_iter()
                .find(|e| e.to_sha256.as_deref() == Some(sha.as_str()))
            {
                break entry;
            }
            anyhow::ensure!(
                started.elapsed() < PATIENCE,
                "{what}: no outcome\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(refusal.outcome, "refused", "{what}: {refusal:?}");
        assert_eq!(
            refusal.plugin_file.as_deref(),
            Some(file),
            "{what}: {refusal:?}"
        );
        let detail = refusal.detail.unwrap_or_default();
        assert!(detail.contains(reason), "{what}: {detail}");
        // The running version goes on.
        let started = Instant::now();
        while tables::checkpoint(&data, "tally").unwrap_or(0) <= before {
            anyhow::ensure!(
                started.elapsed() < PATIENCE,
                "{what}: tally stopped\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if file != "tally.wasm" {
            std::fs::remove_file(plugins.join(file))?;
        }
    }
    finish_tally(writer, &backlog, run, &scene, 1).await?;
    scene.stop().await?;
    Ok(())
}

/// Refusals of modules that never said their name.
fn unnamed_refusals(data: &Path) -> Vec<projector::store::HistoryEntry> {
    projector::store::Catalog::open_read_only(data)
        .ok()
        .flatten()
        .and_then(|c| c.history(None, 10_000).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.projection.is_none())
        .collect()
}

/// Twelve projections in one data directory (tally under twelve names, its name bytes patched
/// in the component) run over the shop fixture; one query joins two of them, through
/// `projector query`, which attaches only the projections a query names.
#[test]
fn twelve_projections_answer_one_query_that_joins_two() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let tally = read(guests::TALLY_V1)?;
    for index in 1..=12 {
        let name = format!("tm_{index:02}");
        let wasm = replace_all(&tally, b"tally", name.as_bytes());
        deploy(&plugins, &format!("{name}.wasm"), &wasm)?;
    }
    let config = dir.path().join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nplugins_dir = \"plugins\"\n[source]\nfile = {:?}\n",
            crate::cli::FIXTURE
        ),
    )?;
    let output = std::process::Command::new(crate::esdb::PROJECTOR)
        .args(["run", "--config", config.to_str().unwrap()])
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("2000 events projected").count(),
        12,
        "{stderr}"
    );
    let data = dir.path().join("data");
    let output = std::process::Command::new(crate::esdb::PROJECTOR)
        .args([
            "query",
            "--data",
            data.to_str().unwrap(),
            "--format",
            "json",
            "SELECT a.event_type, a.events + b.events AS both FROM tm_03.tm_03 AS a JOIN tm_11.tm_11 AS b USING (event_type) ORDER BY a.event_type",
        ])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout)?;
    let rows = rows.as_array().expect("rows");
    assert!(rows.len() >= 5, "{stdout}");
    let single = projector::store::Reader::open(&data)?
        .query("SELECT events FROM tm_07.tm_07 WHERE event_type = 'OrderCreated'")?
        .rows;
    let created = rows
        .iter()
        .find(|r| r["event_type"] == "OrderCreated")
        .expect("OrderCreated");
    assert_eq!(
        vec![vec![projector::value::Value::Integer(
            created["both"].as_i64().unwrap() / 2
        )]],
        single
    );
    Ok(())
}

/// A 2.0.0 that loads fine but traps on every event: its shadow rebuild stops at the first
/// batch and is abandoned with the reason, while 1.0.0 keeps serving and advancing; a good
/// 2.0.0 deployed afterwards rebuilds and cuts over as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_rebuild_is_abandoned_and_the_serving_version_carries_on() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (backlog, writer, run) = scene
        .start_tally("info,projector::projection=error", 500)
        .await?;
    let (plugins, data, log) = scene.paths();

    deploy(&plugins, "tally.wasm", &read(guests::TALLY_BROKEN)?)?;
    let abandoned = wait_for_history(&data, "tally", 0, PATIENCE, &log, |e| {
        e.outcome == "abandoned"
    })?;
    let detail = abandoned.detail.unwrap_or_default();
    assert!(
        detail.contains("the plugin failed on every event"),
        "{detail}"
    );
    assert!(
        detail.contains("the serving version carries on"),
        "{detail}"
    );
    let before = tables::checkpoint(&data, "tally").unwrap_or(0);
    wait_for_position(&data, before + 1, PATIENCE, &log)?;
    let versions = projector::store::Reader::open(&data)?
        .query("SELECT DISTINCT version FROM tally.tally")?
        .rows;
    assert_eq!(
        versions,
        vec![vec![projector::value::Value::Text("1".into())]]
    );

    let seen = history(&data, "tally").len();
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V2)?)?;
    wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
        e.outcome == "cut-over"
    })?;
    finish_tally(writer, &backlog, run, &scene, 2).await?;
    scene.stop().await?;
    Ok(())
}

/// A plugin file rewritten to declare another projection: the old projection stops (its data
/// stays queryable) and the new one starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_declares_another_name_stops_the_old_projection() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (_, writer, run) = scene
        .start_tally("info,projector::projection=error", 0)
        .await?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;
    deploy(
        &plugins,
        "tally.wasm",
        &replace_all(&v1, b"tally", b"other"),
    )?;
    let removed = wait_for_history(&data, "tally", 0, PATIENCE, &log, |e| {
        e.outcome == "removed"
    })?;
    let detail = removed.detail.unwrap_or_default();
    assert!(detail.contains("declares projection other now"), "{detail}");
    wait_for_history(&data, "other", 0, PATIENCE, &log, |e| {
        e.outcome == "started"
    })?;
    let stopped = tables::checkpoint(&data, "tally").expect("tally stays queryable");
    let started = Instant::now();
    while tables::checkpoint(&data, "other").unwrap_or(0) <= stopped {
        anyhow::ensure!(
            started.elapsed() < PATIENCE,
            "other did not pass tally\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tables::checkpoint(&data, "tally"), Some(stopped));
    writer.stop().await?;
    assert!(run.stop()?.success());
    scene.stop().await?;
    Ok(())
}
