//! `projector run`: runs every plugin in the configured plugins folder against the configured
//! source, reloading them as the folder changes, until the source ends (a file) or the process
//! is asked to stop (Ctrl-C, SIGTERM: the batch in flight is committed and the exit code is 0).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::net::SocketAddr;

use super::shutdown_signal;
use crate::alert::Alerts;
use crate::api::{Api, ApiSettings, DEFAULT_PORT, Served, parse_listen};
use crate::config::{Config, SourceConfig};
use crate::pipeline::{self, Settings, Tail};
use crate::runtime::Runtime;
use crate::source::{EsdbSource, EventSource, JsonlSource};
use crate::store::DataDir;
use crate::supervisor;

/// How long shutdown waits for alerts still to be delivered.
pub(super) const ALERT_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// Arguments of `projector run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config file.
    #[arg(long, default_value = "projector.toml")]
    pub config: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Where the HTTP API and console listen (`run` and `dev`).
#[derive(Debug, Default, clap::Args)]
pub struct ApiArgs {
    /// Where the HTTP API and web console listen: HOST:PORT, a port (on 127.0.0.1), or `off`.
    /// Default: the config's [api] listen, else 127.0.0.1:7070 (or any free port on
    /// 127.0.0.1 when that one is taken).
    #[arg(long, value_name = "ADDR")]
    pub api: Option<String>,
    /// The token every API request must carry (`Authorization: Bearer …`); required to listen
    /// anywhere but loopback. Overrides [api] token.
    #[arg(long, env = "PROJECTOR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// Loads the config, then runs the projections of the plugins folder, reloading them as it
/// changes.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let data = DataDir::open(&config.data_dir)?;
    let _lock = data.lock()?;
    let runtime = Runtime::new(config.limits.clone(), Some(&data.compile_cache()))?;
    let source: Arc<dyn EventSource> = match &config.source {
        SourceConfig::Esdb(connection) => Arc::new(EsdbSource::connect(connection).await?),
        SourceConfig::File(path) => Arc::new(JsonlSource::open(path)?),
    };
    tracing::info!(source = source.describe(), plugins = %config.plugins_dir.display(), data = %config.data_dir.display(), "running");
    let alerts = Alerts::start(config.alerts.clone())?;
    let settings = Settings {
        backoff: config.backoff,
        alerts: Some(alerts.clone()),
        ..Settings::new(config.batching, config.limits.thread_stack_bytes)
    };
    let (operator, inbox) = supervisor::operator();
    let tail = Tail::start(Arc::clone(&source), config.backoff);
    let served = Served {
        data_dir: config.data_dir.clone(),
        status: settings.status.clone(),
        tail: Some(tail.clone()),
        metrics: settings.metrics.clone(),
        operator: Some(operator),
        runtime: Some(runtime.clone()),
        source: Some(Arc::clone(&source)),
        alerts: Some(alerts.clone()),
    };
    let api = serve_api(&args.api, config.api.clone(), served).await?;
    let _address = api
        .as_ref()
        .map(|(api, _)| AddressFile::write(&config.data_dir, api.local_addr));
    let options = supervisor::Options {
        plugins_dir: config.plugins_dir.clone(),
        watch: config.watch.clone(),
        retry_dead_letters: config.retry_dead_letters,
        keep_versions: config.keep_versions,
        failures: config.failures.clone(),
    };
    let outcomes = supervisor::run(
        data,
        runtime,
        source,
        settings,
        options,
        Some(inbox),
        shutdown_signal(),
    )
    .await;
    tail.stop();
    if let Some((api, stop)) = api {
        let _ = stop.send(());
        api.stopped().await;
    }
    // Alerts of the last moments (a projection that stopped as the process did) get a short
    // chance to go out; shutdown never waits longer for a webhook.
    alerts.flush(ALERT_FLUSH).await;
    report(&outcomes?)
}

/// Starts the API as `args` and `settings` say (unless `--api off`); the sender stops it. An
/// address given is used or the start fails; the default one, when taken, gives way to any
/// free port on loopback.
pub(super) async fn serve_api(
    args: &ApiArgs,
    mut settings: ApiSettings,
    served: Served,
) -> anyhow::Result<Option<(Api, tokio::sync::oneshot::Sender<()>)>> {
    if args.api.as_deref() == Some("off") {
        return Ok(None);
    }
    if let Some(token) = &args.api_token {
        settings.token = Some(token.clone());
    }
    let given = args.api.as_deref().map(parse_listen).transpose()?;
    let explicit = given.or(settings.listen);
    let listen = explicit.unwrap_or(SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)));
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    // The shutdown future goes to whichever start succeeds.
    let stopping = std::sync::Arc::new(tokio::sync::Mutex::new(Some(stopping)));
    let start = |address: SocketAddr| {
        let stopping = std::sync::Arc::clone(&stopping);
        Api::start(address, served.clone(), settings.clone(), async move {
            if let Some(stopping) = stopping.lock().await.take() {
                let _ = stopping.await;
            }
        })
    };
    let api = match start(listen).await {
        Err(error) if explicit.is_none() && is_address_in_use(&error) => {
            tracing::warn!(
                taken = %listen,
                "the API's default address is taken; serving it on another port (pass --api to \
                 choose)"
            );
            start(SocketAddr::from(([127, 0, 0, 1], 0))).await?
        }
        started => started?,
    };
    tracing::info!(address = %api.local_addr, console = %format!("http://{}/", api.local_addr), "serving the API");
    Ok(Some((api, stop)))
}

/// `<data>/api-address`: where the API of the process running a data directory listens, for
/// `projector status|pause|…` to find it (the default port may have been taken). Removed when
/// dropped, as the process ends.
pub(super) struct AddressFile(Option<PathBuf>);

/// The file's name in the data directory.
pub(super) const ADDRESS_FILE: &str = "api-address";

impl AddressFile {
    /// Writes `address` (a loopback one for a listener on every address) into `data`.
    pub(super) fn write(data: &std::path::Path, address: SocketAddr) -> AddressFile {
        let path = data.join(ADDRESS_FILE);
        match std::fs::write(&path, connectable(address).to_string()) {
            Ok(()) => AddressFile(Some(path)),
            Err(error) => {
                tracing::warn!(file = %path.display(), error = %error, "could not record the API's address; `projector status` needs --api");
                AddressFile(None)
            }
        }
    }
}

impl Drop for AddressFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where a client reaches a listener on `address`: loopback for one on every address.
pub(super) fn connectable(address: SocketAddr) -> SocketAddr {
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        SocketAddr::new(loopback, address.port())
    } else {
        address
    }
}

/// Whether binding failed because the address is taken.
fn is_address_in_use(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// Prints how each projection ended; the exit code says whether any faulted.
pub(super) fn report(outcomes: &[pipeline::Outcome]) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for outcome in outcomes {
        let checkpoint = outcome
            .checkpoint
            .map_or("none".to_string(), |p| p.to_string());
        match &outcome.error {
            Some(error) => {
                failed = true;
                eprintln!(
                    "{}: stopped at checkpoint {checkpoint}: {error:#}",
                    outcome.name
                );
            }
            None => eprintln!(
                "{}: {} events projected, {} failed, checkpoint {checkpoint}",
                outcome.name, outcome.projected, outcome.failed
            ),
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
