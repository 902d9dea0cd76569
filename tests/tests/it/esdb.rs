//! `projector run` against an EventStoreDB-compatible server (devstore, in-process) with events
//! appended by the official `eventstore` client: catch-up then live, the server restarted under
//! a running projector, the projector killed mid-stream, a filtered projection's restart, and
//! the clear errors of a bad connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use projector_tests::shop::{self, GeneratedEvent, Payload};
use projector_tests::tables;

pub const PROJECTOR: &str = env!("CARGO_BIN_EXE_projector");
pub const PROJECTIONS: [&str; 2] = ["order_summary", "payments"];

/// Starts devstore on `listen` (port 0: any free port).
pub(crate) async fn start_store(
    storage: devstore::Storage,
    listen: SocketAddr,
) -> anyhow::Result<devstore::Server> {
    devstore::Server::start(devstore::Config {
        listen,
        storage,
        ..devstore::Config::default()
    })
    .await
}

pub(crate) fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub(crate) fn client(connection: &str) -> anyhow::Result<eventstore::Client> {
    Ok(eventstore::Client::new(
        format!("{connection}&discoveryInterval=0").parse()?,
    )?)
}

/// Appends `events` one by one and returns the log positions of the first and the last.
pub(crate) async fn append(
    client: &eventstore::Client,
    events: &[GeneratedEvent],
) -> anyhow::Result<(i64, i64)> {
    let mut first = None;
    let mut last = 0;
    for event in events {
        let data = match &event.data {
            Payload::Json(value) => eventstore::EventData::json(&event.event_type, value)?,
            Payload::Garbage(text) => {
                eventstore::EventData::binary(&event.event_type, text.clone().into_bytes().into())
            }
        };
        let written = client
            .append_to_stream(event.stream.as_str(), &Default::default(), data)
            .await?;
        last = written.position.commit as i64;
        first.get_or_insert(last);
    }
    Ok((
        first.ok_or_else(|| anyhow::anyhow!("nothing to append"))?,
        last,
    ))
}

/// A folder with the example plugins and a `projector.toml` reading from `connection`.
pub(crate) fn write_config(dir: &Path, connection: &str, extra: &str) -> anyhow::Result<PathBuf> {
    let config = crate::deploy::config(dir, connection, extra)?;
    crate::util::example_plugins(&dir.join("plugins"))?;
    Ok(config)
}

/// `projector run` on `config`, its log going to `log`.
pub(crate) fn spawn_run(config: &Path, log: &Path, filter: &str) -> anyhow::Result<Child> {
    spawn_run_with(config, log, filter, &[])
}

/// [`spawn_run`] with more arguments.
pub(crate) fn spawn_run_with(
    config: &Path,
    log: &Path,
    filter: &str,
    args: &[&str],
) -> anyhow::Result<Child> {
    Ok(Command::new(PROJECTOR)
        .args(["run", "--config", config.to_str().unwrap()])
        .args(args)
        .env("PROJECTOR_LOG", filter)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?)
}

/// Asks `child` to stop as Ctrl-C would and waits for it.
pub fn interrupt(mut child: Child) -> anyhow::Result<ExitStatus> {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    Ok(child.wait()?)
}

/// The committed position of projection `name` (its current version), if it has one yet.
pub fn checkpoint(data: &Path, name: &str) -> Option<i64> {
    tables::checkpoint(data, name)
}

/// Waits until each projection has committed the last of `events` (written from position
/// `first` on) that it subscribes to; fails with the log after `timeout`. A projection cannot
/// be expected further: past its last event, only the server's periodic checkpoints move it.
pub(crate) fn wait_for(
    data: &Path,
    events: &[GeneratedEvent],
    first: i64,
    timeout: Duration,
    log: &Path,
) -> anyhow::Result<()> {
    let last = |prefix: &str| {
        events
            .iter()
            .rposition(|e| e.stream.starts_with(prefix))
            .map_or(0, |index| first + index as i64)
    };
    let targets = [
        ("order_summary", last("order-")),
        ("payments", last("payment-")),
    ];
    let started = Instant::now();
    while targets
        .iter()
        .any(|(name, target)| checkpoint(data, name).is_none_or(|at| at < *target))
    {
        if started.elapsed() > timeout {
            anyhow::bail!(
                "projections did not reach {targets:?} within {timeout:?}: {:?}\n{}",
                PROJECTIONS.map(|n| checkpoint(data, n)),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The tables and dead letters equal the model's for `events` written from position `first`.
pub(crate) fn assert_model(
    data: &Path,
    events: &[GeneratedEvent],
    first: i64,
) -> anyhow::Result<()> {
    let expected = shop::expected_from(events, first);
    assert_eq!(
        tables::rows(data, "order_summary", "orders")?,
        expected.orders
    );
    assert_eq!(
        tables::rows(data, "order_summary", "customer_totals")?,
        expected.customer_totals
    );
    assert_eq!(
        tables::rows(data, "payments", "payments")?,
        expected.payments
    );
    assert_eq!(
        tables::rows(data, "payments", "customer_daily")?,
        expected.customer_daily
    );
    let dead = |name| -> anyhow::Result<Vec<i64>> {
        Ok(tables::dead_letters(data, name)?
            .into_iter()
            .map(|d| d.0)
            .collect())
    };
    assert_eq!(dead("order_summary")?, expected.order_dead_letters);
    assert_eq!(dead("payments")?, expected.payment_dead_letters);
    Ok(())
}

/// Catch-up over what is stored, then live events as they are appended: the tables equal the
/// model at both points, the API reports both projections caught up, and Ctrl-C ends the run
/// with exit code 0.
#[tokio::test(flavor = "multi_thread")]
async fn catches_up_then_follows_live_appends() -> anyhow::Result<()> {
    let store = start_store(devstore::Storage::Memory, any_port()).await?;
    let client = client(&store.connection_string())?;
    let events = shop::generate(3000, 11);
    let (stored, live) = events.split_at(2000);
    let (first, _) = append(&client, stored).await?;

    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &store.connection_string(), "")?;
    let log = dir.path().join("run.log");
    let data = dir.path().join("data");
    let run = spawn_run_with(&config, &log, "info", &["--api", "127.0.0.1:0"])?;
    wait_for(&data, stored, first, Duration::from_secs(60), &log)?;
    assert_model(&data, stored, first)?;
    let text = std::fs::read_to_string(&log)?;
    let api = text
        .split("serving the API address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no API address logged: {text}"))?;
    // The caught-up marker may come in a batch after the one holding the last event: poll.
    let started = Instant::now();
    loop {
        let (status, body) = crate::dev::http_get(api, "/api/projections")?;
        assert!(status.contains("200"), "{status} {body}");
        let reported: serde_json::Value = serde_json::from_str(&body)?;
        let projections = reported["projections"].as_array().unwrap();
        assert_eq!(projections.len(), 2, "{body}");
        assert!(projections.iter().all(|p| p["error"].is_null()), "{body}");
        if projections.iter().all(|p| p["caught_up"] == true) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never caught up: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    append(&client, live).await?;
    wait_for(&data, &events, first, Duration::from_secs(60), &log)?;
    let status = interrupt(run)?;
    assert!(
        status.success(),
        "exit {status}: {}",
        std::fs::read_to_string(&log)?
    );
    assert_model(&data, &events, first)?;
    store.shutdown().await?;
    Ok(())
}

/// The server stops and comes back (same port, same durable log) while the projector runs and
/// events keep coming: the projector reconnects on its own, logs the outage once, and ends with
/// the tables of an uninterrupted run.
#[tokio::test(flavor = "multi_thread")]
async fn survives_the_server_restarting_mid_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = devstore::Storage::Dir(dir.path().join("store"));
    let store = start_store(storage.clone(), any_port()).await?;
    let address = store.local_addr();
    let connection = store.connection_string();
    let events = shop::generate(3000, 12);
    let (first, _) = append(&client(&connection)?, &events[..1000]).await?;

    let config = write_config(dir.path(), &connection, "")?;
    let log = dir.path().join("run.log");
    let data = dir.path().join("data");
    let run = spawn_run(&config, &log, "info")?;
    wait_for(&data, &events[..1000], first, Duration::from_secs(60), &log)?;

    store.shutdown().await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let store = start_store(storage, address).await?;
    append(&client(&connection)?, &events[1000..2000]).await?;
    wait_for(&data, &events[..2000], first, Duration::from_secs(60), &log)?;

    // And once more, with events appended right after the restart.
    store.shutdown().await?;
    let store = start_store(devstore::Storage::Dir(dir.path().join("store")), address).await?;
    append(&client(&connection)?, &events[2000..]).await?;
    wait_for(&data, &events, first, Duration::from_secs(60), &log)?;

    let status = interrupt(run)?;
    let text = std::fs::read_to_string(&log)?;
    assert!(status.success(), "exit {status}: {text}");
    // Two restarts, two outages: each logged once when it starts and once when it ends,
    // however many projections and reconnect attempts it took.
    assert_eq!(text.matches("source unavailable").count(), 2, "{text}");
    assert_eq!(text.matches("source available again").count(), 2, "{text}");
    assert_model(&data, &events, first)?;
    store.shutdown().await?;
    Ok(())
}

/// The event store is replaced by an empty one while `projector run` is connected: when the
/// subscription comes back, the projection stops saying its last event is past the new log's
/// end, instead of subscribing after a position the new store does not have (and skipping
/// every event written there until the log grows past it). The process stays up.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_replaced_while_away_stops_the_projection_instead_of_skipping() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let store = start_store(devstore::Storage::Memory, any_port()).await?;
    let address = store.local_addr();
    let connection = store.connection_string();
    let events = shop::generate(600, 14);
    let (first, _) = append(&client(&connection)?, &events).await?;
    let config = write_config(dir.path(), &connection, "")?;
    let log = dir.path().join("run.log");
    let data = dir.path().join("data");
    // Killed on drop: a failing assertion must not leave the process behind.
    let run = crate::deploy::Running::new(spawn_run(&config, &log, "info")?);
    wait_for(&data, &events, first, Duration::from_secs(60), &log)?;

    store.shutdown().await?;
    let store = start_store(devstore::Storage::Memory, address).await?;
    // A few events in the new store, at positions far below the projection's.
    append(&client(&connection)?, &events[..3]).await?;
    let started = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("past the end of") {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the projection never noticed the replaced store:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing of the new store was applied: the tables are those of the first.
    assert_model(&data, &events, first)?;
    let status = run.stop()?;
    assert!(!status.success(), "a stopped projection is a failed run");
    store.shutdown().await?;
    Ok(())
}

/// `projector run` killed with SIGKILL again and again while events are appended, and started
/// again each time, ends with the tables of the model: nothing lost, nothing applied twice.
#[tokio::test(flavor = "multi_thread")]
async fn survives_sigkill_mid_stream() -> anyhow::Result<()> {
    let store = start_store(devstore::Storage::Memory, any_port()).await?;
    let connection = store.connection_string();
    let events = shop::generate(4000, 13);
    // The last chunks wait for the kills, so on a slow machine the kills still land while
    // events are being appended.
    let (kills_done, last_chunks) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let client = client(&connection)?;
        let events = events.clone();
        tokio::spawn(async move {
            let mut first = None;
            let mut last_chunks = Some(last_chunks);
            for (index, chunk) in events.chunks(100).enumerate() {
                if index == 35
                    && let Some(signal) = last_chunks.take()
                {
                    let _ = signal.await;
                }
                first.get_or_insert(append(&client, chunk).await?.0);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            anyhow::Ok(first.expect("events"))
        })
    };

    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &connection, "[batching]\nmax_events = 25\n")?;
    let log = dir.path().join("run.log");
    let data = dir.path().join("data");
    let mut kills = 0u64;
    let mut positions = Vec::new();
    while kills < 4 {
        let before = checkpoint(&data, "order_summary");
        let mut run = spawn_run(&config, &log, "warn")?;
        // Kill it once it has committed something new, at a moment that varies.
        let started = Instant::now();
        while checkpoint(&data, "order_summary") == before {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "run {kills} made no progress: {}",
                std::fs::read_to_string(&log)?
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis((kills * 7919) % 300)).await;
        run.kill()?; // SIGKILL
        run.wait()?;
        kills += 1;
        positions.push(checkpoint(&data, "order_summary"));
    }
    let _ = kills_done.send(());
    let first = writer.await??;
    let run = spawn_run(&config, &log, "warn")?;
    wait_for(&data, &events, first, Duration::from_secs(90), &log)?;
    let status = interrupt(run)?;
    assert!(status.success(), "exit {status}");
    assert!(
        positions
            .last()
            .unwrap()
            .is_some_and(|at| at < first + 3999),
        "the kills should all come before the end: {positions:?}"
    );
    assert_model(&data, &events, first)?;
    store.shutdown().await?;
    Ok(())
}

/// A projection whose events are rare stores how far it has read the log (from the server's
/// checkpoints), so a restart subscribes from there instead of from its last event.
#[tokio::test(flavor = "multi_thread")]
async fn a_filtered_projection_restarts_from_the_log_head_not_its_last_event() -> anyhow::Result<()>
{
    let store = start_store(devstore::Storage::Memory, any_port()).await?;
    let connection = store.connection_string();
    let client = client(&connection)?;
    let events = shop::generate_with(600, 14, false);
    let payments: Vec<GeneratedEvent> = events
        .iter()
        .filter(|e| e.stream.starts_with("payment-"))
        .take(20)
        .cloned()
        .collect();
    let orders: Vec<GeneratedEvent> = events
        .iter()
        .filter(|e| e.stream.starts_with("order-"))
        .cloned()
        .collect();
    append(&client, &payments).await?;
    let (_, head) = append(&client, &orders).await?;

    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &connection, "")?;
    let plugins = dir.path().join("plugins");
    std::fs::remove_file(plugins.join("order_summary.wasm"))?;
    let data = dir.path().join("data");
    let log = dir.path().join("first.log");
    let run = spawn_run(&config, &log, "info")?;
    let started = Instant::now();
    while checkpoint(&data, "payments").is_none_or(|at| at < head) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "payments never stored the head position {head}: {:?}\n{}",
            checkpoint(&data, "payments"),
            std::fs::read_to_string(&log)?
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(interrupt(run)?.success());
    assert_eq!(checkpoint(&data, "payments"), Some(head));
    assert!(!tables::rows(&data, "payments", "payments")?.is_empty());

    let log = dir.path().join("second.log");
    let run = spawn_run(&config, &log, "info,projector::pipeline=debug")?;
    let started = Instant::now();
    let subscribed = format!("after=Some(\"{head}\")");
    while !std::fs::read_to_string(&log)?.contains(&subscribed) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the restart did not subscribe after {head}:\n{}",
            std::fs::read_to_string(&log)?
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(interrupt(run)?.success());
    assert_eq!(checkpoint(&data, "payments"), Some(head));
    store.shutdown().await?;
    Ok(())
}

/// What a wrong connection costs: an error at start that says what to check, not a retry loop.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_connection_is_a_clear_error_at_start() -> anyhow::Result<()> {
    let guarded = devstore::Server::start(devstore::Config {
        listen: any_port(),
        require_auth: true,
        ..devstore::Config::default()
    })
    .await?;
    let wrong_password = guarded
        .connection_string()
        .replace("esdb://", "esdb://admin:pw-7f3c9e@");
    let nothing_listens = {
        let listener = std::net::TcpListener::bind(any_port())?;
        let port = listener.local_addr()?.port();
        drop(listener);
        format!("esdb://127.0.0.1:{port}?tls=false")
    };
    let cases = [
        ("esdb//no-scheme", "malformed"),
        (wrong_password.as_str(), "refused the credentials"),
        (nothing_listens.as_str(), "check that the server runs"),
    ];
    for (connection, expected) in cases {
        let dir = tempfile::tempdir()?;
        let config = write_config(dir.path(), connection, "")?;
        let started = Instant::now();
        let output = Command::new(PROJECTOR)
            .args(["run", "--config", config.to_str().unwrap()])
            .env("PROJECTOR_LOG", "error")
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{connection}: {stderr}");
        assert!(stderr.contains(expected), "{connection}: {stderr}");
        assert!(
            !stderr.contains("pw-7f3c9e"),
            "the password leaked: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{connection}");
    }
    guarded.shutdown().await?;
    Ok(())
}

/// TLS (a self-signed certificate, not verified) and credentials work as the connection string
/// says, through to the tables.
#[tokio::test(flavor = "multi_thread")]
async fn connects_with_tls_and_credentials() -> anyhow::Result<()> {
    let store = devstore::Server::start(devstore::Config {
        listen: any_port(),
        tls: devstore::Tls::SelfSigned,
        require_auth: true,
        ..devstore::Config::default()
    })
    .await?;
    let connection = store
        .connection_string()
        .replace("esdb://", "esdb://admin:changeit@");
    assert!(connection.contains("tls=true"), "{connection}");
    let events = shop::generate(300, 15);
    let (first, _) = append(&client(&connection)?, &events).await?;

    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &connection, "")?;
    let log = dir.path().join("run.log");
    let data = dir.path().join("data");
    let run = spawn_run(&config, &log, "info")?;
    wait_for(&data, &events, first, Duration::from_secs(60), &log)?;
    assert!(interrupt(run)?.success());
    assert_model(&data, &events, first)?;
    let text = std::fs::read_to_string(&log)?;
    assert!(!text.contains("changeit"), "the password leaked: {text}");
    store.shutdown().await?;
    Ok(())
}
