//! `projector test`: runs one plugin over a JSONL file of events and prints the tables it
//! builds, the dead letters, and a summary; with `--expect DIR`, compares them with snapshot
//! files instead (`snapshot`). The plugin author's inner loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use super::snapshot::{self, Snapshot};
use super::{Format, print, shutdown_signal};
use crate::pipeline::{self, BatchOptions, Settings};
use crate::projection::{ErrorPolicy, Projection};
use crate::runtime::{Limits, Runtime};
use crate::source::JsonlSource;
use crate::store::{DataDir, Reader};

/// Arguments of `projector test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// The events, one JSON object per line (see docs/plugins.md).
    #[arg(long)]
    pub events: PathBuf,
    /// Keep the database here instead of in a temporary directory; a second run resumes.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// What a failing event costs.
    #[arg(long, value_enum, default_value = "dead-letter")]
    pub on_error: OnError,
    /// Most events per batch.
    #[arg(long, default_value_t = BatchOptions::default().max_events)]
    pub batch_size: usize,
    /// Compare every table and the dead letters with the snapshot files in this directory
    /// (`<table>.jsonl`, `_dead_letters.jsonl`); a difference is printed and exits non-zero.
    #[arg(long, value_name = "DIR")]
    pub expect: Option<PathBuf>,
    /// With `--expect`: write the snapshot files instead of comparing with them.
    #[arg(long, requires = "expect")]
    pub update: bool,
    /// Where compiled plugins are kept between runs (default: `--data`'s cache, else
    /// `$XDG_CACHE_HOME/projector/compiled` or `~/.cache/projector/compiled`).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,
    /// Compile the plugin afresh and keep nothing.
    #[arg(long)]
    pub no_cache: bool,
}

/// Where `args` keep compiled plugins: a Python component takes seconds to compile, which a
/// test loop would otherwise pay on every run. The cache checks its directory and MACs its
/// entries (`runtime::cache`), so a directory shared between runs is safe.
fn compile_cache(args: &Args, data: &DataDir) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(dir) = &args.cache {
        return Some(dir.clone());
    }
    if args.data.is_some() {
        return Some(data.compile_cache());
    }
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let user_cache =
        absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")));
    user_cache.map(|dir| dir.join("projector").join("compiled"))
}

/// `--on-error` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OnError {
    /// Record failing events in `_projector_dead_letters` and carry on.
    DeadLetter,
    /// Log failing events and carry on.
    Skip,
    /// Stop at the first failing event.
    Stop,
}

/// Runs the test and prints the result; exits non-zero if the projection stopped on an error.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let temporary = tempfile::tempdir()?;
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let limits = Limits::default();
    let thread_stack = limits.thread_stack_bytes;
    let data = DataDir::open(&data_dir)?;
    let _lock = data.lock()?;
    let cache = compile_cache(&args, &data);
    if let Some(dir) = &cache {
        std::fs::create_dir_all(dir.parent().unwrap_or(dir))
            .with_context(|| format!("creating the compile cache's folder {}", dir.display()))?;
    }
    let runtime = Runtime::new(limits, cache.as_deref())?;
    let plugin = runtime.load(&args.plugin)?;
    let source = JsonlSource::open(&args.events)?;
    let policy = match args.on_error {
        OnError::DeadLetter => ErrorPolicy::DeadLetter,
        OnError::Skip => ErrorPolicy::Skip,
        OnError::Stop => ErrorPolicy::Stop,
    };
    let manifest = &plugin.manifest;
    let files = data.current_or_new(&manifest.name, &manifest.version, &plugin.sha256)?;
    let projection = Projection::open(&runtime, plugin.clone(), &files.db, policy.into())?;
    let batching = BatchOptions {
        max_events: args.batch_size.max(1),
        ..BatchOptions::default()
    };
    let outcomes = pipeline::run(
        vec![projection],
        Arc::new(source),
        Settings::new(batching, thread_stack),
        shutdown_signal(),
    )
    .await?;
    let outcome = outcomes
        .into_iter()
        .next()
        .context("the projection did not report")?;

    let reader = Reader::open(&data_dir)?;
    let name = &plugin.manifest.name;
    let tables = reader
        .query(&format!("SELECT name FROM \"{name}\".sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_projector\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"))?;
    let dead_letters = reader.query(&format!(
        "SELECT commit_position AS position, stream_id, event_type, error FROM \"{name}\"._projector_dead_letters ORDER BY commit_position"
    ))?;
    let mut printed_tables = Vec::new();
    for row in &tables.rows {
        let crate::value::Value::Text(table) = &row[0] else {
            continue;
        };
        printed_tables.push((
            table.clone(),
            reader.query(&format!("SELECT * FROM \"{name}\".\"{table}\""))?,
        ));
    }
    let status = match &outcome.error {
        Some(error) => format!("stopped: {error:#}"),
        None => "ok".to_string(),
    };
    let summary = format!(
        "{name} {}: {} events projected, {} failed, checkpoint {}; {status}",
        plugin.manifest.version,
        outcome.projected,
        outcome.failed,
        outcome
            .checkpoint
            .map_or("none".to_string(), |p| p.to_string()),
    );
    if let Some(dir) = &args.expect {
        let mut snapshots: BTreeMap<String, Snapshot> = printed_tables
            .iter()
            .map(|(table, result)| (table.clone(), Snapshot::of(result)))
            .collect();
        snapshots.insert(
            snapshot::DEAD_LETTERS.to_owned(),
            Snapshot::of(&dead_letters),
        );
        println!("{summary}");
        let matched = if args.update {
            snapshot::write(dir, &snapshots)?;
            println!(
                "wrote {} snapshot files to {}",
                snapshots.len(),
                dir.display()
            );
            true
        } else {
            match snapshot::compare(dir, &snapshots)? {
                None => {
                    println!("matches {} ({} files)", dir.display(), snapshots.len());
                    true
                }
                Some(report) => {
                    println!(
                        "differs from {} (- expected, + produced; --update accepts the new \
                         output):\n{report}",
                        dir.display()
                    );
                    false
                }
            }
        };
        return Ok(if matched && outcome.error.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    match args.format {
        Format::Table => {
            for (table, result) in &printed_tables {
                println!(
                    "{table} ({} rows)\n{}\n",
                    result.rows.len(),
                    print::text_table(result)
                );
            }
            if !dead_letters.rows.is_empty() {
                println!(
                    "dead letters ({} events)\n{}\n",
                    dead_letters.rows.len(),
                    print::text_table(&dead_letters)
                );
            }
            println!("{summary}");
        }
        Format::Json => {
            let tables: serde_json::Map<String, serde_json::Value> = printed_tables
                .iter()
                .map(|(table, result)| (table.clone(), result.to_json()))
                .collect();
            let document = json!({
                "projection": name,
                "version": plugin.manifest.version,
                "tables": tables,
                "dead_letters": dead_letters.to_json(),
                "projected": outcome.projected,
                "failed": outcome.failed,
                "checkpoint": outcome.checkpoint.map(|p| p.commit),
                "error": outcome.error.as_ref().map(|e| format!("{e:#}")),
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
    }
    Ok(if outcome.error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
