//! Reading payloads from `events.db` on demand, through read-only connections of their own.
//!
//! In WAL mode readers and the writer never block each other: a reader sees the database as of
//! its query's start, and every position the index gives out was committed before the index
//! learned of it, so it is there. A page is read with one query (a range of positions, or a
//! list of them for a stream's scattered revisions), never one query per event. Connections
//! are opened when a read needs one and a few are kept for the next reads; each read runs on
//! a blocking thread, never on the async workers and never under the index lock.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use prost::bytes::Bytes;
use rusqlite::{Connection, OpenFlags, Row};
use uuid::Uuid;

use super::event::{EventHeader, RecordedEvent};

/// Idle connections kept for the next reads; more concurrent reads open more and close them
/// after. Each has its own page cache (SQLite's default, about 2 MiB).
const IDLE_CONNECTIONS: usize = 4;

/// The columns a page read needs; stream and type come from the index, which shares them.
const COLUMNS: &str = "position, revision, event_id, is_json, created, custom_metadata, data";

/// The database's read connections.
pub struct Readers {
    /// The database file.
    path: PathBuf,
    /// Connections not in use; None once the store is closed.
    idle: Mutex<Option<Vec<Connection>>>,
}

impl Readers {
    /// Readers of the database at `path`, which the writer has created.
    pub fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_owned(),
            idle: Mutex::new(Some(Vec::new())),
        }
    }

    /// The events `wanted` describes (distinct positions), in the same order.
    pub fn load(&self, wanted: Vec<EventHeader>) -> anyhow::Result<Vec<RecordedEvent>> {
        let connection = self.connection()?;
        let loaded = load(&connection, wanted);
        self.give_back(connection);
        loaded
    }

    /// Closes the idle connections; later reads fail, as writes do after the store is closed.
    pub fn close(&self) {
        self.lock().take();
    }

    /// An idle connection, or a new one.
    fn connection(&self) -> anyhow::Result<Connection> {
        match self.lock().as_mut() {
            None => bail!("the store is closed"),
            Some(idle) => {
                if let Some(connection) = idle.pop() {
                    return Ok(connection);
                }
            }
        }
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} for reading", self.path.display()))?;
        Ok(connection)
    }

    /// Keeps `connection` for the next read, unless enough are kept or the store is closed.
    fn give_back(&self, connection: Connection) {
        if let Some(idle) = self.lock().as_mut()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(connection);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Connection>>> {
        self.idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Reads the rows of `wanted` (distinct positions, in any order) with one query and returns
/// them in `wanted`'s order.
fn load(connection: &Connection, wanted: Vec<EventHeader>) -> anyhow::Result<Vec<RecordedEvent>> {
    let positions = wanted.iter().map(|header| header.position);
    let (Some(low), Some(high)) = (positions.clone().min(), positions.clone().max()) else {
        return Ok(Vec::new());
    };
    // Each row with its position, in position order; a row is taken out when placed.
    let mut rows: Vec<(u64, Option<StoredRow>)> = Vec::with_capacity(wanted.len());
    // The page's payloads, one after the other: one allocation per page instead of one per
    // event, which made catch-ups from disk about a tenth faster (4 alternating runs of
    // 1,000,000 events). An event read from disk keeps its page's buffer alive, but such
    // events are sent and dropped, not kept.
    let mut payloads = Vec::with_capacity(wanted.len() * 512);
    if high - low + 1 == wanted.len() as u64 {
        // A page of `$all` (or of a stream written in one go) is a range of positions.
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events WHERE position BETWEEN ?1 AND ?2 ORDER BY position"
            ))
            .context("preparing page read")?;
        let mut query = statement
            .query([low as i64, high as i64])
            .context("reading page")?;
        while let Some(row) = query.next().context("reading page")? {
            let row = stored_row(row, &mut payloads)?;
            rows.push((row.position, Some(row)));
        }
    } else {
        // A stream's revisions are scattered over the log: one query looks them all up by
        // primary key, the positions passed as a JSON array so that one statement serves every
        // page size.
        let list =
            serde_json::to_string(&positions.collect::<Vec<_>>()).context("listing positions")?;
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events
                 WHERE position IN (SELECT value FROM json_each(?1)) ORDER BY position"
            ))
            .context("preparing page read")?;
        let mut query = statement.query([list]).context("reading page")?;
        while let Some(row) = query.next().context("reading page")? {
            let row = stored_row(row, &mut payloads)?;
            rows.push((row.position, Some(row)));
        }
    }
    let payloads = Bytes::from(payloads);
    wanted
        .into_iter()
        .map(|header| {
            let found = rows
                .binary_search_by_key(&header.position, |(position, _)| *position)
                .ok()
                .and_then(|slot| rows[slot].1.take());
            let Some(row) = found else {
                bail!("events.db has no event at position {}", header.position);
            };
            Ok(RecordedEvent {
                position: row.position,
                stream: header.stream,
                revision: row.revision,
                id: row.id,
                event_type: header.event_type,
                is_json: row.is_json,
                created: row.created,
                custom_metadata: payloads.slice(row.custom_metadata),
                data: payloads.slice(row.data),
            })
        })
        .collect()
}

/// The columns of a row that the index does not have.
struct StoredRow {
    /// Global log position.
    position: u64,
    /// Revision within the stream.
    revision: u64,
    /// Client-chosen event id.
    id: Uuid,
    /// Whether the payload is JSON.
    is_json: bool,
    /// Write time in ticks.
    created: i64,
    /// Where the user metadata bytes are in the page's payloads.
    custom_metadata: Range<usize>,
    /// Where the payload bytes are in the page's payloads.
    data: Range<usize>,
}

/// Reads one row of [`COLUMNS`], appending its metadata and payload to `payloads`.
fn stored_row(row: &Row<'_>, payloads: &mut Vec<u8>) -> anyhow::Result<StoredRow> {
    let mut append = |bytes: &[u8]| {
        let start = payloads.len();
        payloads.extend_from_slice(bytes);
        start..payloads.len()
    };
    Ok(StoredRow {
        position: row.get::<_, i64>(0)? as u64,
        revision: row.get::<_, i64>(1)? as u64,
        id: Uuid::from_slice(row.get_ref(2)?.as_blob()?)
            .context("stored event id is not 16 bytes")?,
        is_json: row.get(3)?,
        created: row.get(4)?,
        custom_metadata: append(row.get_ref(5)?.as_blob()?),
        data: append(row.get_ref(6)?.as_blob()?),
    })
}
