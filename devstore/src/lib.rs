//! devstore: an EventStoreDB-compatible gRPC server for development and tests.
//!
//! The official EventStoreDB clients (Rust `eventstore`/`kurrentdb`, Python `kurrentdbclient`, ...)
//! talk to it unmodified over `esdb://127.0.0.1:2113?tls=false`. It keeps one append-only log,
//! either in memory or in a SQLite file, and serves appends, reads, catch-up subscriptions with
//! filters, deletes and the cluster handshake.
//!
//! # Layout
//!
//! - [`config`]: what to listen on, where to store, TLS and authentication choices.
//! - [`server`]: starts and stops the gRPC server ([`Server`]).
//! - [`cli`]: the `devstore` command-line flags and the run-until-Ctrl-C loop.
//! - [`limits`]: every bound on what one client can make the server hold or do.
//! - `acl`: stream access control (users, `$acl`, `$settings`), enforced under
//!   `--require-auth`; knows nothing about gRPC.
//! - `store`: the event log (an in-memory index of positions, the newest events, and SQLite,
//!   from which older payloads are read on demand; or everything in memory); knows nothing
//!   about gRPC.
//! - `grpc`: the service implementations that translate protocol messages to store calls.
//! - `transport`: TCP and TLS listeners, and the self-signed certificate.
//! - `proto`: code generated from the official `.proto` files.

pub mod cli;
pub mod config;
pub mod limits;
pub mod server;

mod acl;
mod grpc;
mod http;
#[doc(hidden)]
pub mod proto;
mod store;
mod transport;

pub use config::{Config, Storage, Tls};
pub use server::Server;
