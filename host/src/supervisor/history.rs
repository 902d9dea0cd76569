//! Reload outcomes: each is logged once, kept in the catalog (so it survives restarts) and
//! shown on the status board.

use super::Supervisor;
use crate::store::HistoryEntry;

impl Supervisor {
    /// Records a reload outcome: logged once, kept in the catalog, shown by the status board.
    pub(super) fn history(&self, entry: HistoryEntry) {
        let entry = HistoryEntry {
            unix_ms: crate::store::now_unix_ms(),
            ..entry
        };
        if let Err(error) = self.catalog.record(&entry) {
            tracing::error!(
                error = format!("{error:#}"),
                "could not record a reload outcome in the catalog"
            );
        }
        self.announce(entry);
    }

    /// Logs a reload outcome already kept in the catalog, and shows it on the status board.
    pub(super) fn announce(&self, entry: HistoryEntry) {
        let short = |sha: &Option<String>| sha.as_deref().map(|s| s[..s.len().min(8)].to_string());
        let fields = (
            entry.projection.as_deref().unwrap_or("-"),
            entry.plugin_file.as_deref().unwrap_or("-"),
            entry.from_version.as_deref().unwrap_or("-"),
            short(&entry.from_sha256).unwrap_or_else(|| "-".into()),
            entry.to_version.as_deref().unwrap_or("-"),
            short(&entry.to_sha256).unwrap_or_else(|| "-".into()),
            entry.detail.as_deref().unwrap_or(""),
        );
        let (projection, file, from_version, from, to_version, to, detail) = fields;
        match entry.outcome.as_str() {
            "refused" | "abandoned" => tracing::warn!(
                projection,
                file,
                from_version,
                from,
                to_version,
                to,
                detail,
                "reload: {}",
                entry.outcome
            ),
            _ => tracing::info!(
                projection,
                file,
                from_version,
                from,
                to_version,
                to,
                detail,
                "reload: {}",
                entry.outcome
            ),
        }
        if entry.outcome != "shadow-progress" {
            self.settings
                .metrics
                .reload(entry.projection.as_deref(), &entry.outcome);
        }
        self.settings.status.add_reload(entry);
    }
}
