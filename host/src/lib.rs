//! Projector streams events from EventStoreDB into sandboxed WebAssembly projection plugins and
//! stores what they project in SQLite tables that people query with SQL.
//!
//! # Layout
//!
//! In reading order:
//! - [`event`]: the events and log positions that flow through everything else.
//! - [`source`]: where events come from ([`source::EventSource`]: EventStoreDB, files, memory),
//!   and batching. Only user of the eventstore client.
//! - [`runtime`]: the wasmtime host: loading, limiting and calling plugins. Only user of wasmtime.
//! - [`store`]: the SQLite file of each projection: tables, checkpoint, dead letters, the
//!   authorizer, and read-only queries. Only user of rusqlite.
//! - [`value`]: SQL values passed between the runtime and the store.
//! - [`projection`]: one plugin writing into one database, batch by batch, with its failure
//!   policy. Where the runtime and the store meet.
//! - [`reload`]: watching the plugins folder for settled changes. Only user of notify.
//! - [`pipeline`]: a source connected to projections: batching, tasks, threads, backpressure,
//!   reconnects, status, shutdown.
//! - [`supervisor`]: the set of running projections and its changes: start, swap, shadow
//!   rebuild and cut-over, rollback, removal, reload history.
//! - [`demo`]: the shop workload `projector dev` appends.
//! - [`alert`]: telling a person that a projection stopped or dead-lettered events: the log and
//!   a webhook.
//! - [`config`]: the `projector.toml` file.
//! - [`api`]: the HTTP API: read-only SQL and status. Only user of axum.
//! - [`cli`]: the `projector` commands.

pub mod alert;
pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod event;
pub mod metrics;
pub mod pipeline;
pub mod projection;
pub mod reload;
pub mod runtime;
pub mod source;
pub mod store;
pub mod supervisor;
pub mod text;
pub mod value;
