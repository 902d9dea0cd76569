//! The write path: appends, soft deletes and tombstones, with expected-revision checks.
//!
//! Every write builds its records against the current index, persists them in one transaction,
//! and only then publishes them to the index, the recent events and the head watch. A failed
//! disk write therefore leaves no trace, and readers never see an event that is not durable
//! (nor one that their own SQLite connections could not find).

use std::sync::{Arc, MutexGuard};

use anyhow::anyhow;
use prost::bytes::Bytes;
use serde_json::Value;

use super::event::{
    METADATA_EVENT_TYPE, ProposedEvent, RecordedEvent, TOMBSTONE_EVENT_TYPE, TOMBSTONE_REVISION,
    now_ticks,
};
use super::idempotence::{Committed, Retry};
use super::index::{Applied, Index};
use super::stream::{SOFT_DELETED_TRUNCATE_BEFORE, StreamState};
use super::{Store, Target, Writer};

/// The client's expectation about a stream's current revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist (a soft-deleted stream counts as not existing).
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last revision must be exactly this.
    Exact(u64),
}

/// The result of a successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendSuccess {
    /// Revision of the stream's last event, None if the stream has none.
    pub current_revision: Option<u64>,
    /// Log position of the last event written, None if nothing was written.
    pub position: Option<u64>,
}

/// Why a write was refused.
#[derive(Debug)]
pub enum WriteError {
    /// The expectation did not hold; `current` is the stream's last revision (None: no stream).
    WrongExpectedVersion { current: Option<u64> },
    /// The stream was tombstoned.
    StreamDeleted,
    /// The database failed or is closed.
    Storage(anyhow::Error),
}

impl ExpectedRevision {
    /// The number the real server uses in messages (`Expected version: -2` for any, ...).
    pub fn as_version_number(self) -> i64 {
        match self {
            ExpectedRevision::Any => -2,
            ExpectedRevision::NoStream => -1,
            ExpectedRevision::StreamExists => -4,
            ExpectedRevision::Exact(revision) => revision as i64,
        }
    }
}

/// The stream's last revision as reported in wrong-expected-version results.
fn current_revision(state: StreamState) -> Option<u64> {
    match state {
        StreamState::Live { last } => Some(last),
        StreamState::SoftDeleted { last } => last,
        StreamState::Missing | StreamState::Tombstoned => None,
    }
}

impl Store {
    /// Appends `events` to `stream` atomically if `expected` holds; a retry of an append
    /// already written answers as it did and writes nothing (see [`super::idempotence`]).
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendSuccess, WriteError> {
        let mut writer = self.lock_writer();
        match self.retry(&writer.committed, stream, expected, &events)? {
            Retry::New => {}
            Retry::Written { revision, position } => {
                return Ok(AppendSuccess {
                    current_revision: Some(revision),
                    position: Some(position),
                });
            }
            Retry::Partial => {
                let current = current_revision(self.stream_state(stream));
                return Err(WriteError::WrongExpectedVersion { current });
            }
        }
        let ids: Vec<uuid::Uuid> = events.iter().map(|event| event.id).collect();
        let events = pack(events);
        let success = self.write_locked(&mut writer, |index, batch| {
            let state = index.stream_state(stream);
            check(
                Operation::Append,
                state,
                has_metadata(index, stream),
                expected,
            )?;
            let last = current_revision(state);
            if events.is_empty() {
                return Ok(AppendSuccess {
                    current_revision: last,
                    position: None,
                });
            }
            if let StreamState::SoftDeleted { last } = state {
                // Appending recreates a soft-deleted stream: move `$tb` from "deleted" to just
                // past the old events, so they stay hidden and revisions continue.
                let truncate_before = last.map_or(0, |last| last + 1);
                batch.push_metadata(index, stream, Value::from(truncate_before), true);
            }
            let name = index.stream_name(stream);
            let first = last.map_or(0, |last| last + 1);
            for (offset, event) in events.into_iter().enumerate() {
                batch.push(index, name.clone(), first + offset as u64, event);
            }
            Ok(AppendSuccess {
                current_revision: batch.records.last().map(|record| record.revision),
                position: batch.records.last().map(|record| record.position),
            })
        })?;
        if let (Some(last), Some(position)) = (success.current_revision, success.position) {
            // The events are the last records written, at consecutive revisions and positions.
            let stream = self.log().index.stream_name(stream);
            let count = ids.len() as u64;
            for (offset, id) in (1..=count).rev().zip(ids) {
                let committed = Committed {
                    stream: stream.clone(),
                    revision: last + 1 - offset,
                    position: position + 1 - offset,
                };
                writer.committed.remember(id, committed);
            }
        }
        Ok(success)
    }

    /// Soft-deletes `stream` by setting its `$tb` to "deleted"; returns the metadata event's
    /// position. The stream can be recreated by appending to it.
    pub fn delete(&self, stream: &str, expected: ExpectedRevision) -> Result<u64, WriteError> {
        self.write(|index, batch| {
            let state = index.stream_state(stream);
            check(
                Operation::Delete,
                state,
                has_metadata(index, stream),
                expected,
            )?;
            // The real server's delete writes `$tb` alone: the stream's other settings go.
            let deleted = Value::from(SOFT_DELETED_TRUNCATE_BEFORE);
            Ok(batch.push_metadata(index, stream, deleted, false))
        })
    }

    /// Hard-deletes `stream` with a `$streamDeleted` tombstone; returns its position. The name
    /// can never be used again.
    pub fn tombstone(&self, stream: &str, expected: ExpectedRevision) -> Result<u64, WriteError> {
        self.write(|index, batch| {
            let state = index.stream_state(stream);
            check(
                Operation::Tombstone,
                state,
                has_metadata(index, stream),
                expected,
            )?;
            let tombstone = ProposedEvent {
                id: uuid::Uuid::new_v4(),
                event_type: TOMBSTONE_EVENT_TYPE.to_owned(),
                is_json: false,
                custom_metadata: Default::default(),
                data: Default::default(),
            };
            Ok(batch.push(
                index,
                index.stream_name(stream),
                TOMBSTONE_REVISION,
                tombstone,
            ))
        })
    }

    /// Runs one write under the writer lock (see [`Store::write_locked`]).
    fn write<T>(
        &self,
        build: impl FnOnce(&Index, &mut Batch) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let mut writer = self.lock_writer();
        self.write_locked(&mut writer, build)
    }

    /// The writer lock, which serialises writes and holds the database.
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.shared
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Runs one write: `build` checks the index and fills a batch, which is then persisted and
    /// published. Holding the writer lock throughout makes check-then-write atomic.
    fn write_locked<T>(
        &self,
        writer: &mut Writer,
        build: impl FnOnce(&Index, &mut Batch) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let (outcome, batch) = {
            let log = self.log();
            let mut batch = Batch {
                next_position: log.index.head() + 1,
                created: now_ticks(),
                records: Vec::new(),
            };
            (build(&log.index, &mut batch)?, batch)
        };
        if batch.records.is_empty() {
            return Ok(outcome);
        }
        match &mut writer.target {
            Target::Memory => {}
            Target::Disk(disk) => disk.append(&batch.records).map_err(WriteError::Storage)?,
            Target::Closed => return Err(WriteError::Storage(anyhow!("the store is closed"))),
        }
        let head = {
            let mut log = self.log_mut();
            for record in batch.records {
                log.index.apply(Applied {
                    position: record.position,
                    stream: &record.stream,
                    event_type: &record.event_type,
                    created: record.created,
                    data: &record.data,
                });
                log.recent.push(Arc::new(record));
            }
            log.index.head()
        };
        self.shared.head.send_replace(head);
        Ok(outcome)
    }
}

/// Copies the payloads and metadata of `events` into one buffer that they then share.
///
/// As they arrive, they share buffers with the rest of their request's messages, which a held
/// event would keep alive (about twice its payload), and one allocation per event would cost a
/// reader one more cache miss per event; events of one append are held and let go together.
fn pack(events: Vec<ProposedEvent>) -> Vec<ProposedEvent> {
    let size = events
        .iter()
        .map(|event| event.data.len() + event.custom_metadata.len())
        .sum();
    let mut buffer = Vec::with_capacity(size);
    let mut append = |bytes: &[u8]| {
        let start = buffer.len();
        buffer.extend_from_slice(bytes);
        start..buffer.len()
    };
    let ranges: Vec<_> = events
        .iter()
        .map(|event| (append(&event.custom_metadata), append(&event.data)))
        .collect();
    let buffer = Bytes::from(buffer);
    events
        .into_iter()
        .zip(ranges)
        .map(|(event, (custom_metadata, data))| ProposedEvent {
            custom_metadata: buffer.slice(custom_metadata),
            data: buffer.slice(data),
            ..event
        })
        .collect()
}

/// What a write does to a stream, for [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operation {
    Append,
    Delete,
    Tombstone,
}

/// Whether `stream` has metadata (`$$stream` holds an event): a stream with metadata and no
/// events exists for `StreamExists` and for deletes.
pub(super) fn has_metadata(index: &Index, stream: &str) -> bool {
    index
        .stream(&format!("$${stream}"))
        .is_some_and(|entry| entry.last_revision().is_some())
}

/// The real server's expected-revision rule for `operation` on a stream in `state` (its
/// index writer's commit check, and a soft delete's own check for a stream with nothing to
/// delete). docs/devstore.md has it as a table:
/// - a tombstoned stream refuses everything as deleted;
/// - a soft-deleted stream takes `any`, `no_stream` and its old last revision (an append
///   recreates it, a delete or tombstone deletes it again), and refuses `stream_exists` as
///   deleted;
/// - a live stream takes `any`, `stream_exists` and its last revision;
/// - a stream with no events takes `any` and `no_stream`, and `stream_exists` only when it has
///   metadata; a soft delete of a stream with neither events nor metadata always fails (with
///   "Actual version: -1", which the Python client reports as not found), while a tombstone
///   writes one.
pub(super) fn check(
    operation: Operation,
    state: StreamState,
    has_metadata: bool,
    expected: ExpectedRevision,
) -> Result<(), WriteError> {
    use ExpectedRevision::{Any, Exact, NoStream, StreamExists};
    let wrong = |current| Err(WriteError::WrongExpectedVersion { current });
    match state {
        StreamState::Tombstoned => Err(WriteError::StreamDeleted),
        StreamState::SoftDeleted { last } => match expected {
            StreamExists => Err(WriteError::StreamDeleted),
            Any | NoStream => Ok(()),
            Exact(revision) if Some(revision) == last => Ok(()),
            Exact(_) => wrong(last),
        },
        StreamState::Live { last } => match expected {
            Any | StreamExists => Ok(()),
            Exact(revision) if revision == last => Ok(()),
            NoStream | Exact(_) => wrong(Some(last)),
        },
        StreamState::Missing => match (operation, expected) {
            (_, Exact(_)) => wrong(None),
            (Operation::Delete, _) if !has_metadata => wrong(None),
            (_, StreamExists) if !has_metadata => wrong(None),
            _ => Ok(()),
        },
    }
}

/// The records one write adds, with positions assigned in order.
struct Batch {
    next_position: u64,
    created: i64,
    records: Vec<RecordedEvent>,
}

impl Batch {
    /// Adds an event; returns its position.
    fn push(
        &mut self,
        index: &Index,
        stream: Arc<str>,
        revision: u64,
        event: ProposedEvent,
    ) -> u64 {
        let position = self.next_position;
        self.next_position += 1;
        self.records.push(RecordedEvent {
            position,
            stream,
            revision,
            id: event.id,
            event_type: index.event_type_name(&event.event_type),
            is_json: event.is_json,
            created: self.created,
            custom_metadata: event.custom_metadata,
            data: event.data,
        });
        position
    }

    /// Adds a `$metadata` event to `$$<stream>` that sets `$tb`, keeping the stream's other
    /// settings when `keep_settings`; returns its position.
    fn push_metadata(
        &mut self,
        index: &Index,
        stream: &str,
        truncate_before: Value,
        keep_settings: bool,
    ) -> u64 {
        let mut metadata = index
            .stream(stream)
            .filter(|_| keep_settings)
            .and_then(|entry| entry.metadata().cloned())
            .unwrap_or_default();
        metadata.insert("$tb".to_owned(), truncate_before);
        let metadata_stream = format!("$${stream}");
        let revision = index
            .stream(&metadata_stream)
            .and_then(|entry| entry.last_revision())
            .map_or(0, |last| last + 1);
        let event = ProposedEvent {
            id: uuid::Uuid::new_v4(),
            event_type: METADATA_EVENT_TYPE.to_owned(),
            is_json: true,
            custom_metadata: Default::default(),
            data: Value::Object(metadata).to_string().into(),
        };
        self.push(index, index.stream_name(&metadata_stream), revision, event)
    }
}
