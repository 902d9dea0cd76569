//! The projection databases: one SQLite file per projection, holding the plugin's tables and
//! the host's `_projector_` tables (checkpoint, plugin metadata, dead letters).
//!
//! This is the only module that uses rusqlite. It knows nothing about wasm: plugins reach it
//! through [`crate::value::SqlSession`], which [`Db`] implements on its open batch.
//!
//! Architecture invariant: a batch's writes and its checkpoint commit in one transaction, so a
//! stop at any point leaves the database at a batch boundary.

mod authorizer;
mod catalog;
mod checkpointer;
mod data_dir;
mod dead_letters;
mod determinism;
pub mod fault;
mod guard;
mod reader;
mod rowid_guard;
mod schema;
mod schema_check;
mod single;
mod statements;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, params};

use crate::event::Position;

pub use authorizer::{Mode, Policy, RESERVED_PREFIX};
pub use catalog::{Catalog, HistoryEntry, KeptVersion, now_unix_ms};
pub use checkpointer::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
pub use data_dir::{DataDir, DirLock, VersionFiles};
pub use dead_letters::{
    DeadLetter, Payloads, Selection, drop_selected as drop_dead_letters,
    first as first_dead_letters, read as read_dead_letters,
};
pub use reader::{QUERY_DEADLINE, QueryResult, Reader, ResultBounds, ResultCut, VALUE_OVERHEAD};
pub use schema::check_schema;

/// What the host records about the plugin that built a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginRecord {
    /// The projection's name (the manifest's `name`).
    pub name: String,
    /// The manifest's `version`.
    pub version: String,
    /// The schema statements the database was created with.
    pub schema: Vec<String>,
    /// sha256 of the wasm module currently projecting into it, hex.
    pub wasm_sha256: String,
}

/// The stored checkpoint: where the projection is in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The position of the last event applied or skipped; the source resumes after it.
    pub position: Position,
    /// How many events the projection has handed to its plugin in all.
    pub events_handled: u64,
    /// The position of the last event the projection was given (projected or not), unlike
    /// `position` never a server's checkpoint: the log held an event there, so a log that now
    /// ends before it was reset. `None` before the first event (and in databases older than
    /// the column).
    pub last_event: Option<Position>,
}

/// One projection's database, open for writing.
///
/// The connection's statement cache holds plugin statements only, each authorized under the
/// plugin policy when it was prepared. The host prepares its own statements afresh every time:
/// were they cached, a plugin sending the same text (`COMMIT`, or the checkpoint upsert) would
/// get the host's already-authorized statement back from the cache.
pub struct Db {
    /// The one writer connection; its statement cache holds plugin statements only.
    connection: Connection,
    /// Shared with the connection's authorizer: who is preparing statements now.
    policy: Arc<Policy>,
    /// Where the file lives, for messages.
    path: PathBuf,
    /// Whether a batch transaction is open; plugin SQL is refused outside one.
    in_batch: bool,
    /// Bounds on the database and each plugin statement.
    limits: DbLimits,
    /// The queries naming a plugin table at the largest rowid (see [`rowid_guard`]).
    rowid_checks: Vec<String>,
    /// When the plugin call in progress must end (see [`SqlSession::call_deadline`]).
    call_deadline: Option<std::time::Instant>,
    /// A fault of the database met by a plugin statement in this batch (see [`fault`]); a
    /// cell, since statements record it while they still borrow the connection.
    fault: std::cell::Cell<Option<String>>,
    /// What the plugin's statements cost since [`Db::take_work`] was last called.
    work: SqlWork,
    /// Checkpoints the WAL off the writer's thread; dropped (and joined) after the connection.
    _checkpointer: checkpointer::Checkpointer,
}

/// What a plugin's statements cost: time inside SQLite and rows changed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SqlWork {
    pub time: Duration,
    pub rows_changed: u64,
}

/// Bounds on a projection database and on each plugin statement run on it, so SQL cannot
/// escape the plugin's time and memory limits or fill the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbLimits {
    /// Longest one statement may run before SQLite interrupts it.
    pub statement_deadline: Duration,
    /// Most bytes one query may return to the plugin.
    pub max_result_bytes: usize,
    /// Largest the database file may grow (SQLite's `max_page_count`); a write past it fails
    /// as a full database, which stops the projection with that reason. The WAL beside it is
    /// not counted: it holds at most the pages written since the last checkpoint (every
    /// 200 ms, `checkpointer.rs`), but its file is not shrunk after a large batch.
    pub max_database_bytes: u64,
}

/// Default size cap of a projection database: generous, but short of filling a disk shared
/// with the event store.
pub const DEFAULT_MAX_DATABASE_BYTES: u64 = 64 << 30;

impl Default for DbLimits {
    fn default() -> DbLimits {
        DbLimits {
            statement_deadline: Duration::from_secs(10),
            max_result_bytes: 64 << 20,
            max_database_bytes: DEFAULT_MAX_DATABASE_BYTES,
        }
    }
}

/// Room left under a database's size cap below which "full" is taken to be the cap's doing.
const CAP_ROOM_BYTES: u64 = 64 << 20;

/// Most instructions a plugin statement's program may have (an upsert of ten columns is about
/// a hundred).
const MAX_STATEMENT_OPS: i32 = 25_000;

/// Longest statement text a plugin may send.
const MAX_STATEMENT_BYTES: i32 = 1 << 20;

/// Why plugin SQL and the commit are refused after SQLite ended the batch's transaction itself.
pub(crate) const LOST_TRANSACTION: &str = "SQLite rolled back the batch's transaction (an ON CONFLICT ROLLBACK \
     clause, or an I/O error); nothing more can be written in this batch";

const HOST_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _projector_plugin (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    schema TEXT NOT NULL,
    wasm_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _projector_checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    commit_position INTEGER NOT NULL,
    prepare_position INTEGER NOT NULL,
    events_handled INTEGER NOT NULL,
    last_event_commit INTEGER,
    last_event_prepare INTEGER
);
CREATE TABLE IF NOT EXISTS _projector_dead_letters (
    commit_position INTEGER NOT NULL,
    prepare_position INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    stream_revision INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    error TEXT NOT NULL,
    wasm_sha256 TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_error TEXT,
    refused_by TEXT,
    first_failed_unix_ms INTEGER,
    last_failed_unix_ms INTEGER,
    content_type TEXT,
    created_unix_ms INTEGER,
    data BLOB,
    metadata BLOB,
    PRIMARY KEY (commit_position, prepare_position)
);
";

impl Db {
    /// Opens the projection database at `path`, creating it with `plugin.schema` if it is new.
    ///
    /// An existing database must have been built by the same projection name and version; a
    /// different version needs a rebuild, which is refused here rather than mixing two schemas.
    pub fn open(path: &Path, plugin: &PluginRecord, limits: DbLimits) -> anyhow::Result<Db> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating data directory {}", dir.display()))?;
        }
        let connection = Connection::open(path)
            .with_context(|| format!("opening projection database {}", path.display()))?;
        connection.busy_timeout(Duration::from_secs(5))?;
        // WAL lets readers (queries, the API) run while the projection writes. NORMAL sync is
        // durable at every checkpoint of the WAL and never corrupts; a power cut can lose the
        // last commits, which the source then replays from the stored position.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpointer::WRITER_AUTOCHECKPOINT_PAGES,
        )?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        let page_size: u64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let max_pages = (limits.max_database_bytes / page_size.max(512)).max(1);
        connection.pragma_update(None, "max_page_count", max_pages)?;
        connection.set_prepared_statement_cache_capacity(256);
        // Defensive mode forbids writes to the schema tables even through PRAGMA-free tricks,
        // and untrusted schema keeps functions with side effects out of views and triggers.
        connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        connection.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
            false,
        )?;
        // One value (and so one plugin allocation request) is bounded like a query result.
        let policy = Policy::new(Mode::Host);
        guard_connection(&connection, &policy, limits.max_result_bytes)?;
        let mut db = Db {
            connection,
            policy,
            path: path.to_path_buf(),
            in_batch: false,
            limits,
            rowid_checks: Vec::new(),
            call_deadline: None,
            fault: std::cell::Cell::new(None),
            work: SqlWork::default(),
            _checkpointer: checkpointer::Checkpointer::start(path)?,
        };
        db.initialise(plugin)?;
        db.rowid_checks = rowid_guard::queries(&db.connection, &db.plugin_tables()?)?;
        // A row written before the guard existed would refuse every call, blaming the plugin.
        if let Some(reason) = db.rowid_at_limit()? {
            bail!(
                "{} cannot be projected into: {reason}; that row was written before the host \
                 refused it: delete it, or move the database away to rebuild the projection",
                db.path.display()
            );
        }
        Ok(db)
    }

    /// What the plugin's statements cost since the last call, and starts counting afresh.
    pub fn take_work(&mut self) -> SqlWork {
        std::mem::take(&mut self.work)
    }

    /// Where the database file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn initialise(&mut self, plugin: &PluginRecord) -> anyhow::Result<()> {
        let transaction = self.connection.transaction()?;
        transaction.execute_batch(HOST_SCHEMA)?;
        Db::migrate_dead_letters(&transaction)?;
        add_missing_columns(
            &transaction,
            "_projector_checkpoint",
            &[
                ("last_event_commit", "INTEGER"),
                ("last_event_prepare", "INTEGER"),
            ],
        )?;
        let existing: Option<(String, String, String)> = transaction
            .query_row(
                "SELECT name, version, schema FROM _projector_plugin",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        match existing {
            None => {
                schema::apply_schema(
                    &transaction,
                    &self.policy,
                    &plugin.schema,
                    self.limits.statement_deadline,
                )?;
                transaction.execute(
                    "INSERT INTO _projector_plugin (id, name, version, schema, wasm_sha256) VALUES (1, ?1, ?2, ?3, ?4)",
                    params![plugin.name, plugin.version, serde_json::to_string(&plugin.schema)?, plugin.wasm_sha256],
                )?;
            }
            Some((name, version, _)) if name != plugin.name || version != plugin.version => {
                bail!(
                    "{} was built by projection {name} version {version}, not {} version {}; \
                     move the file away to rebuild it from the start of the log",
                    self.path.display(),
                    plugin.name,
                    plugin.version
                );
            }
            Some(_) => {
                transaction.execute(
                    "UPDATE _projector_plugin SET wasm_sha256 = ?1 WHERE id = 1",
                    params![plugin.wasm_sha256],
                )?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records that module `wasm_sha256` (same name and version, new code) projects into this
    /// database from now on.
    pub fn set_wasm_sha256(&mut self, wasm_sha256: &str) -> anyhow::Result<()> {
        self.connection
            .prepare("UPDATE _projector_plugin SET wasm_sha256 = ?1 WHERE id = 1")?
            .execute(params![wasm_sha256])?;
        Ok(())
    }

    /// Why the plugin's last call must be refused because a table reached the largest rowid
    /// (see [`rowid_guard`]), if one did.
    pub fn rowid_at_limit(&self) -> anyhow::Result<Option<String>> {
        for query in &self.rowid_checks {
            let table: Option<String> = self
                .connection
                .prepare(query)?
                .query_row([], |row| row.get(0))
                .optional()?;
            if let Some(table) = table {
                return Ok(Some(format!("table `{table}` {}", rowid_guard::REFUSAL)));
            }
        }
        Ok(None)
    }

    /// Takes the fault a plugin statement met since the last call, if any: the batch must
    /// then be retried or the projection stopped, whatever the plugin made of the error.
    pub fn take_fault(&self) -> Option<String> {
        self.fault.take()
    }

    /// A fault's reason with what an operator can do about it; a full database at its cap is
    /// told apart from a full disk.
    pub fn explain_fault(&self, fault: &str) -> String {
        let at_cap = (|| -> rusqlite::Result<bool> {
            let pages: u64 = self
                .connection
                .pragma_query_value(None, "page_count", |r| r.get(0))?;
            let max: u64 = self
                .connection
                .pragma_query_value(None, "max_page_count", |r| r.get(0))?;
            let page_size: u64 = self
                .connection
                .pragma_query_value(None, "page_size", |r| r.get(0))?;
            // A write that does not fit under the cap fails before the file reaches it, so
            // "full" with less room left than one large write (an event of 16 MiB, its dead
            // letter, their indexes) is the cap's doing; with more, the disk's.
            Ok(max.saturating_sub(pages).saturating_mul(page_size) < CAP_ROOM_BYTES)
        })()
        .unwrap_or(false);
        if at_cap {
            format!(
                "the database {} reached its size cap of {} MiB, or a write would pass it ([projections.<name>] \
                 max_database_mib); raise the cap or make the projection smaller: {fault}",
                self.path.display(),
                self.limits.max_database_bytes >> 20
            )
        } else {
            fault.to_string()
        }
    }

    /// The stored checkpoint, or `None` if no batch has been committed yet.
    pub fn checkpoint(&self) -> anyhow::Result<Option<Checkpoint>> {
        let checkpoint = self
            .connection
            .prepare("SELECT commit_position, prepare_position, events_handled, last_event_commit, last_event_prepare FROM _projector_checkpoint WHERE id = 1")?
            .query_row([], |row| {
                let last_commit: Option<i64> = row.get(3)?;
                let last_prepare: Option<i64> = row.get(4)?;
                Ok(Checkpoint {
                    position: Position { commit: row.get::<_, i64>(0)? as u64, prepare: row.get::<_, i64>(1)? as u64 },
                    events_handled: row.get::<_, i64>(2)? as u64,
                    last_event: last_commit.zip(last_prepare).map(|(commit, prepare)| Position {
                        commit: commit as u64,
                        prepare: prepare as u64,
                    }),
                })
            })
            .optional()?;
        Ok(checkpoint)
    }

    /// Opens the batch transaction; plugin SQL runs inside it until [`Db::commit`] or
    /// [`Db::rollback`].
    pub fn begin(&mut self) -> anyhow::Result<()> {
        if self.in_batch {
            bail!("a batch is already open on {}", self.path.display());
        }
        // A transaction a failed rollback left behind is ended before the next one.
        if !self.connection.is_autocommit() {
            self.connection.prepare("ROLLBACK")?.execute([])?;
        }
        // A fault recorded by a call that ended early belongs to that batch, not to this one.
        self.fault.set(None);
        self.connection.prepare("BEGIN IMMEDIATE")?.execute([])?;
        self.in_batch = true;
        Ok(())
    }

    /// Stores `checkpoint` and commits everything written since [`Db::begin`].
    pub fn commit(&mut self, checkpoint: Checkpoint) -> anyhow::Result<()> {
        self.ensure_transaction()?;
        self.write_checkpoint(checkpoint)?;
        self.connection
            .prepare("COMMIT")?
            .execute([])
            .with_context(|| format!("committing a batch to {}", self.path.display()))?;
        self.in_batch = false;
        Ok(())
    }

    /// Fails if SQLite ended the batch's transaction on its own: committing the checkpoint
    /// then would record a batch whose writes are gone.
    fn ensure_transaction(&self) -> anyhow::Result<()> {
        if self.in_batch && self.connection.is_autocommit() {
            bail!("{} in {}", LOST_TRANSACTION, self.path.display());
        }
        Ok(())
    }

    /// Discards everything written since [`Db::begin`].
    pub fn rollback(&mut self) -> anyhow::Result<()> {
        self.in_batch = false;
        if !self.connection.is_autocommit() {
            self.connection.prepare("ROLLBACK")?.execute([])?;
        }
        Ok(())
    }

    fn write_checkpoint(&mut self, checkpoint: Checkpoint) -> anyhow::Result<()> {
        self.connection
            .prepare(
                "INSERT INTO _projector_checkpoint (id, commit_position, prepare_position, events_handled, last_event_commit, last_event_prepare)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET commit_position = ?1, prepare_position = ?2, events_handled = ?3,
                   last_event_commit = ?4, last_event_prepare = ?5",
            )?
            .execute(params![
                checkpoint.position.commit as i64,
                checkpoint.position.prepare as i64,
                checkpoint.events_handled as i64,
                checkpoint.last_event.map(|p| p.commit as i64),
                checkpoint.last_event.map(|p| p.prepare as i64),
            ])?;
        Ok(())
    }

    /// Marks a point inside the open batch that [`Db::rollback_to_savepoint`] can return to.
    pub fn savepoint(&mut self) -> anyhow::Result<()> {
        self.connection
            .prepare("SAVEPOINT projector_event")?
            .execute([])?;
        Ok(())
    }

    /// Keeps what was written since [`Db::savepoint`].
    pub fn release_savepoint(&mut self) -> anyhow::Result<()> {
        self.ensure_transaction()?;
        self.connection
            .prepare("RELEASE projector_event")?
            .execute([])?;
        Ok(())
    }

    /// Undoes what was written since [`Db::savepoint`].
    pub fn rollback_to_savepoint(&mut self) -> anyhow::Result<()> {
        self.ensure_transaction()?;
        self.connection
            .prepare("ROLLBACK TO projector_event")?
            .execute([])?;
        self.release_savepoint()
    }

    /// The names of the plugin's tables (everything but the host's and SQLite's own), sorted.
    pub fn plugin_tables(&self) -> anyhow::Result<Vec<String>> {
        let mut statement = self.connection.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_projector\\_%' ESCAPE '\\'
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )?;
        let names = statement
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(names)
    }
}

/// The column names of host table `table` (hidden ones included). Through the `PRAGMA`
/// statement, not the `pragma_table_info` table: a plugin may name a table of its own so, and
/// a host statement must not read that instead.
pub(crate) fn column_names(connection: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    connection
        .prepare(&format!(
            "PRAGMA main.table_xinfo(\"{}\")",
            table.replace('"', "\"\"")
        ))?
        .query_map([], |row| row.get::<_, String>(1))?
        .collect()
}

/// Adds the `columns` (name, type) that `table`, made by an older release, lacks.
pub(crate) fn add_missing_columns(
    connection: &Connection,
    table: &str,
    columns: &[(&str, &str)],
) -> anyhow::Result<()> {
    let existing = column_names(connection, table)?;
    for (column, kind) in columns {
        if !existing.iter().any(|c| c == column) {
            connection.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// What every connection that runs plugin SQL gets: the authorizer, the deadline check, the
/// deterministic date functions, and [`guard::harden`]'s bounds on single calls.
fn guard_connection(
    connection: &Connection,
    policy: &Arc<Policy>,
    max_length: usize,
) -> anyhow::Result<()> {
    policy.install(connection);
    let interrupt = Arc::clone(policy);
    connection.progress_handler(10_000, Some(move || interrupt.past_deadline()));
    determinism::install(connection, policy)?;
    // Linear built-ins and the length bound: no single call outlives the deadline. Values are
    // bounded to a quarter of what a query may return to the plugin, so that a statement
    // keeping several alive at once stays within reach of the heap limit.
    guard::harden(connection, max_length / 4)?;
    Ok(())
}
