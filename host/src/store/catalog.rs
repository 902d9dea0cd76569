//! The catalog of a data directory (`<data>/_catalog.db`): which version file of each projection
//! is current, which versions are kept, which folder module a rollback holds back, and the
//! history of reloads.
//!
//! It is the one place that says what a query of `<name>` reads: cut-over and rollback are one
//! committed update of `projections.current_file`, so a query resolves a name to the old file or
//! the new one, never to something in between. It is written with `synchronous = FULL`: a cut-over
//! that was logged must survive a power cut.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

/// The catalog's file name in a data directory; `_` cannot start a projection name.
pub const CATALOG_FILE: &str = "_catalog.db";

/// History rows kept; older ones are deleted as new ones arrive.
const HISTORY_ROWS: i64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS versions (
    projection TEXT NOT NULL,
    file TEXT NOT NULL,            -- relative to the data directory: <name>/<version>-<sha8>.db
    version TEXT NOT NULL,
    wasm_sha256 TEXT NOT NULL,     -- the module projecting into it last
    created_unix_ms INTEGER NOT NULL,
    current_since_unix_ms INTEGER, -- when it last became current; NULL: never served queries
    PRIMARY KEY (projection, file)
);
CREATE TABLE IF NOT EXISTS projections (
    name TEXT PRIMARY KEY,
    current_file TEXT,             -- what queries of this projection read
    held_sha256 TEXT               -- after a rollback: the folder's module not to apply again
);
CREATE TABLE IF NOT EXISTS paused (   -- projections an operator paused: they stay paused across restarts
    projection TEXT PRIMARY KEY,
    since_unix_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    unix_ms INTEGER NOT NULL,
    projection TEXT,               -- NULL when the module could not say its name
    outcome TEXT NOT NULL,
    plugin_file TEXT,
    from_version TEXT,
    from_sha256 TEXT,
    to_version TEXT,
    to_sha256 TEXT,
    detail TEXT
);
";

/// One version file of a projection that the catalog knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptVersion {
    /// The projection's name.
    pub projection: String,
    /// The database file, relative to the data directory.
    pub file: String,
    /// The manifest version that built it.
    pub version: String,
    /// The module that projected into it last (its copy is kept beside the file).
    pub wasm_sha256: String,
    /// When it last became current, if ever (Unix ms).
    pub current_since_unix_ms: Option<i64>,
}

/// One reload outcome, as kept in the history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When it happened (Unix ms).
    pub unix_ms: i64,
    /// The projection, when known.
    pub projection: Option<String>,
    /// What happened: `started`, `swapped`, `shadow-started`, `shadow-progress`, `cut-over`,
    /// `refused`, `abandoned`, `removed`, `rollback-started`, `rolled-back`, `migrated`.
    pub outcome: String,
    /// The plugin file in the plugins folder, when one was involved.
    pub plugin_file: Option<String>,
    /// The version and module before.
    pub from_version: Option<String>,
    pub from_sha256: Option<String>,
    /// The version and module after.
    pub to_version: Option<String>,
    pub to_sha256: Option<String>,
    /// Why, or how far: the reason of a refusal, the progress of a rebuild.
    pub detail: Option<String>,
}

/// An open catalog.
pub struct Catalog {
    /// Behind a mutex so a catalog can be shared by async tasks (`Connection` is not `Sync`);
    /// every use is one short statement or transaction.
    connection: std::sync::Mutex<Connection>,
}

impl Catalog {
    /// Opens (creating if needed) the catalog of data directory `root` for writing.
    pub fn open(root: &Path) -> anyhow::Result<Catalog> {
        let path = root.join(CATALOG_FILE);
        let connection = Connection::open(&path)
            .with_context(|| format!("opening the catalog {}", path.display()))?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection
            .execute_batch(SCHEMA)
            .with_context(|| format!("creating the catalog {}", path.display()))?;
        Ok(Catalog {
            connection: std::sync::Mutex::new(connection),
        })
    }

    /// Opens the catalog of `root` read-only, or `None` when the directory has none yet.
    pub fn open_read_only(root: &Path) -> anyhow::Result<Option<Catalog>> {
        let path = root.join(CATALOG_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&path, flags)
            .with_context(|| format!("opening the catalog {} read-only", path.display()))?;
        connection.busy_timeout(Duration::from_secs(5))?;
        Ok(Some(Catalog {
            connection: std::sync::Mutex::new(connection),
        }))
    }

    /// Every projection's current version file, by name.
    pub fn current(&self) -> anyhow::Result<Vec<KeptVersion>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT v.projection, v.file, v.version, v.wasm_sha256, v.current_since_unix_ms
             FROM projections p JOIN versions v ON v.projection = p.name AND v.file = p.current_file
             ORDER BY p.name",
        )?;
        let rows = statement.query_map([], kept_version)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The current version file of `name`, if it has one.
    pub fn current_of(&self, name: &str) -> anyhow::Result<Option<KeptVersion>> {
        Ok(self.current()?.into_iter().find(|v| v.projection == name))
    }

    /// The version files kept for `name`, the most recently current first (then the newest).
    pub fn versions(&self, name: &str) -> anyhow::Result<Vec<KeptVersion>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT projection, file, version, wasm_sha256, current_since_unix_ms FROM versions
             WHERE projection = ?1
             ORDER BY current_since_unix_ms IS NULL, current_since_unix_ms DESC, created_unix_ms DESC",
        )?;
        let rows = statement.query_map([name], kept_version)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a version file (new), or the module now projecting into it (known).
    pub fn record_version(&self, version: &KeptVersion) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT INTO versions (projection, file, version, wasm_sha256, created_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (projection, file) DO UPDATE SET wasm_sha256 = ?4",
            params![
                version.projection,
                version.file,
                version.version,
                version.wasm_sha256,
                now_unix_ms()
            ],
        )?;
        Ok(())
    }

    /// Makes `file` the version queries of `name` read, in one committed transaction.
    pub fn make_current(&self, name: &str, file: &str) -> anyhow::Result<()> {
        self.switch(name, file, None, None)
    }

    /// [`Catalog::make_current`], with `entry` added to the history and, for a rollback, the
    /// folder's module `hold` held back, in the same transaction: a cut-over that happened is
    /// never missing from the history, whenever the process dies.
    pub fn switch(
        &self,
        name: &str,
        file: &str,
        entry: Option<&HistoryEntry>,
        hold: Option<&str>,
    ) -> anyhow::Result<()> {
        let connection = self.lock();
        // One writer per catalog connection, never nested: the unchecked form is safe here.
        let transaction = connection.unchecked_transaction()?;
        if let Some(entry) = entry {
            record(&transaction, entry)?;
        }
        if let Some(sha256) = hold {
            transaction.execute(
                "INSERT INTO projections (name, held_sha256) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET held_sha256 = ?2",
                params![name, sha256],
            )?;
        }
        transaction.execute(
            "UPDATE versions SET current_since_unix_ms = ?3 WHERE projection = ?1 AND file = ?2",
            params![name, file, now_unix_ms()],
        )?;
        transaction.execute(
            "INSERT INTO projections (name, current_file) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET current_file = ?2",
            params![name, file],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Forgets version file `file` of `name` (its files are deleted by the caller).
    pub fn forget_version(&self, name: &str, file: &str) -> anyhow::Result<()> {
        self.lock().execute(
            "DELETE FROM versions WHERE projection = ?1 AND file = ?2",
            params![name, file],
        )?;
        Ok(())
    }

    /// Holds back the folder module `sha256` of `name` (after a rollback), or releases it.
    pub fn hold(&self, name: &str, sha256: Option<&str>) -> anyhow::Result<()> {
        self.lock().execute(
            "INSERT INTO projections (name, held_sha256) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET held_sha256 = ?2",
            params![name, sha256],
        )?;
        Ok(())
    }

    /// Records that `name` is paused (or no longer is).
    pub fn set_paused(&self, name: &str, paused: bool) -> anyhow::Result<()> {
        let connection = self.lock();
        if paused {
            connection.execute(
                "INSERT INTO paused (projection, since_unix_ms) VALUES (?1, ?2)
                 ON CONFLICT (projection) DO NOTHING",
                params![name, now_unix_ms()],
            )?;
        } else {
            connection.execute("DELETE FROM paused WHERE projection = ?1", [name])?;
        }
        Ok(())
    }

    /// Whether `name` is paused.
    pub fn is_paused(&self, name: &str) -> anyhow::Result<bool> {
        let found = self
            .lock()
            .query_row("SELECT 1 FROM paused WHERE projection = ?1", [name], |_| {
                Ok(())
            })
            .optional()?;
        Ok(found.is_some())
    }

    /// The folder module held back for `name`, if any.
    pub fn held(&self, name: &str) -> anyhow::Result<Option<String>> {
        let held = self
            .lock()
            .query_row(
                "SELECT held_sha256 FROM projections WHERE name = ?1",
                [name],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()?;
        Ok(held.flatten())
    }

    /// Appends `entry` to the history (its time is now when it has none).
    pub fn record(&self, entry: &HistoryEntry) -> anyhow::Result<()> {
        record(&self.lock(), entry)
    }

    /// The last `limit` history entries, oldest first; of `projection` only when given.
    pub fn history(
        &self,
        projection: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<HistoryEntry>> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT unix_ms, projection, outcome, plugin_file, from_version, from_sha256, to_version,
                    to_sha256, detail
             FROM history WHERE ?1 IS NULL OR projection = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![projection, limit as i64], |row| {
            Ok(HistoryEntry {
                unix_ms: row.get(0)?,
                projection: row.get(1)?,
                outcome: row.get(2)?,
                plugin_file: row.get(3)?,
                from_version: row.get(4)?,
                from_sha256: row.get(5)?,
                to_version: row.get(6)?,
                to_sha256: row.get(7)?,
                detail: row.get(8)?,
            })
        })?;
        let mut entries: Vec<HistoryEntry> = rows.collect::<Result<_, _>>()?;
        entries.reverse();
        Ok(entries)
    }
}

impl Catalog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding it leaves a connection behind, not half-written data.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Appends `entry` to the history on `connection`, and drops the oldest rows past the bound.
fn record(connection: &Connection, entry: &HistoryEntry) -> anyhow::Result<()> {
    let unix_ms = if entry.unix_ms == 0 {
        now_unix_ms()
    } else {
        entry.unix_ms
    };
    connection.execute(
        "INSERT INTO history (unix_ms, projection, outcome, plugin_file, from_version, from_sha256,
                              to_version, to_sha256, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            unix_ms,
            entry.projection,
            entry.outcome,
            entry.plugin_file,
            entry.from_version,
            entry.from_sha256,
            entry.to_version,
            entry.to_sha256,
            entry.detail
        ],
    )?;
    connection.execute(
        "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?1",
        [HISTORY_ROWS],
    )?;
    Ok(())
}

fn kept_version(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeptVersion> {
    Ok(KeptVersion {
        projection: row.get(0)?,
        file: row.get(1)?,
        version: row.get(2)?,
        wasm_sha256: row.get(3)?,
        current_since_unix_ms: row.get(4)?,
    })
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(file: &str, version: &str) -> KeptVersion {
        KeptVersion {
            projection: "p".into(),
            file: file.into(),
            version: version.into(),
            wasm_sha256: "ab".into(),
            current_since_unix_ms: None,
        }
    }

    #[test]
    fn the_current_version_is_the_one_last_made_current() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        catalog.record_version(&version("p/1-a.db", "1")).unwrap();
        catalog.record_version(&version("p/2-b.db", "2")).unwrap();
        assert!(catalog.current_of("p").unwrap().is_none());
        catalog.make_current("p", "p/1-a.db").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        catalog.make_current("p", "p/2-b.db").unwrap();
        assert_eq!(catalog.current_of("p").unwrap().unwrap().version, "2");
        let kept: Vec<String> = catalog
            .versions("p")
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(kept, ["2", "1"]);
        let reader = Catalog::open_read_only(dir.path()).unwrap().unwrap();
        assert_eq!(reader.current().unwrap().len(), 1);
    }

    #[test]
    fn history_keeps_order_and_holds_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        for outcome in ["started", "swapped", "refused"] {
            catalog
                .record(&HistoryEntry {
                    projection: Some("p".into()),
                    outcome: outcome.into(),
                    ..HistoryEntry::default()
                })
                .unwrap();
        }
        catalog.hold("p", Some("cafe")).unwrap();
        drop(catalog);
        let catalog = Catalog::open(dir.path()).unwrap();
        let outcomes: Vec<String> = catalog
            .history(Some("p"), 2)
            .unwrap()
            .into_iter()
            .map(|e| e.outcome)
            .collect();
        assert_eq!(outcomes, ["swapped", "refused"]);
        assert_eq!(catalog.held("p").unwrap().as_deref(), Some("cafe"));
        catalog.hold("p", None).unwrap();
        assert_eq!(catalog.held("p").unwrap(), None);
    }
}
