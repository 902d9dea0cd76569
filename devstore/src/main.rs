//! The `devstore` binary: parses flags, sets up logging, and serves until Ctrl-C.

use clap::Parser;

/// An EventStoreDB-compatible gRPC server for development and tests.
#[derive(Debug, Parser)]
#[command(name = "devstore", version)]
struct Command {
    #[command(flatten)]
    args: devstore::cli::Args,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "devstore=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Command::parse();
    match devstore::cli::run(command.args, stop_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devstore: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM (what service managers and `kill` send) on Unix.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
