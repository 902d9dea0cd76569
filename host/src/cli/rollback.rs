//! `projector rollback`: makes an earlier kept version of a projection current again, without
//! rebuilding it from the start of the log. A running `projector run` or `dev` on the data
//! directory does it (the kept version catches up from its own checkpoint, then queries switch);
//! with none running, the catalog is changed directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::store::DataDir;
use crate::supervisor::{RollbackRequest, request_rollback};

/// Arguments of `projector rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory of the projection.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// The version to return to (default: the one that was current before the current one).
    #[arg(long)]
    pub to: Option<String>,
    /// How long to wait for a running projector to take the request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// The projection.
    pub projection: String,
}

/// Asks for the rollback and prints what was done.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let data = DataDir::existing(&args.data);
    let request = RollbackRequest {
        projection: args.projection,
        to: args.to,
    };
    let message = request_rollback(&data, request, Duration::from_secs(args.wait))?;
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}
