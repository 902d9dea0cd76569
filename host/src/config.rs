//! The `projector.toml` file: what to project, from where, into where, within which limits.
//!
//! Read in two stages: [`RawConfig`] is the file as written, [`Config`] is the validated result
//! with paths resolved against the file's directory. Every problem is reported at once: each
//! unknown field with its line (a typo'd key must not silently fall back to a default), then
//! every missing or invalid value. How the process logs (`--log`) is a command-line flag,
//! not a config field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::alert::{AlertSettings, Webhook};
use crate::api::ApiSettings;
use crate::pipeline::Backoff;
use crate::pipeline::BatchOptions;
use crate::projection::{ErrorPolicy, Failures};
use crate::reload::{WatchMode, WatchOptions};
use crate::runtime::{Limits, check_name};

/// Versions of each projection kept on disk unless `[reload] keep_versions` says otherwise.
pub const DEFAULT_KEEP_VERSIONS: usize = 2;

/// The most `[alerts] retries`: up to a minute apart, 20 already keep an alert going for about a
/// quarter of an hour while the ones behind it wait.
const MAX_ALERT_RETRIES: u32 = 20;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// Where projection databases are written (`<name>/<version>-<sha8>.db`, the catalog,
    /// the compile cache). Default `data`.
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
    /// How plugin changes are noticed and how many versions are kept.
    #[serde(default)]
    pub reload: RawReload,
    /// Who hears about stopped projections and dead letters.
    #[serde(default)]
    pub alerts: RawAlerts,
    /// What the HTTP API (`projector run --api`) lets its clients ask of it.
    #[serde(default)]
    pub api: RawApi,
    /// Options per projection, by projection name.
    #[serde(default)]
    pub projections: BTreeMap<String, RawProjection>,
}

/// `[reload]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawReload {
    /// How the plugins folder is watched: `auto` (default: inotify, polling where that is not
    /// available), `notify` or `poll` (network filesystems, some containers).
    pub watch: Option<WatchMode>,
    /// How often the folder is polled in `poll` mode, in milliseconds. Default 1000.
    pub poll_interval_ms: Option<u64>,
    /// How long a plugin file must stay unchanged before it is loaded, in milliseconds.
    /// Default 300.
    pub debounce_ms: Option<u64>,
    /// Versions of each projection kept on disk, the current one included. Default 2.
    pub keep_versions: Option<usize>,
    /// Whether new code of a plugin (at start or on a swap) retries the dead letters no build
    /// of it has refused yet. Default true.
    pub retry_dead_letters: Option<bool>,
}

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawAlerts {
    /// Where alerts are POSTed as JSON: an `http://` or `https://` URL. Default none: alerts
    /// are only logged.
    pub webhook: Option<String>,
    /// How long dead letters of one projection are collected into one alert, in milliseconds.
    /// Default 10000.
    pub dead_letter_debounce_ms: Option<u64>,
    /// The longest one delivery attempt may take, in milliseconds. Default 5000.
    pub timeout_ms: Option<u64>,
    /// Attempts after a failed first one before an alert is given up. Default 5.
    pub retries: Option<u32>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawApi {
    /// Most rows one query may answer; a larger result is refused (400). Default 10000.
    pub max_result_rows: Option<usize>,
    /// Most data one answer may hold, in MiB (text and blob bytes, plus 16 bytes per value),
    /// and the largest value a query may read or build. Default 16.
    pub max_result_mib: Option<u64>,
    /// Queries run at once; another waits up to a second for one to end, then gets 503.
    /// Default 4.
    pub max_concurrent_queries: Option<usize>,
    /// Where the API listens: `HOST:PORT`, or a port on 127.0.0.1. Default 127.0.0.1:7070;
    /// `--api` overrides it.
    pub listen: Option<String>,
    /// The token every request must carry (`Authorization: Bearer …`); required to listen
    /// anywhere but loopback. At least 16 characters. `--api-token` and PROJECTOR_API_TOKEN
    /// override it.
    pub token: Option<String>,
    /// Longest a query waits for `min_position` / `fresh`, in ms. Default 30000.
    pub max_wait_ms: Option<u64>,
    /// Lag in seconds up to which a projection still counts as ready (`GET /ready`). Default
    /// 30.
    pub ready_max_lag_seconds: Option<u64>,
}

/// `[source]`: exactly one of `connection` and `file`.
#[derive(Debug, Default, Deserialize)]
pub struct RawSource {
    /// An EventStoreDB / KurrentDB connection string (`esdb://…` or `esdb+discover://…`).
    pub connection: Option<String>,
    /// A JSON Lines file of events (the format of `projector test --events`).
    pub file: Option<PathBuf>,
    /// The longest pause between reconnect attempts, in milliseconds. Default 10000.
    pub reconnect_max_ms: Option<u64>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
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
pub struct RawBatching {
    /// Most events per batch. Default 500.
    pub max_events: Option<usize>,
    /// Most MiB of events per batch. Default: a quarter of the plugin memory limit, at most 16.
    pub max_mib: Option<usize>,
    /// How long a batch lingers for more events while the projection is idle, in
    /// milliseconds. Default 0: sent at once (batches still grow while the projection is busy).
    pub max_wait_ms: Option<u64>,
}

/// `[projections.<name>]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawProjection {
    /// What a failing event costs: `dead-letter` (default), `skip` or `stop`.
    pub on_error: Option<ErrorPolicy>,
    /// Failing events in a row after which the plugin is taken for broken (default 100).
    pub max_consecutive_failures: Option<u32>,
    /// Retries of a batch that met a fault of the database before stopping (default 3).
    pub transient_retries: Option<u32>,
    /// Largest the projection's database may grow, in MiB (default 65536).
    pub max_database_mib: Option<u64>,
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
    /// How reconnects to a broken source are spaced.
    pub backoff: Backoff,
    /// Limits for every plugin instance.
    pub limits: Limits,
    /// How batches are cut.
    pub batching: BatchOptions,
    /// What failures cost, per projection name; absent names get the defaults.
    pub failures: BTreeMap<String, Failures>,
    /// How the plugins folder is watched.
    pub watch: WatchOptions,
    /// Versions of each projection kept on disk, the current one included.
    pub keep_versions: usize,
    /// Whether new plugin code retries the dead letters it has not refused yet.
    pub retry_dead_letters: bool,
    /// How stopped projections and dead letters are alerted.
    pub alerts: AlertSettings,
    /// What the HTTP API lets its clients ask of it.
    pub api: ApiSettings,
}

/// Where events come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceConfig {
    /// An EventStoreDB / KurrentDB server, by connection string.
    Esdb(String),
    /// A JSON Lines file.
    File(PathBuf),
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).with_context(|| format!("config file {}", path.display()))
    }

    /// Parses and validates `text`, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Config> {
        let mut unknown = Vec::new();
        let raw: RawConfig = serde_ignored::deserialize(toml::Deserializer::new(text), |path| {
            unknown.push(keys(&path))
        })?;
        let mut problems: Vec<String> = unknown
            .iter()
            .map(|keys| match line_of(text, keys) {
                Some(line) => format!("line {line}: unknown field `{}`", keys.join(".")),
                None => format!("unknown field `{}`", keys.join(".")),
            })
            .collect();
        match Config::validate(raw, base) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(report(problems)),
            Err(more) => {
                problems.extend(more);
                Err(report(problems))
            }
        }
    }

    /// Validates `raw`, resolving relative paths against `base`; reports every problem at once.
    pub fn from_raw(raw: RawConfig, base: &Path) -> anyhow::Result<Config> {
        Config::validate(raw, base).map_err(report)
    }

    fn validate(raw: RawConfig, base: &Path) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let raw_source = raw.source.unwrap_or_default();
        let source = match (raw_source.connection, raw_source.file) {
            (Some(connection), None) => Some(SourceConfig::Esdb(connection)),
            (None, Some(file)) => Some(SourceConfig::File(resolve(file))),
            (Some(_), Some(_)) => {
                problems.push("[source] takes `connection` or `file`, not both".to_string());
                None
            }
            (None, None) => {
                problems.push(
                    "[source] needs `connection` (an esdb:// connection string) or `file` \
                     (a JSON Lines file of events)"
                        .to_string(),
                );
                None
            }
        };
        let default_backoff = Backoff::default();
        let backoff = Backoff {
            max: raw_source
                .reconnect_max_ms
                .map_or(default_backoff.max, Duration::from_millis),
            ..default_backoff
        };
        if backoff.max < backoff.initial {
            problems.push(format!(
                "[source] reconnect_max_ms must be at least {}",
                backoff.initial.as_millis()
            ));
        }
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
            // The plugin holds a batch as it arrives and as it decodes it: a quarter of its
            // memory leaves room for both and for its own state.
            max_bytes: raw.batching.max_mib.map_or(
                default_batching.max_bytes.min(limits.memory_bytes / 4),
                |mb| mb.saturating_mul(1 << 20),
            ),
        };
        if raw.batching.max_mib == Some(0) {
            problems.push("[batching] max_mib must be at least 1".to_string());
        }
        if batching.max_events == 0 {
            problems.push("[batching] max_events must be at least 1".to_string());
        }
        let mut failures = BTreeMap::new();
        for (name, projection) in raw.projections {
            if let Err(problem) = check_name(&name) {
                problems.push(format!("[projections.{name}]: {problem}"));
            }
            let defaults = Failures::default();
            let settings = Failures {
                on_error: projection.on_error.unwrap_or_default(),
                max_consecutive: projection
                    .max_consecutive_failures
                    .unwrap_or(defaults.max_consecutive),
                transient_retries: projection
                    .transient_retries
                    .unwrap_or(defaults.transient_retries),
                max_database_bytes: projection
                    .max_database_mib
                    .map_or(defaults.max_database_bytes, |mb| mb.saturating_mul(1 << 20)),
            };
            if settings.max_consecutive == 0 {
                problems.push(format!(
                    "[projections.{name}] max_consecutive_failures must be at least 1"
                ));
            }
            if settings.transient_retries > 100 {
                problems.push(format!(
                    "[projections.{name}] transient_retries must be at most 100"
                ));
            }
            if projection.max_database_mib == Some(0) {
                problems.push(format!(
                    "[projections.{name}] max_database_mib must be at least 1"
                ));
            }
            failures.insert(name, settings);
        }
        let default_watch = WatchOptions::default();
        let watch = WatchOptions {
            mode: raw.reload.watch.unwrap_or(default_watch.mode),
            poll_interval: raw
                .reload
                .poll_interval_ms
                .map_or(default_watch.poll_interval, Duration::from_millis),
            debounce: raw
                .reload
                .debounce_ms
                .map_or(default_watch.debounce, Duration::from_millis),
            ..default_watch
        };
        if watch.poll_interval < Duration::from_millis(50) {
            problems.push("[reload] poll_interval_ms must be at least 50".to_string());
        }
        let keep_versions = raw.reload.keep_versions.unwrap_or(DEFAULT_KEEP_VERSIONS);
        if keep_versions == 0 {
            problems.push(
                "[reload] keep_versions must be at least 1 (the current version)".to_string(),
            );
        }
        let alerts = validate_alerts(raw.alerts, &mut problems);
        let api = validate_api(raw.api, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            data_dir: resolve(raw.data_dir.unwrap_or_else(|| "data".into())),
            plugins_dir: resolve(raw.plugins_dir.unwrap_or_else(|| "plugins".into())),
            source: source.expect("checked above"),
            backoff,
            limits,
            batching,
            failures,
            watch,
            keep_versions,
            retry_dead_letters: raw.reload.retry_dead_letters.unwrap_or(true),
            alerts,
            api,
        })
    }

    /// The error policy of projection `name`.
    pub fn error_policy(&self, name: &str) -> ErrorPolicy {
        self.failures
            .get(name)
            .copied()
            .unwrap_or_default()
            .on_error
    }
}

/// `[alerts]`, with its problems added to `problems`.
fn validate_alerts(raw: RawAlerts, problems: &mut Vec<String>) -> AlertSettings {
    let defaults = AlertSettings::default();
    let webhook = raw.webhook.and_then(|text| {
        Webhook::parse(&text)
            .map_err(|problem| problems.push(format!("[alerts] webhook {problem}")))
            .ok()
    });
    let alerts = AlertSettings {
        webhook,
        dead_letter_debounce: raw
            .dead_letter_debounce_ms
            .map_or(defaults.dead_letter_debounce, Duration::from_millis),
        timeout: raw
            .timeout_ms
            .map_or(defaults.timeout, Duration::from_millis),
        retries: raw.retries.unwrap_or(defaults.retries),
        ..defaults
    };
    if alerts.dead_letter_debounce < Duration::from_millis(100) {
        problems.push(
            "[alerts] dead_letter_debounce_ms must be at least 100 (a window collects a burst \
             of dead letters into one alert)"
                .to_string(),
        );
    }
    if alerts.timeout < Duration::from_millis(100) {
        problems.push("[alerts] timeout_ms must be at least 100".to_string());
    }
    if alerts.retries > MAX_ALERT_RETRIES {
        problems.push(format!(
            "[alerts] retries must be at most {MAX_ALERT_RETRIES} (alerts wait in line while one \
             is retried, up to a minute apart)"
        ));
    }
    alerts
}

/// `[api]` with its defaults; a value out of range is a problem.
fn validate_api(raw: RawApi, problems: &mut Vec<String>) -> ApiSettings {
    let defaults = ApiSettings::default();
    let max_result_mib = raw
        .max_result_mib
        .unwrap_or((defaults.bounds.max_bytes >> 20) as u64);
    // SQLite builds no string or blob past 1,000,000,000 bytes, whatever it is told.
    if !(1..=512).contains(&max_result_mib) {
        problems.push("[api] max_result_mib must be from 1 to 512".to_string());
    }
    let settings = ApiSettings {
        bounds: crate::store::ResultBounds {
            max_rows: raw.max_result_rows.unwrap_or(defaults.bounds.max_rows),
            max_bytes: (max_result_mib.clamp(1, 512) << 20) as usize,
        },
        max_concurrent_queries: raw
            .max_concurrent_queries
            .unwrap_or(defaults.max_concurrent_queries),
        listen: raw.listen.as_deref().and_then(|text| {
            crate::api::parse_listen(text)
                .map_err(|error| problems.push(format!("[api] listen: {error:#}")))
                .ok()
        }),
        token: raw.token.clone(),
        max_wait: raw
            .max_wait_ms
            .map_or(defaults.max_wait, std::time::Duration::from_millis),
        ready_max_lag_seconds: raw
            .ready_max_lag_seconds
            .unwrap_or(defaults.ready_max_lag_seconds),
    };
    if settings.max_wait > std::time::Duration::from_secs(600) {
        problems.push("[api] max_wait_ms must be at most 600000 (ten minutes)".to_string());
    }
    if let Some(token) = &settings.token
        && token.chars().count() < crate::api::MIN_TOKEN_CHARS
    {
        problems.push(format!(
            "[api] token must be at least {} characters",
            crate::api::MIN_TOKEN_CHARS
        ));
    }
    if settings.bounds.max_rows == 0 {
        problems.push("[api] max_result_rows must be at least 1".to_string());
    }
    if settings.max_concurrent_queries == 0 {
        problems.push("[api] max_concurrent_queries must be at least 1".to_string());
    }
    settings
}

/// One error that lists every problem.
fn report(problems: Vec<String>) -> anyhow::Error {
    anyhow::anyhow!(
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

/// The keys of a path serde_ignored reports, without its `Option`/newtype steps.
fn keys(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    match path {
        Path::Root => Vec::new(),
        Path::Map { parent, key } => {
            let mut keys = keys(parent);
            keys.push(key.clone());
            keys
        }
        Path::Seq { parent, index } => {
            let mut keys = keys(parent);
            keys.push(index.to_string());
            keys
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => keys(parent),
    }
}

/// The 1-based line where the key at `keys` is written in `text`.
fn line_of(text: &str, keys: &[String]) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = document.as_table();
    let mut span = None;
    for key in keys {
        let (found, item) = table.get_key_value(key)?;
        span = found.span();
        if let Some(inner) = item.as_table_like() {
            table = inner;
        }
    }
    Some(text[..span?.start].matches('\n').count() + 1)
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
    fn unknown_fields_are_all_reported_with_their_lines() {
        let text = "data_dir = \"d\"\ndata_dri = \"x\"\n[source]\nconnection = \"esdb://h\"\n\
                    [limits]\nmemory_mb = 3\n[projections.orders]\non_eror = \"skip\"\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(error.starts_with("3 problem(s)"), "{error}");
        assert!(
            error.contains("line 2: unknown field `data_dri`"),
            "{error}"
        );
        assert!(
            error.contains("line 6: unknown field `limits.memory_mb`"),
            "{error}"
        );
        assert!(
            error.contains("line 8: unknown field `projections.orders.on_eror`"),
            "{error}"
        );
    }

    #[test]
    fn unknown_and_missing_fields_come_together() {
        let error = Config::parse("[sourse]\nfile = \"x\"\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("2 problem(s)"), "{error}");
        assert!(error.contains("line 1: unknown field `sourse`"), "{error}");
        assert!(error.contains("[source] needs `connection`"), "{error}");
    }

    #[test]
    fn a_connection_string_is_a_source() {
        let config = Config::parse(
            "[source]\nconnection = \"esdb://localhost:2113?tls=false\"\nreconnect_max_ms = 500\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(
            config.source,
            SourceConfig::Esdb("esdb://localhost:2113?tls=false".into())
        );
        assert_eq!(config.backoff.max, Duration::from_millis(500));
    }

    #[test]
    fn alerts_default_to_the_log_only() {
        let config = Config::parse("[source]\nfile = \"x\"\n", Path::new(".")).unwrap();
        assert!(config.alerts.webhook.is_none());
        assert_eq!(config.alerts.dead_letter_debounce, Duration::from_secs(10));
        assert_eq!(config.alerts.timeout, Duration::from_secs(5));
        assert_eq!(config.alerts.retries, 5);
    }

    #[test]
    fn the_api_token_never_shows_in_debug_output() {
        let text = "[source]\nfile = \"x\"\n[api]\ntoken = \"a-very-secret-token-0123\"\n";
        let config = Config::parse(text, Path::new(".")).unwrap();
        assert_eq!(
            config.api.token.as_deref(),
            Some("a-very-secret-token-0123")
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn alerts_take_a_webhook_and_its_timings() {
        let text = "[source]\nfile = \"x\"\n[alerts]\nwebhook = \"https://hooks.example.com/T0/secret\"\n\
                    dead_letter_debounce_ms = 2000\ntimeout_ms = 1500\nretries = 0\n";
        let config = Config::parse(text, Path::new(".")).unwrap();
        let webhook = config.alerts.webhook.as_ref().unwrap();
        assert_eq!(webhook.redacted(), "https://hooks.example.com/…");
        assert!(!format!("{config:?}").contains("secret"));
        assert_eq!(config.alerts.dead_letter_debounce, Duration::from_secs(2));
        assert_eq!(config.alerts.timeout, Duration::from_millis(1500));
        assert_eq!(config.alerts.retries, 0);
    }

    #[test]
    fn alerts_are_checked_at_load() {
        let text = "[source]\nfile = \"x\"\n[alerts]\nwebhook = \"ftp://example.com/x\"\n\
                    timeout_ms = 0\nretries = 99\nwebhok = \"y\"\n";
        let error = Config::parse(text, Path::new(".")).unwrap_err().to_string();
        assert!(error.starts_with("4 problem(s)"), "{error}");
        assert!(
            error.contains("[alerts] webhook must be an http:// or https:// URL, not ftp://"),
            "{error}"
        );
        assert!(
            error.contains("[alerts] timeout_ms must be at least 100"),
            "{error}"
        );
        assert!(
            error.contains("[alerts] retries must be at most 20"),
            "{error}"
        );
        assert!(
            error.contains("line 7: unknown field `alerts.webhok`"),
            "{error}"
        );
    }

    #[test]
    fn the_api_section_has_defaults_and_bounds() {
        let config = Config::parse("[source]\nfile = \"e\"\n", Path::new(".")).unwrap();
        assert_eq!(config.api, ApiSettings::default());
        assert_eq!(config.api.bounds.max_rows, 10_000);
        assert_eq!(config.api.bounds.max_bytes, 16 << 20);
        let config = Config::parse(
            "[source]\nfile = \"e\"\n[api]\nmax_result_rows = 5\nmax_result_mib = 2\n\
             max_concurrent_queries = 9\n",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(config.api.bounds.max_rows, 5);
        assert_eq!(config.api.bounds.max_bytes, 2 << 20);
        assert_eq!(config.api.max_concurrent_queries, 9);
        let error = Config::parse(
            "[source]\nfile = \"e\"\n[api]\nmax_result_rows = 0\nmax_result_mib = 600\n\
             max_concurrent_queries = 0\nmax_rows = 1\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("4 problem(s)"), "{error}");
        assert!(error.contains("unknown field `api.max_rows`"), "{error}");
        assert!(
            error.contains("max_result_mib must be from 1 to 512"),
            "{error}"
        );
    }

    /// The example in docs/operations.md is a config this version accepts, key for key.
    #[test]
    fn the_documented_example_is_valid() {
        let doc = include_str!("../../docs/operations.md");
        let example = doc
            .split("```toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/operations.md has a TOML example");
        let config = Config::parse(example, Path::new(".")).unwrap();
        let failures = config.failures["order_summary"];
        assert_eq!(failures.max_consecutive, 100);
        assert_eq!(failures.max_database_bytes, 65536 << 20);
        assert_eq!(config.batching.max_bytes, 16 << 20);
        assert!(config.retry_dead_letters);
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
