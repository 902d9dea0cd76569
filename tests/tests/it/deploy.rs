//! Helpers for the hot-reload tests: deploying modules the way operators do (a temporary name,
//! then a rename), new bytes for the same module, the tally workload appended by the official
//! client with its independent model, and the reload history read from the catalog.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use projector::store::{Catalog, HistoryEntry};
use projector::value::Value;
use projector_tests::tables;

pub use projector_tests::modules::{deploy, rebuilt, sha256};

/// The reload history of `projection` in `data` (oldest first), or nothing before the catalog
/// exists.
pub fn history(data: &Path, projection: &str) -> Vec<HistoryEntry> {
    Catalog::open_read_only(data)
        .ok()
        .flatten()
        .and_then(|catalog| catalog.history(Some(projection), 10_000).ok())
        .unwrap_or_default()
}

/// Waits until `projection`'s history holds an entry that `wanted` accepts, beyond the first
/// `seen` entries; returns it. Fails with the history and the log after `timeout`.
pub fn wait_for_history(
    data: &Path,
    projection: &str,
    seen: usize,
    timeout: Duration,
    log: &Path,
    wanted: impl Fn(&HistoryEntry) -> bool,
) -> anyhow::Result<HistoryEntry> {
    let started = Instant::now();
    loop {
        let entries = history(data, projection);
        if let Some(found) = entries.iter().skip(seen).find(|e| wanted(e)) {
            return Ok(found.clone());
        }
        if started.elapsed() > timeout {
            anyhow::bail!(
                "no such reload outcome of {projection} within {timeout:?}; history: {entries:#?}\nlog:\n{}",
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last 200 lines of a log file.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}

/// Events of the tally workload as appended: `(position, event type)`, in log order.
pub type Appended = Arc<Mutex<Vec<(i64, String)>>>;

/// The tally workload: events of types `A`, `B` and `C`, every 37th a `Poison` the plugin
/// refuses, appended one at a time through the official client at about `rate` per second
/// until stopped.
pub struct Writer {
    /// What was appended so far.
    pub appended: Appended,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Writer {
    /// Starts appending to the server at `connection`.
    pub fn start(connection: &str, rate: u32) -> anyhow::Result<Writer> {
        let client = crate::esdb::client(connection)?;
        let appended: Appended = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (appended, stop) = (Arc::clone(&appended), Arc::clone(&stop));
            tokio::spawn(async move {
                let pause = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                let mut next = tokio::time::Instant::now();
                let mut index = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    append_one(&client, &appended, index).await?;
                    index += 1;
                    next += pause;
                    tokio::time::sleep_until(next).await;
                }
                anyhow::Ok(())
            })
        };
        Ok(Writer {
            appended,
            stop,
            task,
        })
    }

    /// Appends `count` events as fast as the server takes them (a backlog).
    pub async fn backlog(connection: &str, count: u64) -> anyhow::Result<Appended> {
        let client = crate::esdb::client(connection)?;
        let appended: Appended = Arc::default();
        for index in 0..count {
            append_one(&client, &appended, index).await?;
        }
        Ok(appended)
    }

    /// Stops appending; returns every event appended.
    pub async fn stop(self) -> anyhow::Result<Vec<(i64, String)>> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await??;
        Ok(self.appended.lock().unwrap().clone())
    }
}

async fn append_one(
    client: &eventstore::Client,
    appended: &Appended,
    index: u64,
) -> anyhow::Result<()> {
    let event_type = if index % 37 == 36 {
        "Poison"
    } else {
        ["A", "B", "C"][(index % 3) as usize]
    };
    let data = eventstore::EventData::json(event_type, &serde_json::json!({ "n": index }))?;
    let written = client
        .append_to_stream(format!("tally-{}", index % 11), &Default::default(), data)
        .await?;
    appended
        .lock()
        .unwrap()
        .push((written.position.commit as i64, event_type.to_string()));
    Ok(())
}

/// The rows of the tally table that `version` (1 or 2) builds from `events`: per type, the
/// count (times 2 for version 2), the version and the last position; `Poison` is refused.
pub fn tally_model(events: &[(i64, String)], version: i64) -> Vec<Vec<Value>> {
    tally_rows(events.iter().filter(|(_, t)| t != "Poison"), version)
}

/// The rows the `accepts-poison` build (a 1.0.0 that counts `Poison` too) builds from `events`.
pub fn tally_model_accepting_poison(events: &[(i64, String)]) -> Vec<Vec<Value>> {
    tally_rows(events.iter(), 1)
}

fn tally_rows<'e>(
    events: impl Iterator<Item = &'e (i64, String)>,
    version: i64,
) -> Vec<Vec<Value>> {
    let mut by_type: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for (position, event_type) in events {
        let entry = by_type.entry(event_type).or_default();
        entry.0 += version;
        entry.1 = *position;
    }
    by_type
        .into_iter()
        .map(|(event_type, (events, last))| {
            vec![
                Value::Text(event_type.to_string()),
                Value::Integer(events),
                Value::Text(version.to_string()),
                Value::Integer(last),
            ]
        })
        .collect()
}

/// The positions of the `Poison` events among `events`: what tally dead-letters.
pub fn poison(events: &[(i64, String)]) -> Vec<i64> {
    events
        .iter()
        .filter(|(_, t)| t == "Poison")
        .map(|(p, _)| *p)
        .collect()
}

/// Waits until the current version of tally has committed `position`.
pub fn wait_for_position(
    data: &Path,
    position: i64,
    timeout: Duration,
    log: &Path,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while tables::checkpoint(data, "tally").is_none_or(|at| at < position) {
        if started.elapsed() > timeout {
            anyhow::bail!(
                "tally did not reach {position} within {timeout:?} (at {:?})\n{}",
                tables::checkpoint(data, "tally"),
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A folder holding a `projector.toml` reading from `connection`, with an empty plugins folder.
pub fn config(dir: &Path, connection: &str, extra: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("plugins"))?;
    let config = dir.join("projector.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nplugins_dir = \"plugins\"\n[source]\nconnection = {connection:?}\n\
             reconnect_max_ms = 500\n{extra}"
        ),
    )?;
    Ok(config)
}

/// A `projector` process that is killed if the test ends without stopping it (a failing
/// assertion must not leave it running).
pub struct Running(Option<std::process::Child>);

impl Running {
    /// Guards `child`.
    pub fn new(child: std::process::Child) -> Running {
        Running(Some(child))
    }

    /// Asks it to stop as Ctrl-C would and waits for it.
    pub fn stop(mut self) -> anyhow::Result<std::process::ExitStatus> {
        crate::esdb::interrupt(self.0.take().expect("running"))
    }

    /// Asks it to stop as Ctrl-C would; returns how it exited and how long that took, or
    /// fails (and kills it) if it is still running after `limit`.
    pub fn stop_within(
        mut self,
        limit: Duration,
    ) -> anyhow::Result<(std::process::ExitStatus, Duration)> {
        let child = self.0.as_mut().expect("running");
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()?;
        let asked = Instant::now();
        while asked.elapsed() < limit {
            if let Some(status) = child.try_wait()? {
                self.0 = None;
                return Ok((status, asked.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("still running {limit:?} after Ctrl-C")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a hot-reload test runs against: devstore in this process, and a folder with a
/// `projector.toml` reading from it, an empty plugins folder, the data directory and the log.
pub struct Scene {
    pub store: devstore::Server,
    pub connection: String,
    pub config: PathBuf,
    pub plugins: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Scene {
    /// A fresh scene whose config ends with `extra` (TOML).
    pub async fn new(extra: &str) -> anyhow::Result<Scene> {
        let store =
            crate::esdb::start_store(devstore::Storage::Memory, crate::esdb::any_port()).await?;
        let connection = store.connection_string();
        let dir = tempfile::tempdir()?;
        let config = config(dir.path(), &connection, extra)?;
        Ok(Scene {
            store,
            connection,
            config,
            plugins: dir.path().join("plugins"),
            data: dir.path().join("data"),
            log: dir.path().join("run.log"),
            _dir: dir,
        })
    }

    /// The plugins folder, the data directory and the log.
    pub fn paths(&self) -> (PathBuf, PathBuf, PathBuf) {
        (self.plugins.clone(), self.data.clone(), self.log.clone())
    }

    /// `projector run` on the scene's config, logging at `filter` to `log`.
    pub fn run_logging_to(&self, filter: &str, log: &Path) -> anyhow::Result<Running> {
        Ok(Running::new(crate::esdb::spawn_run(
            &self.config,
            log,
            filter,
        )?))
    }

    /// `projector run` on the scene's config, logging at `filter` to the scene's log.
    pub fn run(&self, filter: &str) -> anyhow::Result<Running> {
        self.run_logging_to(filter, &self.log)
    }

    /// `projector run` on the scene's config serving the API on a free port, logging at
    /// `filter` to the scene's log; returns it with the API's address once it serves.
    pub fn run_api(&self, filter: &str) -> anyhow::Result<(Running, String)> {
        let run = Running::new(crate::esdb::spawn_run_with(
            &self.config,
            &self.log,
            filter,
            &["--api", "127.0.0.1:0"],
        )?);
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(rest) = text.split("serving the API address=").nth(1) {
                let address = rest.split_whitespace().next().unwrap_or_default();
                return Ok((run, address.to_string()));
            }
            anyhow::ensure!(
                started.elapsed() < PATIENCE,
                "the API never served\n{}",
                tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The common start of a tally test: `backlog` events appended at once, then the writer
    /// appending 200 a second; tally 1.0.0 deployed; `projector run` logging at `filter`; and
    /// tally past the backlog (or some live events).
    pub async fn start_tally(
        &self,
        filter: &str,
        backlog: u64,
    ) -> anyhow::Result<(Appended, Writer, Running)> {
        let earlier = Writer::backlog(&self.connection, backlog).await?;
        let writer = Writer::start(&self.connection, 200)?;
        deploy(
            &self.plugins,
            "tally.wasm",
            &read(projector_tests::guests::TALLY_V1)?,
        )?;
        let run = self.run(filter)?;
        let past = earlier
            .lock()
            .unwrap()
            .last()
            .map_or(20, |(position, _)| *position);
        wait_for_position(&self.data, past, PATIENCE, &self.log)?;
        Ok((earlier, writer, run))
    }

    /// Stops devstore.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.store.shutdown().await
    }
}

/// How long a reload test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The bytes of the compiled guest at `path`.
pub fn read(path: &str) -> anyhow::Result<Vec<u8>> {
    Ok(std::fs::read(path)?)
}

/// `bytes` with every occurrence of `from` replaced by `to` (of the same length): a module
/// with other names or versions in its data, for tests that need one.
pub fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut index = 0;
    while let Some(found) = out[index..].windows(from.len()).position(|w| w == from) {
        out[index + found..index + found + to.len()].copy_from_slice(to);
        index += found + to.len();
    }
    out
}

/// Ends a tally test: stops the writer, waits until tally has committed every event (`earlier`
/// ones, then the writer's), stops the run (which must exit 0), and checks that tally's tables
/// and dead letters are `version`'s model over all of them. Returns the events.
pub async fn finish_tally(
    writer: Writer,
    earlier: &Appended,
    run: Running,
    scene: &Scene,
    version: i64,
) -> anyhow::Result<Vec<(i64, String)>> {
    let mut all = earlier.lock().unwrap().clone();
    all.extend(writer.stop().await?);
    let last = all.last().map_or(0, |(position, _)| *position);
    wait_for_position(&scene.data, last, PATIENCE, &scene.log)?;
    let status = run.stop()?;
    anyhow::ensure!(status.success(), "exit {status}\n{}", tail(&scene.log));
    assert_eq!(
        tables::rows(&scene.data, "tally", "tally")?,
        tally_model(&all, version)
    );
    let dead: Vec<i64> = tables::dead_letters(&scene.data, "tally")?
        .iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(dead, poison(&all));
    Ok(all)
}
