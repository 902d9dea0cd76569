//! `projector run`: runs every plugin in the configured plugins folder against the configured
//! source until the source ends (a file) or the process is asked to stop (Ctrl-C, SIGTERM:
//! the batch in flight is committed and the exit code is 0).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::{compile_cache_dir, shutdown_signal};
use crate::api::Api;
use crate::config::{Config, SourceConfig};
use crate::pipeline::{self, Settings};
use crate::projection::Projection;
use crate::runtime::Runtime;
use crate::source::{EsdbSource, EventSource, JsonlSource};

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

/// Loads the config and the plugins, then runs the projections.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let runtime = Runtime::new(
        config.limits.clone(),
        Some(&compile_cache_dir(&config.data_dir)),
    )?;
    let projections = open_projections(&runtime, &config)?;
    let source: Arc<dyn EventSource> = match &config.source {
        SourceConfig::Esdb(connection) => Arc::new(EsdbSource::connect(connection).await?),
        SourceConfig::File(path) => Arc::new(JsonlSource::open(path)?),
    };
    tracing::info!(source = source.describe(), projections = projections.len(), data = %config.data_dir.display(), "running");
    let settings = Settings {
        backoff: config.backoff,
        ..Settings::new(config.batching, config.limits.thread_stack_bytes)
    };
    let api = serve_api(args.api, &config.data_dir, &settings.status).await?;
    let outcomes = pipeline::run_with(projections, source, settings, shutdown_signal()).await;
    if let Some((api, stop)) = api {
        let _ = stop.send(());
        api.stopped().await;
    }
    report(&outcomes?)
}

/// Starts the API on `listen`, if given; the sender stops it.
pub(super) async fn serve_api(
    listen: Option<std::net::SocketAddr>,
    data_dir: &std::path::Path,
    status: &pipeline::Status,
) -> anyhow::Result<Option<(Api, tokio::sync::oneshot::Sender<()>)>> {
    let Some(listen) = listen else {
        return Ok(None);
    };
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let api = Api::start(listen, data_dir.to_path_buf(), status.clone(), async move {
        let _ = stopping.await;
    })
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

/// Loads every `*.wasm` in the plugins folder and opens its projection; two modules claiming
/// the same projection name are refused.
pub(super) fn open_projections(
    runtime: &Runtime,
    config: &Config,
) -> anyhow::Result<Vec<Projection>> {
    let entries = std::fs::read_dir(&config.plugins_dir)
        .with_context(|| format!("reading plugins folder {}", config.plugins_dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "wasm"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("no plugins (*.wasm) in {}", config.plugins_dir.display());
    }
    let mut projections: Vec<Projection> = Vec::new();
    for path in paths {
        let plugin = runtime.load(&path)?;
        if let Some(other) = projections
            .iter()
            .find(|p| p.name() == plugin.manifest.name)
        {
            bail!(
                "{} and {} both declare projection {}",
                other.plugin().source.display(),
                path.display(),
                plugin.manifest.name
            );
        }
        let policy = config.error_policy(&plugin.manifest.name);
        projections.push(Projection::open(runtime, plugin, &config.data_dir, policy)?);
    }
    // A misspelt [projections.<name>] section would otherwise leave its projection on the
    // default policy without a word.
    let names: Vec<&str> = projections.iter().map(Projection::name).collect();
    let unknown: Vec<&String> = config
        .error_policies
        .keys()
        .filter(|name| !names.contains(&name.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the config has options for {unknown:?}, but no plugin in {} declares such a \
             projection (the plugins declare {names:?})",
            config.plugins_dir.display()
        );
    }
    Ok(projections)
}
