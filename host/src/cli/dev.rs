//! `projector dev`: the whole product on one machine with nothing installed. An embedded
//! devstore (durable, under the data directory), a demo workload appending the example
//! plugins' events, and the projections of the plugins folder (the example plugins, compiled in,
//! when the default folder holds none), until Ctrl-C. A second run resumes where the first
//! stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::examples;
use super::run::{ALERT_FLUSH, AddressFile, ApiArgs, report, serve_api};
use super::shutdown_signal;
use crate::alert::{AlertSettings, Alerts};
use crate::api::{ApiSettings, Served};
use crate::config::DEFAULT_KEEP_VERSIONS;
use crate::demo::{self, Shop};
use crate::pipeline::{Backoff, BatchOptions, Settings, Status, Tail};
use crate::reload::WatchOptions;
use crate::runtime::{Limits, Runtime};
use crate::source::EsdbSource;
use crate::store::DataDir;
use crate::supervisor;

/// Arguments of `projector dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where everything lives: the event store (`devstore/`), the projection databases, the
    /// compiled-plugin cache.
    #[arg(long, default_value = "dev-data")]
    pub data: PathBuf,
    /// The plugins folder: every `*.wasm` in it is a projection. Default `<data>/plugins`, where
    /// the example projections are written when it holds no plugin.
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Demo events appended per second (0: none).
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Demo events appended at once when the store is empty (the first start).
    #[arg(long, default_value_t = 5000)]
    pub backlog: u64,
    /// Where the embedded EventStoreDB-compatible server listens (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:2113")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating the data directory {}", args.data.display()))?;
    let plugins_dir = args
        .plugins
        .clone()
        .unwrap_or_else(|| args.data.join("plugins"));
    let server = devstore::Server::start(devstore::Config {
        listen: args.listen,
        storage: devstore::Storage::Dir(args.data.join("devstore")),
        ..devstore::Config::default()
    })
    .await
    .with_context(|| {
        format!(
            "starting the embedded event store on {} (is another devstore or EventStoreDB \
             using the port? pass --listen 127.0.0.1:0 for any free port)",
            args.listen
        )
    })?;
    let connection = server.connection_string();
    // A fresh client waits one discovery interval (500 ms by default) before its first call.
    let store = Arc::new(EsdbSource::connect(&format!("{connection}&discoveryInterval=0")).await?);

    let data = DataDir::open(&args.data)?;
    let _lock = data.lock()?;
    let limits = Limits::default();
    let runtime = Runtime::new(limits.clone(), Some(&data.compile_cache()))?;
    if args.plugins.is_none() {
        // The first start: nothing to run yet, so run the examples the workload feeds.
        let written = examples::write_if_no_plugins(&plugins_dir)?;
        if !written.is_empty() {
            tracing::info!(
                folder = %plugins_dir.display(),
                plugins = written.join(", "),
                "the plugins folder held no plugin: wrote the example projections into it \
                 (replace them with your own; `projector new` starts one)"
            );
        }
    }
    std::fs::create_dir_all(&plugins_dir)
        .with_context(|| format!("creating the plugins folder {}", plugins_dir.display()))?;
    let names = plugin_files(&plugins_dir);

    let first_start = !store.holds_user_events().await?;
    let workload = {
        let store = Arc::clone(&store);
        let (rate, backlog) = (args.rate, args.backlog);
        tokio::spawn(async move {
            let started = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let mut shop = Shop::new(&started.as_secs().to_string(), started.as_nanos() as u64);
            if first_start
                && backlog > 0
                && let Err(error) = demo::append_backlog(&store, &mut shop, backlog).await
            {
                tracing::error!(error = format!("{error:#}"), "demo backlog");
            }
            demo::append_steadily(&store, &mut shop, rate).await;
        })
    };
    // A workload that panics must say so at once, not when the user wonders why nothing moves.
    let workload = {
        let abort = workload.abort_handle();
        tokio::spawn(async move {
            if let Err(error) = workload.await
                && error.is_panic()
            {
                tracing::error!(error = %error, "the demo workload stopped");
            }
        });
        abort
    };

    let status = Status::default();
    let metrics = crate::metrics::Metrics::new();
    // No webhook in dev: stops and dead letters are logged, one line each (debounced).
    let alerts = Alerts::start(AlertSettings::default())?;
    let (operator, inbox) = supervisor::operator();
    let tail = Tail::start(store.clone(), Backoff::default());
    let served = Served {
        data_dir: args.data.clone(),
        status: status.clone(),
        tail: Some(tail.clone()),
        metrics: metrics.clone(),
        operator: Some(operator),
        runtime: Some(runtime.clone()),
        source: Some(store.clone()),
        alerts: Some(alerts.clone()),
    };
    let api = serve_api(&args.api, ApiSettings::default(), served).await?;
    let api_address = api.as_ref().map(|(api, _)| api.local_addr);
    let _address = api_address.map(|address| AddressFile::write(&args.data, address));
    print_next_steps(
        &args,
        &connection,
        &names,
        &plugins_dir,
        first_start,
        api_address,
    );
    let reporter = tokio::spawn(report_status(status.clone()));
    let settings = Settings {
        status,
        alerts: Some(alerts.clone()),
        metrics,
        ..Settings::new(BatchOptions::default(), limits.thread_stack_bytes)
    };
    let options = supervisor::Options {
        plugins_dir,
        watch: WatchOptions::default(),
        retry_dead_letters: true,
        keep_versions: DEFAULT_KEEP_VERSIONS,
        failures: Default::default(),
    };
    let outcomes = supervisor::run(
        data,
        runtime,
        store,
        settings,
        options,
        Some(inbox),
        shutdown_signal(),
    )
    .await;
    workload.abort();
    reporter.abort();
    if let Some((api, stop)) = api {
        let _ = stop.send(());
        api.stopped().await;
    }
    tail.stop();
    server.shutdown().await?;
    // The last dead-letter window of each projection is logged, as `run` does.
    alerts.flush(ALERT_FLUSH).await;
    report(&outcomes?)
}

/// Tells the user what is running and what to try.
fn print_next_steps(
    args: &Args,
    connection: &str,
    names: &[String],
    plugins_dir: &Path,
    first_start: bool,
    api: Option<SocketAddr>,
) {
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "projector".into());
    let data = args.data.display();
    let backlog = if first_start && args.backlog > 0 {
        format!(" after a backlog of {}", args.backlog)
    } else {
        String::new()
    };
    println!(
        "projector dev is running (Ctrl-C stops it; running it again resumes)\n\
         \n  event store   {connection}   (any EventStoreDB client can connect; events kept in {data}/devstore)\
         \n  workload      {rate} order and payment events/s{backlog}\
         \n  projections   {projections}   (the plugins in {plugins}; drop a new .wasm there to reload it)\
         \n\nTry, in another terminal:\
         \n  {me} query --data {data} \"SELECT * FROM order_summary.customer_totals ORDER BY total_cents DESC LIMIT 5\"\
         \n  {me} query --data {data} \"SELECT status, count(*) FROM order_summary.orders GROUP BY status\"\
         \n  {me} query --data {data} \"SELECT * FROM payments.customer_daily ORDER BY day DESC LIMIT 5\"\n",
        rate = args.rate,
        projections = names.join(", "),
        plugins = plugins_dir.display(),
    );
    if let Some(api) = api {
        println!(
            "  the console   http://{api}/   (projections, lag, controls, SQL)\
             \n  curl -s http://{api}/api/projections\
             \n  curl -s http://{api}/api/query --get --data-urlencode \"sql=SELECT * FROM order_summary.orders LIMIT 3\"\n"
        );
    }
}

/// The plugin files of `folder`, for the welcome text (the supervisor loads them).
fn plugin_files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".wasm") && !name.starts_with('.'))
        .collect();
    names.sort();
    if names.is_empty() {
        names.push("none yet".into());
    }
    names
}

/// Logs each projection's position now and then.
async fn report_status(status: Status) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        for (name, projection) in status.projections() {
            let rebuild = projection.rebuild.as_ref().map(|r| {
                format!(
                    "{} {} at {} of {}",
                    r.kind,
                    r.version,
                    r.position.map_or("start".into(), |p| p.to_string()),
                    r.head.map_or("?".into(), |p| p.to_string())
                )
            });
            tracing::info!(
                projection = name,
                version = projection.version,
                position = projection.checkpoint.map(|p| p.to_string()),
                caught_up = projection.caught_up,
                projected = projection.projected,
                failed = projection.failed,
                rebuild,
                stopped = projection.stopped,
                "status"
            );
        }
    }
}
