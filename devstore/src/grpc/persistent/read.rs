//! `PersistentSubscriptions/Read`: one consumer's call. The first request names the group;
//! the group then sends events down the call while this side passes the client's acks and
//! nacks up to it, and tells it when the call ends.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::consumers::Consumer;
use super::group::{Command, Handle};
use super::registry::Groups;
use super::settings::{Source, group_name};
use crate::grpc::access::{self, Caller, Operation};
use crate::grpc::convert::{UuidFormat, decode_uuid, stream_name};
use crate::limits::MAX_PERSISTENT_BUFFER;
use crate::proto::persistent_subscriptions::read_req::{self, nack::Action, options};
use crate::proto::persistent_subscriptions::{ReadReq, ReadResp};
use crate::proto::streams::read_req::options::{UuidOption, uuid_option};

/// How long a new call may take to send its options.
const OPTIONS_TIMEOUT: Duration = Duration::from_secs(10);

/// The response stream of a `Read` call.
pub type Events = ReceiverStream<Result<ReadResp, Status>>;

/// Joins the group the first request names and starts passing acks and nacks to it.
pub async fn read(
    groups: &Groups,
    request: Request<Streaming<ReadReq>>,
) -> Result<Response<Events>, Status> {
    let caller = Caller::of(&request)?;
    let from = request
        .remote_addr()
        .map(|address| address.to_string())
        .unwrap_or_default();
    let username = match &caller {
        Caller::User(user) => user.name.clone(),
        Caller::Unchecked => "anonymous".to_owned(),
    };
    let connection_name = request
        .metadata()
        .get("connection-name")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("<unknown>")
        .to_owned();
    let mut requests = request.into_inner();
    let first = tokio::time::timeout(OPTIONS_TIMEOUT, requests.message())
        .await
        .map_err(|_| Status::deadline_exceeded("No subscription options were sent"))??;
    let Some(read_req::Content::Options(options)) = first.and_then(|first| first.content) else {
        return Err(Status::invalid_argument(
            "The first request of a persistent subscription must carry its options",
        ));
    };
    let source = match &options.stream_option {
        Some(options::StreamOption::StreamIdentifier(identifier)) => {
            Source::Stream(stream_name(Some(identifier))?)
        }
        Some(options::StreamOption::All(())) => Source::All,
        None => return Err(Status::unknown("Exception was thrown by handler.")),
    };
    let group = group_name(&options.group_name)?;
    // As the real server: a consumer needs read access to the group's stream (or `$all`).
    access::check(groups.store(), &caller, source.name(), Operation::Read)?;
    // The real server uses the buffer size as its channel's capacity, so 0 or less throws.
    let slots = u32::try_from(options.buffer_size)
        .ok()
        .filter(|&slots| slots > 0)
        .ok_or_else(|| Status::unknown("Exception was thrown by handler."))?
        .min(MAX_PERSISTENT_BUFFER);
    let handle = groups.get(&source, &group).await?;
    // Room for every message the consumer may hold, twice over (a timed-out message may still
    // sit in the channel when its retry goes out), plus the confirmation and the final status
    // (the group never fills the last place, see `Consumer::has_room`).
    let (deliver, events) = mpsc::channel(slots as usize * 2 + 2);
    let id = groups.next_consumer();
    let uuid_format = uuid_format(options.uuid_option.as_ref());
    let consumer = Consumer {
        id,
        slots,
        in_flight: 0,
        delivered: 0,
        from,
        username,
        connection_name,
        uuid_format,
        deliver: deliver.clone(),
    };
    let (reply, joined) = oneshot::channel();
    if !handle.send(Command::Join { consumer, reply }).await {
        return Err(super::errors::not_found(&source, &group));
    }
    joined
        .await
        .map_err(|_| super::errors::not_found(&source, &group))??;
    tokio::spawn(pass_acks(requests, handle, id, slots as usize, deliver));
    Ok(Response::new(ReceiverStream::new(events)))
}

/// Passes acks and nacks to the group until the call ends or the group does, then tells it
/// the consumer left. A consumer holds at most `slots` messages, so an ack or nack naming more
/// ids than that is cut to `slots`. Server shutdown is left to the group, which ends the call
/// with its status.
async fn pass_acks(
    mut requests: Streaming<ReadReq>,
    group: Handle,
    id: u64,
    slots: usize,
    deliver: mpsc::Sender<Result<ReadResp, Status>>,
) {
    let ids = |ids: Vec<crate::proto::shared::Uuid>| -> Vec<uuid::Uuid> {
        ids.iter()
            .take(slots)
            .filter_map(|id| decode_uuid(Some(id), "id").ok())
            .collect()
    };
    loop {
        let request = tokio::select! {
            request = requests.message() => request,
            _ = deliver.closed() => break,
            _ = group.ended() => return,
        };
        let command = match request {
            Ok(Some(ReadReq {
                content: Some(read_req::Content::Ack(ack)),
            })) => Command::Ack(ids(ack.ids)),
            Ok(Some(ReadReq {
                content: Some(read_req::Content::Nack(nack)),
            })) => Command::Nack {
                ids: ids(nack.ids),
                action: Action::try_from(nack.action).unwrap_or(Action::Unknown),
                reason: nack.reason,
            },
            // Options again, or an empty request: nothing to do, as on the real server.
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => break,
        };
        if !group.send(command).await {
            return;
        }
    }
    group.send(Command::Leave(id)).await;
}

/// How the consumer wants event ids (the persistent protocol has its own copy of the option).
fn uuid_format(option: Option<&options::UuidOption>) -> UuidFormat {
    let content = option
        .and_then(|option| option.content.as_ref())
        .map(|content| match content {
            options::uuid_option::Content::String(()) => uuid_option::Content::String(()),
            options::uuid_option::Content::Structured(()) => uuid_option::Content::Structured(()),
        });
    UuidFormat::from_option(Some(&UuidOption { content }))
}
