//! Reading the group's source, handing messages to consumers, and what happens to a message
//! that is not acked: timeouts, retries in source order, parking once retries run out.

use std::collections::VecDeque;

use tokio::time::Instant;
use uuid::Uuid;

use super::{Flight, Group, Message};
use crate::grpc::persistent::info;
use crate::grpc::persistent::settings::Source;
use crate::limits::EVENTS_BETWEEN_YIELDS;
use crate::store::{Direction, RecordedEvent};

/// Events read from the log per page at most.
const MAX_PAGE: usize = 512;

/// Messages one dispatch may pass over (held for a full pinned consumer, or a duplicate id
/// still in flight) before it stops: a bound on the work per round.
const MAX_PASSED_OVER: usize = 1024;

impl Group {
    /// Reads more of the source while consumers have room; true if it stopped for its scan
    /// budget (the same bound `$all` reads yield at) rather than for lack of room or events.
    pub(super) fn fill(&mut self) -> bool {
        self.fill_replay();
        let room = self.free_slots();
        let mut budget = EVENTS_BETWEEN_YIELDS;
        while self.ready.len() < room {
            let batch = (self.settings.read_batch_size as usize).clamp(1, MAX_PAGE);
            let page = match &self.source {
                Source::Stream(stream) => self
                    .store
                    .stream_page(stream, self.next, Direction::Forwards, batch)
                    .map(|page| page.events)
                    .unwrap_or_default(),
                Source::All => self
                    .store
                    .all_page(self.next.max(1), Direction::Forwards, batch),
            };
            if page.is_empty() {
                self.live = true;
                return false;
            }
            self.live = false;
            for event in page {
                if budget == 0 {
                    return true;
                }
                budget -= 1;
                let key = self.key_of(&event);
                self.next = key + 1;
                let undecided = match self.selects(&event) {
                    Ok(false) => continue,
                    Ok(true) => None,
                    Err(reason) => Some(reason),
                };
                self.last_known = Some(key);
                *self.unsettled.entry(key).or_default() += 1;
                let message = Message {
                    event,
                    link: None,
                    key: Some(key),
                    parked_at: None,
                    retry_count: 0,
                };
                match undecided {
                    None => self.ready.push_back(message),
                    Some(reason) => self.undecided.push((message, reason)),
                }
            }
        }
        false
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

    /// The revision or position of `event` in the source.
    pub(super) fn key_of(&self, event: &RecordedEvent) -> u64 {
        match self.source {
            Source::Stream(_) => event.revision,
            Source::All => event.position,
        }
    }

    /// Whether a `$all` group delivers `event`: never the groups' own checkpoint and parked
    /// streams (as the real server's default `$all` filter), and only what its filter passes.
    /// Err (with why) when the filter's regex cannot decide within its step limit.
    fn selects(&self, event: &RecordedEvent) -> Result<bool, String> {
        if matches!(self.source, Source::Stream(_)) {
            return Ok(true);
        }
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
