//! What a persistent subscription group is: its source (a stream or `$all`, where it starts,
//! its filter) and its settings, read from `Create`/`Update` requests and kept as JSON in the
//! log so that a durable devstore brings its groups back after a restart.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::Status;

use super::errors;
use crate::grpc::status;
use crate::proto::persistent_subscriptions::create_req::{self, all_options, stream_options};
use crate::proto::persistent_subscriptions::{create_req::all_options::filter_options, update_req};
use crate::proto::streams::read_req::options::FilterOptions;
use crate::proto::streams::read_req::options::filter_options as stream_filter;

/// `created` ticks (100 ns) in a millisecond: the unit of the `*_ticks` settings.
const TICKS_PER_MILLISECOND: i64 = 10_000;

/// Where a group reads from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Source {
    /// One stream, by revision.
    Stream(String),
    /// The whole log, by position.
    All,
}

impl Source {
    /// The name clients and the real server use for it (`$all` for the log).
    pub fn name(&self) -> &str {
        match self {
            Source::Stream(stream) => stream,
            Source::All => "$all",
        }
    }
}

/// Where a new group starts: a revision (stream) or position (`$all`), inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// The first event.
    Beginning,
    /// Only events written after the group starts.
    End,
    /// This revision or position and everything after it.
    At(u64),
}

/// The `$all` filter of a group: the request's filter as the client sent it, so it can be
/// compiled again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Matched against the event type (else the stream name).
    pub on_event_type: bool,
    /// A regular expression, searched unanchored.
    pub regex: String,
    /// Prefixes, any of which matches (used when `regex` is empty).
    pub prefixes: Vec<String>,
}

impl Filter {
    /// The same filter in the form `$all` reads take, for compiling it with their code.
    pub fn as_read_filter(&self) -> FilterOptions {
        let expression = stream_filter::Expression {
            regex: self.regex.clone(),
            prefix: self.prefixes.clone(),
        };
        FilterOptions {
            filter: Some(if self.on_event_type {
                stream_filter::Filter::EventType(expression)
            } else {
                stream_filter::Filter::StreamIdentifier(expression)
            }),
            window: Some(stream_filter::Window::Count(())),
            checkpoint_interval_multiplier: 1,
        }
    }
}

/// How a group hands messages to its consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Each message to the next consumer in turn that has a free slot.
    RoundRobin,
    /// Every message to the first consumer with a free slot (the others take over when it is
    /// full or gone).
    DispatchToSingle,
    /// Messages of one stream to one consumer, as long as it stays connected.
    Pinned,
}

impl Strategy {
    /// The strategy's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "RoundRobin",
            Strategy::DispatchToSingle => "DispatchToSingle",
            Strategy::Pinned => "Pinned",
        }
    }

    /// A strategy by name, or None (`PinnedByCorrelation` is not served).
    fn parse(name: &str) -> Option<Strategy> {
        match name {
            "RoundRobin" => Some(Strategy::RoundRobin),
            "DispatchToSingle" => Some(Strategy::DispatchToSingle),
            "Pinned" => Some(Strategy::Pinned),
            _ => None,
        }
    }

    /// The deprecated enum field (0 dispatch to single, 1 round robin, 2 pinned), by name.
    fn number_name(number: i32) -> String {
        match number {
            0 => "DispatchToSingle".to_owned(),
            1 => "RoundRobin".to_owned(),
            2 => "Pinned".to_owned(),
            other => other.to_string(),
        }
    }

    /// The strategy named, or the real server's refusal.
    fn named(name: &str, source: &Source, group: &str) -> Result<Strategy, Status> {
        Strategy::parse(name).ok_or_else(|| {
            errors::failed(
                source,
                group,
                &format!("Consumer strategy {name} does not exist."),
            )
        })
    }
}

/// A group's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Where a new group starts.
    pub start: Start,
    /// For a group starting at the end: the revision or position the end was when the group
    /// was created (or its start last changed), so a restart before the first checkpoint
    /// does not skip what was written meanwhile. The real server works the end out again at
    /// every start; this only saves events from being skipped.
    #[serde(default)]
    pub resolved_end: Option<u64>,
    /// The `$all` filter, if any.
    pub filter: Option<Filter>,
    /// Deliver the events links point to (devstore has no links of its own to resolve; parked
    /// messages are always delivered resolved).
    pub resolve_links: bool,
    /// Kept and reported only.
    pub extra_statistics: bool,
    /// How long a consumer has to ack a message before it is retried.
    pub message_timeout_ms: u64,
    /// Retries after which a message is parked.
    pub max_retry_count: u32,
    /// The least time between two checkpoints.
    pub checkpoint_after_ms: u64,
    /// Acks needed before a timed checkpoint is written.
    pub min_checkpoint_count: u32,
    /// Acks after which a checkpoint is written at once.
    pub max_checkpoint_count: u32,
    /// Consumers allowed at once (0: any number).
    pub max_subscriber_count: u32,
    /// Kept and reported (devstore reads the log directly, so its live buffer is the log).
    pub live_buffer_size: u32,
    /// Events read from the log per page.
    pub read_batch_size: u32,
    /// Kept and reported.
    pub history_buffer_size: u32,
    /// How messages are shared out.
    pub strategy: Strategy,
}

/// The settings fields common to `Create` and `Update`, in one shape.
struct Wire {
    resolve_links: bool,
    extra_statistics: bool,
    message_timeout_ms: i64,
    max_retry_count: i32,
    checkpoint_after_ms: i64,
    min_checkpoint_count: i32,
    max_checkpoint_count: i32,
    max_subscriber_count: i32,
    live_buffer_size: i32,
    read_batch_size: i32,
    history_buffer_size: i32,
    strategy: Strategy,
}

/// The [`Wire`] of a `Create` or `Update` request's settings (two generated types of the same
/// shape). The server has no defaults of its own: an unset timeout is 0.
macro_rules! wire {
    ($settings:expr, $request:ident, $strategy:expr) => {{
        use $request::settings::{CheckpointAfter, MessageTimeout};
        let settings = $settings;
        Wire {
            resolve_links: settings.resolve_links,
            extra_statistics: settings.extra_statistics,
            message_timeout_ms: match settings.message_timeout {
                Some(MessageTimeout::MessageTimeoutMs(ms)) => i64::from(ms),
                Some(MessageTimeout::MessageTimeoutTicks(ticks)) => ticks / TICKS_PER_MILLISECOND,
                None => 0,
            },
            max_retry_count: settings.max_retry_count,
            checkpoint_after_ms: match settings.checkpoint_after {
                Some(CheckpointAfter::CheckpointAfterMs(ms)) => i64::from(ms),
                Some(CheckpointAfter::CheckpointAfterTicks(ticks)) => ticks / TICKS_PER_MILLISECOND,
                None => 0,
            },
            min_checkpoint_count: settings.min_checkpoint_count,
            max_checkpoint_count: settings.max_checkpoint_count,
            max_subscriber_count: settings.max_subscriber_count,
            live_buffer_size: settings.live_buffer_size,
            read_batch_size: settings.read_batch_size,
            history_buffer_size: settings.history_buffer_size,
            strategy: $strategy,
        }
    }};
}

/// The group a `Create` request describes: its source, name and settings.
pub fn from_create(options: &create_req::Options) -> Result<(Source, String, Settings), Status> {
    let settings = options
        .settings
        .as_ref()
        .ok_or_else(|| status::required_argument("settings"))?;
    #[allow(deprecated)]
    let (source, start, filter) = match &options.stream_option {
        Some(create_req::options::StreamOption::Stream(stream)) => {
            let name = crate::grpc::convert::stream_name(stream.stream_identifier.as_ref())?;
            let start = match stream.revision_option {
                Some(stream_options::RevisionOption::Revision(revision)) => Start::At(revision),
                Some(stream_options::RevisionOption::Start(())) => Start::Beginning,
                Some(stream_options::RevisionOption::End(())) | None => Start::End,
            };
            (Source::Stream(name), start, None)
        }
        Some(create_req::options::StreamOption::All(all)) => {
            let start = match &all.all_option {
                Some(all_options::AllOption::Position(position)) => {
                    Start::At(position.commit_position)
                }
                Some(all_options::AllOption::Start(())) => Start::Beginning,
                Some(all_options::AllOption::End(())) | None => Start::End,
            };
            let filter = match &all.filter_option {
                Some(all_options::FilterOption::Filter(filter)) => Some(filter_of(filter)?),
                Some(all_options::FilterOption::NoFilter(())) | None => None,
            };
            (Source::All, start, filter)
        }
        // Clients before 21.10 sent only the deprecated identifier and `settings.revision`.
        None => {
            let name = crate::grpc::convert::stream_name(options.stream_identifier.as_ref())?;
            (Source::Stream(name), Start::At(settings.revision), None)
        }
    };
    let group = group_name(&options.group_name)?;
    check_source(&source, &group)?;
    // A strategy name wins over the deprecated number.
    #[allow(deprecated)]
    let strategy = if settings.consumer_strategy.is_empty() {
        Strategy::named(
            &Strategy::number_name(settings.named_consumer_strategy),
            &source,
            &group,
        )?
    } else {
        Strategy::named(&settings.consumer_strategy, &source, &group)?
    };
    let wire = wire!(settings, create_req, strategy);
    let settings = validate(wire, start, filter, &source, &group)?;
    Ok((source, group, settings))
}

/// The group an `Update` request names.
pub fn update_target(options: &update_req::Options) -> Result<(Source, String), Status> {
    let group = group_name(&options.group_name)?;
    #[allow(deprecated)]
    let source = match &options.stream_option {
        Some(update_req::options::StreamOption::Stream(stream)) => Source::Stream(
            crate::grpc::convert::stream_name(stream.stream_identifier.as_ref())?,
        ),
        Some(update_req::options::StreamOption::All(_)) => Source::All,
        None => Source::Stream(crate::grpc::convert::stream_name(
            options.stream_identifier.as_ref(),
        )?),
    };
    check_source(&source, &group)?;
    Ok((source, group))
}

/// The new settings an `Update` request gives the group `current` belongs to: the start may
/// move, the filter stays.
pub fn from_update(
    options: &update_req::Options,
    source: &Source,
    group: &str,
    existing: Settings,
) -> Result<Settings, Status> {
    let settings = options
        .settings
        .as_ref()
        .ok_or_else(|| status::required_argument("settings"))?;
    #[allow(deprecated)]
    let start = match &options.stream_option {
        Some(update_req::options::StreamOption::Stream(stream)) => match stream.revision_option {
            Some(update_req::stream_options::RevisionOption::Revision(revision)) => {
                Some(Start::At(revision))
            }
            Some(update_req::stream_options::RevisionOption::Start(())) => Some(Start::Beginning),
            Some(update_req::stream_options::RevisionOption::End(())) => Some(Start::End),
            None => None,
        },
        Some(update_req::options::StreamOption::All(all)) => match &all.all_option {
            Some(update_req::all_options::AllOption::Position(position)) => {
                Some(Start::At(position.commit_position))
            }
            Some(update_req::all_options::AllOption::Start(())) => Some(Start::Beginning),
            Some(update_req::all_options::AllOption::End(())) => Some(Start::End),
            None => None,
        },
        None => Some(Start::At(settings.revision)),
    };
    // Update has only the deprecated number (the real server ignores any name).
    #[allow(deprecated)]
    let strategy = Strategy::named(
        &Strategy::number_name(settings.named_consumer_strategy),
        source,
        group,
    )?;
    let wire = wire!(settings, update_req, strategy);
    let start = start.unwrap_or(existing.start);
    validate(wire, start, existing.filter, source, group)
}

/// The real server's checks of a stream source: a name, and not `$all` (which has its own
/// option).
fn check_source(source: &Source, group: &str) -> Result<(), Status> {
    match source {
        Source::Stream(stream) if stream.is_empty() => {
            Err(errors::failed(source, group, "Bad stream name."))
        }
        Source::Stream(stream) if stream == "$all" => Err(errors::failed(
            source,
            group,
            "Persistent subscriptions to $all are only supported over gRPC through gRPC clients",
        )),
        _ => Ok(()),
    }
}

/// A group name: required.
pub fn group_name(name: &str) -> Result<String, Status> {
    if name.is_empty() {
        return Err(status::required_argument("group_name"));
    }
    Ok(name.to_owned())
}

/// A filter as the create request gives it.
fn filter_of(options: &all_options::FilterOptions) -> Result<Filter, Status> {
    let (on_event_type, expression) = match &options.filter {
        Some(filter_options::Filter::StreamIdentifier(expression)) => (false, expression),
        Some(filter_options::Filter::EventType(expression)) => (true, expression),
        None => return Err(status::required_argument("filter")),
    };
    let filter = Filter {
        on_event_type,
        regex: expression.regex.clone(),
        prefixes: expression.prefix.clone(),
    };
    // Compile it now, so a bad regex is refused at creation rather than when consumers come.
    crate::grpc::filter::EventFilter::from_options(&filter.as_read_filter())?;
    Ok(filter)
}

/// Checks the numbers. The real server takes what the client sends with no defaults (the
/// clients send theirs), refuses a read batch not smaller than the history buffer, and has no
/// range checks; devstore also refuses negative numbers, which make the real server misbehave.
fn validate(
    wire: Wire,
    start: Start,
    filter: Option<Filter>,
    source: &Source,
    group: &str,
) -> Result<Settings, Status> {
    let non_negative = |value: i64, name: &str| -> Result<u64, Status> {
        u64::try_from(value)
            .map_err(|_| status::invalid_argument(format!("{name} must not be negative")))
    };
    let count = |value: i32, name: &str| -> Result<u32, Status> {
        u32::try_from(value)
            .map_err(|_| status::invalid_argument(format!("{name} must not be negative")))
    };
    let settings = Settings {
        start,
        resolved_end: None,
        filter,
        resolve_links: wire.resolve_links,
        extra_statistics: wire.extra_statistics,
        message_timeout_ms: non_negative(wire.message_timeout_ms, "MessageTimeout")?,
        max_retry_count: count(wire.max_retry_count, "MaxRetryCount")?,
        checkpoint_after_ms: non_negative(wire.checkpoint_after_ms, "CheckPointAfter")?,
        min_checkpoint_count: count(wire.min_checkpoint_count, "MinCheckPointCount")?,
        max_checkpoint_count: count(wire.max_checkpoint_count, "MaxCheckPointCount")?,
        max_subscriber_count: count(wire.max_subscriber_count, "MaxSubscriberCount")?,
        live_buffer_size: count(wire.live_buffer_size, "LiveBufferSize")?,
        read_batch_size: count(wire.read_batch_size, "ReadBatchSize")?,
        history_buffer_size: count(wire.history_buffer_size, "HistoryBufferSize")?,
        strategy: wire.strategy,
    };
    if settings.read_batch_size >= settings.history_buffer_size {
        return Err(errors::failed(
            source,
            group,
            "Specified argument was out of the range of valid values. (Parameter \
             'ReadBatchSize may not be greater than or equal to BufferSize')",
        ));
    }
    Ok(settings)
}

impl Settings {
    /// How long a consumer has to ack (0: until the next timer tick).
    pub fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms)
    }

    /// The least time between timed checkpoints; None (0 ms) checkpoints by count only.
    pub fn checkpoint_after(&self) -> Option<Duration> {
        (self.checkpoint_after_ms > 0).then(|| Duration::from_millis(self.checkpoint_after_ms))
    }
}
