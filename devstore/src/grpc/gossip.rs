//! `Gossip/Read`: cluster membership. devstore is a one-node cluster whose only member is an
//! alive leader at its own address, which is all `esdb+discover://` clients need.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status};

use super::convert::UuidFormat;
use crate::proto::gossip::gossip_server::Gossip;
use crate::proto::gossip::member_info::VNodeState;
use crate::proto::gossip::{ClusterInfo, EndPoint, MemberInfo};

/// The Gossip service.
pub struct GossipService {
    /// This node's identity, stable for the life of the server.
    pub instance_id: uuid::Uuid,
    /// The address clients should connect to.
    pub endpoint: SocketAddr,
}

#[tonic::async_trait]
impl Gossip for GossipService {
    async fn read(&self, _: Request<()>) -> Result<Response<ClusterInfo>, Status> {
        let ticks = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            / 100;
        let member = MemberInfo {
            // Clients parse the string form and panic on a malformed one.
            instance_id: Some(UuidFormat::String.encode(self.instance_id)),
            time_stamp: ticks as i64,
            state: VNodeState::Leader as i32,
            is_alive: true,
            http_end_point: Some(EndPoint {
                address: self.endpoint.ip().to_string(),
                port: u32::from(self.endpoint.port()),
            }),
        };
        Ok(Response::new(ClusterInfo {
            members: vec![member],
        }))
    }
}
