//! End-to-end tests of the projector host with real compiled plugins and real SQLite files.
//! One test binary; each module is one area.

mod alerts;
mod api;
mod cli;
mod console;
mod dead_letters;
mod deploy;
mod dev;
mod esdb;
mod failures;
mod hostile;
mod operations;
mod pipeline;
mod reload;
mod resume;
mod rollback;
mod sandbox;
mod util;
