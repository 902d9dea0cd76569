//! Keeping the cache under [`super::MAX_CACHE_BYTES`]: least recently used entries go first,
//! each with its MAC record.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::trust::{MAC_SUFFIX, mac_path};

/// A MAC record is written just before its entry is renamed into place; one older than this
/// without an entry is left over (its entry deleted by hand, or a crash between the two).
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Deletes the least recently used `*.cwasm` files of `dir`, and their MAC records, until the
/// rest fit in `max_bytes`; the most recent one always stays. Deletes orphaned MAC records.
pub(super) fn prune(dir: &Path, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
    let mut records: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some((modified, size)) = entry
            .metadata()
            .ok()
            .and_then(|metadata| Some((metadata.modified().ok()?, metadata.len())))
        else {
            continue;
        };
        if path.extension().is_some_and(|x| x == "cwasm") {
            files.push((modified, size, path));
        } else if path.to_str().is_some_and(|p| p.ends_with(MAC_SUFFIX)) {
            records.push((modified, path));
        }
    }
    files.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));
    let mut kept = 0u64;
    for (index, (_, size, path)) in files.into_iter().enumerate() {
        kept += size;
        if index > 0 && kept > max_bytes {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(mac_path(&path));
                    tracing::debug!(path = %path.display(), "compiled plugin evicted from the cache")
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), error = %error, "could not evict a compiled plugin")
                }
            }
        }
    }
    let now = SystemTime::now();
    for (modified, record) in records {
        let entry = record.with_extension("");
        let old = now.duration_since(modified).unwrap_or_default() > ORPHAN_AGE;
        if old && !entry.exists() {
            let _ = std::fs::remove_file(&record);
        }
    }
}
