//! One running group: a task that reads its source from the log, shares messages out to its
//! consumers, and keeps track of what is settled, retried and parked.
//!
//! Everything about a group's messages is owned by its task and changed only by it, one
//! [`Command`] at a time, so there are no locks to get wrong: consumers' calls send acks and
//! nacks in, the task sends events out. The task reads from the log only while some consumer
//! has room, so a group nobody reads from holds nothing in memory.
//!
//! Ordering and settling: a message is *settled* once it is acked, skipped or parked. The
//! checkpoint is the last revision (or position) below which everything read is settled, and a
//! restarted group resumes after it: a message is delivered at least once, and again after a
//! restart only if it was not settled before the checkpoint was written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::Status;
use uuid::Uuid;

use super::consumers::{Consumer, ConsumerId, Consumers};
use super::errors;
use super::info;
use super::records;
use super::settings::{Settings, Source, Start, Strategy};
use crate::grpc::filter::EventFilter;
use crate::proto::persistent_subscriptions::read_req::nack::Action;
use crate::proto::persistent_subscriptions::{ReadResp, SubscriptionInfo};
use crate::store::{Direction, ExpectedRevision, ProposedEvent, RecordedEvent, Store};

/// Events considered (passed by the filter or not) before the task lets other work run.
const SCAN_BUDGET: usize = 4096;

/// Parked messages read back into the retry queue at a time while a replay runs.
const REPLAY_PAGE: usize = 512;

/// How often overdue messages are retried and timed checkpoints written, as on the real
/// server: a message times out between its timeout and its timeout plus a tick.
const TICK: Duration = Duration::from_secs(1);

/// Commands queued per group before senders wait.
const COMMAND_CAPACITY: usize = 1024;

/// What consumers and the registry ask of a group.
pub enum Command {
    /// A consumer joins; the reply says whether it may.
    Join {
        consumer: Consumer,
        reply: oneshot::Sender<Result<(), Status>>,
    },
    /// A consumer's call ended.
    Leave(ConsumerId),
    /// Acks by event id (the link's id for a resolved link), from any consumer of the group.
    Ack(Vec<Uuid>),
    /// A consumer nacks messages.
    Nack {
        ids: Vec<Uuid>,
        action: Action,
        reason: String,
    },
    /// The group's statistics.
    Info(oneshot::Sender<SubscriptionInfo>),
    /// Deliver parked messages again: those before parked revision `stop_at`, or all.
    ReplayParked {
        stop_at: Option<i64>,
        reply: oneshot::Sender<Result<(), Status>>,
    },
    /// End the group: every consumer gets `status`; with `checkpoint`, what is settled is
    /// written first. Answers when done.
    Stop {
        status: Status,
        checkpoint: bool,
        done: oneshot::Sender<()>,
    },
}

/// How to reach a running group.
#[derive(Clone)]
pub struct Handle {
    /// Its command queue.
    pub commands: mpsc::Sender<Command>,
}

impl Handle {
    /// Sends a command; false when the group has ended.
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Stops the group and waits until it has.
    pub async fn stop(&self, status: Status, checkpoint: bool) {
        let (done, stopped) = oneshot::channel();
        let command = Command::Stop {
            status,
            checkpoint,
            done,
        };
        if self.send(command).await {
            let _ = stopped.await;
        }
    }
}

/// A message on its way to a consumer.
#[derive(Clone)]
pub struct Message {
    /// The event.
    pub event: Arc<RecordedEvent>,
    /// The link it was reached through (a parked message being replayed).
    pub link: Option<Arc<RecordedEvent>>,
    /// Its revision or position in the group's source; None for a replayed parked message,
    /// which was settled (parked) before and so no longer holds the checkpoint back.
    pub key: Option<u64>,
    /// How many times it was delivered before.
    pub retry_count: u32,
}

impl Message {
    /// The id consumers ack it by: the original event's, which is the link for a resolved
    /// link.
    fn id(&self) -> Uuid {
        self.link.as_ref().unwrap_or(&self.event).id
    }
}

/// A message a consumer holds.
struct Flight {
    message: Message,
    consumer: ConsumerId,
    /// When it is retried if not acked by then.
    deadline: Instant,
}

/// Where a replay of parked messages has got to.
struct Replay {
    /// The next parked revision to read back.
    next: u64,
    /// The parked revision to stop before: the one the client named, or one past the last
    /// when the replay was asked for.
    end: u64,
}

/// The group's task state.
pub struct Group {
    pub(super) store: Store,
    pub(super) source: Source,
    pub(super) name: String,
    pub(super) settings: Settings,
    filter: Option<EventFilter>,
    /// The next revision or position to read.
    pub(super) next: u64,
    /// Whether the last read found nothing new.
    pub(super) live: bool,
    /// Read, not yet delivered.
    pub(super) ready: VecDeque<Message>,
    /// To deliver again, before anything in `ready`.
    pub(super) retry: VecDeque<Message>,
    /// Delivered and not yet acked, by the id consumers ack with.
    in_flight: HashMap<Uuid, Flight>,
    /// Keys read and not settled, with how many messages hold each.
    unsettled: BTreeMap<u64, u32>,
    pub(super) consumers: Consumers,
    /// The last checkpoint written (or loaded).
    pub(super) checkpoint: Option<u64>,
    /// Messages settled since the last checkpoint was written.
    settled_since_checkpoint: u32,
    /// When the last checkpoint was written.
    last_checkpoint_at: Instant,
    /// Revision the next checkpoint record must follow (None: the stream has none yet).
    checkpoint_revision: Option<u64>,
    /// A replay of parked messages under way.
    replay: Option<Replay>,
    /// Events delivered over the group's life, for info.
    pub(super) delivered: u64,
    /// The newest key read, for info.
    pub(super) last_known: Option<u64>,
}

impl Group {
    /// Starts a group's task: from its checkpoint if it has one, else from its start.
    pub fn start(
        store: Store,
        source: Source,
        name: String,
        settings: Settings,
    ) -> Result<Handle, Status> {
        let filter = match &settings.filter {
            Some(filter) => Some(EventFilter::from_options(&filter.as_read_filter())?),
            None => None,
        };
        let checkpoint_stream = records::checkpoint_stream(&source, &name);
        let checkpoint_revision = store.last_revision(&checkpoint_stream);
        let checkpoint = store
            .stream_page(&checkpoint_stream, u64::MAX, Direction::Backwards, 1)
            .and_then(|page| {
                page.events
                    .first()
                    .and_then(|event| records::parse_checkpoint(event))
            });
        let next = match (checkpoint, settings.start, &source) {
            (Some(checkpoint), _, _) => checkpoint + 1,
            (None, Start::Beginning, _) => 0,
            (None, Start::At(key), _) => key,
            (None, Start::End, Source::Stream(stream)) => {
                store.last_revision(stream).map_or(0, |last| last + 1)
            }
            (None, Start::End, Source::All) => store.head() + 1,
        };
        let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
        let group = Group {
            store,
            source,
            name,
            settings,
            filter,
            next,
            live: false,
            ready: VecDeque::new(),
            retry: VecDeque::new(),
            in_flight: HashMap::new(),
            unsettled: BTreeMap::new(),
            consumers: Consumers::default(),
            checkpoint,
            settled_since_checkpoint: 0,
            last_checkpoint_at: Instant::now(),
            checkpoint_revision,
            replay: None,
            delivered: 0,
            last_known: None,
        };
        tokio::spawn(group.run(receiver));
        Ok(Handle { commands })
    }

    /// The task: read, deliver, then wait for a command, a new event, a timeout or a due
    /// checkpoint. It ends on a `Stop` (the registry sends one when the server shuts down, so
    /// the last checkpoint is written before the store closes).
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut head = self.store.watch_head();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            head.borrow_and_update();
            let more = self.fill();
            self.dispatch();
            let wants_events = self.live && self.has_room();
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    if let Some(done) = self.handle(command).await {
                        let _ = done.send(());
                        return;
                    }
                }
                _ = head.changed(), if wants_events => {}
                _ = tokio::task::yield_now(), if more => {}
                _ = tick.tick() => {
                    self.expire().await;
                    if self.checkpoint_due() {
                        self.write_checkpoint().await;
                    }
                }
            }
        }
        self.end(Status::cancelled("The group was removed"), true)
            .await;
    }

    /// Handles one command; Some when the group must end (after answering it).
    async fn handle(&mut self, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::Join { consumer, reply } => {
                let _ = reply.send(self.join(consumer));
            }
            Command::Leave(consumer) => self.leave(consumer),
            Command::Ack(ids) => {
                for id in ids {
                    if let Some(message) = self.land(id) {
                        self.settle(&message).await;
                    }
                }
            }
            Command::Nack {
                ids,
                action,
                reason,
            } => self.nack(ids, action, &reason).await,
            Command::Info(reply) => {
                let _ = reply.send(info::of(self));
            }
            Command::ReplayParked { stop_at, reply } => {
                let _ = reply.send(self.start_replay(stop_at));
            }
            Command::Stop {
                status,
                checkpoint,
                done,
            } => {
                self.end(status, checkpoint).await;
                return Some(done);
            }
        }
        None
    }

    /// Admits a consumer unless the group is full.
    fn join(&mut self, consumer: Consumer) -> Result<(), Status> {
        let max = self.settings.max_subscriber_count as usize;
        if max > 0 && self.consumers.len() >= max {
            return Err(errors::maximum_subscribers_reached(
                &self.source,
                &self.name,
            ));
        }
        let confirmation = ReadResp {
            content: Some(crate::proto::persistent_subscriptions::read_resp::Content::SubscriptionConfirmation(
                crate::proto::persistent_subscriptions::read_resp::SubscriptionConfirmation {
                    subscription_id: records::subscription_id(&self.source, &self.name),
                },
            )),
        };
        consumer
            .deliver
            .try_send(Ok(confirmation))
            .map_err(|_| Status::cancelled("The consumer left before it joined"))?;
        self.consumers.join(consumer);
        Ok(())
    }

    /// A consumer left: what it held goes to the others.
    fn leave(&mut self, id: ConsumerId) {
        if self.consumers.leave(id).is_none() {
            return;
        }
        let mut held: Vec<Message> = Vec::new();
        self.in_flight.retain(|_, flight| {
            if flight.consumer == id {
                held.push(flight.message.clone());
                false
            } else {
                true
            }
        });
        // As on the real server: retried at once, with one more retry, and not parked however
        // often that happened.
        for message in held {
            self.requeue(message);
        }
    }

    /// Takes an acked or nacked message out of flight; None if it is not in flight (acked
    /// twice, or already timed out and sent again).
    fn land(&mut self, id: Uuid) -> Option<Message> {
        let flight = self.in_flight.remove(&id)?;
        if let Some(consumer) = self.consumers.get_mut(flight.consumer) {
            consumer.in_flight = consumer.in_flight.saturating_sub(1);
        }
        Some(flight.message)
    }

    /// A nack: park, retry or skip. `Stop` skips too, as on the real server (whose stop is
    /// not implemented), and the consumer stays.
    async fn nack(&mut self, ids: Vec<Uuid>, action: Action, reason: &str) {
        for id in ids {
            let Some(message) = self.land(id) else {
                continue;
            };
            match action {
                Action::Park => {
                    let reason = format!("Client explicitly NAK'ed message.\n{reason}");
                    self.park(&message, &reason).await;
                    self.settle(&message).await;
                }
                Action::Skip | Action::Stop => self.settle(&message).await,
                Action::Retry | Action::Unknown => self.retry_or_park(message).await,
            }
        }
    }

    /// Sends a message again later, or parks it once it has used up its retries (so it is
    /// delivered at most `max_retry_count + 1` times).
    async fn retry_or_park(&mut self, message: Message) {
        if message.retry_count >= self.settings.max_retry_count {
            let reason = format!("Reached retry count of {}", self.settings.max_retry_count);
            self.park(&message, &reason).await;
            self.settle(&message).await;
            return;
        }
        self.requeue(message);
    }

    /// Puts a message back in the retry queue, in source order, with one more retry.
    fn requeue(&mut self, mut message: Message) {
        message.retry_count += 1;
        let at = match message.key {
            Some(key) => self
                .retry
                .iter()
                .position(|queued| queued.key.is_none_or(|queued| queued > key))
                .unwrap_or(self.retry.len()),
            None => self.retry.len(),
        };
        self.retry.insert(at, message);
    }

    /// Marks a message done; writes a checkpoint when enough were.
    async fn settle(&mut self, message: &Message) {
        if let Some(key) = message.key
            && let std::collections::btree_map::Entry::Occupied(mut holders) =
                self.unsettled.entry(key)
        {
            *holders.get_mut() -= 1;
            if *holders.get() == 0 {
                holders.remove();
            }
        }
        self.settled_since_checkpoint = self.settled_since_checkpoint.saturating_add(1);
        if self.settled_since_checkpoint >= self.settings.max_checkpoint_count.max(1) {
            self.write_checkpoint().await;
        }
    }

    /// Appends a link to the message to the parked stream.
    async fn park(&mut self, message: &Message, reason: &str) {
        let stream = records::parked_stream(&self.source, &self.name);
        let first = self.store.last_revision(&stream).is_none();
        let mut events = Vec::new();
        if first {
            events.push((format!("$${stream}"), records::parked_stream_metadata(0)));
        }
        events.push((stream, records::parked(&message.event, reason)));
        self.write(events).await;
    }

    /// Reads more of the source while consumers have room; true if it stopped for its scan
    /// budget rather than for lack of room or events.
    fn fill(&mut self) -> bool {
        self.fill_replay();
        let room = self.free_slots();
        let mut considered = 0;
        while self.ready.len() < room {
            if considered >= SCAN_BUDGET {
                return true;
            }
            let batch = (self.settings.read_batch_size as usize).clamp(1, 512);
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
            let Some(last) = page.last() else {
                self.live = true;
                return false;
            };
            self.live = false;
            self.next = self.key_of(last) + 1;
            for event in page {
                considered += 1;
                if !self.selects(&event) {
                    continue;
                }
                let key = self.key_of(&event);
                self.last_known = Some(key);
                *self.unsettled.entry(key).or_default() += 1;
                self.ready.push_back(Message {
                    event,
                    link: None,
                    key: Some(key),
                    retry_count: 0,
                });
            }
        }
        false
    }

    /// Reads parked messages back into the retry queue while a replay runs and the queue is
    /// short, moving the parked stream's `$tb` past them.
    fn fill_replay(&mut self) {
        let Some(replay) = &mut self.replay else {
            return;
        };
        if self.retry.len() >= REPLAY_PAGE {
            return;
        }
        let stream = records::parked_stream(&self.source, &self.name);
        let wanted = usize::try_from(replay.end.saturating_sub(replay.next))
            .unwrap_or(usize::MAX)
            .min(REPLAY_PAGE);
        let links = self
            .store
            .stream_page(&stream, replay.next, Direction::Forwards, wanted)
            .map(|page| page.events)
            .unwrap_or_default();
        let mut done = links.is_empty();
        for link in links {
            if link.revision >= replay.end {
                done = true;
                break;
            }
            replay.next = link.revision + 1;
            let Some((revision, target)) = records::parse_link(&link) else {
                continue;
            };
            let event = self
                .store
                .stream_page(&target, revision, Direction::Forwards, 1)
                .and_then(|page| page.events.into_iter().next())
                .filter(|event| event.revision == revision);
            // A parked event deleted since is dropped, as a link that resolves to nothing.
            if let Some(event) = event {
                self.retry.push_back(Message {
                    event,
                    link: Some(link),
                    key: None,
                    retry_count: 0,
                });
            }
        }
        let next = replay.next;
        if done || replay.next >= replay.end {
            self.replay = None;
        }
        // The links read back are no longer parked. Written from here, synchronously: it is
        // one small append, and doing it before the messages go out means a crash can lose a
        // replay but never park a message twice.
        let metadata = records::parked_stream_metadata(next);
        if let Err(error) = self.store.append(
            &format!("$${stream}"),
            ExpectedRevision::Any,
            vec![metadata],
        ) {
            tracing::warn!(?error, stream, "could not move the parked stream's $tb");
        }
    }

    /// Begins replaying parked messages; the reply goes out at once, the replay runs as
    /// consumers take the messages.
    fn start_replay(&mut self, stop_at: Option<i64>) -> Result<(), Status> {
        let stop_at = match stop_at.map(u64::try_from) {
            Some(Err(_)) => {
                let reason = "Cannot stop replaying parked message at a negative version.";
                return Err(errors::failed(&self.source, &self.name, reason));
            }
            Some(Ok(stop_at)) => Some(stop_at),
            None => None,
        };
        if self.replay.is_some() {
            let reason = "A replay or truncate is already in progress.";
            return Err(errors::failed(&self.source, &self.name, reason));
        }
        let stream = records::parked_stream(&self.source, &self.name);
        let Some(last) = self.store.last_revision(&stream) else {
            return Ok(());
        };
        let first = self
            .store
            .stream_page(&stream, 0, Direction::Forwards, 1)
            .and_then(|page| page.events.first().map(|event| event.revision))
            .unwrap_or(last + 1);
        let end = stop_at.map_or(last + 1, |stop_at| stop_at.min(last + 1));
        if first < end {
            self.replay = Some(Replay { next: first, end });
        }
        Ok(())
    }

    /// Hands ready messages to consumers with room, retries first. Under the pinned strategy
    /// a message whose consumer is full goes to the back of the retry queue and the next one
    /// is tried, as on the real server, a bounded number of times per call.
    fn dispatch(&mut self) {
        let mut passes_left = self.retry.len() + self.ready.len();
        loop {
            let from_retry = !self.retry.is_empty();
            let Some(message) = self.retry.front().or(self.ready.front()) else {
                return;
            };
            let chosen = self
                .consumers
                .choose(self.settings.strategy, &message.event.stream);
            let message = if from_retry {
                self.retry.pop_front()
            } else {
                self.ready.pop_front()
            }
            .expect("the front message exists");
            let Some(chosen) = chosen else {
                let pinned_elsewhere = self.settings.strategy == Strategy::Pinned
                    && self.free_slots() > 0
                    && passes_left > 0;
                if pinned_elsewhere {
                    passes_left -= 1;
                    self.retry.push_back(message);
                    continue;
                }
                if from_retry {
                    self.retry.push_front(message);
                } else {
                    self.ready.push_front(message);
                }
                return;
            };
            let consumer = self.consumers.get_mut(chosen).expect("chosen is connected");
            match consumer
                .deliver
                .try_send(Ok(info::read_event(&message, consumer.uuid_format)))
            {
                Ok(()) => {
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
                Err(_) => {
                    // Full (the client stopped reading) or closed (it left, and its call will
                    // say so): either way nothing more goes out now.
                    self.retry.push_front(message);
                    return;
                }
            }
        }
    }

    /// Retries the messages whose ack is overdue.
    async fn expire(&mut self) {
        let now = Instant::now();
        let overdue: Vec<Uuid> = self
            .in_flight
            .iter()
            .filter(|(_, flight)| flight.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        let mut messages: Vec<Message> =
            overdue.into_iter().filter_map(|id| self.land(id)).collect();
        messages.sort_by_key(|message| message.key);
        for message in messages {
            self.retry_or_park(message).await;
        }
    }

    /// Writes a checkpoint if anything was settled past the last one.
    async fn write_checkpoint(&mut self) {
        self.settled_since_checkpoint = 0;
        self.last_checkpoint_at = Instant::now();
        let Some(key) = self.settled_up_to() else {
            return;
        };
        if self.checkpoint.is_some_and(|checkpoint| checkpoint >= key) {
            return;
        }
        let stream = records::checkpoint_stream(&self.source, &self.name);
        let mut events = Vec::new();
        if self.checkpoint_revision.is_none() {
            events.push((format!("$${stream}"), records::checkpoint_stream_metadata()));
        }
        events.push((stream, records::checkpoint(&self.source, key)));
        if self.write(events).await {
            self.checkpoint = Some(key);
            self.checkpoint_revision = Some(self.checkpoint_revision.map_or(0, |last| last + 1));
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

    /// Appends records, each to its stream, off the async threads; false (logged) on failure:
    /// the group goes on, as a checkpoint or park that did not happen is retried or redone.
    async fn write(&self, events: Vec<(String, ProposedEvent)>) -> bool {
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
                tracing::debug!(
                    error,
                    group = self.name,
                    "persistent subscription write failed"
                );
                false
            }
            Err(_) => false,
        }
    }

    /// Ends the group: optionally checkpoints, then ends every consumer's call with `status`.
    async fn end(&mut self, status: Status, checkpoint: bool) {
        if checkpoint {
            self.write_checkpoint().await;
        }
        for consumer in self.consumers.drain() {
            let _ = consumer.deliver.try_send(Err(status.clone()));
        }
    }

    /// Whether a timed checkpoint is due: `checkpoint_after` since the last, and at least
    /// `min_checkpoint_count` messages settled.
    fn checkpoint_due(&self) -> bool {
        let Some(after) = self.settings.checkpoint_after() else {
            return false;
        };
        let enough = self.settings.min_checkpoint_count.max(1);
        self.settled_since_checkpoint >= enough && self.last_checkpoint_at.elapsed() >= after
    }

    /// Free slots over all consumers.
    fn free_slots(&self) -> usize {
        self.consumers
            .iter()
            .map(|consumer| consumer.slots.saturating_sub(consumer.in_flight) as usize)
            .sum()
    }

    fn has_room(&self) -> bool {
        self.free_slots() > self.ready.len()
    }

    /// The revision or position of `event` in the source.
    fn key_of(&self, event: &RecordedEvent) -> u64 {
        match self.source {
            Source::Stream(_) => event.revision,
            Source::All => event.position,
        }
    }

    /// Whether a `$all` group delivers `event`: never the groups' own bookkeeping streams,
    /// and only what its filter passes.
    fn selects(&self, event: &RecordedEvent) -> bool {
        if matches!(self.source, Source::Stream(_)) {
            return true;
        }
        let stream = &*event.stream;
        if stream.starts_with("$persistentsubscription-")
            || stream == records::CONFIG_STREAM
            || stream.starts_with("$$$persistentsubscription-")
        {
            return false;
        }
        match &self.filter {
            None => true,
            // A regex that cannot decide within its step limit counts as not matching here:
            // there is no read call to fail, and the group must go on.
            Some(filter) => filter.matches(event).unwrap_or(false),
        }
    }

    /// Whether the group has read everything its source has now, for info.
    pub(super) fn caught_up(&self) -> bool {
        match &self.source {
            Source::Stream(stream) => self
                .store
                .last_revision(stream)
                .is_none_or(|last| self.next > last),
            Source::All => self.next > self.store.head(),
        }
    }

    /// Whether parked messages are being replayed, for info.
    pub(super) fn replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// In-flight messages, for info.
    pub(super) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }

    /// Parked messages not yet replayed, for info.
    pub(super) fn parked_count(&self) -> u64 {
        let stream = records::parked_stream(&self.source, &self.name);
        let Some(last) = self.store.last_revision(&stream) else {
            return 0;
        };
        let first = self
            .store
            .stream_page(&stream, 0, Direction::Forwards, 1)
            .and_then(|page| page.events.first().map(|event| event.revision))
            .unwrap_or(last + 1);
        last + 1 - first
    }
}
