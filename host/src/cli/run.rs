//! `projector run`: runs every plugin in the configured plugins folder against the configured
//! source, reloading them as the folder changes, until the source ends (a file) or the process
//! is asked to stop (Ctrl-C, SIGTERM: the batch in flight is committed and the exit code is 0).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::shutdown_signal;
use crate::alert::Alerts;
use crate::api::{Api, ApiSettings};
use crate::config::{Config, SourceConfig};
use crate::pipeline::{self, Settings};
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
    /// Serve the HTTP API (read-only SQL, projection status) here, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub api: Option<std::net::SocketAddr>,
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
    let api = serve_api(args.api, &config.data_dir, &settings.status, config.api).await?;
    let options = supervisor::Options {
        plugins_dir: config.plugins_dir.clone(),
        watch: config.watch.clone(),
        retry_dead_letters: config.retry_dead_letters,
        keep_versions: config.keep_versions,
        failures: config.failures.clone(),
    };
    let outcomes =
        supervisor::run(data, runtime, source, settings, options, shutdown_signal()).await;
    if let Some((api, stop)) = api {
        let _ = stop.send(());
        api.stopped().await;
    }
    // Alerts of the last moments (a projection that stopped as the process did) get a short
    // chance to go out; shutdown never waits longer for a webhook.
    alerts.flush(ALERT_FLUSH).await;
    report(&outcomes?)
}

/// Starts the API on `listen`, if given; the sender stops it.
pub(super) async fn serve_api(
    listen: Option<std::net::SocketAddr>,
    data_dir: &std::path::Path,
    status: &pipeline::Status,
    settings: ApiSettings,
) -> anyhow::Result<Option<(Api, tokio::sync::oneshot::Sender<()>)>> {
    let Some(listen) = listen else {
        return Ok(None);
    };
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let api = Api::start(
        listen,
        data_dir.to_path_buf(),
        status.clone(),
        settings,
        async move {
            let _ = stopping.await;
        },
    )
    .await?;
    tracing::info!(address = %api.local_addr, "serving the API");
    Ok(Some((api, stop)))
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
