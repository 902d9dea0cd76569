//! Where events come from: the [`EventSource`] interface and its implementations.
//!
//! A source knows nothing about wasm or SQLite. It yields events in log order, strictly after
//! the position it was asked to start from, plus checkpoints (the log has been read this far,
//! nothing else matched the filter) and a caught-up marker.

mod esdb;
mod jsonl;
mod memory;

use std::pin::Pin;

use futures::Stream;

use crate::event::{EventFilter, Position, RecordedEvent};

pub use esdb::EsdbSource;
pub use jsonl::{JsonlSource, parse_jsonl};
pub use memory::MemorySource;

/// One thing a subscription yields.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceItem {
    /// An event that matches the filter, after every event yielded before it.
    Event(RecordedEvent),
    /// The log has been read up to this position; no further matching event lies at or before
    /// it. A projection may store it so a restart does not re-read the stretch.
    Checkpoint(Position),
    /// Every event written before the subscription started has been yielded; what follows is
    /// live.
    CaughtUp,
}

/// Why a subscription ended early.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The connection broke or the server is away: subscribing again from the last committed
    /// position, after a pause, is the cure.
    #[error("{0:#}")]
    Interrupted(anyhow::Error),
    /// Subscribing again cannot help (refused credentials, malformed data, an unsupported
    /// server): the projection stops with this error.
    #[error("{0:#}")]
    Fatal(anyhow::Error),
}

/// A subscription: items in log order, or an error that ends it.
pub type Subscription = Pin<Box<dyn Stream<Item = Result<SourceItem, SourceError>> + Send>>;

/// Something that can be subscribed to from a position.
pub trait EventSource: Send + Sync {
    /// A short description for logs, e.g. the file path or the server address.
    fn describe(&self) -> String;

    /// Subscribes to the events matching `filter` that come strictly after `after` (from the
    /// start of the log when `None`). A finite source ends the stream after its last event and
    /// a `CaughtUp`; a live source keeps it open.
    fn subscribe(&self, after: Option<Position>, filter: &EventFilter) -> Subscription;

    /// The position of the last event in the log a projection could be given (system events
    /// after it do not count), or `None` when it is empty: how far a rebuild has to go, and
    /// what `fresh` queries wait for.
    fn head(&self) -> futures::future::BoxFuture<'_, anyhow::Result<Option<Position>>>;

    /// Whether the source ends (a file) rather than staying live (a server).
    fn is_finite(&self) -> bool;
}
