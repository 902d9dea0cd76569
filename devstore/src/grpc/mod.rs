//! The gRPC services: protocol messages in, store calls, protocol messages out.
//!
//! Each RPC lives in its own module; `streams` only dispatches. Errors use the real server's
//! statuses (`status`) because clients branch on them.

// `tonic::Status` is the error type of every handler; boxing it would only add conversions.
#![allow(clippy::result_large_err)]

mod access;
mod append;
mod auth;
mod batch_append;
mod convert;
mod delete;
mod features;
mod filter;
mod gossip;
mod operations;
mod persistent;
mod read;
mod read_request;
mod scan_budget;
mod sink;
mod status;
mod streams;
mod subscription;

use std::net::SocketAddr;

use tokio::sync::watch;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

use crate::limits::MAX_MESSAGE_SIZE;
use crate::proto::gossip::gossip_server::GossipServer;
use crate::proto::monitoring::monitoring_server::MonitoringServer;
use crate::proto::operations::operations_server::OperationsServer;
use crate::proto::persistent_subscriptions::persistent_subscriptions_server::PersistentSubscriptionsServer;
use crate::proto::server_features::server_features_server::ServerFeaturesServer;
use crate::proto::streams::streams_server::StreamsServer;
use crate::store::Store;
use auth::Auth;

pub use features::SERVER_VERSION;
pub use persistent::Groups;

/// What every service needs.
#[derive(Clone)]
pub struct Context {
    /// The event log.
    pub store: Store,
    /// Raised once when the server stops: long-running calls end promptly.
    pub shutdown: watch::Receiver<bool>,
    /// The persistent subscription groups.
    pub groups: Groups,
}

/// All services, ready to serve. `endpoint` is what gossip advertises.
pub fn routes(
    context: Context,
    endpoint: SocketAddr,
    require_auth: bool,
    stop: std::sync::Arc<watch::Sender<bool>>,
) -> Routes {
    let auth = Auth {
        required: require_auth,
    };
    let monitoring = MonitoringServer::new(operations::MonitoringService {
        context: context.clone(),
        started: std::time::Instant::now(),
    });
    let operations = OperationsServer::new(operations::OperationsService {
        stop,
        groups: context.groups.clone(),
    });
    let persistent = PersistentSubscriptionsServer::new(persistent::PersistentService {
        groups: context.groups.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_SIZE);
    let streams = StreamsServer::new(streams::StreamsService { context })
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let gossip = GossipServer::new(gossip::GossipService {
        instance_id: uuid::Uuid::new_v4(),
        endpoint,
    });
    // The handshake carries no credentials even when the client has some, so it is never
    // checked; gossip is open as on the real server.
    Routes::new(InterceptedService::new(streams, auth))
        .add_service(gossip)
        .add_service(ServerFeaturesServer::new(features::FeaturesService))
        .add_service(InterceptedService::new(operations, auth))
        .add_service(InterceptedService::new(monitoring, auth))
        .add_service(InterceptedService::new(persistent, auth))
}
