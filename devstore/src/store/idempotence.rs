//! Idempotent appends: a retried append whose events are already in the stream answers as the
//! first one did and writes nothing, by the real server's rules (its index writer's commit
//! check, `CheckCommit`).
//!
//! The rules depend on what the append expected:
//! - **An exact revision, or no stream**, says where the events must be: if the stream is
//!   already past that revision, the events there are compared by id. All the same: a retry,
//!   answered with the revision and position of the last of them. The first differs: not a
//!   retry, so the usual wrong expected version (or, for `no_stream` on a soft-deleted stream,
//!   a normal write that recreates it). A later one differs, or the stream ends before the
//!   append does: only part was written before, which is a wrong expected version.
//! - **Any, or stream exists**, says nothing about where: the ids are looked up among the
//!   recently appended ones ([`CommittedIds`]). All found in this stream: a retry, answered with
//!   the revision of the last one found. The first not found: a new append, written as usual
//!   (even if later ones were found). A later one not found: a wrong expected version.
//!
//! Like the real server, which keeps its recent ids in memory only, devstore forgets them when
//! it stops: after a restart an `any` retry is written again, while an exact one is still
//! recognised (its events are read back from the log).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use uuid::Uuid;

use super::Store;
use super::event::ProposedEvent;
use super::stream::StreamState;
use super::write::{ExpectedRevision, Operation, WriteError, check, has_metadata};

/// Appended event ids remembered for `any` and `stream exists` retries. The real server keeps 8
/// MiB of them, about as many for typical stream names.
const REMEMBERED_IDS: usize = 100_000;

/// The ids of the most recently appended events, with where they went.
#[derive(Debug, Default)]
pub struct CommittedIds {
    /// Where each remembered id was appended (the latest, if it was appended twice).
    by_id: HashMap<Uuid, Committed>,
    /// Remembered ids with their positions, oldest first, to forget them in order.
    order: VecDeque<(Uuid, u64)>,
}

/// Where an event id was appended.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The stream.
    pub stream: Arc<str>,
    /// Its revision there.
    pub revision: u64,
    /// Its log position.
    pub position: u64,
}

/// What the idempotency check makes of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Not a retry: check the expected revision and write as usual.
    New,
    /// Every event is already there: answer with the last one's revision and position.
    Written { revision: u64, position: u64 },
    /// Part of it is there and part is not: a wrong expected version.
    Partial,
}

impl CommittedIds {
    /// Remembers that `id` was appended to `stream` at `revision` and `position`, forgetting
    /// the oldest id past [`REMEMBERED_IDS`].
    pub fn remember(&mut self, id: Uuid, committed: Committed) {
        self.order.push_back((id, committed.position));
        self.by_id.insert(id, committed);
        if self.order.len() > REMEMBERED_IDS
            && let Some((oldest, position)) = self.order.pop_front()
        {
            // An id appended twice is remembered where it went last.
            if self
                .by_id
                .get(&oldest)
                .is_some_and(|committed| committed.position == position)
            {
                self.by_id.remove(&oldest);
            }
        }
    }

    /// The weak check (`any`, `stream exists`): are `events` the recent append of them to
    /// `stream`?
    pub fn check(&self, stream: &str, events: &[ProposedEvent]) -> Retry {
        let mut last = None;
        for (offset, event) in events.iter().enumerate() {
            match self.by_id.get(&event.id) {
                Some(committed) if &*committed.stream == stream => last = Some(committed),
                _ if offset == 0 => return Retry::New,
                _ => return Retry::Partial,
            }
        }
        match last {
            Some(last) => Retry::Written {
                revision: last.revision,
                position: last.position,
            },
            None => Retry::New,
        }
    }
}

impl Store {
    /// What the idempotency check makes of appending `events` to `stream` with `expected`. The
    /// caller holds the writer lock, so the stream cannot change before it writes; stored
    /// events are read (from memory or SQLite) without the index lock.
    pub(super) fn retry(
        &self,
        committed: &CommittedIds,
        stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
    ) -> Result<Retry, WriteError> {
        if events.is_empty() {
            return Ok(Retry::New);
        }
        let first = match expected {
            ExpectedRevision::Any | ExpectedRevision::StreamExists => {
                let log = self.log();
                let state = log.index.stream_state(stream);
                let has_metadata = has_metadata(&log.index, stream);
                // A tombstoned stream, and `stream exists` on one deleted or never written, are
                // refused before any idempotency (by the usual check, after this one).
                let refused = check(Operation::Append, state, has_metadata, expected).is_err();
                return Ok(if refused {
                    Retry::New
                } else {
                    committed.check(stream, events)
                });
            }
            ExpectedRevision::NoStream => 0,
            ExpectedRevision::Exact(revision) => revision.saturating_add(1),
        };
        // Only a stream already past the expected revision can hold the events.
        let positions = {
            let log = self.log();
            match log.index.stream(stream) {
                Some(entry) if entry.state() != StreamState::Tombstoned => {
                    let revisions = entry.revisions();
                    let from = usize::try_from(first)
                        .unwrap_or(usize::MAX)
                        .min(revisions.len());
                    let to = from.saturating_add(events.len()).min(revisions.len());
                    revisions[from..to].to_vec()
                }
                _ => Vec::new(),
            }
        };
        if positions.is_empty() {
            return Ok(Retry::New);
        }
        let stored = self
            .events_blocking(&positions)
            .map_err(WriteError::Storage)?;
        let ids: Vec<Uuid> = stored.iter().map(|event| event.id).collect();
        Ok(check_stored(events, &ids, &positions, first))
    }
}

/// The strong check (an exact revision or no stream): `stored` are the ids of the stream's
/// events from the revision after the expected one, as far as the stream goes (at most as many
/// as `events`); `positions` are their log positions. `first_revision` is the revision of
/// `stored[0]`.
pub fn check_stored(
    events: &[ProposedEvent],
    stored: &[Uuid],
    positions: &[u64],
    first_revision: u64,
) -> Retry {
    let matching = events
        .iter()
        .zip(stored)
        .take_while(|(event, id)| event.id == **id)
        .count();
    if matching == 0 {
        Retry::New
    } else if matching < events.len() {
        Retry::Partial
    } else {
        Retry::Written {
            revision: first_revision + matching as u64 - 1,
            position: positions[matching - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Uuid) -> ProposedEvent {
        ProposedEvent {
            id,
            event_type: "E".to_owned(),
            is_json: false,
            custom_metadata: Default::default(),
            data: Default::default(),
        }
    }

    fn committed(stream: &str, revision: u64) -> Committed {
        Committed {
            stream: stream.into(),
            revision,
            position: 100 + revision,
        }
    }

    #[test]
    fn weak_check_needs_all_ids_in_the_stream_and_the_first_decides_new() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut ids = CommittedIds::default();
        ids.remember(a, committed("s", 0));
        ids.remember(b, committed("s", 1));
        assert_eq!(
            ids.check("s", &[event(a), event(b)]),
            Retry::Written {
                revision: 1,
                position: 101
            }
        );
        assert_eq!(ids.check("s", &[event(a), event(c)]), Retry::Partial);
        assert_eq!(ids.check("s", &[event(c), event(a)]), Retry::New);
        assert_eq!(ids.check("other", &[event(a)]), Retry::New);
    }

    #[test]
    fn the_oldest_ids_are_forgotten() {
        let first = Uuid::new_v4();
        let mut ids = CommittedIds::default();
        ids.remember(first, committed("s", 0));
        for revision in 1..=REMEMBERED_IDS as u64 {
            ids.remember(Uuid::new_v4(), committed("s", revision));
        }
        assert_eq!(ids.check("s", &[event(first)]), Retry::New);
        assert_eq!(ids.by_id.len(), REMEMBERED_IDS);
    }

    #[test]
    fn strong_check_compares_in_place() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let stored = [a, b];
        let positions = [7, 9];
        assert_eq!(
            check_stored(&[event(a), event(b)], &stored, &positions, 3),
            Retry::Written {
                revision: 4,
                position: 9
            }
        );
        assert_eq!(
            check_stored(&[event(a)], &stored, &positions, 3),
            Retry::Written {
                revision: 3,
                position: 7
            }
        );
        assert_eq!(
            check_stored(&[event(a), event(c)], &stored, &positions, 3),
            Retry::Partial
        );
        assert_eq!(
            check_stored(&[event(a), event(b), event(c)], &stored, &positions, 3),
            Retry::Partial,
            "the stream ends before the append does"
        );
        assert_eq!(
            check_stored(&[event(c), event(a)], &stored, &positions, 3),
            Retry::New
        );
    }
}
