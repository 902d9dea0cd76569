//! `projector status` and `projector pause|resume|reset|rebuild <name>`: talk to a running
//! projector through its API. The address is `--api`, else the config's `[api] listen`, else
//! 127.0.0.1:7070; the token is `--api-token` (or PROJECTOR_API_TOKEN), else the config's.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::{ContentArrangement, Table, presets};

use std::net::SocketAddr;

use super::run::{ADDRESS_FILE, connectable};
use crate::api::{Client, DEFAULT_PORT};
use crate::config::Config;

/// Where the running projector's API is.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// The API of the running projector: http://HOST:PORT or HOST:PORT. Default: the address
    /// the process running the data directory recorded, else the config's [api] listen, else
    /// 127.0.0.1:7070.
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// The API's token, if it has one. Default: the config's [api] token.
    #[arg(long, env = "PROJECTOR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// The config file the defaults come from (it need not exist).
    #[arg(long, default_value = "projector.toml")]
    pub config: PathBuf,
    /// The data directory whose running process to reach (default: the config's).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// Longest address file read.
const MAX_ADDRESS_BYTES: u64 = 256;

impl Remote {
    /// A client of the API these arguments name.
    fn client(&self) -> anyhow::Result<Client> {
        let config = if self.config.is_file() && (self.api.is_none() || self.api_token.is_none()) {
            Some(Config::load(&self.config)?)
        } else {
            None
        };
        let data = self
            .data
            .clone()
            .or_else(|| config.as_ref().map(|c| c.data_dir.clone()));
        let address = match &self.api {
            Some(api) => api.clone(),
            None => match data.as_deref().and_then(recorded_address) {
                Some(address) => address.to_string(),
                None => config
                    .as_ref()
                    .and_then(|c| c.api.listen)
                    .map(connectable)
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))
                    .to_string(),
            },
        };
        let token = self
            .api_token
            .clone()
            .or_else(|| config.and_then(|c| c.api.token));
        Client::new(&address, token)
    }
}

/// The address the process running `data` recorded, if one does.
fn recorded_address(data: &std::path::Path) -> Option<SocketAddr> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(data.join(ADDRESS_FILE))
        .ok()?
        .take(MAX_ADDRESS_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

/// Arguments of `projector status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// Print JSON (the default when stdout is not a terminal).
    #[arg(long)]
    pub json: bool,
    /// Only this projection.
    pub projection: Option<String>,
}

/// Arguments of `projector pause|resume|reset|rebuild`.
#[derive(Debug, clap::Args)]
pub struct OperateArgs {
    #[command(flatten)]
    pub remote: Remote,
    /// The projection.
    pub projection: String,
}

/// Prints the status of every projection (or one): a table on a terminal, JSON otherwise.
pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.remote.client()?;
    let answer = match &args.projection {
        Some(name) => client.get(&format!("/api/projections/{name}")).await?,
        None => client.get("/api/projections").await?,
    };
    if args.json || !std::io::stdout().is_terminal() {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let projections = match &args.projection {
        Some(_) => vec![answer],
        None => answer["projections"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    };
    println!("{}", table(&projections));
    Ok(ExitCode::SUCCESS)
}

/// The status of `projections` as a text table.
fn table(projections: &[serde_json::Value]) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    table.set_header([
        "projection",
        "state",
        "version",
        "position",
        "lag (events)",
        "lag (s)",
        "events/s",
        "catch up in",
        "dead letters",
        "last reload",
    ]);
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for p in projections {
        let mut state = text(&p["state"]);
        if let Some(progress) = p["rebuild"]["progress"].as_f64() {
            state = format!("{state} ({:.0}%)", progress * 100.0);
        }
        if let Some(reason) = p["stopped"].as_str() {
            state = format!("{state}: {}", crate::text::cut(reason, 60));
        }
        let lag = match (&p["lag_events"], p["lag_events_exact"].as_bool()) {
            (serde_json::Value::Null, _) => "-".to_string(),
            (lag, Some(false)) => format!("~{lag}"),
            (lag, _) => lag.to_string(),
        };
        let last_reload = p["reloads"]
            .as_array()
            .and_then(|r| r.last())
            .map_or("-".to_string(), |r| text(&r["outcome"]));
        table.add_row([
            text(&p["name"]),
            state,
            text(&p["version"]),
            text(&p["position"]),
            lag,
            text(&p["lag_seconds"]),
            text(&p["events_per_second"]),
            p["eta_seconds"]
                .as_f64()
                .map_or("-".to_string(), |s| format!("{s:.0} s")),
            text(&p["dead_letters"]),
            last_reload,
        ]);
    }
    table.to_string()
}

/// Asks the running projector for `action` on the projection, and prints its answer.
pub async fn operate(action: &str, args: OperateArgs) -> anyhow::Result<ExitCode> {
    let client = args.remote.client()?;
    let answer = client
        .post(
            &format!("/api/projections/{}/{action}", args.projection),
            &serde_json::json!({}),
        )
        .await?;
    println!("{}", answer["message"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
