//! One running group: a task that reads its source from the log, shares messages out to its
//! consumers, and keeps track of what is settled, retried and parked.
//!
//! Everything about a group's messages is owned by its task and changed only by it, one
//! [`Command`] at a time, so there are no locks to get wrong: consumers' calls send acks and
//! nacks in, the task sends events out. The task reads from the log only while some consumer
//! has room, so a group nobody reads from holds nothing in memory.
//!
//! A message is *settled* once it is acked, skipped or parked. The checkpoint is the last
//! revision (or position) below which everything read is settled, and a restarted group
//! resumes after it: a message is delivered at least once, and again after a restart only if
//! it was not settled when the checkpoint was written.
//!
//! - [`delivery`]: reading the source, handing messages out, timeouts and retries.
//! - [`parking`]: parked messages and their replay.
//! - [`checkpoint`]: settling and checkpoints.

mod checkpoint;
mod delivery;
mod parking;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
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
use super::settings::{Settings, Source, Start};
use crate::grpc::filter::EventFilter;
use crate::limits::{MAX_CONSUMERS_PER_GROUP, MAX_NACK_REASON_BYTES};
use crate::proto::persistent_subscriptions::read_req::nack::Action;
use crate::proto::persistent_subscriptions::read_resp::{Content, SubscriptionConfirmation};
use crate::proto::persistent_subscriptions::{ReadResp, SubscriptionInfo};
use crate::store::{Direction, RecordedEvent, Store};

/// How often overdue messages are retried and timed checkpoints written, as on the real
/// server: a message times out between its timeout and its timeout plus a tick.
const TICK: Duration = Duration::from_secs(1);

/// Commands queued per group before senders wait: each may carry up to a consumer's buffer
/// of ids.
const COMMAND_CAPACITY: usize = 64;

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
    /// Nacks.
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

    /// Resolves once the group has ended.
    pub async fn ended(&self) {
        self.commands.closed().await;
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
    /// For a replayed parked message, its link's revision in the parked stream: the stream's
    /// `$tb` moves past it only once it is settled again.
    pub parked_at: Option<u64>,
    /// How many times it was delivered before.
    pub retry_count: u32,
}

impl Message {
    /// The id consumers ack it by: the original event's, which is the link for a resolved
    /// link.
    fn id(&self) -> Uuid {
        self.link.as_ref().unwrap_or(&self.event).id
    }

    /// A message read from the source at `key`.
    fn read(event: Arc<RecordedEvent>, key: u64) -> Message {
        Message {
            event,
            link: None,
            key: Some(key),
            parked_at: None,
            retry_count: 0,
        }
    }

    /// Its place in the retry queue: source order, replayed parked messages after, in parked
    /// order.
    fn order(&self) -> (bool, u64) {
        (self.key.is_none(), self.key.or(self.parked_at).unwrap_or(0))
    }
}

/// A message a consumer holds.
struct Flight {
    message: Message,
    consumer: ConsumerId,
    /// When it is retried if not acked by then.
    deadline: Instant,
}

/// The group's task state.
pub struct Group {
    pub(super) store: Store,
    pub(super) source: Source,
    pub(super) name: String,
    pub(super) settings: Settings,
    filter: Option<EventFilter>,
    /// The next revision or position to read.
    next: u64,
    /// The log's head when a read last found nothing new (None: there may be more to read).
    /// Until the head moves there is nothing to read, so acks and other commands do not
    /// each cost a read of the log.
    live_at: Option<u64>,
    /// Read, not yet delivered.
    pub(super) ready: VecDeque<Message>,
    /// To deliver again, before anything in `ready`, in [`Message::order`].
    pub(super) retry: VecDeque<Message>,
    /// Events the filter could not decide on, to park.
    undecided: Vec<(Message, String)>,
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
    /// Parked messages being read back.
    replay: Option<parking::Replay>,
    /// Parked revisions read back and not yet settled.
    replayed: BTreeSet<u64>,
    /// The parked revision reading back has reached (None: no replay since start).
    replay_read_to: Option<u64>,
    /// The parked stream's `$tb` as last written or found.
    parked_floor: u64,
    /// Events delivered over the group's life, for info.
    pub(super) delivered: u64,
    /// The newest key read, for info.
    pub(super) last_known: Option<u64>,
}

impl Group {
    /// Starts a group's task: from its checkpoint if it has one, else from its start.
    pub async fn start(
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
        let checkpoint = store
            .stream_page(&checkpoint_stream, u64::MAX, Direction::Backwards, 1)
            .await
            .map_err(|error| crate::grpc::status::storage_failure(&error))?
            .and_then(|page| {
                page.events
                    .first()
                    .and_then(|event| records::parse_checkpoint(event))
            });
        let next = match (checkpoint, settings.start) {
            (Some(checkpoint), _) => checkpoint + 1,
            (None, Start::Beginning) => 0,
            (None, Start::At(key)) => key,
            (None, Start::End) => settings
                .resolved_end
                .unwrap_or_else(|| end_of(&store, &source)),
        };
        let parked_floor = parking::first_parked(&store, &source, &name).await;
        let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
        let group = Group {
            store,
            source,
            name,
            settings,
            filter,
            next,
            live_at: None,
            ready: VecDeque::new(),
            retry: VecDeque::new(),
            undecided: Vec::new(),
            in_flight: HashMap::new(),
            unsettled: BTreeMap::new(),
            consumers: Consumers::default(),
            checkpoint,
            settled_since_checkpoint: 0,
            last_checkpoint_at: Instant::now(),
            replay: None,
            replayed: BTreeSet::new(),
            replay_read_to: None,
            parked_floor,
            delivered: 0,
            last_known: None,
        };
        tokio::spawn(group.run(receiver));
        Ok(Handle { commands })
    }

    /// The task: read, deliver, then wait for a command, a new event, a tick or more reading.
    /// It ends on a `Stop` (the registry sends one when the server shuts down, so the last
    /// checkpoint is written before the store closes).
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut head = self.store.watch_head();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let head_now = *head.borrow_and_update();
            let more = self.fill(head_now).await;
            self.park_undecided().await;
            self.dispatch();
            let wants_events = self.live_at.is_some() && self.has_room();
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
            self.move_parked_floor().await;
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
            Command::Leave(consumer) => self.leave(consumer).await,
            Command::Ack(ids) => {
                for id in ids {
                    if let Some(message) = self.land(id) {
                        self.settle(&message);
                    }
                }
                self.checkpoint_if_full().await;
            }
            Command::Nack {
                ids,
                action,
                mut reason,
            } => {
                truncate(&mut reason, MAX_NACK_REASON_BYTES);
                self.nack(ids, action, &reason).await;
                self.checkpoint_if_full().await;
            }
            Command::Info(reply) => {
                let parked = self.parked_count().await;
                let _ = reply.send(info::of(self, parked));
            }
            Command::ReplayParked { stop_at, reply } => {
                let _ = reply.send(self.start_replay(stop_at).await);
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
        let max = match self.settings.max_subscriber_count as usize {
            0 => MAX_CONSUMERS_PER_GROUP,
            max => max.min(MAX_CONSUMERS_PER_GROUP),
        };
        if self.consumers.len() >= max {
            return Err(errors::maximum_subscribers_reached(
                &self.source,
                &self.name,
            ));
        }
        let confirmation = ReadResp {
            content: Some(Content::SubscriptionConfirmation(
                SubscriptionConfirmation {
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

    /// A consumer left: what it held goes to the others, each with one more retry, and is
    /// parked if that uses up its retries (as on the real server).
    async fn leave(&mut self, id: ConsumerId) {
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
        self.retry_or_park_all(held, "The consumer left").await;
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
        let mut retried = Vec::new();
        for id in ids {
            let Some(message) = self.land(id) else {
                continue;
            };
            match action {
                Action::Park => {
                    let reason = format!("Client explicitly NAK'ed message.\n{reason}");
                    self.park_and_settle(message, &reason).await;
                }
                Action::Skip | Action::Stop => self.settle(&message),
                Action::Retry | Action::Unknown => retried.push(message),
            }
        }
        self.retry_or_park_all(retried, reason).await;
    }

    /// Ends the group: optionally checkpoints, then ends every consumer's call with `status`
    /// (each call keeps a slot free for it, see `Consumer::has_room`).
    async fn end(&mut self, status: Status, checkpoint: bool) {
        if checkpoint {
            self.write_checkpoint().await;
        }
        self.move_parked_floor().await;
        for consumer in self.consumers.drain() {
            let _ = consumer.deliver.try_send(Err(status.clone()));
        }
    }

    /// Whether the group has read everything its source has now, for info.
    pub(super) fn caught_up(&self) -> bool {
        self.next >= end_of(&self.store, &self.source)
    }

    /// Whether parked messages are being replayed, for info.
    pub(super) fn replaying(&self) -> bool {
        self.replay.is_some() || !self.replayed.is_empty()
    }

    /// In-flight messages, for info.
    pub(super) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }
}

/// The key the next event of `source` will have: the stream's next revision or the log's next
/// position.
pub fn end_of(store: &Store, source: &Source) -> u64 {
    match source {
        Source::Stream(stream) => store.last_revision(stream).map_or(0, |last| last + 1),
        Source::All => store.head() + 1,
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
