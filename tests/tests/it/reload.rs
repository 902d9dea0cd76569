//! Hot reload with the real binary, devstore and events appended continuously by the official
//! client: same-version swaps, a shadow rebuild with its cut-over, refused modules, rollback,
//! removal, and a burst of writes to one file.

use std::path::Path;
use std::time::{Duration, Instant};

use projector_tests::{guests, shop, tables};

use crate::deploy::{
    self, Running, Scene, Writer, deploy, history, poison, rebuilt, sha256, tail, tally_model,
    wait_for_history, wait_for_position,
};
use crate::esdb::{append, spawn_run_with};

const PATIENCE: Duration = Duration::from_secs(60);

fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(path)?)
}

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

    let written = writer.stop().await?;
    let mut all = backlog.lock().unwrap().clone();
    all.extend(written);
    wait_for_position(&data, all.last().unwrap().0, PATIENCE, &log)?;
    let status = run.stop()?;
    assert!(status.success(), "exit {status}\n{}", tail(&log));
    assert_eq!(tables::rows(&data, "tally", "tally")?, tally_model(&all, 2));
    let dead: Vec<i64> = tables::dead_letters(&data, "tally")?
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(dead, poison(&all));
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
    let connection = scene.connection.clone();
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;
    deploy(&plugins, "tally.wasm", &v1)?;
    let run = scene.run("info")?;
    wait_for_position(&data, 1, PATIENCE, &log)?;
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
            "schema",
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
    let written = writer.stop().await?;
    wait_for_position(&data, written.last().unwrap().0, PATIENCE, &log)?;
    assert!(run.stop()?.success());
    assert_eq!(
        tables::rows(&data, "tally", "tally")?,
        tally_model(&written, 1)
    );
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

/// After a cut-over to 2.0.0, `projector rollback` makes 1.0.0 current again: it resumes from
/// its own checkpoint (the subscription starts there, not at the start of the log) and its
/// tables are whole; the folder's 2.0.0 is not applied again until a different file appears,
/// which then rebuilds as usual.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_resumes_the_kept_version_from_its_checkpoint() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let connection = scene.connection.clone();
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let run = scene.run("info,projector::pipeline::feed=debug,projector::projection=error")?;
    wait_for_position(&data, 50, PATIENCE, &log)?;
    let v2 = read(guests::TALLY_V2)?;
    deploy(&plugins, "tally.wasm", &v2)?;
    wait_for_history(&data, "tally", 0, PATIENCE, &log, |e| {
        e.outcome == "cut-over"
    })?;
    // The old version's file stopped where the cut-over left it.
    let v1_file = std::fs::read_dir(data.join("tally"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("1.0.0-"))
                && p.extension().is_some_and(|e| e == "db")
        })
        .expect("the 1.0.0 file is kept");
    let stopped_at = checkpoint_of(&v1_file)?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let seen = history(&data, "tally").len();
    let output = std::process::Command::new(crate::esdb::PROJECTOR)
        .args(["rollback", "--data", data.to_str().unwrap(), "tally"])
        .output()?;
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("rolling tally back from 2.0.0 to 1.0.0"),
        "{said}"
    );
    wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
        e.outcome == "rolled-back"
    })?;
    let text = std::fs::read_to_string(&log)?;
    let resumed = format!("subscribing projection=\"tally\" after=Some(\"{stopped_at}\")");
    assert!(text.contains(&resumed), "no `{resumed}` in\n{}", tail(&log));
    let result =
        projector::store::Reader::open(&data)?.query("SELECT DISTINCT version FROM tally.tally")?;
    assert_eq!(
        result.rows,
        vec![vec![projector::value::Value::Text("1".into())]]
    );

    // The folder still holds 2.0.0: it is held back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = history(&data, "tally");
    assert!(
        !after
            .iter()
            .skip(seen)
            .any(|e| e.outcome == "shadow-started"),
        "{after:#?}"
    );
    // A different file of 2.0.0 rebuilds again.
    let seen = after.len();
    deploy(&plugins, "tally.wasm", &rebuilt(&v2, "again"))?;
    wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
        e.outcome == "cut-over"
    })?;

    let written = writer.stop().await?;
    wait_for_position(&data, written.last().unwrap().0, PATIENCE, &log)?;
    assert!(run.stop()?.success());
    assert_eq!(
        tables::rows(&data, "tally", "tally")?,
        tally_model(&written, 2)
    );
    scene.stop().await?;
    Ok(())
}

/// The committed position in a projection database file.
fn checkpoint_of(db: &Path) -> anyhow::Result<i64> {
    let connection =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(connection.query_row(
        "SELECT commit_position FROM _projector_checkpoint",
        [],
        |r| r.get(0),
    )?)
}

/// Removing a plugin file stops its projection and leaves its data queryable; adding it back
/// resumes from the checkpoint. A burst of 20 writes to one file is one reload.
#[tokio::test(flavor = "multi_thread")]
async fn removal_keeps_the_data_and_a_burst_of_writes_is_one_reload() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let connection = scene.connection.clone();
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;
    deploy(&plugins, "tally.wasm", &v1)?;
    let run = scene.run("info")?;
    wait_for_position(&data, 50, PATIENCE, &log)?;

    std::fs::remove_file(plugins.join("tally.wasm"))?;
    wait_for_history(&data, "tally", 0, PATIENCE, &log, |e| {
        e.outcome == "removed"
    })?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = tables::checkpoint(&data, "tally").expect("queryable");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        tables::checkpoint(&data, "tally"),
        Some(stopped),
        "it kept projecting"
    );
    assert!(!tables::rows(&data, "tally", "tally")?.is_empty());

    let seen = history(&data, "tally").len();
    deploy(&plugins, "tally.wasm", &v1)?;
    let started = wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
        e.outcome == "started"
    })?;
    assert_eq!(started.to_version.as_deref(), Some("1.0.0"));
    wait_for_position(&data, stopped + 1, PATIENCE, &log)?;

    // 20 writes of one file, 20 ms apart, in place: one settled change, one swap.
    let burst = rebuilt(&v1, "burst");
    let seen = history(&data, "tally").len();
    {
        use std::io::Write;
        let mut file = std::fs::File::create(plugins.join("tally.wasm"))?;
        for chunk in burst.chunks(burst.len().div_ceil(20)) {
            file.write_all(chunk)?;
            file.flush()?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let burst_sha = sha256(&burst);
    wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
        e.to_sha256.as_deref() == Some(burst_sha.as_str())
    })?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reloads: Vec<String> = history(&data, "tally")
        .iter()
        .skip(seen)
        .map(|e| e.outcome.clone())
        .collect();
    assert_eq!(reloads, ["swapped"], "{:#?}", history(&data, "tally"));

    let written = writer.stop().await?;
    wait_for_position(&data, written.last().unwrap().0, PATIENCE, &log)?;
    assert!(run.stop()?.success());
    assert_eq!(
        tables::rows(&data, "tally", "tally")?,
        tally_model(&written, 1)
    );
    assert_eq!(
        tables::dead_letters(&data, "tally")?
            .iter()
            .map(|d| d.0)
            .collect::<Vec<_>>(),
        poison(&written)
    );
    scene.stop().await?;
    Ok(())
}

/// `projector run` killed with SIGKILL again and again while 2.0.0 rebuilds beside 1.0.0, once
/// the moment the rebuild has caught up (racing the cut-over), and started again each time:
/// after every kill the current version is 1.0.0 or 2.0.0, whole (its tables are its model at
/// its checkpoint: nothing lost, nothing applied twice, no mix), and the rebuild resumes from
/// its own checkpoint until it cuts over.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_rebuild_and_its_cut_over_leaves_one_version_whole() -> anyhow::Result<()>
{
    let scene = Scene::new("[batching]\nmax_events = 10\n").await?;
    let connection = scene.connection.clone();
    let backlog = Writer::backlog(&connection, 4000).await?;
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let run = scene.run("info")?;
    let last_backlog = backlog.lock().unwrap().last().unwrap().0;
    wait_for_position(&data, last_backlog, PATIENCE, &log)?;
    drop(run); // SIGKILL
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V2)?)?;

    let mut kills = Vec::new();
    for round in 0..8u64 {
        let cut_over = |data: &Path| {
            history(data, "tally")
                .iter()
                .any(|e| e.outcome == "cut-over")
        };
        if cut_over(&data) && round >= 4 {
            break;
        }
        let log_round = log.with_file_name(format!("run-{round}.log"));
        let run = scene.run_logging_to("info,projector::projection=error", &log_round)?;
        if round == 2 {
            // Kill the moment the rebuild reports it has caught up: the cut-over follows
            // within milliseconds.
            let started = Instant::now();
            while !std::fs::read_to_string(&log_round)?
                .contains("caught up projection=\"tally\" role=\"rebuilding\"")
            {
                if started.elapsed() > PATIENCE || cut_over(&data) {
                    break;
                }
                std::thread::yield_now();
            }
        } else {
            tokio::time::sleep(Duration::from_millis(150 + round * 170)).await;
        }
        drop(run); // SIGKILL
        kills.push(cut_over(&data));
        // Appends acknowledged after the kill may still be on their way back.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_whole(&data, &backlog, &writer.appended)?;
    }
    eprintln!("cut over before each kill: {kills:?}");
    assert!(
        kills.contains(&false),
        "no kill landed during the rebuild: {kills:?}"
    );
    let run = scene.run("info")?;
    wait_for_history(&data, "tally", 0, PATIENCE, &log, |e| {
        e.outcome == "cut-over"
    })?;
    let written = writer.stop().await?;
    let mut all = backlog.lock().unwrap().clone();
    all.extend(written);
    wait_for_position(&data, all.last().unwrap().0, PATIENCE, &log)?;
    assert!(run.stop()?.success());
    assert_eq!(tables::rows(&data, "tally", "tally")?, tally_model(&all, 2));
    let dead: Vec<i64> = tables::dead_letters(&data, "tally")?
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(dead, poison(&all));
    scene.stop().await?;
    Ok(())
}

/// The current version of tally is one version whole: its tables and dead letters are that
/// version's model over the events at or before its checkpoint.
fn assert_whole(
    data: &Path,
    backlog: &deploy::Appended,
    live: &deploy::Appended,
) -> anyhow::Result<()> {
    let reader = projector::store::Reader::open(data)?;
    let versions = reader
        .query("SELECT DISTINCT version FROM tally.tally")?
        .rows;
    let version = match versions.as_slice() {
        [row] if row[0] == projector::value::Value::Text("1".into()) => 1,
        [row] if row[0] == projector::value::Value::Text("2".into()) => 2,
        rows => anyhow::bail!("the current tables mix versions: {rows:?}"),
    };
    let checkpoint = tables::checkpoint(data, "tally").expect("a checkpoint");
    let mut events = backlog.lock().unwrap().clone();
    events.extend(live.lock().unwrap().iter().cloned());
    events.retain(|(position, _)| *position <= checkpoint);
    assert_eq!(
        tables::rows(data, "tally", "tally")?,
        tally_model(&events, version),
        "version {version} at {checkpoint}"
    );
    let dead: Vec<i64> = tables::dead_letters(data, "tally")?
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(dead, poison(&events), "version {version} at {checkpoint}");
    Ok(())
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

/// `bytes` with every occurrence of `from` replaced by `to` (of the same length).
fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut index = 0;
    while let Some(found) = out[index..].windows(from.len()).position(|w| w == from) {
        out[index + found..index + found + to.len()].copy_from_slice(to);
        index += found + to.len();
    }
    out
}

/// Three versions in turn (1.0.0, 2.0.0, then 2.0.1: 2.0.0 with its version bytes patched):
/// after the second cut-over the newest two versions that served are kept (the default
/// `keep_versions`), 1.0.0's database and module are deleted, and rolling back to it is refused
/// with the versions that are kept.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_newest_versions_are_kept() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let connection = scene.connection.clone();
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let run = scene.run("info")?;
    wait_for_position(&data, 20, PATIENCE, &log)?;
    let v2 = read(guests::TALLY_V2)?;
    for wasm in [v2.clone(), replace_all(&v2, b"2.0.0", b"2.0.1")] {
        let seen = history(&data, "tally").len();
        deploy(&plugins, "tally.wasm", &wasm)?;
        wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
            e.outcome == "cut-over"
        })?;
    }
    let mut kept: Vec<String> = std::fs::read_dir(data.join("tally"))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| !name.contains("-wal") && !name.contains("-shm"))
        .map(|name| {
            name.split('-').next().unwrap_or_default().to_string()
                + "."
                + name.rsplit('.').next().unwrap_or_default()
        })
        .collect();
    kept.sort();
    assert_eq!(kept, ["2.0.0.db", "2.0.0.wasm", "2.0.1.db", "2.0.1.wasm"]);
    let output = std::process::Command::new(crate::esdb::PROJECTOR)
        .args([
            "rollback",
            "--data",
            data.to_str().unwrap(),
            "tally",
            "--to",
            "1.0.0",
        ])
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no kept version 1.0.0 of tally; the earlier versions kept are: 2.0.0"),
        "{stderr}"
    );
    let written = writer.stop().await?;
    wait_for_position(&data, written.last().unwrap().0, PATIENCE, &log)?;
    assert!(run.stop()?.success());
    assert_eq!(
        tables::rows(&data, "tally", "tally")?,
        tally_model(&written, 2)
    );
    scene.stop().await?;
    Ok(())
}

/// A 2.0.0 that loads fine but traps on every event: its shadow rebuild stops at the first
/// batch and is abandoned with the reason, while 1.0.0 keeps serving and advancing; a good
/// 2.0.0 deployed afterwards rebuilds and cuts over as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_rebuild_is_abandoned_and_the_serving_version_carries_on() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let connection = scene.connection.clone();
    let backlog = Writer::backlog(&connection, 500).await?;
    let writer = Writer::start(&connection, 200)?;
    let (plugins, data, log) = scene.paths();
    deploy(&plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let run = scene.run("info,projector::projection=error")?;
    let last_backlog = backlog.lock().unwrap().last().unwrap().0;
    wait_for_position(&data, last_backlog, PATIENCE, &log)?;

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
    let written = writer.stop().await?;
    let mut all = backlog.lock().unwrap().clone();
    all.extend(written);
    wait_for_position(&data, all.last().unwrap().0, PATIENCE, &log)?;
    assert!(run.stop()?.success());
    assert_eq!(tables::rows(&data, "tally", "tally")?, tally_model(&all, 2));
    scene.stop().await?;
    Ok(())
}

/// A plugin file rewritten to declare another projection: the old projection stops (its data
/// stays queryable) and the new one starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_declares_another_name_stops_the_old_projection() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let writer = Writer::start(&scene.connection, 200)?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;
    deploy(&plugins, "tally.wasm", &v1)?;
    let run = scene.run("info,projector::projection=error")?;
    wait_for_position(&data, 20, PATIENCE, &log)?;
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
