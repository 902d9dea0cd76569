//! The `event_store.client.streams.Streams` service: dispatches each RPC to its module.

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Context;
use super::access::{self, ALL_STREAM, Caller, Operation};
use super::batch_append;
use super::delete::{DeleteKind, DeleteRequest, delete};
use super::read::{AllRead, StreamRead};
use super::read_request::{Mode, ReadRequest, Source};
use super::sink::Sink;
use super::status;
use super::subscription::{AllSubscription, StreamSubscription};
use crate::proto::streams::streams_server::Streams;
use crate::proto::streams::{
    AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp, ReadReq,
    ReadResp, TombstoneReq, TombstoneResp, delete_req, delete_resp, tombstone_req, tombstone_resp,
};
use crate::store::{ExpectedRevision, StreamState};

/// The Streams service.
pub struct StreamsService {
    pub context: Context,
}

#[tonic::async_trait]
impl Streams for StreamsService {
    type ReadStream = ReceiverStream<Result<ReadResp, Status>>;
    type BatchAppendStream = ReceiverStream<Result<BatchAppendResp, Status>>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        let caller = Caller::of(&request)?;
        let request = ReadRequest::parse(request.into_inner())?;
        let store = self.context.store.clone();
        let stream = match &request.source {
            Source::Stream { name, .. } => name.as_str(),
            Source::All { .. } => ALL_STREAM,
        };
        // Before anything is sent, so a refusal goes out trailers-only like the real server's.
        access::check(&store, &caller, stream, Operation::Read)?;
        if let Source::Stream { name, .. } = &request.source {
            // Known before the first message, so it goes out trailers-only, as clients expect.
            if store.stream_state(name) == StreamState::Tombstoned {
                return Err(status::stream_deleted(name));
            }
        }
        let (sink, response) = Sink::new(self.context.shutdown.clone());
        let ReadRequest {
            source,
            backwards,
            mode,
            filter,
            uuid_format,
            compatibility,
        } = request;
        // The outcome is already on the wire (events, or an error status sent by the task).
        tokio::spawn(async move {
            let _ = match (source, mode) {
                (Source::Stream { name, start }, Mode::Count(count)) => {
                    let read = StreamRead {
                        stream: name,
                        start,
                        backwards,
                        count,
                        uuid_format,
                        compatibility,
                    };
                    read.run(store, sink).await
                }
                (Source::All { start }, Mode::Count(count)) => {
                    AllRead {
                        start,
                        backwards,
                        count,
                        filter,
                        uuid_format,
                    }
                    .run(store, sink)
                    .await
                }
                (Source::Stream { name, start }, Mode::Subscription) => {
                    StreamSubscription {
                        stream: name,
                        start,
                        uuid_format,
                        caller,
                    }
                    .run(store, sink)
                    .await
                }
                (Source::All { start }, Mode::Subscription) => {
                    AllSubscription {
                        start,
                        filter,
                        uuid_format,
                        caller,
                    }
                    .run(store, sink)
                    .await
                }
            };
        });
        Ok(Response::new(response))
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        let caller = Caller::of(&request)?;
        super::append::append(&self.context.store, &caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        use delete_req::options::ExpectedStreamRevision as Expected;
        let caller = Caller::of(&request)?;
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| status::required_argument("options"))?;
        let expected = options
            .expected_stream_revision
            .map(|expected| match expected {
                Expected::Revision(revision) => ExpectedRevision::Exact(revision),
                Expected::NoStream(()) => ExpectedRevision::NoStream,
                Expected::Any(()) => ExpectedRevision::Any,
                Expected::StreamExists(()) => ExpectedRevision::StreamExists,
            });
        let request = DeleteRequest {
            stream_identifier: options.stream_identifier,
            expected,
        };
        let position = delete(&self.context.store, &caller, DeleteKind::Soft, request).await?;
        let position = delete_resp::Position {
            commit_position: position,
            prepare_position: position,
        };
        Ok(Response::new(DeleteResp {
            position_option: Some(delete_resp::PositionOption::Position(position)),
        }))
    }

    async fn tombstone(
        &self,
        request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        use tombstone_req::options::ExpectedStreamRevision as Expected;
        let caller = Caller::of(&request)?;
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| status::required_argument("options"))?;
        let expected = options
            .expected_stream_revision
            .map(|expected| match expected {
                Expected::Revision(revision) => ExpectedRevision::Exact(revision),
                Expected::NoStream(()) => ExpectedRevision::NoStream,
                Expected::Any(()) => ExpectedRevision::Any,
                Expected::StreamExists(()) => ExpectedRevision::StreamExists,
            });
        let request = DeleteRequest {
            stream_identifier: options.stream_identifier,
            expected,
        };
        let position = delete(&self.context.store, &caller, DeleteKind::Tombstone, request).await?;
        let position = tombstone_resp::Position {
            commit_position: position,
            prepare_position: position,
        };
        Ok(Response::new(TombstoneResp {
            position_option: Some(tombstone_resp::PositionOption::Position(position)),
        }))
    }

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        let caller = Caller::of(&request)?;
        let (sink, response) = Sink::new(self.context.shutdown.clone());
        let store = self.context.store.clone();
        let requests = request.into_inner();
        tokio::spawn(async move {
            let _ = batch_append::run(store, caller, requests, sink).await;
        });
        Ok(Response::new(response))
    }
}
