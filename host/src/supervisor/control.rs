//! Requests from the `projector` command line to the process running the projections of a data
//! directory, through files: the command writes `<data>/_control/<id>.request.json` (under a
//! temporary name, then renamed), the supervisor answers with `<id>.reply.json` on its next tick.
//! When no process holds the directory, the command does the work on the catalog itself.
//!
//! Files work wherever the data directory does, need no open port, and are guarded by the same
//! permissions as the data they change.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::Supervisor;
use crate::projection::RetryReport;
use crate::store::{Catalog, DataDir, HistoryEntry, KeptVersion, Selection};

/// Make an earlier kept version of a projection current again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The projection.
    pub projection: String,
    /// The version to return to; default: the one that was current before the current one.
    pub to: Option<String>,
}

/// Retry dead letters of a projection on its current plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryRequest {
    /// The projection.
    pub projection: String,
    /// Which dead letters.
    pub selection: Selection,
}

/// What can be asked of the running process.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Request {
    Rollback(RollbackRequest),
    RetryDeadLetters(RetryRequest),
}

/// The answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Reply {
    pub ok: bool,
    pub message: String,
    /// What a retry of dead letters did.
    #[serde(default)]
    pub retry: Option<RetryReport>,
}

impl Reply {
    /// The answer to a request that ended with `result`.
    pub fn from_result(result: anyhow::Result<String>) -> Reply {
        match result {
            Ok(message) => Reply {
                ok: true,
                message,
                retry: None,
            },
            Err(error) => Reply {
                ok: false,
                message: format!("{error:#}"),
                retry: None,
            },
        }
    }
}

/// Largest request file read; anything bigger is not one of ours.
const MAX_REQUEST_BYTES: u64 = 64 << 10;

/// Age past which leftovers in the control folder are deleted.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Rolls `request.projection` back: through the process running the data directory when
/// there is one (waiting up to `wait` for its answer), else directly on the catalog.
pub fn request_rollback(
    data: &DataDir,
    request: RollbackRequest,
    wait: Duration,
) -> anyhow::Result<String> {
    // Holding the lock while changing the catalog keeps a `projector run` from starting in
    // between.
    if let Some(_lock) = data.try_lock()? {
        return offline_rollback(data, &request);
    }
    let reply = ask(data, Request::Rollback(request), wait)?;
    if reply.ok {
        return Ok(reply.message);
    }
    bail!("{}", reply.message)
}

/// Hands `request` to the process running the data directory and waits up to `wait` for its
/// reply.
pub(super) fn ask(data: &DataDir, request: Request, wait: Duration) -> anyhow::Result<Reply> {
    let dir = data.control_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let temporary = dir.join(format!(".{id}.tmp"));
    std::fs::write(&temporary, serde_json::to_vec(&request)?)?;
    std::fs::rename(&temporary, dir.join(format!("{id}.request.json")))?;
    let reply_path = dir.join(format!("{id}.reply.json"));
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read(&reply_path) {
            let _ = std::fs::remove_file(&reply_path);
            return serde_json::from_slice(&text).context("reading the reply");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(dir.join(format!("{id}.request.json")));
    bail!(
        "the projector running on {} did not answer within {} s; is it stuck? (its log says more)",
        data.root().display(),
        wait.as_secs()
    )
}

/// A rollback with no process running: the kept version becomes current at once, and the
/// module that projected into the current one is held back, so the next start serves the kept
/// version (catching up from its own checkpoint) instead of re-applying the folder's file.
fn offline_rollback(data: &DataDir, request: &RollbackRequest) -> anyhow::Result<String> {
    let catalog = data.catalog()?;
    let (current, target) = rollback_target(data, &catalog, request)?;
    let entry = HistoryEntry {
        projection: Some(request.projection.clone()),
        outcome: "rolled-back".into(),
        from_version: Some(current.version.clone()),
        from_sha256: Some(current.wasm_sha256.clone()),
        to_version: Some(target.version.clone()),
        to_sha256: Some(target.wasm_sha256.clone()),
        detail: Some("no projector was running: queries read the kept version at once".into()),
        ..HistoryEntry::default()
    };
    catalog.switch(
        &request.projection,
        &target.file,
        Some(&entry),
        Some(&current.wasm_sha256),
    )?;
    Ok(format!(
        "{} rolled back from {} to {}; no projector was running, so queries read it at once and \
         the next start catches it up from its own checkpoint",
        request.projection, current.version, target.version
    ))
}

/// The current version of the request's projection and the kept version to return to.
pub(super) fn rollback_target(
    data: &DataDir,
    catalog: &Catalog,
    request: &RollbackRequest,
) -> anyhow::Result<(KeptVersion, KeptVersion)> {
    let name = &request.projection;
    let Some(current) = catalog.current_of(name)? else {
        bail!("projection {name} is not in this data directory's catalog");
    };
    let kept = catalog.versions(name)?;
    let earlier: Vec<&KeptVersion> = kept
        .iter()
        .filter(|v| v.file != current.file && v.current_since_unix_ms.is_some())
        .collect();
    let listed = || {
        let versions: Vec<&str> = earlier.iter().map(|v| v.version.as_str()).collect();
        if versions.is_empty() {
            "none".to_string()
        } else {
            versions.join(", ")
        }
    };
    let target = match &request.to {
        Some(to) => earlier.iter().find(|v| v.version == *to).copied(),
        None => earlier.first().copied(),
    };
    match target {
        Some(target) => {
            let files = data.files_of(&target.file);
            for (what, path) in [("database", &files.db), ("module", &files.wasm)] {
                if !path.is_file() {
                    bail!(
                        "cannot roll {name} back to {}: its {what} {} was not kept (databases \
                         moved from the old layout have no module)",
                        target.version,
                        path.display()
                    );
                }
            }
            Ok((current, target.clone()))
        }
        None => match &request.to {
            Some(to) if *to == current.version => bail!("{name} {to} is current already"),
            Some(to) => bail!(
                "no kept version {to} of {name}; the earlier versions kept are: {}",
                listed()
            ),
            None => bail!(
                "no earlier version of {name} is kept (current: {})",
                current.version
            ),
        },
    }
}

impl Supervisor {
    /// Answers the requests waiting in the control folder.
    pub(super) async fn serve_requests(&mut self) {
        let dir = self.data.control_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut requests: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".request.json"))
            .collect();
        requests.sort();
        if requests.is_empty() {
            sweep(&dir);
        }
        for path in requests {
            let request = read_request(&path);
            let _ = std::fs::remove_file(&path);
            let reply = match request {
                Ok(Request::Rollback(request)) => Reply::from_result(self.rollback(&request).await),
                // A retry takes as long as the plugin does: it is answered from a task of its
                // own, so the supervisor goes on meanwhile.
                Ok(Request::RetryDeadLetters(request)) => {
                    self.retry_requested(request, path);
                    continue;
                }
                Err(error) => Reply::from_result(Err(error)),
            };
            answer(&path, &reply);
        }
    }
}

/// Writes the reply to the request at `request`; a failure is logged (the requester times out).
pub(super) fn answer(request: &Path, reply: &Reply) {
    if let Err(error) = write_reply(request, reply) {
        tracing::warn!(
            error = format!("{error:#}"),
            "could not answer a control request"
        );
    }
}

fn read_request(path: &Path) -> anyhow::Result<Request> {
    use std::io::Read;
    // Not through a link, not a FIFO or a device: a plain file, read to a bound.
    let metadata = std::fs::symlink_metadata(path)?;
    if !metadata.is_file() {
        bail!("the request is not a plain file");
    }
    let mut text = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_REQUEST_BYTES {
        bail!("the request is over {MAX_REQUEST_BYTES} bytes");
    }
    serde_json::from_slice(&text).context("the request is not one the projector knows")
}

/// Deletes what requesters left behind (replies nobody read, half-written requests) once it
/// is older than [`STALE_AFTER`].
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.to_string_lossy();
        let leftover = name.ends_with(".reply.json") || name.ends_with(".tmp");
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if leftover && stale {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn write_reply(request: &Path, reply: &Reply) -> anyhow::Result<()> {
    let name = request.to_string_lossy();
    let reply_path = name.trim_end_matches(".request.json").to_string() + ".reply.json";
    let temporary = format!("{reply_path}.tmp");
    std::fs::write(&temporary, serde_json::to_vec(reply)?)?;
    std::fs::rename(&temporary, &reply_path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_plain_files_read_to_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.request.json");
        std::fs::write(&good, r#"{"rollback": {"projection": "p", "to": null}}"#).unwrap();
        assert!(matches!(
            read_request(&good).unwrap(),
            Request::Rollback(RollbackRequest { ref projection, to: None }) if projection == "p"
        ));
        let big = dir.path().join("b.request.json");
        std::fs::write(&big, vec![b' '; (MAX_REQUEST_BYTES + 1) as usize]).unwrap();
        let error = read_request(&big).unwrap_err().to_string();
        assert!(error.contains("over 65536 bytes"), "{error}");
        // A link to something endless is never followed.
        let link = dir.path().join("c.request.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_request(&link).unwrap_err().to_string();
        assert!(error.contains("not a plain file"), "{error}");
        let junk = dir.path().join("d.request.json");
        std::fs::write(&junk, "{}").unwrap();
        assert!(read_request(&junk).is_err());
    }

    #[test]
    fn a_rollback_names_what_is_kept_when_it_cannot_be_done() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let catalog = data.catalog().unwrap();
        for (file, version) in [("p/1-a.db", "1"), ("p/2-b.db", "2")] {
            catalog
                .record_version(&KeptVersion {
                    projection: "p".into(),
                    file: file.into(),
                    version: version.into(),
                    wasm_sha256: "ab".into(),
                    current_since_unix_ms: None,
                })
                .unwrap();
            catalog.make_current("p", file).unwrap();
        }
        let request = |to: Option<&str>| RollbackRequest {
            projection: "p".into(),
            to: to.map(String::from),
        };
        let error = rollback_target(&data, &catalog, &request(Some("9"))).unwrap_err();
        assert!(
            error.to_string().contains("earlier versions kept are: 1"),
            "{error}"
        );
        // Version 1 is in the catalog, but its files were never written.
        let error = rollback_target(&data, &catalog, &request(None)).unwrap_err();
        assert!(error.to_string().contains("was not kept"), "{error}");
        let files = data.files_of("p/1-a.db");
        std::fs::create_dir_all(files.db.parent().unwrap()).unwrap();
        std::fs::write(&files.db, b"").unwrap();
        std::fs::write(&files.wasm, b"").unwrap();
        let (current, target) = rollback_target(&data, &catalog, &request(None)).unwrap();
        assert_eq!(
            (current.version.as_str(), target.version.as_str()),
            ("2", "1")
        );
    }
}
