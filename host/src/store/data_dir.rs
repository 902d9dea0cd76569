//! The layout of a data directory, owned by one type so that no other module computes a path:
//!
//! ```text
//! <data>/_catalog.db                    which version of each projection is current, history
//! <data>/_lock                          held by the process running the projections
//! <data>/_control/                      requests to that process (rollback)
//! <data>/.compiled/                     compiled plugins, by module hash, MAC'd (runtime::cache)
//! <data>/<name>/<version>-<sha8>.db     one database per version of a projection
//! <data>/<name>/<version>-<sha8>.wasm   the module that last projected into it (for rollback)
//! ```
//!
//! `<sha8>` is the start of the hash of the module that created the file: a same-version code fix
//! keeps projecting into it, a new version (or a rebuilt abandoned one) gets a file of its own.
//! Databases of the old layout (`<data>/<name>.db`) are moved into it by [`DataDir::open`].

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension};

use super::catalog::{Catalog, HistoryEntry, KeptVersion};

/// A projection data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

/// Where one version of a projection lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionFiles {
    /// The database, relative to the data directory (as the catalog records it).
    pub file: String,
    /// The database's path.
    pub db: PathBuf,
    /// The kept copy of the module that last projected into it.
    pub wasm: PathBuf,
}

/// The exclusive hold of a data directory by one running process; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DataDir {
    /// The data directory at `root`, created if needed, with databases of the old layout moved
    /// into the versioned one.
    pub fn open(root: &Path) -> anyhow::Result<DataDir> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating data directory {}", root.display()))?;
        let data_dir = DataDir {
            root: root.to_path_buf(),
        };
        data_dir.migrate()?;
        Ok(data_dir)
    }

    /// The data directory at `root` as it is, for reading: nothing is created or moved.
    pub fn existing(root: &Path) -> DataDir {
        DataDir {
            root: root.to_path_buf(),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the directory for this process; fails if another process runs projections on it.
    pub fn lock(&self) -> anyhow::Result<DirLock> {
        match self.try_lock()? {
            Some(lock) => Ok(lock),
            None => bail!(
                "another projector is running on data directory {}; stop it first, or use \
                 another --data",
                self.root.display()
            ),
        }
    }

    /// Takes the directory for this process, or `None` when another process holds it.
    pub fn try_lock(&self) -> anyhow::Result<Option<DirLock>> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating data directory {}", self.root.display()))?;
        let path = self.root.join("_lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// Opens the catalog for writing.
    pub fn catalog(&self) -> anyhow::Result<Catalog> {
        Catalog::open(&self.root)
    }

    /// Where compiled plugins are cached.
    pub fn compile_cache(&self) -> PathBuf {
        self.root.join(".compiled")
    }

    /// Where requests to the running process are dropped.
    pub fn control_dir(&self) -> PathBuf {
        self.root.join("_control")
    }

    /// The files of version `version` of projection `name` created by module `sha256`.
    pub fn version_files(&self, name: &str, version: &str, sha256: &str) -> VersionFiles {
        let sha8 = &sha256[..sha256.len().min(8)];
        self.files_of(&format!("{name}/{}-{sha8}.db", file_safe(version)))
    }

    /// Files for rebuilding `name`'s version `version` from the start beside its current
    /// database (an operator's rebuild of the same module): a name of their own, so both exist
    /// until the cut-over.
    pub fn rebuild_files(&self, name: &str, version: &str, sha256: &str) -> VersionFiles {
        let sha8 = &sha256[..sha256.len().min(8)];
        self.files_of(&format!(
            "{name}/{}-{sha8}-rebuilt-{}.db",
            file_safe(version),
            super::now_unix_ms()
        ))
    }

    /// Deletes the database of `files` (with its WAL), keeping its module: a reset starts the
    /// projection over in the same file.
    pub fn clear_database(&self, files: &VersionFiles) -> anyhow::Result<()> {
        remove_files([
            files.db.clone(),
            sidecar(&files.db, "-wal"),
            sidecar(&files.db, "-shm"),
        ])
    }

    /// The files of the version whose database is `file` (relative, as the catalog has it).
    pub fn files_of(&self, file: &str) -> VersionFiles {
        let db = self.root.join(file);
        VersionFiles {
            file: file.to_string(),
            wasm: db.with_extension("wasm"),
            db,
        }
    }

    /// The files of the current version of `name` when that is `version`; otherwise a new
    /// version file (created by module `sha256`), recorded in the catalog and made current,
    /// with a `started` history entry saying so.
    pub fn current_or_new(
        &self,
        name: &str,
        version: &str,
        sha256: &str,
    ) -> anyhow::Result<VersionFiles> {
        let catalog = self.catalog()?;
        if let Some(current) = catalog.current_of(name)?
            && current.version == version
        {
            return Ok(self.files_of(&current.file));
        }
        let files = self.version_files(name, version, sha256);
        catalog.record_version(&KeptVersion {
            projection: name.to_string(),
            file: files.file.clone(),
            version: version.to_string(),
            wasm_sha256: sha256.to_string(),
            current_since_unix_ms: None,
        })?;
        let entry = HistoryEntry {
            projection: Some(name.to_string()),
            outcome: "started".into(),
            to_version: Some(version.to_string()),
            to_sha256: Some(sha256.to_string()),
            detail: Some(format!("a new database {} made current", files.file)),
            ..HistoryEntry::default()
        };
        catalog.switch(name, &files.file, Some(&entry), None)?;
        Ok(files)
    }

    /// Keeps `wasm` as the module of version file `files`, replacing any older copy whole.
    pub fn keep_module(&self, files: &VersionFiles, wasm: &[u8]) -> anyhow::Result<()> {
        let dir = files.wasm.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut temporary, wasm)?;
        // On disk before the catalog names it: a power cut must not leave a truncated module
        // that a rollback would load.
        temporary.as_file().sync_all()?;
        temporary
            .persist(&files.wasm)
            .with_context(|| format!("keeping the module {}", files.wasm.display()))?;
        Ok(())
    }

    /// Deletes the database (with its WAL) and the kept module of a version.
    pub fn remove_version(&self, files: &VersionFiles) -> anyhow::Result<()> {
        self.clear_database(files)?;
        remove_files([files.wasm.clone()])
    }

    /// The database each projection's queries read now: `(name, path)`, sorted by name.
    pub fn current_databases(&self) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut databases: Vec<(String, PathBuf)> = match Catalog::open_read_only(&self.root)? {
            Some(catalog) => catalog
                .current()?
                .into_iter()
                .map(|v| (v.projection, self.root.join(v.file)))
                .collect(),
            None => Vec::new(),
        };
        // Old-layout files not migrated yet (nothing has run on the directory since).
        for (name, path) in self.legacy_databases()? {
            if !databases.iter().any(|(n, _)| *n == name) {
                databases.push((name, path));
            }
        }
        databases.sort();
        Ok(databases)
    }

    /// `<data>/<name>.db` files of the old layout.
    fn legacy_databases(&self) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("reading data directory {}", self.root.display()))?;
        let mut databases = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "db")
                && let Some(name) = path.file_stem().and_then(|s| s.to_str())
                && !name.starts_with('_')
            {
                databases.push((name.to_string(), path.clone()));
            }
        }
        databases.sort();
        Ok(databases)
    }

    /// Moves each `<data>/<name>.db` built by a plugin into `<name>/<version>-<sha8>.db` and
    /// makes it current, so an upgraded host carries on where the old one stopped.
    fn migrate(&self) -> anyhow::Result<()> {
        let legacy = self.legacy_databases()?;
        if legacy.is_empty() {
            return Ok(());
        }
        let catalog = self.catalog()?;
        for (name, path) in legacy {
            let Some((recorded, version, sha256)) = read_plugin_record(&path)? else {
                tracing::warn!(file = %path.display(), "not a projection database; left alone");
                continue;
            };
            if recorded != name || catalog.current_of(&name)?.is_some() {
                tracing::warn!(file = %path.display(), projection = recorded, "an old-layout database that does not match the catalog; left alone");
                continue;
            }
            let files = self.version_files(&name, &version, &sha256);
            std::fs::create_dir_all(self.root.join(&name))?;
            // Closing the only connection (in read_plugin_record) checkpointed the WAL; move a
            // WAL that is still there along with its database, or its commits would be lost.
            for suffix in ["-wal", "-shm"] {
                let from = sidecar(&path, suffix);
                if from.exists() {
                    std::fs::rename(&from, sidecar(&files.db, suffix))?;
                }
            }
            std::fs::rename(&path, &files.db)
                .with_context(|| format!("moving {} to {}", path.display(), files.db.display()))?;
            catalog.record_version(&KeptVersion {
                projection: name.clone(),
                file: files.file.clone(),
                version: version.clone(),
                wasm_sha256: sha256.clone(),
                current_since_unix_ms: None,
            })?;
            let entry = HistoryEntry {
                projection: Some(name.clone()),
                outcome: "migrated".into(),
                to_version: Some(version),
                to_sha256: Some(sha256),
                detail: Some(format!(
                    "moved {} to {}",
                    path.display(),
                    files.db.display()
                )),
                ..HistoryEntry::default()
            };
            catalog.switch(&name, &files.file, Some(&entry), None)?;
            tracing::info!(projection = name, from = %path.display(), to = %files.db.display(), "database moved to the versioned layout");
        }
        Ok(())
    }
}

/// `(name, version, wasm_sha256)` recorded in a projection database, if it is one.
fn read_plugin_record(path: &Path) -> anyhow::Result<Option<(String, String, String)>> {
    let connection =
        Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    let has_table: bool = connection.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = '_projector_plugin'",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        return Ok(None);
    }
    let record = connection
        .query_row(
            "SELECT name, version, wasm_sha256 FROM _projector_plugin",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    Ok(record)
}

/// A version as a file name: letters, digits, `.`, `_` and `-` kept, anything else `_`.
fn file_safe(version: &str) -> String {
    version
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Deletes `paths`; one that is not there is already as wanted.
fn remove_files(paths: impl IntoIterator<Item = PathBuf>) -> anyhow::Result<()> {
    for path in paths {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("deleting {}", path.display()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_layout_database_is_moved_and_made_current() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("orders.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch(
                "CREATE TABLE _projector_plugin (id, name, version, schema, wasm_sha256);
                 INSERT INTO _projector_plugin VALUES (1, 'orders', '1.0.0', '[]', 'abcdef0123456789');
                 CREATE TABLE t (x); INSERT INTO t VALUES (42);",
            )
            .unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        assert!(!old.exists());
        let databases = data.current_databases().unwrap();
        assert_eq!(databases.len(), 1);
        assert!(
            databases[0].1.ends_with("orders/1.0.0-abcdef01.db"),
            "{databases:?}"
        );
        let x: i64 = Connection::open(&databases[0].1)
            .unwrap()
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, 42);
        // A second open finds nothing left to move.
        DataDir::open(dir.path()).unwrap();
        assert_eq!(data.current_databases().unwrap(), databases);
    }

    #[test]
    fn versions_become_safe_file_names_and_the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let files = data.version_files("p", "1.0/../x y", "0123456789abcdef");
        assert_eq!(files.file, "p/1.0_.._x_y-01234567.db");
        assert!(files.wasm.ends_with("p/1.0_.._x_y-01234567.wasm"));
        let lock = data.lock().unwrap();
        assert!(data.try_lock().unwrap().is_none());
        assert!(data.lock().is_err());
        drop(lock);
        assert!(data.try_lock().unwrap().is_some());
    }
}
