//! `projector rollback`: makes an earlier kept version of a projection current again, without
//! rebuilding it from the start of the log. A running `projector run` or `dev` on the data
//! directory does it (the kept version catches up from its own checkpoint, then queries switch);
//! with none running, the catalog is changed directly. `--api` asks a running process through
//! its HTTP API instead.

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
    /// Ask the running projector through its API here (http://HOST:PORT or HOST:PORT)
    /// instead of through the data directory.
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// The API's token, if it has one.
    #[arg(long, env = "PROJECTOR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// The projection.
    pub projection: String,
}

/// Asks for the rollback and prints what was done.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(api) = &args.api {
        let client = crate::api::Client::new(api, args.api_token.clone())?;
        let answer = client
            .post(
                &format!("/api/projections/{}/rollback", args.projection),
                &serde_json::json!({ "to": args.to }),
            )
            .await?;
        println!("{}", answer["message"].as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let data = DataDir::existing(&args.data);
    let request = RollbackRequest {
        projection: args.projection,
        to: args.to,
    };
    // The request waits for the running process's answer on the file system.
    let wait = Duration::from_secs(args.wait);
    let message =
        tokio::task::spawn_blocking(move || request_rollback(&data, request, wait)).await??;
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}
