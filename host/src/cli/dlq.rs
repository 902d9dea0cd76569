//! `projector dlq list|show|retry|drop <projection>`: the dead letters of a projection, the
//! events its plugin refused. `list` and `show` read the database (safe beside a running
//! projector); `retry` runs the current plugin on them again, through the running projector
//! when there is one, else on the data directory; `drop` deletes them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use base64::Engine;
use comfy_table::{ContentArrangement, Table, presets};

use crate::config::Config;
use crate::runtime::Limits;
use crate::store::{self, DataDir, DeadLetter, Payloads, Selection};
use crate::supervisor::{RetryRequest, retry_dead_letters};

/// Arguments of `projector dlq`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do with the dead letters.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List them, oldest event first.
    List(Target),
    /// Show them whole: the event (data and metadata), every error and build that refused it.
    Show(Target),
    /// Give them to the projection's current plugin again, in log order, in one transaction
    /// with its writes; projected ones are removed, refused ones kept with the new error.
    /// Each is applied now, after the events that followed it in the log (see docs/operations.md).
    Retry(Target),
    /// Delete them (the events stay in the event store).
    Drop(Target),
}

/// Which dead letters of which projection, and how to print.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The data directory of the projection.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// A dead letter's id (its event's commit position, as `list` shows); repeatable.
    #[arg(long = "id")]
    pub ids: Vec<u64>,
    /// Every dead letter of the projection (the default for list and show).
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// How long `retry` waits for a running projector's answer, in seconds (it works on a
    /// retry for up to 300 s before it answers that it goes on).
    #[arg(long, default_value_t = 330)]
    pub wait: u64,
    /// With no projector running, `retry` runs the plugin under this config file's `[limits]`
    /// and `[projections.<name>]` (a running projector uses its own).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The projection.
    pub projection: String,
}

impl Target {
    /// The selection, required to be explicit for what changes anything.
    fn selection(&self, changes: bool) -> anyhow::Result<Selection> {
        if !self.ids.is_empty() {
            return Ok(Selection::Positions(self.ids.clone()));
        }
        if changes && !self.all {
            bail!("say which dead letters: --id <id> (repeatable) or --all");
        }
        Ok(Selection::All)
    }

    /// The database the projection's queries read now.
    fn database(&self) -> anyhow::Result<PathBuf> {
        let data = DataDir::existing(&self.data);
        let databases = data.current_databases()?;
        if let Some((_, path)) = databases.iter().find(|(name, _)| *name == self.projection) {
            return Ok(path.clone());
        }
        let names: Vec<&str> = databases.iter().map(|(name, _)| name.as_str()).collect();
        bail!(
            "no projection {} in {} (it holds: {}); is --data the directory `projector run` writes?",
            self.projection,
            self.data.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    }
}

/// Runs the action.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List(target) => {
            let letters = store::read_dead_letters(
                &target.database()?,
                &target.selection(false)?,
                Payloads::Without,
            )?;
            if target.json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("{} has no dead letters", target.projection);
            } else {
                println!("{}", list_table(&letters));
            }
        }
        Action::Show(target) => {
            // The list first, then each event whole, one at a time: a dead-letter table can
            // hold thousands of events of megabytes.
            let database = target.database()?;
            let listed =
                store::read_dead_letters(&database, &target.selection(false)?, Payloads::Without)?;
            // JSON goes out as one array, written a letter at a time.
            if target.json {
                print!("[");
            }
            for (index, summary) in listed.iter().enumerate() {
                let one = Selection::Positions(vec![summary.id]);
                for letter in store::read_dead_letters(&database, &one, Payloads::With)? {
                    if target.json {
                        let separator = if index == 0 { "\n" } else { ",\n" };
                        print!(
                            "{separator}{}",
                            serde_json::to_string_pretty(&show_json(&letter))?
                        );
                    } else {
                        println!("{}", show_text(&letter));
                    }
                }
            }
            if target.json {
                println!("\n]");
            }
        }
        Action::Retry(target) => {
            let request = RetryRequest {
                projection: target.projection.clone(),
                selection: target.selection(true)?,
            };
            let data = DataDir::existing(&target.data);
            // A running projector uses its own config; without one, `--config`'s (or the
            // defaults) stand in for it.
            let (limits, failures) = match &target.config {
                Some(path) => {
                    let config = Config::load(path)?;
                    let failures = config
                        .failures
                        .get(&target.projection)
                        .copied()
                        .unwrap_or_default();
                    (config.limits, failures)
                }
                None => (Limits::default(), Default::default()),
            };
            let wait = Duration::from_secs(target.wait);
            let (message, report) = retry_dead_letters(&data, request, wait, limits, failures)?;
            if target.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{message}");
            }
        }
        Action::Drop(target) => {
            let selection = target.selection(true)?;
            let dropped = store::drop_dead_letters(&target.database()?, &selection)?;
            if target.json {
                println!("{}", serde_json::json!({ "dropped": dropped }));
            } else {
                println!("{}: {dropped} dead letters dropped", target.projection);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Longest error shown in a listing; `show` has them whole.
const LISTED_ERROR_CHARS: usize = 80;

fn list_table(letters: &[DeadLetter]) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(["id", "stream", "revision", "type", "attempts", "last error"]);
    for letter in letters {
        let error: String = letter.last_error.chars().take(LISTED_ERROR_CHARS).collect();
        let cut = if error.len() < letter.last_error.len() {
            "…"
        } else {
            ""
        };
        table.add_row([
            letter.id.to_string(),
            letter.stream_id.clone(),
            letter.stream_revision.to_string(),
            letter.event_type.clone(),
            letter.attempts.to_string(),
            format!("{error}{cut}"),
        ]);
    }
    table.to_string()
}

/// Event bytes as text when they are UTF-8 (JSON, mostly), else base64.
fn readable(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), "utf-8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            "base64",
        ),
    }
}

fn show_json(letter: &DeadLetter) -> serde_json::Value {
    let mut value = serde_json::to_value(letter).expect("dead letters serialise");
    if let Some(event) = &letter.event {
        let (data, data_encoding) = readable(&event.data);
        let (metadata, metadata_encoding) = readable(&event.metadata);
        value["event"] = serde_json::json!({
            "content_type": event.content_type,
            "created_unix_ms": event.created_unix_ms,
            "data": data,
            "data_encoding": data_encoding,
            "metadata": metadata,
            "metadata_encoding": metadata_encoding,
        });
    }
    value
}

fn show_text(letter: &DeadLetter) -> String {
    let mut text = format!(
        "dead letter {id}: {event_type} {stream}@{revision} (event {event_id})\n  \
         attempts: {attempts}\n  first error: {first}\n  last error: {last}\n  refused by: {builds}\n",
        id = letter.id,
        event_type = letter.event_type,
        stream = letter.stream_id,
        revision = letter.stream_revision,
        event_id = letter.event_id,
        attempts = letter.attempts,
        first = letter.first_error,
        last = letter.last_error,
        builds = letter.refused_by.join(", "),
    );
    match &letter.event {
        Some(event) => {
            let (data, encoding) = readable(&event.data);
            text.push_str(&format!(
                "  content type: {}\n  data ({encoding}): {data}\n",
                event.content_type
            ));
        }
        None => {
            text.push_str("  data: not kept (recorded before dead letters kept their events)\n")
        }
    }
    text
}
