//! How a call into a plugin can fail: the one typed error of the runtime, because the
//! projection worker decides between dead-lettering an event and stopping on it.

use crate::value::SqlError;

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin returned its WIT `error`: it is alive and may be called again.
    #[error("{0}")]
    Rejected(Rejection),
    /// The plugin trapped (a panic, an out-of-bounds access, a failed host call). Its instance
    /// is dead and must be recreated before the next call. The message names the trap and
    /// carries what the plugin wrote to stderr (a panic message, typically).
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    /// The plugin ran past its deadline. Its instance is dead too, and a replay would take as
    /// long again, so the projection stops.
    #[error("{0}")]
    OutOfTime(String),
    /// The plugin hit its memory limit. Its instance is dead too; one event at a time, the
    /// event it fails on (an event too large for the plugin's memory, often) is dead-lettered.
    #[error("{0}")]
    OutOfMemory(String),
    /// The instance died and a new one could not be built: no further call can succeed.
    #[error("{0}")]
    Broken(String),
}

/// The plugin's own account of a failure (the WIT `error` variant).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// One event of the batch cannot be projected.
    #[error("the plugin refused the event: {message}")]
    InvalidEvent {
        /// Its index in the batch.
        index: u32,
        /// Why.
        message: String,
    },
    /// A SQL statement failed and the plugin gave up.
    #[error("a SQL statement failed: {0}")]
    Sql(SqlError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl PluginError {
    /// Whether the instance can no longer be called and must be recreated.
    pub fn kills_instance(&self) -> bool {
        !matches!(self, PluginError::Rejected(_))
    }
}
