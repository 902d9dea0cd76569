//! The newest events with their payloads, held in memory up to a byte budget.
//!
//! Live subscribers all read the events just appended, so serving those from memory keeps many
//! subscribers from each reading the same rows from SQLite, and an append's events are already
//! in hand when it publishes them. Older events are read from SQLite on demand; a reader
//! catching up from far behind reads each page once, so caching what it read would only evict
//! what the live subscribers need. In memory mode the budget is unlimited: this is then where
//! the whole log lives.

use std::collections::VecDeque;
use std::sync::Arc;

use super::event::RecordedEvent;

/// What one held event costs beyond its payload: the record and its `Arc` counts, and its slot
/// here. Names are shared with the index and not counted.
const EVENT_OVERHEAD: usize = std::mem::size_of::<RecordedEvent>()
    + 2 * std::mem::size_of::<usize>()
    + std::mem::size_of::<Arc<RecordedEvent>>();

/// A window of the newest events: contiguous positions `first ..first + events.len()`.
#[derive(Debug)]
pub struct Recent {
    /// The held events, oldest first.
    events: VecDeque<Arc<RecordedEvent>>,
    /// Position of `events[0]`; the next position to come when nothing is held.
    first: u64,
    /// What the held events cost, by [`cost`].
    bytes: usize,
    /// The most `bytes` may be; None keeps everything.
    budget: Option<usize>,
}

impl Recent {
    /// An empty window whose first event will be at `next` position.
    pub fn new(next: u64, budget: Option<usize>) -> Recent {
        Recent {
            events: VecDeque::new(),
            first: next,
            bytes: 0,
            budget,
        }
    }

    /// Adds the next event of the log and lets the oldest go until the window fits its budget.
    pub fn push(&mut self, event: Arc<RecordedEvent>) {
        debug_assert_eq!(
            event.position,
            self.first + self.events.len() as u64,
            "positions must be contiguous"
        );
        self.bytes += cost(&event);
        self.events.push_back(event);
        let Some(budget) = self.budget else { return };
        while self.bytes > budget
            && let Some(oldest) = self.events.pop_front()
        {
            self.bytes -= cost(&oldest);
            self.first += 1;
        }
    }

    /// The event at `position` if it is held.
    pub fn get(&self, position: u64) -> Option<&Arc<RecordedEvent>> {
        let offset = usize::try_from(position.checked_sub(self.first)?).ok()?;
        self.events.get(offset)
    }
}

/// What holding `event` costs, in bytes.
fn cost(event: &RecordedEvent) -> usize {
    EVENT_OVERHEAD + event.data.len() + event.custom_metadata.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64, size: usize) -> Arc<RecordedEvent> {
        Arc::new(RecordedEvent {
            position,
            stream: "s".into(),
            revision: position - 1,
            id: uuid::Uuid::new_v4(),
            event_type: "E".into(),
            is_json: false,
            created: 0,
            custom_metadata: Default::default(),
            data: vec![0; size].into(),
        })
    }

    #[test]
    fn keeps_the_newest_events_that_fit() {
        let mut recent = Recent::new(1, Some(3 * (EVENT_OVERHEAD + 100)));
        for position in 1..=5 {
            recent.push(event(position, 100));
        }
        assert!(recent.get(2).is_none());
        assert_eq!(recent.get(3).map(|event| event.position), Some(3));
        assert_eq!(recent.get(5).map(|event| event.position), Some(5));
        assert!(recent.get(6).is_none());
    }

    #[test]
    fn an_event_larger_than_the_budget_is_not_held() {
        let mut recent = Recent::new(1, Some(EVENT_OVERHEAD + 10));
        recent.push(event(1, 100));
        assert!(recent.get(1).is_none());
        recent.push(event(2, 1));
        assert_eq!(recent.get(2).map(|event| event.position), Some(2));
    }

    #[test]
    fn without_a_budget_everything_is_held() {
        let mut recent = Recent::new(1, None);
        for position in 1..=100 {
            recent.push(event(position, 1000));
        }
        assert_eq!(recent.get(1).map(|event| event.position), Some(1));
    }
}
