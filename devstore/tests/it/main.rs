//! devstore integration tests: each test starts its own in-process server on an ephemeral port
//! and talks to it with the unmodified official `eventstore` client over real gRPC.

mod acl;
mod append;
mod bounds;
mod cluster;
mod delete;
mod disk_reads;
mod durability;
mod errors;
mod expected;
mod filter;
mod http;
mod idempotence;
mod operations;
mod persistent;
mod python;
mod read;
mod subscription;
mod util;
