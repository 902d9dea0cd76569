//! What comes after a deployment, with the real binary, devstore and the official client:
//! rollback to a kept version from its checkpoint, retention of old versions, removal and a
//! burst of writes to one file, and SIGKILL during a shadow rebuild and its cut-over.

use std::path::Path;
use std::time::{Duration, Instant};

use projector_tests::{guests, tables};

use crate::deploy::{
    self, PATIENCE, Scene, deploy, finish_tally, history, poison, read, rebuilt, replace_all,
    sha256, tail, tally_model, wait_for_history, wait_for_position,
};

/// After a cut-over to 2.0.0, `projector rollback` makes 1.0.0 current again: it resumes from
/// its own checkpoint (the subscription starts there, not at the start of the log) and its
/// tables are whole; the folder's 2.0.0 is not applied again until a different file appears,
/// which then rebuilds as usual.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_resumes_the_kept_version_from_its_checkpoint() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (backlog, writer, run) = scene
        .start_tally(
            "info,projector::pipeline::feed=debug,projector::projection=error",
            0,
        )
        .await?;
    let (plugins, data, log) = scene.paths();
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

    finish_tally(writer, &backlog, run, &scene, 2).await?;
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
    let (backlog, writer, run) = scene.start_tally("info", 0).await?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;

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

    finish_tally(writer, &backlog, run, &scene, 1).await?;
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
    let (backlog, writer, run) = scene.start_tally("info", 4000).await?;
    let (plugins, data, log) = scene.paths();
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
    finish_tally(writer, &backlog, run, &scene, 2).await?;
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

/// Three versions in turn (1.0.0, 2.0.0, then 2.0.1: 2.0.0 with its version bytes patched):
/// after the second cut-over the newest two versions that served are kept (the default
/// `keep_versions`), 1.0.0's database and module are deleted, and rolling back to it is refused
/// with the versions that are kept.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_newest_versions_are_kept() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (backlog, writer, run) = scene.start_tally("info", 0).await?;
    let (plugins, data, log) = scene.paths();
    let v2 = read(guests::TALLY_V2)?;
    for wasm in [v2.clone(), replace_all(&v2, b"2.0.0", b"2.0.1")] {
        let seen = history(&data, "tally").len();
        deploy(&plugins, "tally.wasm", &wasm)?;
        wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
            e.outcome == "cut-over"
        })?;
    }
    // Retention runs right after the cut-over is recorded: give it a moment.
    let kept = |data: &Path| -> anyhow::Result<Vec<String>> {
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
        Ok(kept)
    };
    let expected = ["2.0.0.db", "2.0.0.wasm", "2.0.1.db", "2.0.1.wasm"];
    let started = Instant::now();
    while kept(&data)? != expected && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kept(&data)?, expected);
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
    finish_tally(writer, &backlog, run, &scene, 2).await?;
    scene.stop().await?;
    Ok(())
}

/// Two files declaring one projection: the later is refused; when the first is removed, the
/// refused one takes over, continuing from the checkpoint (same version).
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_duplicate_takes_over_when_the_first_file_goes() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (backlog, writer, run) = scene
        .start_tally("info,projector::projection=error", 0)
        .await?;
    let (plugins, data, log) = scene.paths();
    let v1 = read(guests::TALLY_V1)?;
    let copy = rebuilt(&v1, "copy");
    deploy(&plugins, "tally-copy.wasm", &copy)?;
    wait_for_history(&data, "tally", 0, PATIENCE, &log, |e| {
        e.outcome == "refused" && e.plugin_file.as_deref() == Some("tally-copy.wasm")
    })?;
    let seen = history(&data, "tally").len();
    std::fs::remove_file(plugins.join("tally.wasm"))?;
    let started = wait_for_history(&data, "tally", seen, PATIENCE, &log, |e| {
        e.outcome == "started"
    })?;
    assert_eq!(started.plugin_file.as_deref(), Some("tally-copy.wasm"));
    assert_eq!(started.to_sha256.as_deref(), Some(sha256(&copy).as_str()));
    finish_tally(writer, &backlog, run, &scene, 1).await?;
    scene.stop().await?;
    Ok(())
}
