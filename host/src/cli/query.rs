//! `projector query`: read-only SQL over the projection databases of a data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Format, print};
use crate::store::Reader;

/// Arguments of `projector query`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory holding the projection databases.
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The SQL; each projection's tables are under its name (`order_summary.orders`).
    pub sql: String,
}

/// Runs the query and prints its result.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reader = Reader::open(&args.data)?;
    let result = reader.query(&args.sql)?;
    match args.format {
        Format::Table => println!("{}", print::text_table(&result)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&result.to_json())?),
    }
    Ok(ExitCode::SUCCESS)
}
