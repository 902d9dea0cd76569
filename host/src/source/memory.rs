//! A source over events held in memory: the JSONL file source, tests and benchmarks use it.

use std::sync::Arc;

use super::{EventSource, SourceItem, Subscription};
use crate::event::{EventFilter, Position, RecordedEvent};

/// Events in memory, in log order.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    events: Arc<Vec<RecordedEvent>>,
    name: String,
}

impl MemorySource {
    /// A source over `events`, which must be in increasing position order.
    pub fn new(name: &str, events: Vec<RecordedEvent>) -> MemorySource {
        debug_assert!(events.windows(2).all(|w| w[0].position < w[1].position));
        MemorySource {
            events: Arc::new(events),
            name: name.to_string(),
        }
    }

    /// The events, in order.
    pub fn events(&self) -> &[RecordedEvent] {
        &self.events
    }
}

impl EventSource for MemorySource {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn head(&self) -> futures::future::BoxFuture<'_, anyhow::Result<Option<Position>>> {
        let head = self.events.last().map(|e| e.position);
        Box::pin(async move { Ok(head) })
    }

    fn is_finite(&self) -> bool {
        true
    }

    fn subscribe(&self, after: Option<Position>, filter: &EventFilter) -> Subscription {
        let events = Arc::clone(&self.events);
        let filter = filter.clone();
        let start = match after {
            Some(after) => events.partition_point(|e| e.position <= after),
            None => 0,
        };
        let last = events.last().map(|e| e.position);
        let matching = (start..events.len()).filter_map(move |index| {
            let event = &events[index];
            filter
                .matches(&event.stream_id, &event.event_type)
                .then(|| Ok(SourceItem::Event(event.clone())))
        });
        // The closing checkpoint lets a projection whose events are rare skip the tail next time.
        let tail = last
            .filter(|last| after.is_none_or(|after| *last > after))
            .map(|last| Ok(SourceItem::Checkpoint(last)));
        let stream = futures::stream::iter(matching.chain(tail).chain([Ok(SourceItem::CaughtUp)]));
        Box::pin(stream)
    }
}
