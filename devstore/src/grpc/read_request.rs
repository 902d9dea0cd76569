//! A validated `Streams/Read` request: what to read, from where, how much, and in which form.
//!
//! Validation happens before the response starts, so every error here reaches the client as a
//! trailers-only response, which clients surface from the call itself rather than mid-stream.

use tonic::Status;

use super::convert::{UuidFormat, stream_name};
use super::filter::EventFilter;
use super::status;
use crate::proto::streams::ReadReq;
use crate::proto::streams::read_req::options::{
    AllOptions, CountOption, FilterOption, ReadDirection, StreamOption, all_options::AllOption,
    stream_options::RevisionOption,
};

/// A parsed read request.
#[derive(Debug)]
pub struct ReadRequest {
    /// A stream or `$all`.
    pub source: Source,
    /// Newest first instead of oldest first.
    pub backwards: bool,
    /// A bounded read or an endless subscription.
    pub mode: Mode,
    /// Only on `$all`.
    pub filter: Option<EventFilter>,
    /// How event ids are sent back.
    pub uuid_format: UuidFormat,
    /// `control_option.compatibility`: ≥ 1 asks for first/last stream positions on stream reads.
    pub compatibility: u32,
}

/// What is read.
#[derive(Debug)]
pub enum Source {
    /// One stream, from a revision.
    Stream { name: String, start: StartAt },
    /// The whole log, from a position.
    All { start: StartAt },
}

/// Where a read starts: a revision for streams, a commit position for `$all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The beginning.
    Beginning,
    /// The end.
    End,
    /// This revision or position (inclusive for reads, exclusive for subscriptions and
    /// backward `$all` reads).
    Exactly(u64),
}

/// How much is read.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// At most this many events, then the call ends.
    Count(u64),
    /// Catch up, then follow live appends until the client leaves.
    Subscription,
}

impl ReadRequest {
    /// Validates a request the way the real server does.
    pub fn parse(request: ReadReq) -> Result<ReadRequest, Status> {
        let options = request
            .options
            .ok_or_else(|| status::required_argument("options"))?;
        let uuid_option = options.uuid_option.as_ref().ok_or_else(|| {
            status::invalid_argument(
                "'uuidOption' is a required argument of type \
                 EventStore.Client.Streams.ReadReq+Types+Options+Types+UUIDOption",
            )
        })?;
        let uuid_format = UuidFormat::from_option(Some(uuid_option));
        let backwards = options.read_direction == ReadDirection::Backwards as i32;
        let source = match &options.stream_option {
            Some(StreamOption::Stream(stream)) => Source::Stream {
                name: stream_name(stream.stream_identifier.as_ref())?,
                start: match stream.revision_option {
                    Some(RevisionOption::Revision(revision)) => StartAt::Exactly(revision),
                    Some(RevisionOption::Start(())) => StartAt::Beginning,
                    Some(RevisionOption::End(())) => StartAt::End,
                    None => return Err(status::required_argument("revision_option")),
                },
            },
            Some(StreamOption::All(all)) => Source::All {
                start: all_start(all)?,
            },
            None => return Err(status::required_argument("stream_option")),
        };
        let mode = match options.count_option {
            Some(CountOption::Count(count)) => Mode::Count(count),
            Some(CountOption::Subscription(_)) => Mode::Subscription,
            None => return Err(status::required_argument("count_option")),
        };
        let filter = match &options.filter_option {
            Some(FilterOption::Filter(filter)) => Some(EventFilter::from_options(filter)?),
            Some(FilterOption::NoFilter(())) | None => None,
        };
        let is_stream = matches!(source, Source::Stream { .. });
        let is_subscription = matches!(mode, Mode::Subscription);
        if (is_stream && filter.is_some()) || (is_subscription && backwards) {
            return Err(status::invalid_argument(format!(
                "The combination of ({}, {}, {}, {}) is invalid.",
                if is_stream { "Stream" } else { "All" },
                if is_subscription {
                    "Subscription"
                } else {
                    "Count"
                },
                if backwards { "Backwards" } else { "Forwards" },
                if filter.is_some() {
                    "Filter"
                } else {
                    "NoFilter"
                },
            )));
        }
        let compatibility = options
            .control_option
            .map_or(0, |control| control.compatibility);
        Ok(ReadRequest {
            source,
            backwards,
            mode,
            filter,
            uuid_format,
            compatibility,
        })
    }
}

/// The start of a `$all` read. Positions are `(commit, prepare)`; devstore gives every event
/// `commit == prepare`, so the commit part addresses it. `u64::MAX` twice is the clients' "end".
fn all_start(all: &AllOptions) -> Result<StartAt, Status> {
    match &all.all_option {
        Some(AllOption::Start(())) => Ok(StartAt::Beginning),
        Some(AllOption::End(())) => Ok(StartAt::End),
        Some(AllOption::Position(position)) => {
            if position.commit_position == u64::MAX && position.prepare_position == u64::MAX {
                Ok(StartAt::End)
            } else if position.prepare_position > position.commit_position {
                Err(status::invalid_position())
            } else {
                Ok(StartAt::Exactly(position.commit_position))
            }
        }
        None => Err(status::required_argument("all_option")),
    }
}
