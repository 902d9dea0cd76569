//! Dead letters an operator can work with, with the real binary, devstore and the official
//! client: listed and shown by `projector dlq`, retried by hand (in a running projector and on
//! a stopped data directory) and on their own when a fixed plugin is hot-loaded, after which
//! the tables equal a run of the fixed plugin from the start.

use std::path::Path;
use std::time::Instant;

use projector_tests::modules::deploy;
use projector_tests::tables;

use crate::deploy::{
    PATIENCE, Scene, poison, read, tail, tally_model, tally_model_accepting_poison,
    wait_for_position,
};
use crate::esdb::PROJECTOR;

/// Runs `projector dlq <args>` and returns its stdout, or fails with its stderr.
fn dlq(args: &[&str]) -> anyhow::Result<String> {
    let output = std::process::Command::new(PROJECTOR)
        .arg("dlq")
        .args(args)
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "projector dlq {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The dead letters `projector dlq list --json` lists: `(id, attempts, refused_by)`.
fn listed(data: &Path) -> anyhow::Result<Vec<(i64, u64, Vec<String>)>> {
    let text = dlq(&["list", "--json", "--data", data.to_str().unwrap(), "tally"])?;
    let letters: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    Ok(letters
        .iter()
        .map(|letter| {
            let builds = letter["refused_by"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_str().unwrap().to_string())
                .collect();
            (
                letter["id"].as_i64().unwrap(),
                letter["attempts"].as_u64().unwrap(),
                builds,
            )
        })
        .collect())
}

/// tally 1.0.0 refuses `Poison`; its dead letters are listed with their errors and payloads;
/// hot-loading a fixed 1.0.0 retries them on its own, and in the end the tables are what the
/// fixed plugin builds from the start of the log, with no dead letter left.
#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_plugin_retries_the_dead_letters_of_the_broken_one() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (plugins, data, log) = scene.paths();
    let (earlier, writer, run) = scene.start_tally("info", 200).await?;
    let refused = poison(&earlier.lock().unwrap());
    assert!(refused.len() >= 5, "the backlog should hold Poison events");
    let dead = listed(&data)?;
    let ids: Vec<i64> = dead.iter().map(|d| d.0).collect();
    assert_eq!(&ids[..refused.len()], &refused[..]);
    let v1 = projector_tests::modules::sha256(&read(projector_tests::guests::TALLY_V1)?);
    assert!(dead.iter().all(|d| d.2 == vec![v1.clone()]), "{dead:?}");
    let shown = dlq(&[
        "show",
        "--data",
        data.to_str().unwrap(),
        "--id",
        &refused[0].to_string(),
        "tally",
    ])?;
    assert!(shown.contains("tally 1.0.0 refuses Poison"), "{shown}");
    assert!(shown.contains("data (utf-8)"), "{shown}");

    deploy(
        &plugins,
        "tally.wasm",
        &read(projector_tests::guests::TALLY_ACCEPTS_POISON)?,
    )?;
    // The swap retries every dead letter the new build has not refused: all of them.
    let started = Instant::now();
    while !tables::dead_letters(&data, "tally")?.is_empty() {
        anyhow::ensure!(
            started.elapsed() < PATIENCE,
            "the dead letters were not retried: {:?}\n{}",
            listed(&data)?,
            tail(&log)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut all = earlier.lock().unwrap().clone();
    all.extend(writer.stop().await?);
    wait_for_position(&data, all.last().unwrap().0, PATIENCE, &log)?;
    let status = run.stop()?;
    anyhow::ensure!(status.success(), "exit {status}\n{}", tail(&log));
    let rows = tables::rows(&data, "tally", "tally")?;
    assert_eq!(rows, tally_model_accepting_poison(&all));
    assert!(tables::dead_letters(&data, "tally")?.is_empty());
    // And what the fixed build makes of the whole log in one run from the start.
    let fresh = tempfile::tempdir()?;
    let mut fixed = crate::util::open(
        &crate::util::runtime(),
        projector_tests::guests::TALLY_ACCEPTS_POISON,
        fresh.path(),
        projector::projection::ErrorPolicy::DeadLetter,
    )?;
    let events: Vec<_> = all
        .iter()
        .map(|(position, event_type)| crate::util::event(*position as u64, event_type, "{}"))
        .collect();
    for batch in events.chunks(100) {
        fixed.apply(batch, None)?;
    }
    assert_eq!(rows, tables::rows(fresh.path(), "tally", "tally")?);
    scene.stop().await
}

/// `projector dlq retry` and `drop` work against a running projector and on a stopped data
/// directory; a retry on the code that refused a dead letter keeps it, with one more attempt;
/// changing anything needs `--id` or `--all`.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_retried_and_dropped_by_hand() -> anyhow::Result<()> {
    let scene = Scene::new("").await?;
    let (_plugins, data, log) = scene.paths();
    let (earlier, writer, run) = scene.start_tally("info", 150).await?;
    let data_arg = data.to_str().unwrap();
    let before = listed(&data)?;
    let first = before[0].0.to_string();

    let error = dlq(&["retry", "--data", data_arg, "tally"]).unwrap_err();
    assert!(error.to_string().contains("--id <id>"), "{error}");
    let answer = dlq(&["retry", "--data", data_arg, "--id", &first, "tally"])?;
    assert!(
        answer.contains("1 retried: 0 projected, 1 refused again"),
        "{answer}"
    );
    let after = listed(&data)?;
    assert_eq!(after[0].1, before[0].1 + 1, "one more attempt");
    assert_eq!(after[0].2, before[0].2, "the same build refused it");

    let all = {
        let mut all = earlier.lock().unwrap().clone();
        all.extend(writer.stop().await?);
        all
    };
    wait_for_position(&data, all.last().unwrap().0, PATIENCE, &log)?;
    let status = run.stop()?;
    anyhow::ensure!(status.success(), "exit {status}\n{}", tail(&log));

    // Nothing runs now: the command does it on the data directory, with the kept module.
    let answer = dlq(&["retry", "--data", data_arg, "--all", "--json", "tally"])?;
    let report: serde_json::Value = serde_json::from_str(&answer)?;
    assert_eq!(report["retried"], serde_json::json!(poison(&all).len()));
    assert_eq!(report["refused"], report["retried"]);
    let answer = dlq(&["drop", "--data", data_arg, "--id", &first, "tally"])?;
    assert!(answer.contains("1 dead letters dropped"), "{answer}");
    let left: Vec<i64> = listed(&data)?.iter().map(|d| d.0).collect();
    assert_eq!(left, poison(&all)[1..]);
    // Retries and drops touched the dead letters only.
    assert_eq!(tables::rows(&data, "tally", "tally")?, tally_model(&all, 1));
    scene.stop().await
}
