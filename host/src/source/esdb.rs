//! EventStoreDB / KurrentDB as a source, through the official `eventstore` gRPC client (the only
//! module that uses it).
//!
//! Each projection gets a filtered subscription to `$all` built from its manifest, started
//! strictly after its stored position. The server's checkpoint messages become
//! [`SourceItem::Checkpoint`]s, so a projection whose events are rare stores how far the log was
//! read and does not rescan it after a restart.
//!
//! The client's own resubscription is left off on purpose: it resumes from the last event *it*
//! delivered, which may not be committed. A broken subscription ends with
//! [`SourceError::Interrupted`] instead, and the pipeline subscribes again from the position the
//! projection committed. After any interrupted subscription the client is replaced by a fresh
//! one (a client whose connection task died is never revived by the 4.x client, and telling
//! the two cases apart is not worth it: a client is cheap).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, EventData, ReadAllOptions, StreamPosition,
    SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};

use super::{EventSource, SourceError, SourceItem, Subscription};
use crate::event::{CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON, EventFilter, Position, RecordedEvent};

/// How many events the server considers (matching or not) between two checkpoint messages.
/// After a restart at most this many non-matching events are read again.
const CHECKPOINT_WINDOW: u32 = 1000;

/// Events read back from the end of `$all` looking for the last user event.
const HEAD_SCAN: usize = 1000;

/// How long the start-up probe may take before the server counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to an EventStoreDB node or cluster.
pub struct EsdbSource {
    shared: Arc<Shared>,
}

/// What the source and its subscriptions share: the settings and the current client.
struct Shared {
    settings: ClientSettings,
    described: String,
    client: Mutex<Generation>,
}

/// The current client, numbered so that only the first subscription to see it fail replaces it.
#[derive(Clone)]
struct Generation {
    number: u64,
    client: Client,
}

impl EsdbSource {
    /// Connects to the server of `connection` (an `esdb://` or `esdb+discover://` string, with
    /// credentials, TLS and node preference as the client supports them) and proves it can
    /// read `$all`. A malformed string, an unreachable server or refused credentials are errors
    /// here, once, with what to check, rather than a retry loop later.
    pub async fn connect(connection: &str) -> anyhow::Result<EsdbSource> {
        let settings: ClientSettings =
            connection
                .parse()
                .map_err(|error: eventstore::ClientSettingsParseError| {
                    anyhow!(
                        "the EventStoreDB connection string is malformed: {error} \
                     (expected e.g. esdb://user:password@host:2113?tls=false)"
                    )
                })?;
        let described = describe(&settings);
        let client = Client::new(settings.clone())
            .map_err(|error| anyhow!("creating the EventStoreDB client: {error}"))?;
        let source = EsdbSource {
            shared: Arc::new(Shared {
                settings,
                described,
                client: Mutex::new(Generation { number: 0, client }),
            }),
        };
        let described = &source.shared.described;
        match tokio::time::timeout(PROBE_TIMEOUT, source.last_position()).await {
            Ok(Ok(_)) => Ok(source),
            Ok(Err(eventstore::Error::AccessDenied)) => Err(anyhow!(
                "EventStoreDB at {described} refused the credentials: put a user allowed to \
                 read $all in the connection string (esdb://user:password@host...)"
            )),
            Ok(Err(error)) => Err(anyhow!(
                "cannot read from EventStoreDB at {described}: {error}; check that the server \
                 runs and the connection string (tls=false for a server without TLS)"
            )),
            Err(_elapsed) => Err(anyhow!(
                "EventStoreDB at {described} did not answer within {} s; check the address, \
                 and tls= (a TLS client cannot talk to a plain server, nor the reverse)",
                PROBE_TIMEOUT.as_secs()
            )),
        }
    }

    /// The position of the last user event in `$all` (not in a `$` stream, not of a `$` type),
    /// or of the last event when the last [`HEAD_SCAN`] are all system events; `None` when the
    /// log is empty. System events (links a server's projections write after each append,
    /// metadata) never reach a projection, so a head among them could never be caught up with.
    pub async fn last_position(&self) -> Result<Option<Position>, eventstore::Error> {
        let client = self.shared.current().client;
        let options = ReadAllOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(HEAD_SCAN);
        let mut read = client.read_all(&options).await?;
        let mut last = None;
        while let Some(event) = read.next().await? {
            let event = event.get_original_event();
            let at = position(event.position);
            if !event.stream_id.starts_with('$') && !event.event_type.starts_with('$') {
                return Ok(Some(at));
            }
            last = last.or(Some(at));
        }
        Ok(last)
    }

    /// Whether any of the first 100 events of `$all` is a user event (not in a `$` stream):
    /// how `projector dev` tells a fresh store, which holds only what the server seeds, from
    /// one that already has a workload's events.
    pub async fn holds_user_events(&self) -> Result<bool, eventstore::Error> {
        let client = self.shared.current().client;
        let options = ReadAllOptions::default()
            .position(StreamPosition::Start)
            .max_count(100);
        let mut read = client.read_all(&options).await?;
        while let Some(event) = read.next().await? {
            if !event.get_original_event().stream_id.starts_with('$') {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends JSON events to `stream`, whatever its revision, and returns the position of the
    /// last. `projector dev`'s demo workload writes through this.
    pub async fn append(
        &self,
        stream: &str,
        events: &[(String, serde_json::Value)],
    ) -> anyhow::Result<Position> {
        let data = events
            .iter()
            .map(|(event_type, payload)| EventData::json(event_type, payload))
            .collect::<Result<Vec<_>, _>>()?;
        let generation = self.shared.current();
        match generation
            .client
            .append_to_stream(stream, &AppendToStreamOptions::default(), data)
            .await
        {
            Ok(written) => Ok(position(written.position)),
            Err(error) => {
                if matches!(classify(error.clone()), SourceError::Interrupted(_)) {
                    self.shared.renew(generation.number);
                }
                Err(anyhow!("appending to {stream}: {error}"))
            }
        }
    }
}

impl Shared {
    fn current(&self) -> Generation {
        self.client.lock().expect("client lock").clone()
    }

    /// Replaces the client of generation `failed` with a fresh one, unless another
    /// subscription did so already.
    fn renew(&self, failed: u64) {
        let mut current = self.client.lock().expect("client lock");
        if current.number != failed {
            return;
        }
        match Client::new(self.settings.clone()) {
            Ok(client) => {
                *current = Generation {
                    number: failed + 1,
                    client,
                }
            }
            Err(error) => tracing::warn!(error = %error, "recreating the EventStoreDB client"),
        }
    }
}

impl EventSource for EsdbSource {
    fn describe(&self) -> String {
        self.shared.described.clone()
    }

    fn head(&self) -> futures::future::BoxFuture<'_, anyhow::Result<Option<Position>>> {
        Box::pin(async move {
            let head = tokio::time::timeout(PROBE_TIMEOUT, self.last_position())
                .await
                .context("reading the head of $all timed out")??;
            Ok(head)
        })
    }

    fn is_finite(&self) -> bool {
        false
    }

    fn subscribe(&self, after: Option<Position>, filter: &EventFilter) -> Subscription {
        let start = match after {
            Some(after) => StreamPosition::Position(eventstore::Position {
                commit: after.commit,
                prepare: after.prepare,
            }),
            None => StreamPosition::Start,
        };
        let options = SubscribeToAllOptions::default()
            .position(start)
            .filter(server_filter(filter));
        let state = State {
            shared: Arc::clone(&self.shared),
            options,
            subscription: None,
            filter: filter.clone(),
            last_event: after,
            last: after,
            finished: false,
        };
        Box::pin(futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        }))
    }
}

/// The state of one subscription.
struct State {
    shared: Arc<Shared>,
    options: SubscribeToAllOptions,
    subscription: Option<(u64, eventstore::Subscription)>,
    filter: EventFilter,
    /// The last event seen: an event at or before it is a repeat.
    last_event: Option<Position>,
    /// The furthest position yielded (event or checkpoint): checkpoints only move forward.
    /// Kept apart from `last_event`, so that a server checkpoint that runs ahead of an event
    /// it has yet to deliver (a bug of some KurrentDB versions) does not make the source drop
    /// that event. The projection still skips it if it already committed that checkpoint.
    last: Option<Position>,
    finished: bool,
}

impl State {
    /// The next item, or `None` after the error that ended the subscription.
    async fn next(&mut self) -> Option<Result<SourceItem, SourceError>> {
        if self.finished {
            return None;
        }
        if self.subscription.is_none() {
            let generation = self.shared.current();
            let subscription = generation.client.subscribe_to_all(&self.options).await;
            self.subscription = Some((generation.number, subscription));
        }
        let (generation, subscription) = self.subscription.as_mut().expect("set above");
        loop {
            let event = match subscription.next_subscription_event().await {
                Ok(event) => event,
                Err(error) => {
                    self.finished = true;
                    let error = classify(error);
                    if matches!(error, SourceError::Interrupted(_)) {
                        // The 4.x client never revives a connection task that gave up; a fresh
                        // client for the next attempt is cheap and always works.
                        self.shared.renew(*generation);
                    }
                    return Some(Err(error));
                }
            };
            match event {
                SubscriptionEvent::EventAppeared(resolved) => {
                    // Owned: the event's fields move into ours instead of being copied.
                    let Some(recorded) = resolved.link.or(resolved.event) else {
                        continue;
                    };
                    let at = position(recorded.position);
                    // Exclusive start and no duplicates, even if a server gets either wrong.
                    if self.last_event.is_some_and(|last| at <= last) {
                        continue;
                    }
                    self.last_event = Some(at);
                    self.last = self.last.max(Some(at));
                    // The server filters on one axis; the other (and system events) here.
                    if self
                        .filter
                        .matches(&recorded.stream_id, &recorded.event_type)
                    {
                        return Some(Ok(SourceItem::Event(convert(recorded))));
                    }
                    return Some(Ok(SourceItem::Checkpoint(at)));
                }
                SubscriptionEvent::Checkpoint(at) => {
                    let at = position(at);
                    if self.last.is_some_and(|last| at <= last) {
                        continue;
                    }
                    self.last = Some(at);
                    return Some(Ok(SourceItem::Checkpoint(at)));
                }
                SubscriptionEvent::CaughtUp => return Some(Ok(SourceItem::CaughtUp)),
                SubscriptionEvent::FellBehind => {
                    tracing::debug!("the server reports the subscription fell behind");
                }
                SubscriptionEvent::Confirmed(_)
                | SubscriptionEvent::FirstStreamPosition(_)
                | SubscriptionEvent::LastStreamPosition(_)
                | SubscriptionEvent::LastAllPosition(_) => {}
            }
        }
    }
}

/// The server-side filter for `filter`. The server filters on event types or on stream names,
/// not both: event types win (they are exact and usually the narrower), and the stream prefixes
/// are checked here. Without either, only system events are filtered out. Any filter makes the
/// server send checkpoints.
fn server_filter(filter: &EventFilter) -> SubscriptionFilter {
    let server = if !filter.event_types.is_empty() {
        let alternatives: Vec<String> = filter.event_types.iter().map(|t| escape(t)).collect();
        SubscriptionFilter::on_event_type().regex(format!("^(?:{})$", alternatives.join("|")))
    } else if !filter.stream_prefixes.is_empty() {
        filter
            .stream_prefixes
            .iter()
            .fold(SubscriptionFilter::on_stream_name(), |f, prefix| {
                f.add_prefix(prefix)
            })
    } else {
        SubscriptionFilter::on_event_type().exclude_system_events()
    };
    server.max(CHECKPOINT_WINDOW)
}

/// `text` as a regular expression that matches exactly it, in the syntax .NET and Rust share.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#-".contains(c) || c.is_whitespace() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Sorts a client error into "subscribe again later" and "stop".
fn classify(error: eventstore::Error) -> SourceError {
    use eventstore::Error as E;
    match error {
        E::AccessDenied => SourceError::Fatal(anyhow!(
            "EventStoreDB refused the credentials for the subscription to $all"
        )),
        E::UnsupportedFeature
        | E::InitializationError(_)
        | E::InternalParsingError(_)
        | E::ResourceDeleted
        | E::ResourceNotFound => SourceError::Fatal(anyhow!("EventStoreDB subscription: {error}")),
        E::Grpc {
            code:
                tonic::Code::InvalidArgument
                | tonic::Code::FailedPrecondition
                | tonic::Code::OutOfRange
                | tonic::Code::Unimplemented,
            ..
        } => SourceError::Fatal(anyhow!("EventStoreDB subscription: {error}")),
        other => SourceError::Interrupted(anyhow!("{other}")),
    }
}

fn position(at: eventstore::Position) -> Position {
    Position {
        commit: at.commit,
        prepare: at.prepare,
    }
}

/// Our event from the client's, moving what can be moved.
fn convert(mut recorded: eventstore::RecordedEvent) -> RecordedEvent {
    let content_type = match recorded.metadata.remove("content-type") {
        Some(declared) => declared,
        None if recorded.is_json => CONTENT_TYPE_JSON.to_string(),
        None => CONTENT_TYPE_BINARY.to_string(),
    };
    RecordedEvent {
        position: position(recorded.position),
        event_id: recorded.id.to_string(),
        created_unix_ms: recorded.created.timestamp_millis(),
        stream_revision: recorded.revision,
        stream_id: recorded.stream_id,
        event_type: recorded.event_type,
        content_type,
        data: Vec::from(recorded.data),
        metadata: Vec::from(recorded.custom_metadata),
    }
}

/// The server(s) a connection string names, for logs: never the credentials.
fn describe(settings: &ClientSettings) -> String {
    let hosts: Vec<String> = settings
        .hosts()
        .iter()
        .map(|h| format!("{}:{}", h.host, h.port))
        .collect();
    let scheme = if settings.is_dns_discovery_enabled() {
        "esdb+discover"
    } else {
        "esdb"
    };
    let tls = if settings.is_secure_mode_enabled() {
        ""
    } else {
        " (no TLS)"
    };
    format!("{scheme}://{}{tls}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_types_match_only_themselves() {
        assert_eq!(escape("Order.Created"), "Order\\.Created");
        assert_eq!(escape("a+b(c)"), "a\\+b\\(c\\)");
        assert_eq!(escape("Plain"), "Plain");
    }

    #[test]
    fn descriptions_leave_out_credentials() {
        let settings: ClientSettings = "esdb://admin:secret@db1:2113,db2:2114?tls=false"
            .parse()
            .unwrap();
        let described = describe(&settings);
        assert_eq!(described, "esdb://db1:2113,db2:2114 (no TLS)");
        assert!(!described.contains("secret"));
    }
}
