//! The consumers of one group and how messages are shared out between them (the consumer
//! strategies): which consumer, if any, gets the next message.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use tokio::sync::mpsc;
use tonic::Status;

use super::settings::Strategy;
use crate::proto::persistent_subscriptions::ReadResp;

/// Identifies one `Read` call for the life of the server.
pub type ConsumerId = u64;

/// Buckets streams are hashed into by the pinned strategy; each bucket belongs to one
/// consumer, so one stream's messages go to one consumer while it stays.
const PIN_BUCKETS: u64 = 1024;

/// One connected consumer.
pub struct Consumer {
    /// Its call.
    pub id: ConsumerId,
    /// Messages it may hold unacknowledged (the client's buffer size).
    pub slots: u32,
    /// Messages sent and neither acked, nacked nor timed out.
    pub in_flight: u32,
    /// Messages sent over the life of the call.
    pub delivered: u64,
    /// The client's address, for info.
    pub from: String,
    /// The authenticated user, for info.
    pub username: String,
    /// The client's connection name, for info.
    pub connection_name: String,
    /// How it wants event ids.
    pub uuid_format: crate::grpc::convert::UuidFormat,
    /// Where its responses go: bounded, and never filled past its last place (see
    /// `has_room`).
    pub deliver: mpsc::Sender<Result<ReadResp, Status>>,
}

impl Consumer {
    /// Whether it can take one more message: a free slot, and room in its call's channel
    /// beyond the one place kept for the status that ends the call (a consumer that stops
    /// reading fills its channel with retried messages, and then takes no more).
    fn has_room(&self) -> bool {
        self.in_flight < self.slots && self.deliver.capacity() > 1
    }
}

/// The consumers of a group in the order they joined, and the strategy's memory.
#[derive(Default)]
pub struct Consumers {
    /// Join order: dispatch-to-single serves the first with room.
    list: Vec<Consumer>,
    /// Round robin: index in `list` to try first next time.
    turn: usize,
    /// Pinned: which consumer owns a bucket.
    pins: HashMap<u64, ConsumerId>,
}

impl Consumers {
    /// How many are connected.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether any can take a message.
    pub fn any_room(&self) -> bool {
        self.list.iter().any(Consumer::has_room)
    }

    /// All of them, in join order.
    pub fn iter(&self) -> impl Iterator<Item = &Consumer> {
        self.list.iter()
    }

    /// Adds a consumer.
    pub fn join(&mut self, consumer: Consumer) {
        self.list.push(consumer);
    }

    /// Removes a consumer; its pins are freed for the others.
    pub fn leave(&mut self, id: ConsumerId) -> Option<Consumer> {
        let index = self.list.iter().position(|consumer| consumer.id == id)?;
        let consumer = self.list.remove(index);
        if self.turn > index {
            self.turn -= 1;
        }
        self.pins.retain(|_, owner| *owner != id);
        Some(consumer)
    }

    /// A consumer by id.
    pub fn get_mut(&mut self, id: ConsumerId) -> Option<&mut Consumer> {
        self.list.iter_mut().find(|consumer| consumer.id == id)
    }

    /// Removes every consumer, for a group that stops.
    pub fn drain(&mut self) -> Vec<Consumer> {
        self.pins.clear();
        self.turn = 0;
        std::mem::take(&mut self.list)
    }

    /// The consumer that should get a message of `stream` now, under `strategy`; None when
    /// the one it must go to (or every one) has no room.
    pub fn choose(&mut self, strategy: Strategy, stream: &str) -> Option<ConsumerId> {
        if self.list.is_empty() {
            return None;
        }
        match strategy {
            Strategy::DispatchToSingle => self
                .list
                .iter()
                .find(|consumer| consumer.has_room())
                .map(|consumer| consumer.id),
            Strategy::RoundRobin => {
                let count = self.list.len();
                let start = self.turn % count;
                let chosen = (0..count)
                    .map(|offset| (start + offset) % count)
                    .find(|&index| self.list[index].has_room())?;
                self.turn = (chosen + 1) % count;
                Some(self.list[chosen].id)
            }
            Strategy::Pinned => {
                let bucket = bucket_of(stream);
                let owner = match self.pins.get(&bucket) {
                    Some(&owner) => owner,
                    None => {
                        // A free bucket goes to the consumer owning the fewest, so streams
                        // spread evenly and stay put.
                        let owner = self
                            .list
                            .iter()
                            .min_by_key(|consumer| {
                                self.pins.values().filter(|&&id| id == consumer.id).count()
                            })?
                            .id;
                        self.pins.insert(bucket, owner);
                        owner
                    }
                };
                let consumer = self.list.iter().find(|consumer| consumer.id == owner)?;
                consumer.has_room().then_some(owner)
            }
        }
    }
}

/// The pinned strategy's bucket of a stream.
fn bucket_of(stream: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    stream.hash(&mut hasher);
    hasher.finish() % PIN_BUCKETS
}
