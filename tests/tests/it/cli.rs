//! The `projector` binary as users run it: `test`, `query` and `run`, including a run killed
//! with SIGKILL again and again mid-stream.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use projector_tests::{guests, shop, tables};

const PROJECTOR: &str = env!("CARGO_BIN_EXE_projector");
pub(crate) const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/shop.jsonl");

fn projector(args: &[&str]) -> Output {
    Command::new(PROJECTOR)
        .args(args)
        .env("PROJECTOR_LOG", "warn")
        .output()
        .expect("running projector")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `projector test` prints the plugin's tables; their content is the model's.
#[test]
fn test_command_prints_the_tables() -> anyhow::Result<()> {
    let output = projector(&[
        "test",
        guests::ORDER_SUMMARY,
        "--events",
        FIXTURE,
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let expected = shop::expected(&shop::generate(2000, 42));
    assert_eq!(
        document["tables"]["orders"].as_array().map(Vec::len),
        Some(expected.orders.len())
    );
    assert_eq!(
        document["tables"]["customer_totals"]
            .as_array()
            .map(Vec::len),
        Some(expected.customer_totals.len())
    );
    assert_eq!(
        document["dead_letters"].as_array().map(Vec::len),
        Some(expected.order_dead_letters.len())
    );
    assert_eq!(document["error"], serde_json::Value::Null);

    let table = projector(&["test", guests::PAYMENTS, "--events", FIXTURE]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let stdout = text(&table.stdout);
    assert!(
        stdout.contains("customer_daily (") && stdout.contains("payments 1.0.0:"),
        "{stdout}"
    );
    Ok(())
}

/// A plugin that prints while it is loaded and while it handles events: `projector test` runs
/// it like any other (its WASI output once blocked through tokio on an async thread and
/// panicked the host).
#[test]
fn test_command_runs_a_plugin_that_prints() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        "{\"stream\":\"s-1\",\"type\":\"Print\",\"data\":\"hello\"}\n\
         {\"stream\":\"s-1\",\"type\":\"Ok\",\"data\":{}}\n",
    )?;
    let output = projector(&[
        "test",
        guests::MISBEHAVE,
        "--events",
        events.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(document["error"], serde_json::Value::Null);
    assert_eq!(
        document["tables"]["items"].as_array().map(Vec::len),
        Some(1),
        "{document}"
    );
    Ok(())
}

/// `projector test` keeps compiled plugins between runs (a Python plugin takes seconds to
/// compile): in `--cache DIR` here, by default in the user's cache directory; `--no-cache`
/// keeps nothing.
#[test]
fn test_command_keeps_compiled_plugins_between_runs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("compiled");
    // The entries, by inode: storing one writes a new file and renames it into place, while
    // loading one only reads it, so a second run that reused the entry leaves the same inode.
    let entries = || -> anyhow::Result<Vec<u64>> {
        use std::os::unix::fs::MetadataExt;
        let mut inodes = Vec::new();
        for entry in std::fs::read_dir(&cache)? {
            let entry = entry?;
            if entry.path().extension().is_some_and(|x| x == "cwasm") {
                inodes.push(entry.metadata()?.ino());
            }
        }
        Ok(inodes)
    };
    let cache_arg = cache.to_str().unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let output = projector(&[
            "test",
            guests::PAYMENTS,
            "--events",
            FIXTURE,
            "--cache",
            cache_arg,
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        seen.push(entries()?);
    }
    assert_eq!(
        seen[0].len(),
        1,
        "the first run compiled and stored one entry"
    );
    assert_eq!(seen[1], seen[0], "the second run used it, not a new one");
    // Without `--cache`: the user's cache directory, unless `--no-cache`.
    let xdg = dir.path().join("xdg");
    let with_xdg = |extra: &[&str]| {
        Command::new(PROJECTOR)
            .args(["test", guests::PAYMENTS, "--events", FIXTURE])
            .args(extra)
            .env("XDG_CACHE_HOME", &xdg)
            .env("PROJECTOR_LOG", "warn")
            .output()
            .expect("running projector")
    };
    let output = with_xdg(&["--no-cache"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!xdg.exists(), "--no-cache wrote to the user's cache");
    let output = with_xdg(&[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(xdg.join("projector/compiled/key").is_file());
    Ok(())
}

/// The value model at the boundary: the Rust build of `values` over its fixture (bodies of every
/// JSON kind, empty and binary data, the edge values bound through `sql`) matches the snapshot
/// the Python and JavaScript builds are held to as well (plugins/test-languages.sh).
#[test]
fn the_values_projection_matches_its_snapshot() {
    let plugins = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins");
    let output = projector(&[
        "test",
        guests::VALUES,
        "--events",
        &format!("{plugins}/fixtures/values.jsonl"),
        "--expect",
        &format!("{plugins}/values/expected"),
    ]);
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// `projector test --expect`: `--update` writes one snapshot file per table and one for the
/// dead letters, a second run matches them, and a changed, missing or extra file is a readable
/// difference with a non-zero exit code.
#[test]
fn test_command_compares_with_snapshots() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let expect = dir.path().join("expected");
    let expect_arg = expect.to_str().expect("utf-8 path");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "test",
            guests::ORDER_SUMMARY,
            "--events",
            FIXTURE,
            "--expect",
            expect_arg,
        ];
        args.extend_from_slice(extra);
        projector(&args)
    };

    let written = run(&["--update"]);
    assert!(written.status.success(), "{}", text(&written.stderr));
    assert!(
        text(&written.stdout).contains("wrote 3 snapshot files"),
        "{}",
        text(&written.stdout)
    );
    let model = shop::expected(&shop::generate(2000, 42));
    let orders = std::fs::read_to_string(expect.join("orders.jsonl"))?;
    // The column names, then one line per row.
    assert_eq!(orders.lines().count(), model.orders.len() + 1);
    let dead = std::fs::read_to_string(expect.join("_dead_letters.jsonl"))?;
    assert_eq!(dead.lines().count(), model.order_dead_letters.len() + 1);
    assert!(
        dead.starts_with("[\"position\",\"stream_id\",\"event_type\",\"error\"]\n"),
        "{dead}"
    );

    let matched = run(&[]);
    assert!(matched.status.success(), "{}", text(&matched.stdout));
    assert!(
        text(&matched.stdout).contains("matches"),
        "{}",
        text(&matched.stdout)
    );

    // One row changed: the old line is shown as expected, the produced one as new.
    let changed_line = orders.lines().nth(1).expect("a row").to_owned();
    let tampered = changed_line.replacen('[', "[\"tampered\",", 1);
    std::fs::write(
        expect.join("orders.jsonl"),
        orders.replacen(&changed_line, &tampered, 1),
    )?;
    std::fs::remove_file(expect.join("customer_totals.jsonl"))?;
    std::fs::write(expect.join("refunds.jsonl"), "[\"id\"]\n[1]\n")?;
    let differs = run(&[]);
    assert!(!differs.status.success());
    let report = text(&differs.stdout);
    assert!(report.contains(&format!("- {tampered}")), "{report}");
    assert!(report.contains(&format!("+ {changed_line}")), "{report}");
    assert!(
        report.contains("orders: 1 expected rows missing, 1 rows not expected"),
        "{report}"
    );
    assert!(report.contains("customer_totals: not expected"), "{report}");
    assert!(
        report.contains("refunds: expected, but the projection has no such table"),
        "{report}"
    );

    // --update accepts the output again, stale files included.
    assert!(run(&["--update"]).status.success());
    assert!(!expect.join("refunds.jsonl").exists());
    assert!(run(&[]).status.success());
    Ok(())
}

/// A module of the wrong world fails with the whole cause chain and a non-zero exit code.
#[test]
fn test_command_refuses_a_wrong_module_with_the_reason() {
    let output = projector(&["test", guests::WRONG_WORLD, "--events", FIXTURE]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: loading plugin"), "{stderr}");
    assert!(
        stderr.contains("does not implement the projector:plugin/projection@0.1.0 world"),
        "{stderr}"
    );
    // It names what is missing and what the component has instead.
    assert!(
        stderr.contains("it does not export describe or handle (its exports: greet)"),
        "{stderr}"
    );
}

/// `projector query` reads across projections and refuses to write.
#[test]
fn query_reads_but_never_writes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_str().unwrap();
    for plugin in [guests::ORDER_SUMMARY, guests::PAYMENTS] {
        let output = projector(&["test", plugin, "--events", FIXTURE, "--data", data]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let expected = shop::expected(&shop::generate(2000, 42));
    let joined = projector(&[
        "query",
        "--data",
        data,
        "--format",
        "json",
        "SELECT count(*) AS orders, (SELECT count(*) FROM payments.payments) AS payments FROM order_summary.orders",
    ]);
    assert!(joined.status.success(), "{}", text(&joined.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&joined.stdout)?;
    assert_eq!(rows[0]["orders"], expected.orders.len());
    assert_eq!(rows[0]["payments"], expected.payments.len());

    let write = projector(&["query", "--data", data, "DELETE FROM order_summary.orders"]);
    assert!(!write.status.success());
    assert!(
        text(&write.stderr).contains("read-only"),
        "{}",
        text(&write.stderr)
    );
    let count = projector(&[
        "query",
        "--data",
        data,
        "--format",
        "json",
        "SELECT count(*) AS n FROM order_summary.orders",
    ]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&count.stdout)?[0]["n"],
        expected.orders.len()
    );
    Ok(())
}

fn write_config(dir: &Path, events: &Path) -> anyhow::Result<std::path::PathBuf> {
    crate::util::example_plugins(&dir.join("plugins"))?;
    let config = dir.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nplugins_dir = \"plugins\"\n[source]\nfile = {:?}\n[batching]\nmax_events = 25\n",
            events.display()
        ),
    )?;
    Ok(config)
}

/// `projector run` killed with SIGKILL at arbitrary moments and restarted each time ends with
/// tables identical to a run that was never interrupted: nothing lost, nothing applied twice.
#[test]
fn run_survives_sigkill_at_any_moment() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, shop::to_jsonl(&shop::generate(20_000, 5)))?;

    let calm = dir.path().join("calm");
    let config = write_config(&calm, &events)?;
    let output = Command::new(PROJECTOR)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("PROJECTOR_LOG", "warn")
        .output()?;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let killed = dir.path().join("killed");
    let config = write_config(&killed, &events)?;
    let data = killed.join("data");
    let mut kills = 0u64;
    let mut positions = Vec::new();
    loop {
        let before = crate::esdb::checkpoint(&data, "order_summary");
        let mut child = Command::new(PROJECTOR)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("PROJECTOR_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()?;
        // A kill during start-up (compiling the plugin) proves nothing: wait until this run has
        // committed something, then kill it a varying moment later; after six, let it finish.
        let started = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if kills < 6 && crate::esdb::checkpoint(&data, "order_summary") != before {
                std::thread::sleep(Duration::from_millis((kills * 7919) % 120));
                break None;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(2));
        };
        match finished {
            Some(status) => {
                assert!(status.success(), "the last run failed");
                break;
            }
            None => {
                child.kill()?; // SIGKILL
                child.wait()?;
                kills += 1;
                positions.push(crate::esdb::checkpoint(&data, "order_summary"));
            }
        }
    }
    assert!(
        kills >= 3,
        "the run finished before it could be killed a few times ({kills})"
    );
    // Kills during start-up prove nothing: at least two must land mid-stream, between
    // different committed positions short of the end.
    let end = crate::esdb::checkpoint(&killed.join("data"), "order_summary");
    let mid_stream: std::collections::BTreeSet<_> = positions
        .iter()
        .flatten()
        .filter(|&&p| Some(p) < end)
        .collect();
    assert!(
        mid_stream.len() >= 2,
        "kills landed at {positions:?}, end {end:?}"
    );
    for name in ["order_summary", "payments"] {
        let calm_dump = tables::dump(&calm.join("data"), name)?;
        assert!(
            tables::dump(&killed.join("data"), name)? == calm_dump,
            "{name} differs after {kills} kills"
        );
        assert_eq!(
            tables::dead_letters(&killed.join("data"), name)?,
            tables::dead_letters(&calm.join("data"), name)?
        );
    }
    Ok(())
}

/// `projector devstore` prints a connection string the official client can use, and stops
/// cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn devstore_command_serves_the_official_client() -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut child = Command::new(PROJECTOR)
        .args(["devstore", "--listen", "127.0.0.1:0", "--memory"])
        .env("PROJECTOR_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let connection = loop {
        let line = lines
            .next()
            .expect("devstore ended before printing its connection string")?;
        if let Some(connection) = line.strip_prefix("connect with: ") {
            break connection.to_string();
        }
    };
    let client = eventstore::Client::new(format!("{connection}&discoveryInterval=0").parse()?)?;
    let event = eventstore::EventData::json("Pinged", &serde_json::json!({"n": 1}))?;
    client
        .append_to_stream("ping-1", &Default::default(), event)
        .await?;
    let mut stream = client.read_stream("ping-1", &Default::default()).await?;
    let read = stream.next().await?.expect("the appended event");
    assert_eq!(read.get_original_event().event_type, "Pinged");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    assert!(status.success(), "devstore exited with {status}");
    assert!(lines.any(|line| line.is_ok_and(|l| l == "devstore stopping")));
    Ok(())
}

/// Mistakes in how the program is asked to run are errors, not silent defaults: a log filter
/// that does not parse, and options for a projection no plugin declares (a misspelt name).
#[test]
fn misspelt_settings_are_errors() -> anyhow::Result<()> {
    let output = Command::new(PROJECTOR)
        .args(["--log", "projector=dbug", "query", "SELECT 1"])
        .output()?;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("not a log filter"),
        "{}",
        text(&output.stderr)
    );

    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), Path::new(FIXTURE))?;
    let mut written = std::fs::read_to_string(&config)?;
    written.push_str("[projections.ordr_summary]\non_error = \"stop\"\n");
    std::fs::write(&config, written)?;
    let output = projector(&["run", "--config", config.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("ordr_summary") && stderr.contains("order_summary"),
        "{stderr}"
    );
    Ok(())
}
