//! Parked messages: parking one (a `$>` link in the group's parked stream), and replaying
//! them. The parked stream's `$tb` moves past a replayed message only once it is settled
//! again, so a replay cut short by a restart or an update leaves the rest parked.

use super::{Group, Message};
use crate::grpc::persistent::errors;
use crate::grpc::persistent::records;
use crate::grpc::persistent::settings::Source;
use crate::store::{Direction, Store};

/// Parked messages read back at most per round, and only while consumers have room.
const REPLAY_PAGE: usize = 512;

/// Where reading parked messages back has got to.
pub(super) struct Replay {
    /// The next parked revision to read back.
    next: u64,
    /// The parked revision to stop before: the one the client named, or one past the last
    /// when the replay was asked for.
    end: u64,
}

/// The first parked revision still parked (the parked stream's first visible revision, or
/// one past its last when none is).
pub(super) async fn first_parked(store: &Store, source: &Source, group: &str) -> u64 {
    let stream = records::parked_stream(source, group);
    let Some(last) = store.last_revision(&stream) else {
        return 0;
    };
    // A page of one event: read at worst once from SQLite.
    match store.stream_page(&stream, 0, Direction::Forwards, 1).await {
        Ok(page) => page
            .and_then(|page| page.events.first().map(|event| event.revision))
            .unwrap_or(last + 1),
        Err(error) => {
            tracing::warn!(?error, stream, "could not read the parked stream");
            0
        }
    }
}

impl Group {
    /// Parks a message, then settles it; if the park could not be written, the message is
    /// retried instead, so it is never dropped.
    pub(super) async fn park_and_settle(&mut self, message: Message, reason: &str) {
        if self.park(&message, reason).await {
            self.settle(&message);
        } else {
            self.requeue_all(vec![message]);
        }
    }

    /// Appends a link to the message to the parked stream (with the stream's metadata first,
    /// if it has none: a new stream, or one a deleted group left behind).
    async fn park(&mut self, message: &Message, reason: &str) -> bool {
        let stream = records::parked_stream(&self.source, &self.name);
        let mut events = Vec::new();
        if !self.store.metadata(&stream).contains_key("$acl") {
            // Past whatever an earlier group of the name parked.
            let floor = self.store.last_revision(&stream).map_or(0, |last| last + 1);
            self.parked_floor = self.parked_floor.max(floor);
            events.push((
                format!("$${stream}"),
                records::parked_stream_metadata(self.parked_floor),
            ));
        }
        events.push((stream, records::parked(&message.event, reason)));
        self.write(events).await
    }

    /// Begins replaying parked messages; the reply goes out at once, and the messages as
    /// consumers take them. A replay asked for while one runs is a no-op success, as on the
    /// real server.
    pub(super) async fn start_replay(&mut self, stop_at: Option<i64>) -> Result<(), tonic::Status> {
        let stop_at = match stop_at.map(u64::try_from) {
            Some(Err(_)) => {
                let reason = "Cannot stop replaying parked message at a negative version.";
                return Err(errors::failed(&self.source, &self.name, reason));
            }
            Some(Ok(stop_at)) => Some(stop_at),
            None => None,
        };
        if self.replay.is_some() {
            return Ok(());
        }
        let stream = records::parked_stream(&self.source, &self.name);
        let Some(last) = self.store.last_revision(&stream) else {
            return Ok(());
        };
        let first = first_parked(&self.store, &self.source, &self.name)
            .await
            .max(self.replay_read_to.unwrap_or(0));
        let end = stop_at.map_or(last + 1, |stop_at| stop_at.min(last + 1));
        if first < end {
            self.replay = Some(Replay { next: first, end });
            self.replay_read_to = Some(first);
        }
        Ok(())
    }

    /// Reads parked messages back into the retry queue while a replay runs and consumers have
    /// room for them.
    pub(super) async fn fill_replay(&mut self) {
        let room = self
            .free_slots()
            .saturating_sub(self.retry.len())
            .min(REPLAY_PAGE);
        let Some(replay) = &mut self.replay else {
            return;
        };
        if room == 0 {
            return;
        }
        let stream = records::parked_stream(&self.source, &self.name);
        let wanted = usize::try_from(replay.end.saturating_sub(replay.next))
            .unwrap_or(usize::MAX)
            .min(room);
        let (from, end) = (replay.next, replay.end);
        let links = match self
            .store
            .stream_page(&stream, from, Direction::Forwards, wanted)
            .await
        {
            Ok(page) => page.map(|page| page.events).unwrap_or_default(),
            Err(error) => {
                // Tried again next round.
                tracing::warn!(?error, stream, "could not read parked messages back");
                return;
            }
        };
        let mut next = from;
        let mut done = links.is_empty();
        let mut messages = Vec::new();
        for link in links {
            if link.revision >= end {
                done = true;
                break;
            }
            next = link.revision + 1;
            let Some((revision, target)) = records::parse_link(&link) else {
                continue;
            };
            let event = match self
                .store
                .stream_page(&target, revision, Direction::Forwards, 1)
                .await
            {
                Ok(page) => page
                    .and_then(|page| page.events.into_iter().next())
                    .filter(|event| event.revision == revision),
                Err(error) => {
                    tracing::warn!(?error, stream = target, "could not read a parked event");
                    None
                }
            };
            // A parked event deleted since resolves to nothing and is dropped.
            if let Some(event) = event {
                messages.push(Message {
                    event,
                    parked_at: Some(link.revision),
                    link: Some(link),
                    key: None,
                    retry_count: 0,
                });
            }
        }
        if done || next >= end {
            self.replay = None;
        } else if let Some(replay) = &mut self.replay {
            replay.next = next;
        }
        self.replay_read_to = Some(next);
        for message in messages {
            self.replayed.extend(message.parked_at);
            self.retry.push_back(message);
        }
    }

    /// Moves the parked stream's `$tb` past the replayed messages settled so far (and the
    /// links that resolved to nothing).
    pub(super) async fn move_parked_floor(&mut self) {
        let Some(read_to) = self.replay_read_to else {
            return;
        };
        let floor = self
            .replayed
            .first()
            .copied()
            .map_or(read_to, |oldest| oldest.min(read_to));
        if floor <= self.parked_floor {
            return;
        }
        let stream = records::parked_stream(&self.source, &self.name);
        let metadata = (
            format!("$${stream}"),
            records::parked_stream_metadata(floor),
        );
        if self.write(vec![metadata]).await {
            self.parked_floor = floor;
        }
    }

    /// Parked messages not yet replayed and settled, for info.
    pub(super) async fn parked_count(&self) -> u64 {
        let stream = records::parked_stream(&self.source, &self.name);
        let Some(last) = self.store.last_revision(&stream) else {
            return 0;
        };
        let first = first_parked(&self.store, &self.source, &self.name).await;
        (last + 1).saturating_sub(self.parked_floor.max(first))
    }
}
