//! The runs the supervisor starts and stops: a run is started on a database file only once
//! every run stopped before it has closed that file, and a run's end is either expected (it
//! was stopped) or reported (a fault, the end of a finite source, a failed rebuild).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tokio::sync::mpsc;

use super::{Active, CLOSE_TIMEOUT, Supervisor};
use crate::pipeline::{self, Control, Notice, Outcome, Release, Role, RunId};
use crate::runtime::Plugin;
use crate::store::{HistoryEntry, VersionFiles};

impl Supervisor {
    /// A run ended: expected (stopped), or a fault, or its source ended.
    pub(super) fn finished(&mut self, run: RunId, outcome: Outcome) {
        self.pending_swaps.retain(|(asked, _), _| *asked != run);
        let Some((name, role)) = self.find_run(run) else {
            // A run replaced at cut-over or by a swap-free restart: its end was asked for.
            return;
        };
        let managed = self.projections.get_mut(&name).expect("found above");
        let active = match role {
            Role::Serving => managed.serving.take(),
            Role::Rebuilding => managed.rebuild.take(),
        }
        .expect("found above");
        if role == Role::Rebuilding {
            self.settings.status.update(&name, |s| s.rebuild = None);
            if !active.stopping {
                let reason = outcome
                    .error
                    .as_ref()
                    .map_or("its source ended before it caught up".to_string(), |e| {
                        format!("{e:#}")
                    });
                self.history(HistoryEntry {
                    projection: Some(name.clone()),
                    outcome: "abandoned".into(),
                    from_version: Some(active.plugin.manifest.version.clone()),
                    to_version: Some(active.plugin.manifest.version.clone()),
                    to_sha256: Some(active.plugin.sha256.clone()),
                    detail: Some(format!(
                        "the {} stopped: {reason}; the serving version carries on",
                        active.kind
                    )),
                    ..HistoryEntry::default()
                });
            }
            return;
        }
        if !active.stopping {
            self.ended.push(outcome);
        }
    }

    /// Asks every run to finish its batch in flight, and waits until all have.
    pub(super) async fn stop_all(&mut self, noticed: &mut mpsc::UnboundedReceiver<Notice>) {
        let mut waiting: Vec<(RunId, bool)> = Vec::new();
        for managed in self.projections.values_mut() {
            for (active, serving) in [(&mut managed.serving, true), (&mut managed.rebuild, false)] {
                if let Some(active) = active {
                    active.run.send(Control::Stop);
                    waiting.push((active.run.id, serving));
                }
            }
        }
        while !waiting.is_empty() {
            let Some(notice) = noticed.recv().await else {
                break;
            };
            if let Notice::Finished { run, outcome } = notice
                && let Some(index) = waiting.iter().position(|(id, _)| *id == run)
            {
                let (_, serving) = waiting.swap_remove(index);
                if serving {
                    self.ended.push(outcome);
                }
            }
        }
    }

    /// Asks `active` to stop; until its thread has closed the database, no other run opens the
    /// file and retention leaves it alone.
    pub(super) fn stop_run(&mut self, active: Active) {
        active.run.send(Control::Stop);
        self.draining.retain(|(_, release)| !release.is_done());
        self.draining.push((active.files.db, active.run.release()));
    }

    /// Waits (bounded) until no stopped run still has `db` open.
    pub(super) async fn closed(&mut self, db: &Path) {
        self.draining.retain(|(_, release)| !release.is_done());
        let waits: Vec<Release> = self
            .draining
            .iter()
            .filter(|(path, _)| path == db)
            .map(|(_, release)| release.clone())
            .collect();
        for release in waits {
            // A batch in flight ends within the batch deadline; past a generous bound, opening
            // the file anyway fails with a clear error rather than hanging the supervisor.
            if tokio::time::timeout(CLOSE_TIMEOUT, release.wait())
                .await
                .is_err()
            {
                tracing::warn!(file = %db.display(), "a stopped run has not closed its database yet");
            }
        }
    }

    /// Starts `plugin` on the database `files` in `role`, once no stopped run holds it.
    pub(super) async fn start_run(
        &mut self,
        plugin: &Plugin,
        files: &VersionFiles,
        role: Role,
        kind: &'static str,
    ) -> anyhow::Result<Active> {
        self.closed(&files.db).await;
        let name = &plugin.manifest.name;
        let failures = self.options.failures.get(name).copied().unwrap_or_default();
        let projection = crate::projection::Projection::open(
            &self.runtime,
            plugin.clone(),
            &files.db,
            failures,
        )?;
        let checkpoint = projection.checkpoint().map(|c| c.position);
        // An operator's pause holds across restarts, reloads and rebuilds: the run starts
        // paused. A catalog that cannot say refuses the start rather than guess.
        let paused = self
            .catalog
            .is_paused(name)
            .with_context(|| format!("reading whether {name} is paused"))?;
        let run = pipeline::start(
            projection,
            role,
            Arc::clone(&self.source),
            &self.settings,
            self.notices.clone(),
            paused,
        )?;
        if paused {
            self.settings.status.update(name, |s| s.paused = true);
        }
        if role == Role::Serving {
            self.retry_on_new_code(&run, plugin);
        }
        if role == Role::Rebuilding {
            let rebuild = pipeline::Rebuild {
                run: run.id,
                kind,
                version: plugin.manifest.version.clone(),
                sha256: plugin.sha256.clone(),
                position: checkpoint,
                head: None,
                projected: 0,
                failed: 0,
                events_per_second: 0.0,
                eta_seconds: None,
                started: Instant::now(),
            };
            self.settings
                .status
                .update(name, |s| s.rebuild = Some(rebuild));
        }
        Ok(Active {
            run,
            plugin: plugin.clone(),
            files: files.clone(),
            kind,
            stopping: false,
            sample: None,
            recorded: Instant::now(),
            hold: None,
        })
    }
}
