//! Dead letters: the events a projection's plugin refused, kept whole in the projection's
//! database (`_projector_dead_letters`) so an operator can list them, look at them, retry them
//! on a fixed plugin or drop them, with or without a process running.
//!
//! A dead letter keeps the event itself (payload included: a retry must not depend on the
//! source still holding it), how often and when it was refused, the first and the last error,
//! and every plugin build (by hash) that refused it. It is identified by its event's commit
//! position, unique in a log.

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use super::{Db, now_unix_ms};
use crate::event::{Position, RecordedEvent};

/// Columns added to `_projector_dead_letters` after its first release, with their types; a
/// database made before them gets them on open (its older rows have no payload to retry).
pub(super) const ADDED_COLUMNS: [(&str, &str); 8] = [
    ("first_error", "TEXT"),
    ("refused_by", "TEXT"),
    ("first_failed_unix_ms", "INTEGER"),
    ("last_failed_unix_ms", "INTEGER"),
    ("content_type", "TEXT"),
    ("created_unix_ms", "INTEGER"),
    ("data", "BLOB"),
    ("metadata", "BLOB"),
];

/// Which dead letters an operation is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Every one.
    All,
    /// Those of the events at these commit positions.
    Positions(Vec<u64>),
    /// Those no plugin build with this sha256 has refused yet: what new code may fix.
    NotTriedBy(String),
}

/// One dead letter.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    /// The event, payload included; `None` for dead letters recorded before payloads were kept.
    #[serde(skip)]
    pub event: Option<RecordedEvent>,
    /// Its commit position: the dead letter's id.
    pub id: u64,
    /// Its prepare position (with `id`, its place in the log).
    pub prepare_position: u64,
    /// Where it was written, and its revision there.
    pub stream_id: String,
    pub stream_revision: u64,
    /// The event's own id and type.
    pub event_id: String,
    pub event_type: String,
    /// Times the plugin was called with it and failed.
    pub attempts: u64,
    /// The error of the first and of the latest refusal.
    pub first_error: String,
    pub last_error: String,
    /// The plugin builds (sha256) that refused it, oldest first.
    pub refused_by: Vec<String>,
    /// When it was first and last refused (absent for dead letters older than these columns).
    pub first_failed_unix_ms: Option<i64>,
    pub last_failed_unix_ms: Option<i64>,
    /// Bytes of its data, for listings that do not show it.
    pub data_bytes: usize,
}

/// Whether a read brings the events' payloads, or only what a listing shows: a dead-letter
/// table can hold thousands of events of megabytes, which are read one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payloads {
    /// Data and metadata too.
    With,
    /// Everything but data and metadata (their size still counted).
    Without,
}

/// The select list of a dead letter; a column an unmigrated database lacks (read by a
/// command that may not change it) reads as NULL.
fn columns(connection: &Connection, payloads: Payloads) -> rusqlite::Result<String> {
    let existing = super::column_names(connection, "_projector_dead_letters")?;
    let column = |name: &str| {
        if existing.iter().any(|c| c == name) {
            name.to_string()
        } else {
            "NULL".to_string()
        }
    };
    let payload = |name: &str| match payloads {
        Payloads::With => column(name),
        Payloads::Without => "NULL".to_string(),
    };
    Ok(format!(
        "commit_position, prepare_position, stream_id, stream_revision, event_id, event_type, \
         attempts, COALESCE({first_error}, error), error, \
         COALESCE({refused_by}, json_array(wasm_sha256)), {first_failed}, {last_failed}, \
         {content_type}, {created}, {data}, {metadata}, length({data_column})",
        first_error = column("first_error"),
        refused_by = column("refused_by"),
        first_failed = column("first_failed_unix_ms"),
        last_failed = column("last_failed_unix_ms"),
        content_type = column("content_type"),
        created = column("created_unix_ms"),
        data = payload("data"),
        metadata = payload("metadata"),
        data_column = column("data"),
    ))
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    let position = Position {
        commit: row.get::<_, i64>(0)? as u64,
        prepare: row.get::<_, i64>(1)? as u64,
    };
    let refused_by: String = row.get(9)?;
    let data: Option<Vec<u8>> = row.get(14)?;
    let content_type: Option<String> = row.get(12)?;
    let mut letter = DeadLetter {
        event: None,
        id: position.commit,
        prepare_position: position.prepare,
        stream_id: row.get(2)?,
        stream_revision: row.get::<_, i64>(3)? as u64,
        event_id: row.get(4)?,
        event_type: row.get(5)?,
        attempts: row.get::<_, i64>(6)? as u64,
        first_error: row.get(7)?,
        last_error: row.get(8)?,
        refused_by: serde_json::from_str(&refused_by).unwrap_or_default(),
        first_failed_unix_ms: row.get(10)?,
        last_failed_unix_ms: row.get(11)?,
        data_bytes: row.get::<_, Option<i64>>(16)?.unwrap_or(0) as usize,
    };
    if let (Some(data), Some(content_type)) = (data, content_type) {
        letter.event = Some(RecordedEvent {
            stream_id: letter.stream_id.clone(),
            stream_revision: letter.stream_revision,
            position,
            event_id: letter.event_id.clone(),
            event_type: letter.event_type.clone(),
            content_type,
            created_unix_ms: row.get::<_, Option<i64>>(13)?.unwrap_or(0),
            data,
            metadata: row.get::<_, Option<Vec<u8>>>(15)?.unwrap_or_default(),
        });
    }
    Ok(letter)
}

/// Selected ids travel as one JSON array parameter, however many there are.
const IN_SELECTION: &str = "commit_position IN (SELECT value FROM json_each(?1))";

/// Dead letters the build `?1` has not refused.
const NOT_TRIED_BY: &str = "NOT EXISTS (SELECT 1 FROM json_each(COALESCE(refused_by, json_array(wasm_sha256))) WHERE value = ?1)";
// (`refused_by` exists wherever this runs: only a projection, which migrates first, selects so.)

fn ids(positions: &[u64]) -> String {
    serde_json::to_string(positions).expect("numbers serialise")
}

/// The `WHERE` condition of `selection` and its one parameter, if any.
fn condition(selection: &Selection) -> (&'static str, Option<String>) {
    match selection {
        Selection::All => ("1", None),
        Selection::Positions(positions) => (IN_SELECTION, Some(ids(positions))),
        Selection::NotTriedBy(sha256) => (NOT_TRIED_BY, Some(sha256.clone())),
    }
}

fn select(
    connection: &Connection,
    selection: &Selection,
    payloads: Payloads,
) -> rusqlite::Result<Vec<DeadLetter>> {
    select_first(connection, selection, payloads, i64::MAX)
}

/// The first `limit` selected dead letters, in log order.
fn select_first(
    connection: &Connection,
    selection: &Selection,
    payloads: Payloads,
    limit: i64,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let (condition, parameter) = condition(selection);
    let columns = columns(connection, payloads)?;
    connection
        .prepare(&format!(
            "SELECT {columns} FROM _projector_dead_letters WHERE {condition} \
             ORDER BY commit_position, prepare_position LIMIT {limit}"
        ))?
        .query_map(rusqlite::params_from_iter(parameter), from_row)?
        .collect()
}

fn delete(connection: &Connection, selection: &Selection) -> rusqlite::Result<usize> {
    let (condition, parameter) = condition(selection);
    connection.execute(
        &format!("DELETE FROM _projector_dead_letters WHERE {condition}"),
        rusqlite::params_from_iter(parameter),
    )
}

/// Reads the dead letters of the projection database at `path`, read-only: safe beside a
/// running projection.
pub fn read(
    path: &Path,
    selection: &Selection,
    payloads: Payloads,
) -> anyhow::Result<Vec<DeadLetter>> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    select(&connection, selection, payloads)
        .with_context(|| format!("reading the dead letters of {}", path.display()))
}

/// How many dead letters the projection database at `path` holds, and the first `limit` of
/// them without payloads, read-only: for a listing that must stay small whatever the table
/// holds.
pub fn first(path: &Path, limit: usize) -> anyhow::Result<(u64, Vec<DeadLetter>)> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let total: i64 =
        connection.query_row("SELECT count(*) FROM _projector_dead_letters", [], |r| {
            r.get(0)
        })?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let first = select_first(&connection, &Selection::All, Payloads::Without, limit)
        .with_context(|| format!("reading the dead letters of {}", path.display()))?;
    Ok((total as u64, first))
}

/// Deletes the selected dead letters of the projection database at `path`; how many went. A
/// running projection may write the same file: SQLite's locking orders the two, and nothing
/// the projection relies on (its checkpoint) is touched.
pub fn drop_selected(path: &Path, selection: &Selection) -> anyhow::Result<usize> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", path.display()))?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    delete(&connection, selection)
        .with_context(|| format!("dropping dead letters in {}", path.display()))
}

impl Db {
    /// Adds the columns of [`ADDED_COLUMNS`] a database made before them lacks.
    pub(super) fn migrate_dead_letters(connection: &Connection) -> anyhow::Result<()> {
        super::add_missing_columns(connection, "_projector_dead_letters", &ADDED_COLUMNS)
    }

    /// Records inside the open batch that the plugin build `wasm_sha256` refused `event`
    /// `attempts` times with `error`; a dead letter already there keeps its first error and
    /// gains the build.
    pub fn dead_letter(
        &mut self,
        event: &RecordedEvent,
        error: &str,
        wasm_sha256: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        let now = now_unix_ms();
        self.without_length_limit(|connection| {
            connection.prepare(
                "INSERT INTO _projector_dead_letters
                 (commit_position, prepare_position, stream_id, stream_revision, event_id, event_type,
                  error, wasm_sha256, attempts, first_error, refused_by, first_failed_unix_ms,
                  last_failed_unix_ms, content_type, created_unix_ms, data, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?7, json_array(?8), ?10, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT DO UPDATE SET
                   error = ?7, wasm_sha256 = ?8, attempts = attempts + ?9, last_failed_unix_ms = ?10,
                   first_error = COALESCE(first_error, error),
                   first_failed_unix_ms = COALESCE(first_failed_unix_ms, ?10),
                   content_type = COALESCE(content_type, ?11),
                   created_unix_ms = COALESCE(created_unix_ms, ?12),
                   data = COALESCE(data, ?13),
                   metadata = COALESCE(metadata, ?14),
                   refused_by = CASE
                     WHEN EXISTS (SELECT 1 FROM json_each(COALESCE(refused_by, json_array(wasm_sha256))) WHERE value = ?8)
                       THEN COALESCE(refused_by, json_array(wasm_sha256))
                     ELSE json_insert(COALESCE(refused_by, json_array(wasm_sha256)), '$[#]', ?8) END",
            )?
            .execute(params![
                event.position.commit as i64,
                event.position.prepare as i64,
                event.stream_id,
                event.stream_revision as i64,
                event.event_id,
                event.event_type,
                error,
                wasm_sha256,
                attempts,
                now,
                event.content_type,
                event.created_unix_ms,
                event.data,
                event.metadata,
            ])
        })?;
        Ok(())
    }

    /// Runs `work` with SQLite's length limit lifted: it bounds what plugin SQL builds, and the
    /// host keeping (or reading back) an event the log already held is not that; an event too
    /// large for the plugin must still be kept and retried.
    fn without_length_limit<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        use rusqlite::limits::Limit;
        let plugin_limit = self
            .connection
            .set_limit(Limit::SQLITE_LIMIT_LENGTH, i32::MAX)?;
        let result = work(&self.connection);
        self.connection
            .set_limit(Limit::SQLITE_LIMIT_LENGTH, plugin_limit)?;
        result
    }

    /// The selected dead letters, in log order; with their payloads, one at a time is wise.
    pub fn dead_letters(
        &self,
        selection: &Selection,
        payloads: Payloads,
    ) -> anyhow::Result<Vec<DeadLetter>> {
        Ok(self.without_length_limit(|connection| select(connection, selection, payloads))?)
    }

    /// The dead letter of the event at `position` (commit and prepare: commit positions alone
    /// repeat within a transaction), with its payload.
    pub fn dead_letter_at(&self, position: Position) -> anyhow::Result<Option<DeadLetter>> {
        Ok(self.without_length_limit(|connection| {
            let columns = columns(connection, Payloads::With)?;
            connection
                .prepare(&format!(
                    "SELECT {columns} FROM _projector_dead_letters \
                     WHERE commit_position = ?1 AND prepare_position = ?2"
                ))?
                .query_row(
                    params![position.commit as i64, position.prepare as i64],
                    from_row,
                )
                .optional()
        })?)
    }

    /// Removes the dead letter of the event at `position` inside the open batch: a retry
    /// projected it.
    pub fn resolve_dead_letter(&mut self, position: Position) -> anyhow::Result<()> {
        self.connection
            .prepare(
                "DELETE FROM _projector_dead_letters WHERE commit_position = ?1 AND prepare_position = ?2",
            )?
            .execute(params![position.commit as i64, position.prepare as i64])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database made before dead letters kept their events still lists them read-only
    /// (with no event to retry), without being changed.
    #[test]
    fn dead_letters_of_an_older_database_are_read_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE _projector_dead_letters (
                    commit_position INTEGER NOT NULL, prepare_position INTEGER NOT NULL,
                    stream_id TEXT NOT NULL, stream_revision INTEGER NOT NULL,
                    event_id TEXT NOT NULL, event_type TEXT NOT NULL, error TEXT NOT NULL,
                    wasm_sha256 TEXT NOT NULL, attempts INTEGER NOT NULL,
                    PRIMARY KEY (commit_position, prepare_position));
                 INSERT INTO _projector_dead_letters VALUES (7, 7, 's', 0, 'e', 'T', 'boom', 'ab', 2);",
            )
            .unwrap();
        drop(connection);
        let letters = read(&path, &Selection::All, Payloads::With).unwrap();
        assert_eq!(letters.len(), 1);
        let letter = &letters[0];
        assert_eq!((letter.id, letter.attempts), (7, 2));
        assert_eq!(
            (letter.first_error.as_str(), letter.last_error.as_str()),
            ("boom", "boom")
        );
        assert_eq!(letter.refused_by, vec!["ab".to_string()]);
        assert!(letter.event.is_none());
    }
}
