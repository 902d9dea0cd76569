//! `Streams/Read` in count mode: a bounded read of a stream or of `$all`, in either direction.
//!
//! Events are copied out of the store a page at a time, so the index lock is never held while
//! waiting on a client; `$all` reads consider a page's headers under a [`ScanBudget`], so a
//! filter that matches nothing does not hold the worker thread to the end of the log, and load
//! only the events that pass.

use std::sync::Arc;

use super::convert::{UuidFormat, event_response, stream_identifier};
use super::filter::{EventFilter, passes};
use super::read_request::StartAt;
use super::scan_budget::ScanBudget;
use super::sink::{Sink, Stop};
use super::status;
use crate::proto::streams::ReadResp;
use crate::proto::streams::read_resp::{Content, StreamNotFound};
use crate::store::{Direction, RecordedEvent, Store, StreamPage, StreamState};

/// Events copied out of the store per call.
pub const PAGE: usize = 512;

/// A bounded stream read.
pub struct StreamRead {
    pub stream: String,
    pub start: StartAt,
    pub backwards: bool,
    pub count: u64,
    pub uuid_format: UuidFormat,
    pub compatibility: u32,
}

/// A bounded `$all` read.
pub struct AllRead {
    pub start: StartAt,
    pub backwards: bool,
    pub count: u64,
    pub filter: Option<EventFilter>,
    pub uuid_format: UuidFormat,
}

impl StreamRead {
    /// Sends the events, then (compatibility ≥ 1) the stream's last revision. A stream that
    /// does not exist or is soft-deleted gets one `stream_not_found` and a normal end.
    pub async fn run(self, store: Store, mut sink: Sink<ReadResp>) -> Result<(), Stop> {
        let state = store.stream_state(&self.stream);
        let last = match state {
            StreamState::Live { last } => last,
            StreamState::Missing | StreamState::SoftDeleted { .. } | StreamState::Tombstoned => {
                let not_found = StreamNotFound {
                    stream_identifier: Some(stream_identifier(&self.stream)),
                };
                return send(&mut sink, Content::StreamNotFound(not_found)).await;
            }
        };
        let mut remaining = self.count;
        let mut next = match (self.start, self.backwards) {
            (StartAt::Beginning, _) => 0,
            (StartAt::Exactly(revision), _) => revision,
            (StartAt::End, false) => last.saturating_add(1),
            (StartAt::End, true) => last,
        };
        let mut first_visible = 0;
        while remaining > 0 {
            let limit = usize::try_from(remaining).unwrap_or(usize::MAX).min(PAGE);
            let direction = if self.backwards {
                Direction::Backwards
            } else {
                Direction::Forwards
            };
            let page = stream_page(&store, &sink, &self.stream, next, direction, limit).await?;
            let Some(page) = page else { break };
            first_visible = page.first_visible;
            let page = page.events;
            let Some(newest) = page.last() else { break };
            let done = self.backwards && newest.revision == 0;
            next = if self.backwards {
                newest.revision.saturating_sub(1)
            } else {
                newest.revision + 1
            };
            remaining -= page.len() as u64;
            send_events(&mut sink, &page, self.uuid_format).await?;
            if done {
                break;
            }
        }
        if self.compatibility >= 1 {
            if remaining == self.count && !self.backwards && next < first_visible {
                send(&mut sink, Content::FirstStreamPosition(first_visible)).await?;
            }
            let last = store.last_revision(&self.stream).unwrap_or(last);
            send(&mut sink, Content::LastStreamPosition(last)).await?;
        }
        Ok(())
    }
}

impl AllRead {
    /// Sends up to `count` events (matching ones, when filtered) of `$all`.
    pub async fn run(self, store: Store, mut sink: Sink<ReadResp>) -> Result<(), Stop> {
        let mut remaining = self.count;
        let mut budget = ScanBudget::default();
        // Forwards reads are inclusive of the start position, backwards reads exclusive.
        let mut next = match (self.start, self.backwards) {
            (StartAt::Beginning, false) => 1,
            (StartAt::Beginning, true) => 1,
            (StartAt::Exactly(position), _) => position,
            (StartAt::End, false) => store.head() + 1,
            (StartAt::End, true) => u64::MAX,
        };
        while remaining > 0 {
            let direction = if self.backwards {
                Direction::Backwards
            } else {
                Direction::Forwards
            };
            let headers = store.all_headers(next, direction, PAGE);
            let Some(last) = headers.last() else { break };
            next = if self.backwards {
                last.position
            } else {
                last.position + 1
            };
            let mut wanted = Vec::new();
            for header in &headers {
                if wanted.len() as u64 == remaining {
                    break;
                }
                budget.spend_one().await;
                match passes(self.filter.as_ref(), header) {
                    Ok(true) => wanted.push(header.position),
                    Ok(false) => {}
                    Err(error) => return Err(sink.fail(error).await),
                }
            }
            let page = events(&store, &sink, &wanted).await?;
            remaining -= page.len() as u64;
            send_events(&mut sink, &page, self.uuid_format).await?;
        }
        Ok(())
    }
}

/// [`Store::events`], ending the call with the storage failure when the store cannot read.
pub async fn events(
    store: &Store,
    sink: &Sink<ReadResp>,
    positions: &[u64],
) -> Result<Vec<Arc<RecordedEvent>>, Stop> {
    match store.events(positions).await {
        Ok(events) => Ok(events),
        Err(error) => Err(sink.fail(status::storage_failure(&error)).await),
    }
}

/// [`Store::stream_page`], ending the call with the storage failure when the store cannot
/// read.
pub async fn stream_page(
    store: &Store,
    sink: &Sink<ReadResp>,
    stream: &str,
    from: u64,
    direction: Direction,
    limit: usize,
) -> Result<Option<StreamPage>, Stop> {
    match store.stream_page(stream, from, direction, limit).await {
        Ok(page) => Ok(page),
        Err(error) => Err(sink.fail(status::storage_failure(&error)).await),
    }
}

/// Sends each event as a `ReadResp`.
pub async fn send_events(
    sink: &mut Sink<ReadResp>,
    events: &[Arc<RecordedEvent>],
    uuid_format: UuidFormat,
) -> Result<(), Stop> {
    for event in events {
        send(sink, event_response(event, uuid_format)).await?;
    }
    Ok(())
}

/// Sends one response.
pub async fn send(sink: &mut Sink<ReadResp>, content: Content) -> Result<(), Stop> {
    sink.send(ReadResp {
        content: Some(content),
    })
    .await
}
