//! Settling messages and writing the group's checkpoint: the last revision or position below
//! which everything read was acked, skipped or parked.

use super::{Group, Message};
use crate::grpc::persistent::records;
use crate::grpc::persistent::settings::Source;
use crate::store::{ExpectedRevision, ProposedEvent};

impl Group {
    /// Marks a message done: it no longer holds the checkpoint (or the parked stream's `$tb`)
    /// back.
    pub(super) fn settle(&mut self, message: &Message) {
        if let Some(key) = message.key
            && let std::collections::btree_map::Entry::Occupied(mut holders) =
                self.unsettled.entry(key)
        {
            *holders.get_mut() -= 1;
            if *holders.get() == 0 {
                holders.remove();
            }
        }
        if let Some(parked_at) = message.parked_at {
            self.replayed.remove(&parked_at);
        }
        self.settled_since_checkpoint = self.settled_since_checkpoint.saturating_add(1);
    }

    /// Writes a checkpoint once `max_checkpoint_count` messages were settled since the last.
    pub(super) async fn checkpoint_if_full(&mut self) {
        if self.settled_since_checkpoint >= self.settings.max_checkpoint_count.max(1) {
            self.write_checkpoint().await;
        }
    }

    /// Whether a timed checkpoint is due: `checkpoint_after` since the last, and at least
    /// `min_checkpoint_count` messages settled.
    pub(super) fn checkpoint_due(&self) -> bool {
        let Some(after) = self.settings.checkpoint_after() else {
            return false;
        };
        let enough = self.settings.min_checkpoint_count.max(1);
        self.settled_since_checkpoint >= enough && self.last_checkpoint_at.elapsed() >= after
    }

    /// Writes a checkpoint if anything was settled past the last one (with the stream's
    /// metadata first, if it has none: a new stream, or one a deleted group left behind, whose
    /// old checkpoints the metadata's `$tb` hides).
    pub(super) async fn write_checkpoint(&mut self) {
        self.settled_since_checkpoint = 0;
        self.last_checkpoint_at = tokio::time::Instant::now();
        let Some(key) = self.settled_up_to() else {
            return;
        };
        if self.checkpoint.is_some_and(|checkpoint| checkpoint >= key) {
            return;
        }
        let stream = records::checkpoint_stream(&self.source, &self.name);
        let mut events = Vec::new();
        if !self.store.metadata(&stream).contains_key("$acl") {
            let floor = self.store.last_revision(&stream).map_or(0, |last| last + 1);
            events.push((
                format!("$${stream}"),
                records::checkpoint_stream_metadata(floor),
            ));
        }
        events.push((stream, records::checkpoint(&self.source, key)));
        if self.write(events).await {
            self.checkpoint = Some(key);
        }
    }

    /// The key everything up to which is settled: just before the oldest unsettled one, or
    /// the last one read. None when nothing was.
    fn settled_up_to(&self) -> Option<u64> {
        let key = match self.unsettled.keys().next() {
            Some(&oldest) => oldest.checked_sub(1)?,
            None => self.next.checked_sub(1)?,
        };
        // Position 0 is before the first event of `$all`.
        (key > 0 || matches!(self.source, Source::Stream(_))).then_some(key)
    }

    /// Appends records, each to its stream, off the async threads; false (logged) on failure,
    /// which its caller makes good (a checkpoint is written again later, a park becomes a
    /// retry, `$tb` is moved again).
    pub(super) async fn write(&self, events: Vec<(String, ProposedEvent)>) -> bool {
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            for (stream, event) in events {
                store
                    .append(&stream, ExpectedRevision::Any, vec![event])
                    .map_err(|error| format!("{stream}: {error:?}"))?;
            }
            Ok::<(), String>(())
        })
        .await;
        match written {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(
                    error,
                    group = self.name,
                    "persistent subscription write failed"
                );
                false
            }
            Err(_) => false,
        }
    }
}
