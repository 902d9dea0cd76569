//! The supervisor owns the set of running projections and changes it while events keep flowing:
//! it starts a projection when its plugin appears, swaps a code fix in at a batch boundary,
//! rebuilds a new version in a shadow database and cuts over when it has caught up, rolls back
//! to a kept version, and stops a projection whose plugin is removed.
//!
//! Start-up is a reload from the empty set: the plugins folder's watcher reports every module
//! present as a change, and each goes through the one path every later change takes:
//! prepare (off the projection threads), decide, act. A module that cannot be prepared is
//! refused with its reason, and whatever was running keeps running.
//!
//! Layout: this file holds the event loop and the state; `deploy.rs` decides what a prepared
//! module means; `runs.rs` starts and stops runs; `rebuild.rs` runs rebuilds to cut-over,
//! rollbacks and retention; `history.rs` records outcomes; `control.rs` carries requests
//! (rollback, dead-letter retries) from the `projector` command line to the running process;
//! `operate.rs` does what an operator asks through the API (pause, resume, reset, rebuild).

mod control;
mod dead_letters;
mod deploy;
mod history;
mod operate;
mod rebuild;
mod runs;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

pub use control::{RetryRequest, RollbackRequest, request_rollback};
pub use dead_letters::retry_dead_letters;
pub use operate::{Inbox, Operation, Operator, operator};

use crate::pipeline::{Notice, Outcome, Release, Role, Run, RunId, Settings};
use crate::projection::Failures;
use crate::reload::{Change, WatchOptions, Watcher};
use crate::runtime::{Plugin, Runtime};
use crate::source::EventSource;
use crate::store::{Catalog, DataDir, HistoryEntry, VersionFiles};

/// How the supervisor manages projections.
#[derive(Clone, Debug)]
pub struct Options {
    /// The folder of plugin modules; every `*.wasm` in it is a projection.
    pub plugins_dir: PathBuf,
    /// How the folder is watched.
    pub watch: WatchOptions,
    /// Versions of each projection kept on disk, the current one included (at least 1).
    pub keep_versions: usize,
    /// What failures cost, per projection name; absent names get the defaults.
    pub failures: BTreeMap<String, Failures>,
    /// Whether new code (a start, a swap) retries the dead letters it has not refused yet.
    pub retry_dead_letters: bool,
}

/// Longest the supervisor waits for a stopped run to close a database another run needs.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the supervisor looks at rebuilds' progress and for control requests.
const TICK: Duration = Duration::from_millis(250);

/// Runs the projections of `options.plugins_dir` until `shutdown` resolves (or, for a finite
/// source, until every projection has reached its end), reloading them as the folder changes.
/// Returns how each projection that was serving at the end finished, and those that faulted.
pub async fn run(
    data: DataDir,
    runtime: Runtime,
    source: Arc<dyn EventSource>,
    settings: Settings,
    options: Options,
    inbox: Option<Inbox>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Vec<Outcome>> {
    // Without an operator, requests never come.
    let mut inbox = inbox.unwrap_or_else(|| operator().1);
    let catalog = data.catalog()?;
    for entry in catalog.history(None, 10_000)? {
        settings.status.add_reload(entry);
    }
    let mut watcher = Watcher::start(&options.plugins_dir, options.watch.clone())
        .with_context(|| format!("watching plugins folder {}", options.plugins_dir.display()))?;
    tracing::info!(folder = %options.plugins_dir.display(), mode = ?watcher.mode(), "watching the plugins folder");
    let (notices, mut noticed) = mpsc::unbounded_channel();
    let (prepared_sender, mut prepared) = mpsc::unbounded_channel();
    let mut supervisor = Supervisor {
        data,
        catalog,
        runtime,
        source,
        settings,
        options,
        notices,
        prepared_sender,
        files: BTreeMap::new(),
        queue: VecDeque::new(),
        preparing: false,
        pending_swaps: HashMap::new(),
        projections: BTreeMap::new(),
        ended: Vec::new(),
        initial_scan: true,
        head_asked: Instant::now(),
        head: Arc::default(),
        head_query: None,
        ever_served: false,
        draining: Vec::new(),
        fatal: None,
    };
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => Event::Shutdown,
            notice = noticed.recv() => match notice {
                Some(notice) => Event::Notice(notice),
                None => Event::Shutdown,
            },
            done = prepared.recv() => match done {
                Some(done) => Event::Prepared(Box::new(done)),
                None => Event::Shutdown,
            },
            changes = watcher.next() => match changes {
                Some(changes) => Event::Changes(changes),
                None => {
                    tracing::error!("the plugins folder watcher ended; reloads stop, projections keep running");
                    std::future::pending().await
                }
            },
            _ = ticks.tick() => Event::Tick,
            Some(asked) = inbox.0.recv() => Event::Asked(asked),
        };
        match event {
            Event::Shutdown => break,
            Event::Changes(changes) => supervisor.changed(changes),
            Event::Prepared(done) => supervisor.prepared(*done).await,
            Event::Notice(notice) => supervisor.noticed(notice),
            Event::Tick => supervisor.tick().await,
            Event::Asked(asked) => supervisor.asked(asked).await,
        }
        if let Some(error) = supervisor.fatal.take() {
            supervisor.stop_all(&mut noticed).await;
            return Err(error);
        }
        if supervisor.source.is_finite() && supervisor.all_done() {
            if !supervisor.ever_served {
                anyhow::bail!(
                    "no projection could start from the plugins in {} (the log says why)",
                    supervisor.options.plugins_dir.display()
                );
            }
            return Ok(std::mem::take(&mut supervisor.ended));
        }
    }
    tracing::info!("shutting down: finishing the batches in flight");
    supervisor.stop_all(&mut noticed).await;
    Ok(supervisor.ended)
}

/// Every reason the supervisor acts.
enum Event {
    /// Plugin files changed (settled, hashed).
    Changes(Vec<Change>),
    /// A module was prepared (or refused) off the async threads.
    Prepared(Box<Prepared>),
    /// A run reported something.
    Notice(Notice),
    /// Time to look at rebuilds and control requests.
    Tick,
    /// An operator asked for something through the API.
    Asked(operate::Asked),
    /// Stop everything.
    Shutdown,
}

/// A module prepared from the plugins folder.
struct Prepared {
    path: PathBuf,
    wasm: Arc<[u8]>,
    sha256: String,
    plugin: anyhow::Result<Plugin>,
    took: Duration,
}

/// A swap asked of a run and not confirmed yet: the module, its bytes, its plugin file.
type PendingSwap = (Plugin, Arc<[u8]>, String);

/// What the supervisor knows about one file of the plugins folder.
#[derive(Debug)]
struct FolderFile {
    sha256: String,
    /// The projection it declared when last prepared, if it was.
    name: Option<String>,
}

/// One running projection: the run serving queries, and a rebuild beside it.
#[derive(Default)]
struct Managed {
    /// The plugin file that declares it.
    owner: Option<PathBuf>,
    /// The run whose database is current.
    serving: Option<Active>,
    /// A run building another version's database (shadow or rollback).
    rebuild: Option<Active>,
}

/// A run and what it runs.
struct Active {
    run: Run,
    plugin: Plugin,
    files: VersionFiles,
    /// `shadow` or `rollback` for rebuilds.
    kind: &'static str,
    /// A stop was asked for: its end is expected.
    stopping: bool,
    /// Rate measurement of a rebuild: (when, events projected, position) last sampled.
    sample: Option<(Instant, u64, u64)>,
    /// When a rebuild's progress was last recorded in the history.
    recorded: Instant,
    /// For a rollback: the folder's module to hold back once it cuts over.
    hold: Option<String>,
}

struct Supervisor {
    data: DataDir,
    catalog: Catalog,
    runtime: Runtime,
    source: Arc<dyn EventSource>,
    settings: Settings,
    options: Options,
    /// Given to every run; the loop reads them.
    notices: mpsc::UnboundedSender<Notice>,
    /// Where preparation tasks send their results.
    prepared_sender: mpsc::UnboundedSender<Prepared>,
    /// The plugins folder as last seen.
    files: BTreeMap<PathBuf, FolderFile>,
    /// Modules waiting to be prepared, one at a time and in order, so "the later of two files
    /// declaring one name" is well defined.
    queue: VecDeque<(PathBuf, Arc<[u8]>, String)>,
    /// Whether a preparation is under way.
    preparing: bool,
    /// Swaps asked of a serving run and not yet confirmed, by run and module hash: the module,
    /// its bytes, its plugin file.
    pending_swaps: HashMap<(RunId, String), PendingSwap>,
    /// Projections by name.
    projections: BTreeMap<String, Managed>,
    /// Outcomes of serving runs that ended (faulted, or their source ended).
    ended: Vec<Outcome>,
    /// Whether the folder's first scan is still being prepared.
    initial_scan: bool,
    /// When the source's head was last asked for (rebuild progress).
    head_asked: Instant,
    /// The source's head as last answered, and the query asking it now.
    head: Arc<std::sync::Mutex<Option<crate::event::Position>>>,
    head_query: Option<tokio::task::JoinHandle<()>>,
    /// Whether any projection has served yet (a finite source with none is an error).
    ever_served: bool,
    /// Runs asked to stop whose threads may still have their database open.
    draining: Vec<(PathBuf, Release)>,
    /// Why the supervisor must stop everything and fail.
    fatal: Option<anyhow::Error>,
}

impl Supervisor {
    /// Takes in settled changes of the plugins folder.
    fn changed(&mut self, changes: Vec<Change>) {
        for change in changes {
            tracing::debug!(?change, "plugins folder changed");
            match change {
                Change::Present { path, wasm, sha256 } => {
                    let entry = self.files.entry(path.clone()).or_insert(FolderFile {
                        sha256: String::new(),
                        name: None,
                    });
                    entry.sha256 = sha256.clone();
                    // Only the newest bytes of a file are worth compiling.
                    self.queue.retain(|(queued, _, _)| *queued != path);
                    self.queue.push_back((path, wasm, sha256));
                }
                Change::Removed { path } => self.removed(&path),
                Change::Unreadable { path, reason } => {
                    let name = self.files.get(&path).and_then(|f| f.name.clone());
                    self.history(HistoryEntry {
                        projection: name,
                        outcome: "refused".into(),
                        plugin_file: Some(file_name(&path)),
                        detail: Some(reason),
                        ..HistoryEntry::default()
                    });
                }
            }
        }
        self.prepare_next();
    }

    /// Starts preparing the next queued module, unless one is under way.
    fn prepare_next(&mut self) {
        if self.preparing {
            return;
        }
        let Some((path, wasm, sha256)) = self.queue.pop_front() else {
            if self.initial_scan {
                self.initial_scan = false;
                self.initial_scan_done();
            }
            return;
        };
        self.preparing = true;
        let runtime = self.runtime.clone();
        let sender = self.prepared_sender.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            // A panic while preparing (a host bug a hostile module found) refuses the module;
            // it must not leave the queue waiting for a result forever.
            let plugin = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                prepare(&runtime, &path, &wasm)
            }))
            .unwrap_or_else(|_| {
                Err(anyhow::format_err!(
                    "preparing the module panicked (a host bug)"
                ))
            });
            let _ = sender.send(Prepared {
                path,
                wasm,
                sha256,
                plugin,
                took: started.elapsed(),
            });
        });
    }

    /// Checks the start: a misspelt `[projections.<name>]` section would otherwise leave its
    /// projection on the default policy without a word, so options for a projection no plugin
    /// declares stop the start.
    fn initial_scan_done(&mut self) {
        let names: Vec<&String> = self.projections.keys().collect();
        let unknown: Vec<&String> = self
            .options
            .failures
            .keys()
            .filter(|name| !self.projections.contains_key(*name))
            .collect();
        if !unknown.is_empty() {
            self.fatal = Some(anyhow::format_err!(
                "the config has options for {unknown:?}, but no plugin in {} declares such a \
                 projection (the plugins declare {names:?})",
                self.options.plugins_dir.display()
            ));
        } else if names.is_empty() {
            tracing::warn!(folder = %self.options.plugins_dir.display(), "no projection is running; waiting for plugins (*.wasm) in the folder");
        }
    }

    /// Whether a finite source's work is over: nothing running, nothing to prepare.
    fn all_done(&self) -> bool {
        !self.initial_scan
            && !self.preparing
            && self.queue.is_empty()
            && self
                .projections
                .values()
                .all(|m| m.serving.is_none() && m.rebuild.is_none())
    }

    /// A run reported something.
    fn noticed(&mut self, notice: Notice) {
        match notice {
            Notice::CaughtUp { run } => self.caught_up(run),
            Notice::Swapped {
                run,
                sha256,
                result,
            } => self.swapped(run, &sha256, result),
            Notice::Finished { run, outcome } => self.finished(run, outcome),
        }
    }

    /// Which projection a run belongs to, and whether it is the serving one.
    fn find_run(&self, run: RunId) -> Option<(String, Role)> {
        self.projections.iter().find_map(|(name, managed)| {
            if managed.serving.as_ref().is_some_and(|a| a.run.id == run) {
                Some((name.clone(), Role::Serving))
            } else if managed.rebuild.as_ref().is_some_and(|a| a.run.id == run) {
                Some((name.clone(), Role::Rebuilding))
            } else {
                None
            }
        })
    }
}

/// Everything done to a module before it may replace anything: compile (or load from the
/// cache), type-check against the world, instantiate under the limits, `describe`, and run its
/// schema on a scratch database.
fn prepare(runtime: &Runtime, path: &Path, wasm: &[u8]) -> anyhow::Result<Plugin> {
    let plugin = runtime.load_bytes(path, wasm)?;
    crate::store::check_schema(&plugin.manifest.schema, runtime.limits().batch_deadline)
        .context("the plugin's schema does not run on an empty database")?;
    Ok(plugin)
}

/// A path's file name, for messages.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The first 8 characters of a hash.
fn short(sha256: &str) -> &str {
    &sha256[..sha256.len().min(8)]
}
