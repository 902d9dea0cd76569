//! What an operator asks of a running projection through the API: pause, resume, reset,
//! rebuild and rollback. The API hands each request to the supervisor's loop through an
//! [`Operator`] and waits for the answer, so every change to the set of runs still happens in
//! one place, in order.
//!
//! - **pause**: each run of the projection (serving and rebuilding) applies nothing after its
//!   batch in flight; subscriptions stay open. Recorded in the catalog, so it survives a
//!   restart.
//! - **resume**: the runs apply again; a projection that had stopped (a fault) is started again
//!   from its checkpoint with its kept module.
//! - **reset**: the serving version starts over from the start of the log in its own file
//!   (emptied, dead letters included); queries read the tables as they refill.
//! - **rebuild**: the serving module rebuilds into a new file beside the serving one (the
//!   shadow rebuild of a new version), and queries switch when it has caught up.
//! - **rollback**: as `projector rollback`.

use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::sync::{mpsc, oneshot};

use super::{RollbackRequest, Supervisor};
use crate::pipeline::{Control, Role};
use crate::runtime::Plugin;
use crate::store::{HistoryEntry, VersionFiles};

/// What an operator may ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    Pause,
    Resume,
    Reset,
    Rebuild,
    Rollback { to: Option<String> },
}

impl Operation {
    /// The operation named `action` in the API's paths (`rollback` without a target).
    pub fn named(action: &str) -> Option<Operation> {
        Some(match action {
            "pause" => Operation::Pause,
            "resume" => Operation::Resume,
            "reset" => Operation::Reset,
            "rebuild" => Operation::Rebuild,
            "rollback" => Operation::Rollback { to: None },
            _ => return None,
        })
    }
}

/// One request and where its answer goes.
pub(super) struct Asked {
    pub projection: String,
    pub operation: Operation,
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// Hands operations to the supervisor; cheap to clone.
#[derive(Clone, Debug)]
pub struct Operator {
    sender: mpsc::Sender<Asked>,
}

/// The supervisor's end of an [`Operator`].
pub struct Inbox(pub(super) mpsc::Receiver<Asked>);

/// Requests waiting for the supervisor at once; more wait for room (the API bounds its
/// callers anyway).
const WAITING: usize = 16;

/// An operator and the inbox the supervisor reads its requests from.
pub fn operator() -> (Operator, Inbox) {
    let (sender, receiver) = mpsc::channel(WAITING);
    (Operator { sender }, Inbox(receiver))
}

impl Operator {
    /// Asks for `operation` on `projection` and waits for the answer: what was done, or why
    /// not.
    pub async fn ask(&self, projection: &str, operation: Operation) -> anyhow::Result<String> {
        let (reply, answer) = oneshot::channel();
        let asked = Asked {
            projection: projection.to_string(),
            operation,
            reply,
        };
        if self.sender.send(asked).await.is_err() {
            bail!("the projections are shutting down");
        }
        match answer.await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(reason)) => bail!("{reason}"),
            Err(_) => bail!("the projections are shutting down"),
        }
    }
}

impl Supervisor {
    /// Does what was asked, and answers.
    pub(super) async fn asked(&mut self, asked: Asked) {
        let result = self
            .operate(&asked.projection, asked.operation)
            .await
            .map_err(|error| format!("{error:#}"));
        let _ = asked.reply.send(result);
    }

    async fn operate(&mut self, name: &str, operation: Operation) -> anyhow::Result<String> {
        let known = self.projections.contains_key(name) || self.catalog.current_of(name)?.is_some();
        if !known {
            let names: Vec<&String> = self.projections.keys().collect();
            bail!("no projection is named {name:?} (the projections are {names:?})");
        }
        match operation {
            Operation::Pause => self.pause(name),
            Operation::Resume => self.resume(name).await,
            Operation::Reset => self.reset(name).await,
            Operation::Rebuild => self.rebuild(name).await,
            Operation::Rollback { to } => {
                let request = RollbackRequest {
                    projection: name.to_string(),
                    to,
                };
                self.rollback(&request).await
            }
        }
    }

    /// Sends `control` to every run of `name`.
    fn tell_runs(&self, name: &str, control: impl Fn() -> Control) {
        if let Some(managed) = self.projections.get(name) {
            for active in [&managed.serving, &managed.rebuild].into_iter().flatten() {
                active.run.send(control());
            }
        }
    }

    fn pause(&mut self, name: &str) -> anyhow::Result<String> {
        if self.catalog.is_paused(name)? {
            // Told again: a run started between the catalog's word and its own would obey now.
            self.tell_runs(name, || Control::Pause);
            return Ok(format!("{name} is paused already"));
        }
        self.catalog.set_paused(name, true)?;
        self.tell_runs(name, || Control::Pause);
        self.settings.status.update(name, |s| s.paused = true);
        self.history(HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "paused".into(),
            detail: Some("by an operator; it keeps its subscription and applies nothing".into()),
            ..HistoryEntry::default()
        });
        Ok(format!(
            "{name} paused: it applies nothing after the batch in flight until resumed (it \
             stays paused across restarts)"
        ))
    }

    async fn resume(&mut self, name: &str) -> anyhow::Result<String> {
        let was_paused = self.catalog.is_paused(name)?;
        // Whether it can start is known before the pause is lifted: a refusal changes nothing.
        let restart = match self.serving(name) {
            None => Some(self.current_module(name).await?),
            Some(_) => None,
        };
        self.catalog.set_paused(name, false)?;
        self.settings.status.update(name, |s| s.paused = false);
        self.tell_runs(name, || Control::Resume);
        let restarted = restart.is_some();
        if let Some((plugin, files)) = restart {
            self.serve(name, &plugin, &files).await?;
        }
        if !was_paused && !restarted {
            return Ok(format!("{name} is running; there was nothing to resume"));
        }
        self.history(HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "resumed".into(),
            detail: Some(
                if restarted {
                    "by an operator; it was not running, and starts again from its checkpoint"
                } else {
                    "by an operator"
                }
                .into(),
            ),
            ..HistoryEntry::default()
        });
        Ok(if restarted {
            format!("{name} started again from its checkpoint")
        } else {
            format!("{name} resumed")
        })
    }

    /// The serving module of `name` and its files: the running one's, or the current
    /// version's kept module when it is not running. Refused for a projection whose plugin
    /// file is no longer in the folder: the folder says what runs.
    async fn current_module(&self, name: &str) -> anyhow::Result<(Plugin, VersionFiles)> {
        if self.projections.get(name).is_none_or(|m| m.owner.is_none()) {
            bail!(
                "no plugin in {} declares {name} now (its file was removed, or never loaded in \
                 this process); put its .wasm back in the folder to run it",
                self.options.plugins_dir.display()
            );
        }
        if let Some(active) = self.serving(name) {
            return Ok((active.plugin.clone(), active.files.clone()));
        }
        let Some(current) = self.catalog.current_of(name)? else {
            bail!("{name} has no current version");
        };
        let files = self.data.files_of(&current.file);
        let plugin = self
            .load_kept(&files)
            .await
            .with_context(|| format!("loading the module kept for {}", current.file))?;
        Ok((plugin, files))
    }

    /// Starts `plugin` on `files` as the serving run of `name`, which was not running.
    async fn serve(
        &mut self,
        name: &str,
        plugin: &Plugin,
        files: &VersionFiles,
    ) -> anyhow::Result<()> {
        let active = self
            .start_run(plugin, files, Role::Serving, "serving")
            .await?;
        // Its fault is over: the process's exit no longer reports it.
        self.ended.retain(|outcome| outcome.name != name);
        self.projections
            .entry(name.to_string())
            .or_default()
            .serving = Some(active);
        self.settings.status.update(name, |s| {
            s.stopped = None;
            s.error = None;
        });
        Ok(())
    }

    /// Refuses to replace a rebuild that runs: it is a new version from the folder, or a
    /// rollback an operator asked for, and dropping it would leave the folder's word unheeded.
    fn no_rebuild_running(&self, name: &str, doing: &str) -> anyhow::Result<()> {
        if let Some(rebuild) = self.projections.get(name).and_then(|m| m.rebuild.as_ref()) {
            bail!(
                "cannot {doing} {name} while its {} of version {} runs; wait for its cut-over \
                 (GET /api/projections/{name} shows its progress), or roll back",
                rebuild.kind,
                rebuild.plugin.manifest.version
            );
        }
        Ok(())
    }

    async fn reset(&mut self, name: &str) -> anyhow::Result<String> {
        self.no_rebuild_running(name, "reset")?;
        let (plugin, files) = self.current_module(name).await?;
        if let Some(active) = self
            .projections
            .get_mut(name)
            .and_then(|m| m.serving.take())
        {
            self.stop_run(active);
        }
        self.closed(&files.db).await;
        let cleared = self
            .data
            .clear_database(&files)
            .with_context(|| format!("emptying {}", files.file));
        let restarted = match cleared {
            Ok(()) => self.serve(name, &plugin, &files).await,
            Err(error) => Err(error),
        };
        if let Err(error) = restarted {
            // Its run is stopped: the board must not go on saying it serves.
            let reason = format!("the reset failed: {error:#}");
            self.settings.status.update(name, |s| {
                s.stopped = Some(reason.clone());
                s.error = Some(reason.clone());
            });
            return Err(error.context(format!(
                "{name} is stopped; `projector resume {name}` starts it again from its checkpoint"
            )));
        }
        self.history(HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "reset".into(),
            to_version: Some(plugin.manifest.version.clone()),
            to_sha256: Some(plugin.sha256.clone()),
            detail: Some(format!(
                "by an operator: {} starts over from the start of the log",
                files.file
            )),
            ..HistoryEntry::default()
        });
        Ok(format!(
            "{name} reset: version {} projects again from the start of the log into {} \
             (queries read its tables as they refill)",
            plugin.manifest.version, files.file
        ))
    }

    async fn rebuild(&mut self, name: &str) -> anyhow::Result<String> {
        self.no_rebuild_running(name, "rebuild")?;
        let (plugin, current) = self.current_module(name).await?;
        let wasm: Arc<[u8]> = std::fs::read(&current.wasm)
            .with_context(|| format!("reading the kept module {}", current.wasm.display()))?
            .into();
        let files = self
            .data
            .rebuild_files(name, &plugin.manifest.version, &plugin.sha256);
        let file = files.file.clone();
        let version = plugin.manifest.version.clone();
        let label = super::file_name(&current.wasm);
        if !self.shadow_into(plugin, &wasm, &label, Some(files)).await {
            bail!("the rebuild of {name} could not start (its history says why)");
        }
        Ok(format!(
            "rebuilding {name} {version} from the start of the log into {file}; the serving \
             database answers queries until the rebuild has caught up"
        ))
    }
}
