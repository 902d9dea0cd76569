//! The `projector.toml` file: what to project, from where, into where, within which limits.
//!
//! Read in two stages: [`RawConfig`] is the file as written (unknown fields are errors, with
//! their line), [`Config`] is the validated result with paths resolved against the file's
//! directory. Validation reports every problem at once. How the process runs (log format,
//! verbosity) is a command-line flag, not a config field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::projection::ErrorPolicy;
use crate::runtime::{Limits, check_name};
use crate::source::BatchOptions;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where projection databases are written, one `<projection>.db` each. Default `data`.
    pub data_dir: Option<PathBuf>,
    /// The folder of plugin modules: every `*.wasm` in it is a projection. Default `plugins`.
    pub plugins_dir: Option<PathBuf>,
    /// Where events come from.
    pub source: Option<RawSource>,
    /// Limits for every plugin instance.
    #[serde(default)]
    pub limits: RawLimits,
    /// How events are grouped into batches (one transaction each).
    #[serde(default)]
    pub batching: RawBatching,
    /// Options per projection, by projection name.
    #[serde(default)]
    pub projections: BTreeMap<String, RawProjection>,
}

/// `[source]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// A JSON Lines file of events (the format of `projector test --events`).
    pub file: Option<PathBuf>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest memory a plugin instance may use, in MiB. Default 64.
    pub memory_mib: Option<u64>,
    /// Longest one batch may take in the plugin, in milliseconds. Default 10000.
    pub batch_deadline_ms: Option<u64>,
    /// Most log lines a plugin may write per batch. Default 100.
    pub log_lines_per_batch: Option<u32>,
}

/// `[batching]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBatching {
    /// Most events per batch. Default 500.
    pub max_events: Option<usize>,
    /// Longest a batch waits for more events, in milliseconds. Default 20.
    pub max_wait_ms: Option<u64>,
}

/// `[projections.<name>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjection {
    /// What a failing event costs: `dead-letter` (default), `skip` or `stop`.
    pub on_error: Option<ErrorPolicy>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where projection databases live.
    pub data_dir: PathBuf,
    /// The folder of plugin modules.
    pub plugins_dir: PathBuf,
    /// Where events come from.
    pub source: SourceConfig,
    /// Limits for every plugin instance.
    pub limits: Limits,
    /// How batches are cut.
    pub batching: BatchOptions,
    /// Error policy per projection name; absent names get the default.
    pub error_policies: BTreeMap<String, ErrorPolicy>,
}

/// Where events come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceConfig {
    /// A JSON Lines file.
    File(PathBuf),
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let raw: RawConfig = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_raw(raw, base).with_context(|| format!("config file {}", path.display()))
    }

    /// Validates `raw`, resolving relative paths against `base`; reports every problem at once.
    pub fn from_raw(raw: RawConfig, base: &Path) -> anyhow::Result<Config> {
        let mut problems = Vec::new();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let source = match raw.source.and_then(|s| s.file) {
            Some(file) => Some(SourceConfig::File(resolve(file))),
            None => {
                problems.push(
                    "[source] needs `file`, the JSON Lines file of events to project".to_string(),
                );
                None
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            memory_bytes: raw.limits.memory_mib.map_or(defaults.memory_bytes, |mib| {
                mib.saturating_mul(1 << 20) as usize
            }),
            batch_deadline: raw
                .limits
                .batch_deadline_ms
                .map_or(defaults.batch_deadline, Duration::from_millis),
            log_lines_per_call: raw
                .limits
                .log_lines_per_batch
                .unwrap_or(defaults.log_lines_per_call),
            thread_stack_bytes: defaults.thread_stack_bytes,
        };
        if !(1 << 20..=1 << 32).contains(&limits.memory_bytes) {
            problems.push(
                "[limits] memory_mib must be from 1 to 4096 (a 32-bit memory's size)".to_string(),
            );
        }
        if limits.batch_deadline < Duration::from_millis(10) {
            problems.push("[limits] batch_deadline_ms must be at least 10".to_string());
        }
        let default_batching = BatchOptions::default();
        let batching = BatchOptions {
            max_events: raw
                .batching
                .max_events
                .unwrap_or(default_batching.max_events),
            max_wait: raw
                .batching
                .max_wait_ms
                .map_or(default_batching.max_wait, Duration::from_millis),
        };
        if batching.max_events == 0 {
            problems.push("[batching] max_events must be at least 1".to_string());
        }
        let mut error_policies = BTreeMap::new();
        for (name, projection) in raw.projections {
            if let Err(problem) = check_name(&name) {
                problems.push(format!("[projections.{name}]: {problem}"));
            }
            error_policies.insert(name, projection.on_error.unwrap_or_default());
        }
        if !problems.is_empty() {
            bail!(
                "{} problem(s):\n  - {}",
                problems.len(),
                problems.join("\n  - ")
            );
        }
        Ok(Config {
            data_dir: resolve(raw.data_dir.unwrap_or_else(|| "data".into())),
            plugins_dir: resolve(raw.plugins_dir.unwrap_or_else(|| "plugins".into())),
            source: source.expect("checked above"),
            limits,
            batching,
            error_policies,
        })
    }

    /// The error policy of projection `name`.
    pub fn error_policy(&self, name: &str) -> ErrorPolicy {
        self.error_policies.get(name).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_paths_and_defaults() {
        let raw: RawConfig = toml::from_str(
            "[source]\nfile = \"events.jsonl\"\n[projections.orders]\non_error = \"stop\"",
        )
        .unwrap();
        let config = Config::from_raw(raw, Path::new("/etc/projector")).unwrap();
        assert_eq!(
            config.source,
            SourceConfig::File("/etc/projector/events.jsonl".into())
        );
        assert_eq!(config.data_dir, Path::new("/etc/projector/data"));
        assert_eq!(config.error_policy("orders"), ErrorPolicy::Stop);
        assert_eq!(config.error_policy("other"), ErrorPolicy::DeadLetter);
    }

    #[test]
    fn unknown_fields_name_their_line() {
        let error = toml::from_str::<RawConfig>("data_dir = \"d\"\n[limits]\nmemory_mb = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("memory_mb"), "{error}");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let raw: RawConfig =
            toml::from_str("[batching]\nmax_events = 0\n[projections.\"Bad Name\"]\n").unwrap();
        let error = Config::from_raw(raw, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("3 problem(s)"), "{error}");
    }
}
