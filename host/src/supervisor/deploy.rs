//! What a prepared module means, decided by its manifest against what runs and what the catalog
//! says is current:
//!
//! - a module that failed preparation is refused; nothing running is touched;
//! - a name another folder file already declares: the later file is refused, naming both;
//! - a module a rollback holds back (same hash): nothing, until a different file appears;
//! - a projection not running: started on its current database when the versions match, else
//!   the current version (from its kept module) serves while the new one rebuilds beside it;
//! - same name and version, new bytes: swapped in at the next batch boundary;
//! - same name, new version: a shadow rebuild, cut over when it has caught up (`rebuild.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Active, FolderFile, Managed, Prepared, Supervisor, file_name, short};
use crate::pipeline::{Control, Role};
use crate::runtime::Plugin;
use crate::store::{HistoryEntry, KeptVersion, VersionFiles};

impl Supervisor {
    /// A module finished preparing: refuse it, or act on it.
    pub(super) async fn prepared(&mut self, prepared: Prepared) {
        self.preparing = false;
        let current_sha = self.files.get(&prepared.path).map(|f| f.sha256.clone());
        // The file changed again (or went away) while this version was prepared: the newer
        // change is queued and decides.
        if current_sha.as_deref() == Some(prepared.sha256.as_str()) {
            self.deploy(prepared).await;
        }
        self.prepare_next();
    }

    async fn deploy(&mut self, prepared: Prepared) {
        let file = file_name(&prepared.path);
        let plugin = match prepared.plugin {
            Ok(plugin) => plugin,
            Err(error) => {
                let name = self.files.get(&prepared.path).and_then(|f| f.name.clone());
                self.history(HistoryEntry {
                    projection: name,
                    outcome: "refused".into(),
                    plugin_file: Some(file),
                    to_sha256: Some(prepared.sha256.clone()),
                    detail: Some(format!("{error:#}")),
                    ..HistoryEntry::default()
                });
                return;
            }
        };
        let name = plugin.manifest.name.clone();
        tracing::debug!(
            projection = name,
            file,
            prepare_ms = prepared.took.as_millis() as u64,
            "module prepared"
        );
        let owner = self.projections.get(&name).and_then(|m| m.owner.clone());
        if let Some(owner) = owner.filter(|o| *o != prepared.path && self.files.contains_key(o)) {
            // Remembered, so that this file is tried again when the owner's file goes.
            if let Some(folder_file) = self.files.get_mut(&prepared.path) {
                folder_file.name = Some(name.clone());
            }
            self.history(HistoryEntry {
                projection: Some(name.clone()),
                outcome: "refused".into(),
                plugin_file: Some(file.clone()),
                to_version: Some(plugin.manifest.version.clone()),
                to_sha256: Some(plugin.sha256.clone()),
                detail: Some(format!(
                    "{} and {file} both declare projection {name}; the later one, {file}, is \
                     refused (remove one of them)",
                    file_name(&owner)
                )),
                ..HistoryEntry::default()
            });
            return;
        }
        let previous = self
            .files
            .get_mut(&prepared.path)
            .and_then(|folder_file| folder_file.name.replace(name.clone()));
        if let Some(previous) = previous.filter(|previous| *previous != name) {
            let reason = format!("its plugin file {file} declares projection {name} now");
            self.release(&previous, &prepared.path, &reason);
        }
        self.projections.entry(name.clone()).or_default().owner = Some(prepared.path.clone());
        let held = self.catalog.held(&name).unwrap_or_default();
        if held.as_deref() == Some(plugin.sha256.as_str()) {
            tracing::info!(
                projection = name,
                file,
                module = short(&plugin.sha256),
                "module held back by a rollback; deploy a different file to replace the rolled-back version"
            );
            if self.serving(&name).is_none() {
                self.serve_current(&name, &file).await;
            }
            return;
        }
        if held.is_some() {
            // A different module: the rollback's hold ends here.
            if let Err(error) = self.catalog.hold(&name, None) {
                tracing::error!(
                    error = format!("{error:#}"),
                    "could not release a rollback hold"
                );
            }
        }
        match self.serving(&name) {
            None => self.start(plugin, &prepared.wasm, &file).await,
            Some(serving) if serving.plugin.sha256 == plugin.sha256 => {
                // Same bytes as what serves; a rebuild of another module is no longer wanted.
                self.abandon_rebuild(&name, "the folder's module is the serving one again");
            }
            Some(serving) if serving.plugin.manifest.version == plugin.manifest.version => {
                let (old, new) = (&serving.plugin.manifest, &plugin.manifest);
                if old.filter != new.filter || old.schema != new.schema {
                    // The feed keeps its subscription and the database its tables across a
                    // swap: a module that wants other events or other tables under the same
                    // version would silently miss them.
                    let what = if old.filter != new.filter {
                        "the events it asks for"
                    } else {
                        "its schema"
                    };
                    let (version, sha256) = (new.version.clone(), plugin.sha256.clone());
                    self.history(HistoryEntry {
                        projection: Some(name.clone()),
                        outcome: "refused".into(),
                        plugin_file: Some(file),
                        to_version: Some(version),
                        to_sha256: Some(sha256),
                        detail: Some(format!(
                            "it keeps version {} but changes {what}; a new filter or schema needs \
                             a new version (rebuilt from the start of the log)",
                            old.version
                        )),
                        ..HistoryEntry::default()
                    });
                    return;
                }
                self.abandon_rebuild(&name, "a newer module of the serving version arrived");
                self.swap(plugin, &prepared.wasm, &file);
            }
            Some(_) => self.shadow(plugin, &prepared.wasm, &file).await,
        }
    }

    /// The serving run of `name`, if any.
    pub(super) fn serving(&self, name: &str) -> Option<&Active> {
        self.projections.get(name).and_then(|m| m.serving.as_ref())
    }

    /// Starts a projection that is not running, with `plugin` from the folder.
    async fn start(&mut self, plugin: Plugin, wasm: &Arc<[u8]>, file: &str) {
        let name = plugin.manifest.name.clone();
        let Ok(current) = self.current_version(&name) else {
            return;
        };
        match current {
            Some(current) if current.version != plugin.manifest.version => {
                // The current version serves (from its kept module) while the new one rebuilds.
                self.serve_current(&name, file).await;
                self.shadow(plugin, wasm, file).await;
            }
            current => {
                let from = current
                    .as_ref()
                    .map(|c| (c.version.clone(), c.wasm_sha256.clone()));
                let new = current.is_none();
                let files = match &current {
                    Some(current) => self.data.files_of(&current.file),
                    None => {
                        self.data
                            .version_files(&name, &plugin.manifest.version, &plugin.sha256)
                    }
                };
                // A new projection is current from its start (there is nothing else to serve);
                // its "started" entry below is its history.
                let files = self.record_module(&plugin, wasm, &files).and_then(|()| {
                    if new {
                        self.catalog.make_current(&name, &files.file)?;
                    }
                    Ok(files)
                });
                let started = match files {
                    Ok(files) => {
                        self.start_run(&plugin, &files, Role::Serving, "serving")
                            .await
                    }
                    Err(error) => Err(error),
                };
                self.started(&name, &plugin, file, from, started);
            }
        }
    }

    /// Logs and records how starting a serving run went.
    fn started(
        &mut self,
        name: &str,
        plugin: &Plugin,
        file: &str,
        from: Option<(String, String)>,
        started: anyhow::Result<Active>,
    ) {
        let (from_version, from_sha256) = from.unzip();
        match started {
            Ok(active) => {
                self.history(HistoryEntry {
                    projection: Some(name.to_string()),
                    outcome: "started".into(),
                    plugin_file: Some(file.to_string()),
                    from_version,
                    from_sha256,
                    to_version: Some(plugin.manifest.version.clone()),
                    to_sha256: Some(plugin.sha256.clone()),
                    detail: Some(format!("projecting into {}", active.files.file)),
                    ..HistoryEntry::default()
                });
                self.projections
                    .entry(name.to_string())
                    .or_default()
                    .serving = Some(active);
                self.ever_served = true;
            }
            Err(error) => {
                let reason = format!("{error:#}");
                self.settings
                    .status
                    .update(name, |s| s.stopped = Some(reason.clone()));
                self.history(HistoryEntry {
                    projection: Some(name.to_string()),
                    outcome: "refused".into(),
                    plugin_file: Some(file.to_string()),
                    to_version: Some(plugin.manifest.version.clone()),
                    to_sha256: Some(plugin.sha256.clone()),
                    detail: Some(format!("could not start: {reason}")),
                    ..HistoryEntry::default()
                });
            }
        }
    }

    /// Starts the catalog's current version of `name` from its kept module (a rollback's
    /// target, or the old version while a new one rebuilds after a restart).
    pub(super) async fn serve_current(&mut self, name: &str, file: &str) {
        let Ok(Some(current)) = self.current_version(name) else {
            return;
        };
        let files = self.data.files_of(&current.file);
        let plugin = self.load_kept(&files).await;
        let from = None;
        let started = match plugin {
            Ok(plugin) => self
                .start_run(&plugin, &files, Role::Serving, "serving")
                .await
                .map(|active| (plugin, active)),
            Err(error) => Err(error),
        };
        match started {
            Ok((plugin, active)) => self.started(name, &plugin, file, from, Ok(active)),
            Err(error) => {
                tracing::warn!(
                    projection = name,
                    version = current.version,
                    error = format!("{error:#}"),
                    "the current version cannot run (its data stays queryable)"
                );
            }
        }
    }

    /// The catalog's current version of `name`; a catalog that cannot be read is logged here,
    /// and the caller leaves the projection as it is.
    fn current_version(&self, name: &str) -> Result<Option<KeptVersion>, ()> {
        self.catalog.current_of(name).map_err(|error| {
            tracing::error!(
                projection = name,
                error = format!("{error:#}"),
                "reading the catalog"
            );
        })
    }

    /// Loads the module kept beside version file `files`, off the async threads.
    pub(super) async fn load_kept(&self, files: &VersionFiles) -> anyhow::Result<Plugin> {
        let runtime = self.runtime.clone();
        let path = files.wasm.clone();
        tokio::task::spawn_blocking(move || {
            let wasm = std::fs::read(&path).map_err(|e| {
                anyhow::format_err!("reading the kept module {}: {e}", path.display())
            })?;
            super::prepare(&runtime, &path, &wasm)
        })
        .await?
    }

    /// Records that `plugin` projects into `files`: in the catalog, and its module kept.
    pub(super) fn record_module(
        &self,
        plugin: &Plugin,
        wasm: &[u8],
        files: &VersionFiles,
    ) -> anyhow::Result<()> {
        self.data.keep_module(files, wasm)?;
        self.catalog.record_version(&KeptVersion {
            projection: plugin.manifest.name.clone(),
            file: files.file.clone(),
            version: plugin.manifest.version.clone(),
            wasm_sha256: plugin.sha256.clone(),
            current_since_unix_ms: None,
        })
    }

    /// Asks the serving run to swap `plugin` in; the run says when it has ([`Self::swapped`]).
    fn swap(&mut self, plugin: Plugin, wasm: &Arc<[u8]>, file: &str) {
        let name = plugin.manifest.name.clone();
        let Some(serving) = self
            .projections
            .get_mut(&name)
            .and_then(|m| m.serving.as_mut())
        else {
            return;
        };
        serving.run.send(Control::Swap(Box::new(plugin.clone())));
        self.pending_swaps.insert(
            (serving.run.id, plugin.sha256.clone()),
            (plugin, Arc::clone(wasm), file.to_string()),
        );
    }

    /// A run reports a swap done (or failed: the old code keeps running).
    pub(super) fn swapped(&mut self, run: u64, sha256: &str, result: Result<(), String>) {
        let Some((plugin, wasm, file)) = self.pending_swaps.remove(&(run, sha256.to_string()))
        else {
            return;
        };
        let name = plugin.manifest.name.clone();
        // The run may have been replaced (a cut-over) since it was asked: its swap then
        // concerns a file no longer served, and nothing of the serving run may change.
        let Some(serving) = self
            .projections
            .get_mut(&name)
            .and_then(|m| m.serving.as_mut())
            .filter(|serving| serving.run.id == run)
        else {
            return;
        };
        let from_sha256 = serving.plugin.sha256.clone();
        let files = serving.files.clone();
        if result.is_ok() {
            serving.plugin = plugin.clone();
        }
        if result.is_ok()
            && let Some(serving) = self.projections.get(&name).and_then(|m| m.serving.as_ref())
        {
            self.retry_on_new_code(&serving.run, &plugin);
        }
        let (outcome, detail) = match result {
            Ok(()) => match self.record_module(&plugin, &wasm, &files) {
                Ok(()) => ("swapped", "continues from its checkpoint".to_string()),
                Err(error) => (
                    "swapped",
                    format!(
                        "continues from its checkpoint; but the module could not be kept for \
                         rollback: {error:#}"
                    ),
                ),
            },
            Err(error) => (
                "refused",
                format!("the swap failed; the old module keeps running: {error}"),
            ),
        };
        self.history(HistoryEntry {
            projection: Some(name),
            outcome: outcome.into(),
            plugin_file: Some(file),
            from_version: Some(plugin.manifest.version.clone()),
            from_sha256: Some(from_sha256),
            to_version: Some(plugin.manifest.version.clone()),
            to_sha256: Some(plugin.sha256.clone()),
            detail: Some(detail),
            ..HistoryEntry::default()
        });
    }

    /// A plugin file is gone: its projection stops (its data stays and stays queryable).
    pub(super) fn removed(&mut self, path: &Path) {
        let Some(FolderFile { name, .. }) = self.files.remove(path) else {
            return;
        };
        self.queue.retain(|(queued, _, _)| queued != path);
        let Some(name) = name else { return };
        let owned = self
            .projections
            .get(&name)
            .is_some_and(|m| m.owner.as_deref() == Some(path));
        let reason = format!("its plugin file {} was removed", file_name(path));
        self.release(&name, path, &reason);
        if owned {
            self.retry_refused_duplicates(&name);
        }
    }

    /// Queues again the folder's files that were refused because another file declared `name`
    /// first, now that it no longer does.
    fn retry_refused_duplicates(&mut self, name: &str) {
        let waiting: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(_, file)| file.name.as_deref() == Some(name))
            .map(|(path, _)| path.clone())
            .collect();
        for path in waiting {
            let size = std::fs::metadata(&path)
                .map(|m| m.len())
                .unwrap_or(u64::MAX);
            let read = if size <= self.options.watch.max_file_bytes {
                std::fs::read(&path).map_err(anyhow::Error::from)
            } else {
                Err(anyhow::format_err!(
                    "it is over {} bytes",
                    self.options.watch.max_file_bytes
                ))
            };
            match read {
                Ok(wasm) => {
                    use sha2::Digest;
                    let sha256 = hex::encode(sha2::Sha256::digest(&wasm));
                    if let Some(file) = self.files.get_mut(&path) {
                        file.sha256 = sha256.clone();
                    }
                    self.queue.push_back((path, wasm.into(), sha256));
                }
                Err(error) => {
                    tracing::warn!(file = %path.display(), error = format!("{error:#}"), "could not read a plugin file again")
                }
            }
        }
        self.prepare_next();
    }

    /// Stops projection `name` if `path` is its plugin file (removed, or declaring another name
    /// now); its data stays and stays queryable.
    fn release(&mut self, name: &str, path: &Path, reason: &str) {
        let Some(managed) = self.projections.get_mut(name) else {
            return;
        };
        if managed.owner.as_deref() != Some(path) {
            return;
        }
        let Managed {
            serving, rebuild, ..
        } = std::mem::take(managed);
        let version = serving.as_ref().map(|a| a.plugin.manifest.version.clone());
        let sha256 = serving.as_ref().map(|a| a.plugin.sha256.clone());
        for active in [serving, rebuild].into_iter().flatten() {
            self.stop_run(active);
        }
        self.settings.status.update(name, |s| {
            s.stopped = Some(reason.to_string());
            s.rebuild = None;
        });
        self.history(HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "removed".into(),
            plugin_file: Some(file_name(path)),
            from_version: version,
            from_sha256: sha256,
            detail: Some(format!("stopped: {reason}; its data stays queryable")),
            ..HistoryEntry::default()
        });
    }
}
