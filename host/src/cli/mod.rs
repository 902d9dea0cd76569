//! The `projector` commands: argument definitions and dispatch. Each command lives in its own
//! file and does little but call the library.

mod dev;
mod dlq;
mod examples;
mod new;
mod operate;
mod print;
mod query;
mod rollback;
mod run;
mod snapshot;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Streams EventStoreDB events into sandboxed WebAssembly projection plugins that write SQLite
/// tables you can query with SQL.
#[derive(Debug, Parser)]
#[command(name = "projector", version)]
pub struct Cli {
    /// Log filter, e.g. `info`, `warn`, `projector=debug` (RUST_LOG syntax).
    #[arg(long, global = true, default_value = "info", env = "PROJECTOR_LOG")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything locally: an embedded event store, a demo workload and the plugins.
    Dev(dev::Args),
    /// Write a new plugin folder (Rust, Python or JavaScript) that builds and passes its own
    /// `projector test --expect` as it is.
    New(new::Args),
    /// Run a plugin over a file of events and print the tables it builds.
    Test(test::Args),
    /// Run the projections of a config file.
    Run(run::Args),
    /// Run a read-only SQL query over the projection databases of a data directory.
    Query(query::Args),
    /// Show the status of the projections of a running projector (through its API).
    Status(operate::StatusArgs),
    /// Pause a projection of a running projector: it applies nothing after its batch in flight
    /// until resumed (kept across restarts).
    Pause(operate::OperateArgs),
    /// Resume a paused projection of a running projector, or start a stopped one again from
    /// its checkpoint.
    Resume(operate::OperateArgs),
    /// Rebuild a projection of a running projector from the start of the log in place: its
    /// tables (and dead letters) are emptied and refill.
    Reset(operate::OperateArgs),
    /// Rebuild a projection of a running projector from the start of the log beside the
    /// serving database; queries switch when it has caught up.
    Rebuild(operate::OperateArgs),
    /// Make an earlier kept version of a projection current again (in a running projector, or
    /// on a stopped data directory).
    Rollback(rollback::Args),
    /// List, show, retry or drop the dead letters of a projection (in a running projector, or
    /// on a stopped data directory).
    Dlq(dlq::Args),
    /// Run devstore, an EventStoreDB-compatible server, for development and tests.
    Devstore(devstore::cli::Args),
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text tables.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// The whole program: parses the command line, sets up logging, runs the command, and turns an
/// error into its full cause chain on stderr and a non-zero exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_logging(&cli.log) {
        eprintln!("error: --log {:?} is not a log filter: {error}", cli.log);
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = match cli.command {
        Command::Dev(args) => runtime.block_on(dev::run(args)),
        Command::New(args) => new::run(args),
        Command::Test(args) => runtime.block_on(test::run(args)),
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Query(args) => query::run(args),
        Command::Status(args) => runtime.block_on(operate::status(args)),
        Command::Pause(args) => runtime.block_on(operate::operate("pause", args)),
        Command::Resume(args) => runtime.block_on(operate::operate("resume", args)),
        Command::Reset(args) => runtime.block_on(operate::operate("reset", args)),
        Command::Rebuild(args) => runtime.block_on(operate::operate("rebuild", args)),
        Command::Rollback(args) => runtime.block_on(rollback::run(args)),
        Command::Dlq(args) => dlq::run(args),
        Command::Devstore(args) => runtime
            .block_on(devstore::cli::run(args, shutdown_signal()))
            .map(|()| ExitCode::SUCCESS),
    };
    // Dropping the runtime would wait for every blocking thread still running: an API query
    // or rollback request the server stopped waiting for must not hold the exit up.
    runtime.shutdown_timeout(EXIT_GRACE);
    outcome
}

/// How long the process waits at exit for blocking work nothing waits for any more.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends logs to stderr, filtered by `filter`; a filter that does not parse is an error.
pub fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
