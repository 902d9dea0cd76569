//! SQLite persistence of the log: `events.db` in the data directory, and its writer connection.
//!
//! Each append request is one transaction, so a request is either fully durable or absent. This
//! connection only writes (and scans the log once at start-up); readers have connections of
//! their own ([`super::readers::Readers`]), which WAL lets read while it writes.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, params};

use super::event::{METADATA_EVENT_TYPE, RecordedEvent, SETTINGS_STREAM};
use super::index::Applied;

/// Schema version stored in `PRAGMA user_version`; a newer file is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

/// The open database.
pub struct Disk {
    /// The writer's connection.
    connection: Connection,
    /// Where the database file is, for the readers' connections.
    path: PathBuf,
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
        Ok(Disk { connection, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `visit` with every stored event in log order, as the index takes it in. Only the
    /// columns the index keeps are read, and the payload only of `$metadata` events and of
    /// `$settings` (the system settings, which access checks read), so a start materialises
    /// no other payloads: they stay on disk until a reader asks for them.
    pub fn load(&self, mut visit: impl FnMut(Applied<'_>)) -> anyhow::Result<()> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT position, stream, event_type, created,
                        CASE WHEN event_type = ?1 OR stream = ?2 THEN data ELSE x'' END
                 FROM events ORDER BY position",
            )
            .context("preparing log scan")?;
        let mut rows = statement
            .query([METADATA_EVENT_TYPE, SETTINGS_STREAM])
            .context("scanning log")?;
        while let Some(row) = rows.next().context("scanning log")? {
            visit(Applied {
                position: row.get::<_, i64>(0)? as u64,
                stream: row.get_ref(1)?.as_str()?,
                event_type: row.get_ref(2)?.as_str()?,
                created: row.get(3)?,
                data: row.get_ref(4)?.as_blob()?,
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
                        &*event.event_type,
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
