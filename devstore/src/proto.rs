//! The gRPC messages and service traits generated from `proto/` by `build.rs`.
//!
//! The module tree mirrors the protobuf packages because the generated code refers to sibling
//! packages with `super::` paths (`event_store.client.streams` uses `event_store.client.UUID`).

#![allow(clippy::all, dead_code, missing_docs)]

/// `event_store.*` packages.
pub mod event_store {
    /// `event_store.client`: shared messages (`UUID`, `StreamIdentifier`, ...).
    pub mod client {
        tonic::include_proto!("event_store.client");

        /// `event_store.client.streams`: append, read, subscribe, delete, batch append.
        pub mod streams {
            tonic::include_proto!("event_store.client.streams");
        }

        /// `event_store.client.gossip`: cluster membership, used by `esdb+discover://`.
        pub mod gossip {
            tonic::include_proto!("event_store.client.gossip");
        }

        /// `event_store.client.server_features`: the handshake every client makes first.
        pub mod server_features {
            tonic::include_proto!("event_store.client.server_features");
        }

        /// `event_store.client.persistent_subscriptions`: competing consumers.
        pub mod persistent_subscriptions {
            tonic::include_proto!("event_store.client.persistent_subscriptions");
        }

        /// `event_store.client.operations`: scavenges and node administration.
        pub mod operations {
            tonic::include_proto!("event_store.client.operations");
        }

        /// `event_store.client.monitoring`: the node's statistics, streamed.
        pub mod monitoring {
            tonic::include_proto!("event_store.client.monitoring");
        }
    }
}

/// `google.*` packages.
pub mod google {
    /// `google.rpc`: the `Status` carried by batch-append errors.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub use event_store::client as shared;
pub use event_store::client::{
    gossip, monitoring, operations, persistent_subscriptions, server_features, streams,
};
