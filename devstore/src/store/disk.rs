//! SQLite persistence of the log: `events.db` in the data directory.
//!
//! Only the writer touches the database after start-up; readers are served from the in-memory
//! index. Each append request is one transaction, so a request is either fully durable or absent.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use prost::bytes::Bytes;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::event::RecordedEvent;

/// Schema version stored in `PRAGMA user_version`; a newer file is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

/// The open database.
pub struct Disk {
    connection: Connection,
}

impl Disk {
    /// Opens (creating if needed) `events.db` inside `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<Disk> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join("events.db");
        let connection =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // WAL + NORMAL: a committed append survives a crash of the process (the lost-on-power-cut
        // window of NORMAL is acceptable for a development server and keeps appends fast).
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .context("enabling WAL")?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .context("setting synchronous")?;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .context("reading schema version")?;
        if version > SCHEMA_VERSION {
            bail!(
                "{} has schema version {version}, this devstore knows only {SCHEMA_VERSION}",
                path.display()
            );
        }
        connection
            .execute_batch(include_str!("schema.sql"))
            .context("creating schema")?;
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .context("writing schema version")?;
        Ok(Disk { connection })
    }

    /// Calls `visit` with every stored event in log order.
    pub fn load(&self, mut visit: impl FnMut(RecordedEvent)) -> anyhow::Result<()> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT position, stream, revision, event_id, event_type, is_json, created,
                        custom_metadata, data
                 FROM events ORDER BY position",
            )
            .context("preparing log scan")?;
        let mut rows = statement.query([]).context("scanning log")?;
        while let Some(row) = rows.next().context("scanning log")? {
            let id: Vec<u8> = row.get(3)?;
            let stream: String = row.get(1)?;
            visit(RecordedEvent {
                position: row.get::<_, i64>(0)? as u64,
                stream: Arc::from(stream),
                revision: row.get::<_, i64>(2)? as u64,
                id: Uuid::from_slice(&id).context("stored event id is not 16 bytes")?,
                event_type: row.get(4)?,
                is_json: row.get(5)?,
                created: row.get(6)?,
                custom_metadata: Bytes::from(row.get::<_, Vec<u8>>(7)?),
                data: Bytes::from(row.get::<_, Vec<u8>>(8)?),
            });
        }
        Ok(())
    }

    /// Writes `events` in one transaction.
    pub fn append(&mut self, events: &[RecordedEvent]) -> anyhow::Result<()> {
        let transaction = self.connection.transaction().context("starting append")?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO events (position, stream, revision, event_id, event_type,
                                         is_json, created, custom_metadata, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .context("preparing insert")?;
            for event in events {
                insert
                    .execute(params![
                        event.position as i64,
                        &*event.stream,
                        event.revision as i64,
                        event.id.as_bytes(),
                        event.event_type,
                        event.is_json,
                        event.created,
                        &event.custom_metadata[..],
                        &event.data[..],
                    ])
                    .with_context(|| format!("inserting event at position {}", event.position))?;
            }
        }
        transaction.commit().context("committing append")
    }

    /// Checkpoints the WAL into the main file and closes the database.
    pub fn close(self) -> anyhow::Result<()> {
        self.connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .context("checkpointing WAL")?;
        self.connection
            .close()
            .map_err(|(_, error)| error)
            .context("closing database")
    }
}
