//! What the plugins folder holds right now: which names are plugins, a file's stamp, its bytes.
//!
//! Plain blocking filesystem calls, made only on the settle thread.
//! No memory of earlier looks (that is `folder`) and no notify (that is `watch`).

use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

/// What a plugin path holds, as far as its metadata tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Presence {
    /// Nothing, or something that is not a file (such as a folder named `x.wasm`).
    Missing,
    /// A file, with its stamp.
    File(Stamp),
    /// The path cannot be looked at (permissions, I/O error): why.
    Unknown(String),
}

/// Size, times and identity of a file: while none of them moves, its bytes are taken to be the
/// same.
///
/// On Unix the inode and the change time are included: unlike the modification time, nobody
/// can set the change time, so a rename over the file or a write that restores the old
/// modification time still shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Presence {
    /// Looks at `path` now (following symbolic links).
    pub(super) fn of(path: &Path) -> Presence {
        match fs::metadata(path) {
            Ok(metadata) if metadata.is_file() => Presence::File(Stamp::of(&metadata)),
            Ok(_) => Presence::Missing,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                Presence::Missing
            }
            Err(error) => Presence::Unknown(format!("cannot look at {}: {error}", path.display())),
        }
    }
}

impl Stamp {
    /// The file's size in bytes.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    fn of(metadata: &Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: (metadata.dev(), metadata.ino()),
            #[cfg(unix)]
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// Whether `name` is a plugin's file name: it ends in `.wasm` and is not hidden.
///
/// Temporaries of editors, downloaders and atomic writers (`x.wasm.tmp`, `x.wasm~`,
/// `x.wasm.part`, `.x.wasm.swp`) fail one of the two, so a file is only seen once it has its
/// final name.
pub(super) fn is_plugin_name(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.ends_with(b".wasm") && !name.starts_with(b".")
}

/// The plugin files in `dir` (by name only: folders are weeded out by [`Presence::of`]), sorted.
pub(super) fn plugin_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if is_plugin_name(&entry.file_name()) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads the file at `path`, expecting `len` bytes and refusing more than `max_bytes` even if
/// the file grows while it is read.
pub(super) fn read(path: &Path, len: u64, max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(max_bytes)).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(anyhow::anyhow!(
            "{} grew past the limit of {max_bytes} bytes while being read",
            path.display()
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_end_in_wasm_and_are_not_hidden() {
        let cases = [
            ("counter.wasm", true),
            ("order-summary.v2.wasm", true),
            (".wasm", false),
            (".counter.wasm", false),
            (".counter.wasm.swp", false),
            ("counter.wasm.tmp", false),
            ("counter.wasm~", false),
            ("counter.wasm.part", false),
            ("counter.wasm.old", false),
            ("counter.WASM", false),
            ("counter.wat", false),
            ("wasm", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_plugin_name(OsStr::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn a_folder_named_like_a_plugin_is_missing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("folder.wasm");
        fs::create_dir(&path)?;
        assert_eq!(Presence::of(&path), Presence::Missing);
        assert_eq!(
            Presence::of(&dir.path().join("absent.wasm")),
            Presence::Missing
        );
        Ok(())
    }

    #[test]
    fn reading_refuses_more_than_the_limit() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big.wasm");
        fs::write(&path, [0u8; 20])?;
        assert_eq!(read(&path, 20, 20)?.len(), 20);
        let error = read(&path, 10, 10).unwrap_err();
        assert!(
            format!("{error:#}").contains("limit of 10 bytes"),
            "{error:#}"
        );
        Ok(())
    }
}
