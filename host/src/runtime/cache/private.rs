//! Whether a file or directory of the compile cache belongs to this user alone.
//!
//! On Unix: owned by the effective user, and not writable (for the key: not readable either) by
//! its group or others. Elsewhere there is no mode to check and everything passes; the entries'
//! MACs still hold (see the module doc of [`super`]).

use std::fs::{File, Metadata, OpenOptions};
use std::path::Path;

/// Group and others may not write it: cache directories and entries.
pub(super) const NO_OTHER_WRITERS: u32 = 0o022;
/// Group and others may neither read nor write it: the key, which must stay secret.
pub(super) const OWNER_ONLY: u32 = 0o077;

/// Opens `path` for reading without following a symbolic link, so that the file checked (with
/// [`check`] on its handle's metadata) is the file read, whatever its name points to later.
pub(super) fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Fails unless `path` (whose metadata is `metadata`) is owned by this process's effective user
/// and has none of the `forbidden` mode bits; the error says what is wrong, then `fix`.
#[cfg(unix)]
pub(super) fn check(
    path: &Path,
    metadata: &Metadata,
    forbidden: u32,
    fix: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    if metadata.uid() != user {
        anyhow::bail!(
            "{} is owned by uid {}, not by uid {user} the projector runs as, so its owner could \
             make the projector run their code; {fix}",
            path.display(),
            metadata.uid()
        );
    }
    let mode = metadata.mode() & 0o7777;
    if mode & forbidden != 0 {
        let can = if forbidden & 0o044 != 0 {
            "read or write"
        } else {
            "write"
        };
        anyhow::bail!(
            "{} has mode {mode:04o}: its group or others can {can} it, and so could make the \
             projector run their code; {fix}",
            path.display()
        );
    }
    Ok(())
}

/// Nothing to check where files have no Unix owner and mode.
#[cfg(not(unix))]
pub(super) fn check(
    _path: &Path,
    _metadata: &Metadata,
    _forbidden: u32,
    _fix: &str,
) -> anyhow::Result<()> {
    Ok(())
}

/// Creates the directory `path` (its parent must exist) readable and writable by its owner only.
pub(super) fn create_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(path) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Makes renames into `dir` durable, so that after a crash a name points at whole contents.
pub(super) fn sync_dir(dir: &Path) {
    // Not every platform can open a directory; the rename itself is already atomic.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}
