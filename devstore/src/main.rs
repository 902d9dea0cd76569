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
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match devstore::cli::run(command.args, ctrl_c).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devstore: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
