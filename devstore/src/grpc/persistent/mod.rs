//! `PersistentSubscriptions`: server-side consumer groups, as the official clients use them.
//!
//! - [`settings`]: a group's source and settings, from `Create`/`Update`.
//! - [`registry`]: the groups, persisted in `$persistentSubscriptionConfig`.
//! - [`group`]: one group's task: reads, dispatches, acks, retries, parks, checkpoints.
//! - [`consumers`]: the consumers of a group and the consumer strategies.
//! - [`read`]: one consumer's `Read` call.
//! - [`records`]: the checkpoint, parked and config streams, as the real server names them.
//! - [`info`]: events and statistics in the protocol's shapes.
//! - [`errors`]: the real server's statuses.

mod consumers;
mod errors;
mod group;
mod info;
mod read;
mod records;
mod registry;
mod settings;

use tokio::sync::oneshot;
use tonic::{Request, Response, Status, Streaming};

use crate::grpc::convert::stream_name;
use crate::proto::persistent_subscriptions::persistent_subscriptions_server::PersistentSubscriptions;
use crate::proto::persistent_subscriptions::{
    CreateReq, CreateResp, DeleteReq, DeleteResp, GetInfoReq, GetInfoResp, ListReq, ListResp,
    ReadReq, ReplayParkedReq, ReplayParkedResp, UpdateReq, UpdateResp, delete_req, get_info_req,
    list_req, replay_parked_req,
};
use group::Command;
use settings::Source;

pub use registry::Groups;

/// The service.
pub struct PersistentService {
    /// The groups.
    pub groups: Groups,
}

#[tonic::async_trait]
impl PersistentSubscriptions for PersistentService {
    async fn create(&self, request: Request<CreateReq>) -> Result<Response<CreateResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| crate::grpc::status::required_argument("options"))?;
        let (source, group, settings) = settings::from_create(&options)?;
        self.groups.create(source, group, settings).await?;
        Ok(Response::new(CreateResp {}))
    }

    async fn update(&self, request: Request<UpdateReq>) -> Result<Response<UpdateResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| crate::grpc::status::required_argument("options"))?;
        let (source, group) = settings::update_target(&options)?;
        let current = self.groups.settings(&source, &group).await?;
        let settings = settings::from_update(&options, &source, &group, current)?;
        self.groups.update(source, group, settings).await?;
        Ok(Response::new(UpdateResp {}))
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| crate::grpc::status::required_argument("options"))?;
        let source = match &options.stream_option {
            Some(delete_req::options::StreamOption::StreamIdentifier(identifier)) => {
                Source::Stream(stream_name(Some(identifier))?)
            }
            Some(delete_req::options::StreamOption::All(())) => Source::All,
            None => return Err(Status::unknown("Exception was thrown by handler.")),
        };
        self.groups.delete(source, options.group_name).await?;
        Ok(Response::new(DeleteResp {}))
    }

    type ReadStream = read::Events;

    async fn read(
        &self,
        request: Request<Streaming<ReadReq>>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        read::read(&self.groups, request).await
    }

    async fn get_info(
        &self,
        request: Request<GetInfoReq>,
    ) -> Result<Response<GetInfoResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| crate::grpc::status::required_argument("options"))?;
        let source = match &options.stream_option {
            Some(get_info_req::options::StreamOption::StreamIdentifier(identifier)) => {
                Source::Stream(stream_name(Some(identifier))?)
            }
            Some(get_info_req::options::StreamOption::All(())) => Source::All,
            None => return Err(Status::unknown("Exception was thrown by handler.")),
        };
        let handle = self.groups.get(&source, &options.group_name).await?;
        let info = info_of(&handle)
            .await
            .ok_or_else(|| errors::not_found(&source, &options.group_name))?;
        Ok(Response::new(GetInfoResp {
            subscription_info: Some(info),
        }))
    }

    async fn replay_parked(
        &self,
        request: Request<ReplayParkedReq>,
    ) -> Result<Response<ReplayParkedResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| crate::grpc::status::required_argument("options"))?;
        let source = match &options.stream_option {
            Some(replay_parked_req::options::StreamOption::StreamIdentifier(identifier)) => {
                Source::Stream(stream_name(Some(identifier))?)
            }
            Some(replay_parked_req::options::StreamOption::All(())) => Source::All,
            None => return Err(Status::unknown("Exception was thrown by handler.")),
        };
        let stop_at = match options.stop_at_option {
            Some(replay_parked_req::options::StopAtOption::StopAt(stop_at)) => Some(stop_at),
            Some(replay_parked_req::options::StopAtOption::NoLimit(())) | None => None,
        };
        let handle = self.groups.get(&source, &options.group_name).await?;
        let (reply, replied) = oneshot::channel();
        if !handle.send(Command::ReplayParked { stop_at, reply }).await {
            return Err(errors::not_found(&source, &options.group_name));
        }
        replied
            .await
            .map_err(|_| errors::not_found(&source, &options.group_name))??;
        Ok(Response::new(ReplayParkedResp {}))
    }

    async fn list(&self, request: Request<ListReq>) -> Result<Response<ListResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| crate::grpc::status::required_argument("options"))?;
        let source = match options.list_option {
            Some(list_req::options::ListOption::ListAllSubscriptions(())) | None => None,
            Some(list_req::options::ListOption::ListForStream(stream)) => {
                match stream.stream_option {
                    Some(list_req::stream_option::StreamOption::Stream(identifier)) => {
                        Some(Source::Stream(stream_name(Some(&identifier))?))
                    }
                    Some(list_req::stream_option::StreamOption::All(())) => Some(Source::All),
                    None => return Err(Status::unknown("Exception was thrown by handler.")),
                }
            }
        };
        let mut subscriptions = Vec::new();
        for handle in self.groups.list(source.as_ref()).await? {
            // A group removed meanwhile is left out.
            if let Some(info) = info_of(&handle).await {
                subscriptions.push(info);
            }
        }
        Ok(Response::new(ListResp { subscriptions }))
    }

    async fn restart_subsystem(&self, _: Request<()>) -> Result<Response<()>, Status> {
        self.groups.restart().await?;
        Ok(Response::new(()))
    }
}

/// A group's info; None if it ended.
async fn info_of(
    handle: &group::Handle,
) -> Option<crate::proto::persistent_subscriptions::SubscriptionInfo> {
    let (reply, info) = oneshot::channel();
    if !handle.send(Command::Info(reply)).await {
        return None;
    }
    info.await.ok()
}
