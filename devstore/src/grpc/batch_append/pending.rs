//! The appends of one `BatchAppend` call whose final chunk has not arrived yet.
//!
//! How many appends a client leaves open, and how much it puts in them, is the client's choice,
//! so both are capped per call ([`MAX_PENDING_APPENDS`], [`MAX_PENDING_APPEND_BYTES`]). Past a
//! cap the offending append is refused with `ResourceExhausted` and dropped; the call and the
//! client's other appends go on.

use std::collections::HashMap;

use uuid::Uuid;

use super::response::{bad_request, rpc_status};
use crate::grpc::append::{event_size, proposed_event};
use crate::grpc::convert::stream_name;
use crate::limits::{MAX_APPEND_SIZE, MAX_PENDING_APPEND_BYTES, MAX_PENDING_APPENDS};
use crate::proto::google::rpc;
use crate::proto::shared;
use crate::proto::streams::BatchAppendReq;
use crate::proto::streams::batch_append_req::options::ExpectedStreamPosition as RequestExpected;
use crate::proto::streams::batch_append_req::{Options, ProposedMessage};
use crate::store::{ExpectedRevision, ProposedEvent};

/// One append whose chunks are still arriving, or that just became complete.
pub struct PendingAppend {
    pub stream: String,
    pub expected: ExpectedRevision,
    pub events: Vec<ProposedEvent>,
    /// What counts against [`MAX_APPEND_SIZE`]: the stream name plus each event's size.
    size: usize,
    /// What it holds in memory, roughly: `size` plus each event's own bookkeeping, so that a
    /// flood of empty events costs what it really costs.
    held: usize,
}

/// The unfinished appends of one call.
#[derive(Default)]
pub struct PendingAppends {
    appends: HashMap<Uuid, PendingAppend>,
    /// The sum of `held` over `appends`.
    held: usize,
}

impl PendingAppends {
    /// Adds one chunk of the append `key`; returns the append once its final chunk arrived.
    /// An append that fails is dropped, so the client may reuse its correlation id.
    pub fn add(
        &mut self,
        key: Uuid,
        request: BatchAppendReq,
    ) -> Result<Option<PendingAppend>, rpc::Status> {
        let mut append = match self.appends.remove(&key) {
            Some(append) => {
                self.held -= append.held;
                append
            }
            None if !request.is_final && self.appends.len() >= MAX_PENDING_APPENDS => {
                return Err(too_many_pending());
            }
            None => PendingAppend::start(request.options.as_ref())?,
        };
        append.extend(request.proposed_messages)?;
        if request.is_final {
            return Ok(Some(append));
        }
        if self.held + append.held > MAX_PENDING_APPEND_BYTES {
            return Err(too_much_pending());
        }
        self.held += append.held;
        self.appends.insert(key, append);
        Ok(None)
    }
}

impl PendingAppend {
    /// An empty append from the options of its first chunk.
    fn start(options: Option<&Options>) -> Result<PendingAppend, rpc::Status> {
        let Some(identifier) = options.and_then(|options| options.stream_identifier.as_ref())
        else {
            return Err(bad_request("Required field StreamIdentifier not set."));
        };
        let stream = stream_name(Some(identifier)).map_err(|error| bad_request(error.message()))?;
        let expected = match options.and_then(|options| options.expected_stream_position) {
            Some(RequestExpected::StreamPosition(revision)) => ExpectedRevision::Exact(revision),
            Some(RequestExpected::NoStream(())) => ExpectedRevision::NoStream,
            Some(RequestExpected::Any(())) => ExpectedRevision::Any,
            Some(RequestExpected::StreamExists(())) => ExpectedRevision::StreamExists,
            None => {
                return Err(bad_request(
                    "Required field ExpectedStreamPosition not set.",
                ));
            }
        };
        let size = stream.len();
        Ok(PendingAppend {
            stream,
            expected,
            events: Vec::new(),
            size,
            held: size,
        })
    }

    /// Adds the events of one chunk, keeping the append within [`MAX_APPEND_SIZE`].
    fn extend(&mut self, messages: Vec<ProposedMessage>) -> Result<(), rpc::Status> {
        for message in messages {
            let event = proposed_event(
                message.id.as_ref(),
                &message.metadata,
                message.custom_metadata,
                message.data,
            )
            .map_err(|error| bad_request(error.message()))?;
            self.size += event_size(&event);
            self.held += event_size(&event) + std::mem::size_of::<ProposedEvent>();
            self.events.push(event);
        }
        if self.size > MAX_APPEND_SIZE {
            let details = shared::MaximumAppendSizeExceeded {
                max_append_size: MAX_APPEND_SIZE as u32,
            };
            return Err(rpc_status(
                tonic::Code::InvalidArgument,
                "MaximumAppendSizeExceeded",
                "MaximumAppendSizeExceeded",
                &details,
            ));
        }
        Ok(())
    }
}

fn too_many_pending() -> rpc::Status {
    rpc::Status {
        code: tonic::Code::ResourceExhausted as i32,
        message: format!(
            "This BatchAppend call already has {MAX_PENDING_APPENDS} unfinished appends, \
             devstore's limit; send the final chunk (is_final) of an append before starting \
             another"
        ),
        details: None,
    }
}

fn too_much_pending() -> rpc::Status {
    rpc::Status {
        code: tonic::Code::ResourceExhausted as i32,
        message: format!(
            "This BatchAppend call's unfinished appends would hold more than \
             {MAX_PENDING_APPEND_BYTES} bytes, devstore's limit; send the final chunk \
             (is_final) of the open appends first"
        ),
        details: None,
    }
}
