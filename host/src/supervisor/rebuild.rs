//! Rebuilds beside the serving version, and what ends them.
//!
//! A shadow projects a new version from the start of the log into a database of its own, with its
//! own subscription, while the serving version keeps projecting and answering queries. A rollback
//! is the same run on a kept version's database, from its own checkpoint. When the rebuild has
//! caught up with the head, the cut-over is one committed catalog update (queries resolve the name
//! to the new file from then on), then the rebuild is promoted and the old run stopped; its file
//! is kept. Retention then deletes the versions beyond the newest `keep_versions`.
//!
//! Invariant: nothing here touches the serving run until the cut-over; a rebuild that fails is
//! abandoned and the serving version carries on untouched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::control::rollback_target;
use super::{RollbackRequest, Supervisor, short};
use crate::pipeline::{Control, Role};
use crate::runtime::Plugin;
use crate::store::HistoryEntry;

/// How often a rebuild's progress is recorded in the history (it is on the status board always).
const PROGRESS_RECORDED: Duration = Duration::from_secs(30);

/// Longest the supervisor waits for the source to say where its head is.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

impl Supervisor {
    /// Starts rebuilding `plugin`'s version beside the serving one.
    pub(super) async fn shadow(&mut self, plugin: Plugin, wasm: &Arc<[u8]>, file: &str) {
        self.shadow_into(plugin, wasm, file, None).await;
    }

    /// Starts rebuilding `plugin`'s version beside the serving one, into `files` when given
    /// (an operator's rebuild of the current module), else into the version's own files.
    pub(super) async fn shadow_into(
        &mut self,
        plugin: Plugin,
        wasm: &Arc<[u8]>,
        file: &str,
        files: Option<crate::store::VersionFiles>,
    ) -> bool {
        let name = plugin.manifest.name.clone();
        self.abandon_rebuild(&name, "a newer module arrived");
        let serving = self.serving(&name).map(|a| {
            (
                a.plugin.manifest.version.clone(),
                a.plugin.sha256.clone(),
                a.files.file.clone(),
            )
        });
        // A kept database of the same version continues from its checkpoint (a restart during
        // the rebuild, or a version deployed again); otherwise the version gets a new file.
        let kept = self
            .catalog
            .versions(&name)
            .unwrap_or_default()
            .into_iter()
            .find(|v| {
                v.version == plugin.manifest.version
                    && serving.as_ref().is_none_or(|(_, _, f)| *f != v.file)
            });
        let files = match (files, kept) {
            (Some(files), _) => files,
            (None, Some(kept)) => self.data.files_of(&kept.file),
            (None, None) => {
                self.data
                    .version_files(&name, &plugin.manifest.version, &plugin.sha256)
            }
        };
        let resumed = files.db.exists();
        let started = match self.record_module(&plugin, wasm, &files) {
            Ok(()) => {
                self.start_run(&plugin, &files, Role::Rebuilding, "shadow")
                    .await
            }
            Err(error) => Err(error),
        };
        let (from_version, from_sha256) = serving.map(|(v, s, _)| (v, s)).unzip();
        let ok = started.is_ok();
        let (outcome, detail) = match started {
            Ok(active) => {
                let detail = format!(
                    "rebuilding into {} from {}; the serving version answers queries until it has caught up",
                    files.file,
                    if resumed {
                        "its checkpoint"
                    } else {
                        "the start of the log"
                    }
                );
                if let Some(managed) = self.projections.get_mut(&name) {
                    managed.rebuild = Some(active);
                }
                ("shadow-started", detail)
            }
            Err(error) => (
                "refused",
                format!("could not start the shadow rebuild: {error:#}"),
            ),
        };
        self.history(HistoryEntry {
            projection: Some(name),
            outcome: outcome.into(),
            plugin_file: Some(file.to_string()),
            from_version,
            from_sha256,
            to_version: Some(plugin.manifest.version.clone()),
            to_sha256: Some(plugin.sha256.clone()),
            detail: Some(detail),
            ..HistoryEntry::default()
        });
        ok
    }

    /// Stops the rebuild of `name`, if one runs, recording why.
    pub(super) fn abandon_rebuild(&mut self, name: &str, reason: &str) {
        let Some(active) = self
            .projections
            .get_mut(name)
            .and_then(|m| m.rebuild.take())
        else {
            return;
        };
        let (version, sha256, kind) = (
            active.plugin.manifest.version.clone(),
            active.plugin.sha256.clone(),
            active.kind,
        );
        self.stop_run(active);
        self.settings.status.update(name, |s| s.rebuild = None);
        self.history(HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "abandoned".into(),
            to_version: Some(version),
            to_sha256: Some(sha256),
            detail: Some(format!("the {kind} was stopped: {reason}")),
            ..HistoryEntry::default()
        });
    }

    /// A run has caught up; a rebuild that has is cut over.
    pub(super) fn caught_up(&mut self, run: u64) {
        if let Some((name, Role::Rebuilding)) = self.find_run(run) {
            self.cut_over(&name);
        }
    }

    /// Makes the rebuild of `name` current: queries switch, the old run stops, its file stays.
    fn cut_over(&mut self, name: &str) {
        let Some(managed) = self.projections.get_mut(name) else {
            return;
        };
        let Some(rebuild) = managed.rebuild.take() else {
            return;
        };
        let old = managed.serving.as_ref();
        let entry = HistoryEntry {
            unix_ms: crate::store::now_unix_ms(),
            projection: Some(name.to_string()),
            outcome: if rebuild.kind == "rollback" {
                "rolled-back"
            } else {
                "cut-over"
            }
            .into(),
            from_version: old.map(|o| o.plugin.manifest.version.clone()),
            from_sha256: old.map(|o| o.plugin.sha256.clone()),
            to_version: Some(rebuild.plugin.manifest.version.clone()),
            to_sha256: Some(rebuild.plugin.sha256.clone()),
            detail: Some(match old {
                Some(old) => format!(
                    "queries read {}; {} is kept",
                    rebuild.files.file, old.files.file
                ),
                None => format!("queries read {}", rebuild.files.file),
            }),
            ..HistoryEntry::default()
        };
        // The switch and its history entry commit together.
        if let Err(error) = self.catalog.switch(
            name,
            &rebuild.files.file,
            Some(&entry),
            rebuild.hold.as_deref(),
        ) {
            let version = rebuild.plugin.manifest.version.clone();
            self.stop_run(rebuild);
            self.settings.status.update(name, |s| s.rebuild = None);
            self.history(HistoryEntry {
                projection: Some(name.to_string()),
                outcome: "abandoned".into(),
                to_version: Some(version),
                detail: Some(format!("the cut-over could not be recorded: {error:#}")),
                ..HistoryEntry::default()
            });
            return;
        }
        rebuild.run.send(Control::Promote);
        let managed = self.projections.get_mut(name).expect("taken from above");
        if let Some(old) = managed.serving.replace(rebuild) {
            self.stop_run(old);
        }
        self.announce(entry);
        self.retain(name);
    }

    /// Deletes the versions of `name` beyond the newest `keep_versions` that served queries,
    /// and rebuilds that were abandoned; never one that runs.
    fn retain(&mut self, name: &str) {
        let keep = self.options.keep_versions.max(1);
        let running: Vec<String> = self
            .projections
            .get(name)
            .into_iter()
            .flat_map(|m| [&m.serving, &m.rebuild])
            .flatten()
            .map(|a| a.files.file.clone())
            .collect();
        let Ok(versions) = self.catalog.versions(name) else {
            return;
        };
        let mut served = 0;
        for version in versions {
            let has_served = version.current_since_unix_ms.is_some();
            let files = self.data.files_of(&version.file);
            // A run stopped a moment ago may still be closing it: its turn comes next time.
            let closing = self
                .draining
                .iter()
                .any(|(db, release)| *db == files.db && !release.is_done());
            if running.contains(&version.file) || closing || (has_served && served < keep) {
                served += usize::from(has_served);
                continue;
            }
            // Forgotten first: a crash between the two leaves stray files, never a catalog row
            // naming files that are gone.
            let removed = self
                .catalog
                .forget_version(name, &version.file)
                .and_then(|()| self.data.remove_version(&files));
            match removed {
                Ok(()) => tracing::info!(
                    projection = name,
                    version = version.version,
                    file = version.file,
                    keep,
                    "old version deleted"
                ),
                Err(error) => tracing::warn!(
                    projection = name,
                    file = version.file,
                    error = format!("{error:#}"),
                    "could not delete an old version"
                ),
            }
        }
    }

    /// Starts rolling `name` back to a kept version; returns what the operator is told.
    pub(super) async fn rollback(&mut self, request: &RollbackRequest) -> anyhow::Result<String> {
        let name = request.projection.as_str();
        let (current, target) = rollback_target(&self.data, &self.catalog, request)?;
        let folder = self
            .projections
            .get(name)
            .and_then(|m| m.owner.as_ref())
            .and_then(|owner| self.files.get(owner))
            .map(|f| f.sha256.clone());
        if self.serving(name).is_none() {
            self.catalog
                .hold(name, folder.as_deref().or(Some(&current.wasm_sha256)))?;
            let entry = HistoryEntry {
                unix_ms: crate::store::now_unix_ms(),
                projection: Some(name.to_string()),
                outcome: "rolled-back".into(),
                from_version: Some(current.version.clone()),
                from_sha256: Some(current.wasm_sha256.clone()),
                to_version: Some(target.version.clone()),
                to_sha256: Some(target.wasm_sha256.clone()),
                detail: Some("not running: queries read the kept version at once".into()),
                ..HistoryEntry::default()
            };
            self.catalog.switch(
                name,
                &target.file,
                Some(&entry),
                folder.as_deref().or(Some(&current.wasm_sha256)),
            )?;
            self.announce(entry);
            return Ok(format!(
                "{name} rolled back from {} to {}; it is not running, so queries read the kept \
                 version at once",
                current.version, target.version
            ));
        }
        let files = self.data.files_of(&target.file);
        let plugin = self.load_kept(&files).await.map_err(|error| {
            anyhow::format_err!(
                "cannot roll back to {} ({}): {error:#}",
                target.version,
                target.file
            )
        })?;
        self.abandon_rebuild(name, "a rollback replaces it");
        let mut active = self
            .start_run(&plugin, &files, Role::Rebuilding, "rollback")
            .await?;
        // Held back when the rollback cuts over, with the switch: a rollback that never gets
        // there (a restart before it has caught up) leaves nothing held.
        active.hold = folder.clone();
        if let Some(managed) = self.projections.get_mut(name) {
            managed.rebuild = Some(active);
        }
        self.history(HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "rollback-started".into(),
            from_version: Some(current.version.clone()),
            from_sha256: Some(current.wasm_sha256.clone()),
            to_version: Some(target.version.clone()),
            to_sha256: Some(plugin.sha256.clone()),
            detail: Some(format!(
                "{} catches up from its own checkpoint; the folder's module {} will be held back when it cuts over",
                target.file,
                folder.as_deref().map_or("-", short)
            )),
            ..HistoryEntry::default()
        });
        Ok(format!(
            "rolling {name} back from {} to {}: it catches up from its own checkpoint, and \
             queries switch when it has",
            current.version, target.version
        ))
    }

    /// Updates each rebuild's head, rate and time left; records progress now and then.
    pub(super) async fn rebuild_progress(&mut self) {
        let rebuilding: Vec<String> = self
            .projections
            .iter()
            .filter(|(_, m)| m.rebuild.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        if rebuilding.is_empty() || self.head_asked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.head_asked = Instant::now();
        // Asked in a task of its own: a source that is slow to answer must not hold up the
        // loop (cut-overs, requests). This round uses the last answer.
        if self
            .head_query
            .as_ref()
            .is_none_or(|task| task.is_finished())
        {
            let (source, known) = (Arc::clone(&self.source), Arc::clone(&self.head));
            self.head_query = Some(tokio::spawn(async move {
                if let Ok(Ok(head)) = tokio::time::timeout(HEAD_TIMEOUT, source.head()).await {
                    *known.lock().unwrap_or_else(|e| e.into_inner()) = head;
                }
            }));
        }
        let head = *self.head.lock().unwrap_or_else(|e| e.into_inner());
        let board = self.settings.status.projections();
        for name in rebuilding {
            let Some(progress) = board.get(&name).and_then(|s| s.rebuild.clone()) else {
                continue;
            };
            let Some(active) = self
                .projections
                .get_mut(&name)
                .and_then(|m| m.rebuild.as_mut())
            else {
                continue;
            };
            let now = Instant::now();
            let position = progress.position.map_or(0, |p| p.commit);
            let (rate, eta) = match active.sample {
                Some((at, projected, at_position)) if now > at => {
                    let seconds = (now - at).as_secs_f64();
                    let rate = (progress.projected.saturating_sub(projected)) as f64 / seconds;
                    let speed = position.saturating_sub(at_position) as f64 / seconds;
                    let left = head.map(|h| h.commit.saturating_sub(position) as f64);
                    let eta = left.filter(|_| speed > 0.0).map(|left| left / speed);
                    (rate, eta)
                }
                _ => (0.0, None),
            };
            active.sample = Some((now, progress.projected, position));
            let record = active.recorded.elapsed() >= PROGRESS_RECORDED;
            if record {
                active.recorded = now;
            }
            let (version, sha256, kind) = (
                active.plugin.manifest.version.clone(),
                active.plugin.sha256.clone(),
                active.kind,
            );
            self.settings.status.update(&name, |s| {
                if let Some(rebuild) = &mut s.rebuild {
                    rebuild.head = head;
                    rebuild.events_per_second = rate;
                    rebuild.eta_seconds = eta;
                }
            });
            if record {
                let percent = head
                    .filter(|h| h.commit > 0)
                    .map(|h| format!("{:.1}%", 100.0 * position as f64 / h.commit as f64))
                    .unwrap_or_else(|| "?".into());
                self.history(HistoryEntry {
                    projection: Some(name.clone()),
                    outcome: "shadow-progress".into(),
                    to_version: Some(version),
                    to_sha256: Some(sha256),
                    detail: Some(format!(
                        "{kind}: position {position} of {} ({percent}), {} events so far, {rate:.0} events/s, about {} s left",
                        head.map_or("?".into(), |h| h.commit.to_string()),
                        progress.projected,
                        eta.map_or("?".into(), |e| format!("{e:.0}"))
                    )),
                    ..HistoryEntry::default()
                });
            }
        }
    }

    /// Looks at rebuilds and control requests.
    pub(super) async fn tick(&mut self) {
        self.rebuild_progress().await;
        self.serve_requests().await;
    }
}
