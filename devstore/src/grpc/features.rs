//! `ServerFeatures/GetSupportedMethods`: the handshake every client makes before its first call.
//!
//! Clients enable features from this list (batch append, persistent subscriptions to `$all`, ...)
//! and gate behaviour on the version, so it lists exactly what devstore implements.

use tonic::{Request, Response, Status};

use crate::proto::server_features::server_features_server::ServerFeatures;
use crate::proto::server_features::{SupportedMethod, SupportedMethods};

/// The EventStoreDB version devstore behaves like: ≥ 23.10 tells clients that subscriptions send
/// `caught_up`.
pub const SERVER_VERSION: &str = "24.10.0";

/// The ServerFeatures service.
pub struct FeaturesService;

#[tonic::async_trait]
impl ServerFeatures for FeaturesService {
    async fn get_supported_methods(
        &self,
        _: Request<()>,
    ) -> Result<Response<SupportedMethods>, Status> {
        Ok(Response::new(supported_methods()))
    }
}

/// The advertised methods, with lower-cased names as the clients compare them.
pub fn supported_methods() -> SupportedMethods {
    let method = |service: &str, method: &str, features: &[&str]| SupportedMethod {
        method_name: method.to_owned(),
        service_name: service.to_owned(),
        features: features
            .iter()
            .map(|feature| (*feature).to_owned())
            .collect(),
    };
    let streams = "event_store.client.streams.streams";
    let persistent = "event_store.client.persistent_subscriptions.persistentsubscriptions";
    SupportedMethods {
        methods: vec![
            method(streams, "read", &["position", "events"]),
            method(streams, "append", &[]),
            method(streams, "delete", &[]),
            method(streams, "tombstone", &[]),
            method(streams, "batchappend", &["deadline_duration"]),
            method("event_store.client.gossip.gossip", "read", &[]),
            method("event_store.client.monitoring.monitoring", "stats", &[]),
            method(
                "event_store.client.operations.operations",
                "startscavenge",
                &[],
            ),
            method(
                "event_store.client.operations.operations",
                "stopscavenge",
                &[],
            ),
            method("event_store.client.operations.operations", "shutdown", &[]),
            method(
                "event_store.client.operations.operations",
                "mergeindexes",
                &[],
            ),
            method(
                "event_store.client.operations.operations",
                "resignnode",
                &[],
            ),
            method(
                "event_store.client.operations.operations",
                "setnodepriority",
                &[],
            ),
            method(
                "event_store.client.operations.operations",
                "restartpersistentsubscriptions",
                &[],
            ),
            // Every persistent subscription method, each for streams and `$all`, as the real
            // server lists them (the Rust client needs `all` on `create` for `$all` groups,
            // and all four management methods before it stops falling back to HTTP).
            method(persistent, "create", &["stream", "all"]),
            method(persistent, "update", &["stream", "all"]),
            method(persistent, "delete", &["stream", "all"]),
            method(persistent, "read", &["stream", "all"]),
            method(persistent, "getinfo", &["stream", "all"]),
            method(persistent, "replayparked", &["stream", "all"]),
            method(persistent, "list", &["stream", "all"]),
            method(persistent, "restartsubsystem", &["stream", "all"]),
            method(
                "event_store.client.server_features.serverfeatures",
                "getsupportedmethods",
                &[],
            ),
        ],
        event_store_server_version: SERVER_VERSION.to_owned(),
    }
}
