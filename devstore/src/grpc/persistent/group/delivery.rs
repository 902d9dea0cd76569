//! Reading the group's source, handing messages to consumers, and what happens to a message
//! that is not acked: timeouts, retries in source order, parking once retries run out.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Flight, Group, Message};
use crate::grpc::persistent::info;
use crate::grpc::persistent::settings::Source;
use crate::limits::EVENTS_BETWEEN_YIELDS;
use crate::store::{Direction, EventHeader, RecordedEvent};

/// A page of the source, as the group takes it in.
struct Page {
    /// The key of the last event considered (None: nothing new).
    last_read: Option<u64>,
    /// How many events were considered.
    considered: usize,
    /// The events to deliver, by key, in order.
    selected: Vec<(u64, Selected)>,
}

/// An event of a page the group takes in.
enum Selected {
    /// To deliver.
    Pass(Arc<RecordedEvent>),
    /// To park: the filter's regex could not decide on it, for this reason.
    Undecided(Arc<RecordedEvent>, String),
}

/// Messages one dispatch may pass over (held for a full pinned consumer, or a duplicate id
/// still in flight) before it stops: a bound on the work per round.
const MAX_PASSED_OVER: usize = 1024;

impl Group {
    /// Reads more of the source while consumers have room (nothing, if the log has not moved
    /// since a read found nothing new); true if it stopped for its scan
    /// budget (the same bound `$all` reads yield at) rather than for lack of room or events.
    pub(super) async fn fill(&mut self, head: u64) -> bool {
        self.fill_replay().await;
        if self.live_at == Some(head) {
            return false;
        }
        let room = self.free_slots();
        let mut budget = EVENTS_BETWEEN_YIELDS;
        while self.ready.len() < room {
            if budget == 0 {
                return true;
            }
            // Never more than the budget: a page's filter work is bounded like a read's.
            let batch = (self.settings.read_batch_size as usize).clamp(1, budget);
            let page = match self.read_page(batch).await {
                Ok(page) => page,
                Err(error) => {
                    // Tried again on the next round (at the latest on the next tick).
                    tracing::warn!(
                        ?error,
                        group = self.name,
                        "could not read the group's source"
                    );
                    self.live_at = None;
                    return false;
                }
            };
            let Some(last_read) = page.last_read else {
                self.live_at = Some(head);
                return false;
            };
            self.live_at = None;
            budget = budget.saturating_sub(page.considered);
            for (key, selected) in page.selected {
                self.last_known = Some(key);
                *self.unsettled.entry(key).or_default() += 1;
                match selected {
                    Selected::Pass(event) => self.ready.push_back(Message::read(event, key)),
                    Selected::Undecided(event, reason) => {
                        self.undecided.push((Message::read(event, key), reason));
                    }
                }
            }
            // What the filter passed over counts as read, up to the page's last event.
            self.next = last_read + 1;
        }
        false
    }

    /// The next page of the source after `next`: the events the group delivers (for `$all`,
    /// only those loaded whose headers the filter passes) with their keys, and the key of the
    /// last event considered.
    async fn read_page(&self, batch: usize) -> anyhow::Result<Page> {
        match &self.source {
            Source::Stream(stream) => {
                let events = self
                    .store
                    .stream_page(stream, self.next, Direction::Forwards, batch)
                    .await?
                    .map(|page| page.events)
                    .unwrap_or_default();
                Ok(Page {
                    last_read: events.last().map(|event| event.revision),
                    considered: events.len(),
                    selected: events
                        .into_iter()
                        .map(|event| (event.revision, Selected::Pass(event)))
                        .collect(),
                })
            }
            Source::All => {
                let headers = self
                    .store
                    .all_headers(self.next.max(1), Direction::Forwards, batch);
                let last_read = headers.last().map(|header| header.position);
                let mut wanted = Vec::new();
                let mut reasons = std::collections::HashMap::new();
                for header in &headers {
                    match self.selects(header) {
                        Ok(false) => {}
                        Ok(true) => wanted.push(header.position),
                        Err(reason) => {
                            wanted.push(header.position);
                            reasons.insert(header.position, reason);
                        }
                    }
                }
                let events = self.store.events(&wanted).await?;
                let selected = events
                    .into_iter()
                    .map(|event| {
                        let key = event.position;
                        let selected = match reasons.remove(&key) {
                            Some(reason) => Selected::Undecided(event, reason),
                            None => Selected::Pass(event),
                        };
                        (key, selected)
                    })
                    .collect();
                Ok(Page {
                    last_read,
                    considered: headers.len(),
                    selected,
                })
            }
        }
    }

    /// Hands ready messages to consumers with room, retries first. A message that cannot go
    /// now (its pinned consumer is full, or a message with the same id is still in flight)
    /// keeps its place while the ones after it go out.
    pub(super) fn dispatch(&mut self) {
        let mut passed_retry = VecDeque::new();
        let mut passed_ready = VecDeque::new();
        while self.consumers.any_room() {
            let from_retry = !self.retry.is_empty();
            let message = if from_retry {
                self.retry.pop_front()
            } else {
                self.ready.pop_front()
            };
            let Some(message) = message else { break };
            let chosen = if self.in_flight.contains_key(&message.id()) {
                None
            } else {
                self.consumers
                    .choose(self.settings.strategy, &message.event.stream)
            };
            let Some(chosen) = chosen else {
                let passed = if from_retry {
                    &mut passed_retry
                } else {
                    &mut passed_ready
                };
                passed.push_back(message);
                if passed_retry.len() + passed_ready.len() >= MAX_PASSED_OVER {
                    break;
                }
                continue;
            };
            let consumer = self.consumers.get_mut(chosen).expect("chosen is connected");
            let response = info::read_event(&message, consumer.uuid_format);
            if consumer.deliver.try_send(Ok(response)).is_err() {
                // Closed: the consumer left, and its call is about to say so.
                let queue = if from_retry {
                    &mut self.retry
                } else {
                    &mut self.ready
                };
                queue.push_front(message);
                break;
            }
            consumer.in_flight += 1;
            consumer.delivered += 1;
            self.delivered += 1;
            let flight = Flight {
                message: message.clone(),
                consumer: chosen,
                deadline: Instant::now() + self.settings.message_timeout(),
            };
            self.in_flight.insert(message.id(), flight);
        }
        while let Some(message) = passed_retry.pop_back() {
            self.retry.push_front(message);
        }
        while let Some(message) = passed_ready.pop_back() {
            self.ready.push_front(message);
        }
    }

    /// Retries the messages whose ack is overdue.
    pub(super) async fn expire(&mut self) {
        let now = Instant::now();
        let overdue: Vec<Uuid> = self
            .in_flight
            .iter()
            .filter(|(_, flight)| flight.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let messages = overdue.into_iter().filter_map(|id| self.land(id)).collect();
        self.retry_or_park_all(messages, "The message timed out")
            .await;
    }

    /// Sends messages again later, or parks those that used up their retries (so a message
    /// is delivered at most `max_retry_count + 1` times).
    pub(super) async fn retry_or_park_all(&mut self, messages: Vec<Message>, reason: &str) {
        let mut retried = Vec::with_capacity(messages.len());
        for message in messages {
            if message.retry_count >= self.settings.max_retry_count {
                let reason = format!(
                    "Reached retry count of {} ({reason})",
                    self.settings.max_retry_count
                );
                self.park_and_settle(message, &reason).await;
            } else {
                retried.push(message);
            }
        }
        self.requeue_all(retried);
    }

    /// Puts messages back in the retry queue with one more retry each, merged into it in
    /// [`Message::order`] (one pass, however many there are).
    pub(super) fn requeue_all(&mut self, mut messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        for message in &mut messages {
            message.retry_count += 1;
        }
        messages.sort_by_key(Message::order);
        let queued = std::mem::take(&mut self.retry);
        let mut merged = VecDeque::with_capacity(queued.len() + messages.len());
        let mut queued = queued.into_iter().peekable();
        let mut added = messages.into_iter().peekable();
        loop {
            let take_queued = match (queued.peek(), added.peek()) {
                (Some(old), Some(new)) => old.order() <= new.order(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_queued {
                queued.next()
            } else {
                added.next()
            };
            merged.extend(next);
        }
        self.retry = merged;
    }

    /// Parks what the filter could not decide on: skipping it would hide it without a word,
    /// and there is no call to fail.
    pub(super) async fn park_undecided(&mut self) {
        for (message, reason) in std::mem::take(&mut self.undecided) {
            self.park_and_settle(message, &reason).await;
        }
    }

    /// Free slots over all consumers.
    pub(super) fn free_slots(&self) -> usize {
        self.consumers
            .iter()
            .map(|consumer| consumer.slots.saturating_sub(consumer.in_flight) as usize)
            .sum()
    }

    /// Whether reading more would give a consumer something.
    pub(super) fn has_room(&self) -> bool {
        self.free_slots() > self.ready.len() + self.retry.len()
    }

    /// Whether a `$all` group delivers `event`: never the groups' own checkpoint and parked
    /// streams (as the real server's default `$all` filter), and only what its filter passes.
    /// Err (with why) when the filter's regex cannot decide within its step limit.
    fn selects(&self, event: &EventHeader) -> Result<bool, String> {
        let stream = event.stream.strip_prefix("$$").unwrap_or(&event.stream);
        if stream.starts_with("$persistentsubscription-")
            && (stream.ends_with("-checkpoint") || stream.ends_with("-parked"))
        {
            return Ok(false);
        }
        match &self.filter {
            None => Ok(true),
            Some(filter) => filter
                .matches(event)
                .map_err(|status| status.message().to_owned()),
        }
    }
}
