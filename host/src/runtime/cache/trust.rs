//! Telling the entries this host stored from any other file: the cache directory's key, and the
//! MAC recorded beside each entry (see the module doc of [`super`] for what this defends against).
//!
//! An entry `<name>` is trusted when `<name>.hmac` holds, in hex,
//! HMAC-SHA256(key, [`DOMAIN`] ‖ name ‖ `\n` ‖ SHA-256(contents)): the name is covered so that an
//! entry and its record moved together under another module's name are refused too.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail, ensure};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use super::private::{self, NO_OTHER_WRITERS, OWNER_ONLY};

/// The key's file in the cache directory: 32 random bytes, readable by the owner only.
pub(super) const KEY_FILE: &str = "key";
/// Appended to an entry's name to name its MAC record.
pub(super) const MAC_SUFFIX: &str = ".hmac";
/// The largest entry read: a Python plugin compiles to about 32 MB, so anything near this is not
/// one of ours, and reading it whole must not exhaust memory.
pub const MAX_ENTRY_BYTES: u64 = 512 << 20;

/// Starts every MAC'd message, so that the key signs nothing else by accident.
const DOMAIN: &[u8] = b"projector compiled plugin v1\n";
const KEY_BYTES: usize = 32;
/// A MAC record is 64 hex digits and a newline; anything much longer is not one.
const MAX_RECORD_BYTES: u64 = 256;

/// A cache directory found private to this user, and its key.
#[derive(Debug)]
pub(super) struct Trust {
    key: hmac::Key,
}

/// What the cache holds under one name.
pub(super) enum Entry {
    /// Nothing: compile.
    Absent,
    /// The contents this host stored, read whole and checked; `file` is still open on them.
    Trusted { bytes: Vec<u8>, file: File },
    /// A file this host cannot vouch for, and why.
    Refused(anyhow::Error),
}

impl Trust {
    /// Prepares `dir` for use: creates it (mode 0700) if missing, checks that it is private to
    /// this user, and reads its key, making one on first use.
    pub(super) fn open(dir: &Path) -> anyhow::Result<Trust> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        private::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let metadata =
            std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
        ensure!(metadata.is_dir(), "{} is not a directory", dir.display());
        private::check(
            dir,
            &metadata,
            NO_OTHER_WRITERS,
            &format!(
                "run `chmod go-w {}` (or delete the directory) to use the cache",
                dir.display()
            ),
        )?;
        Ok(Trust { key: key(dir)? })
    }

    /// The MAC record to store beside the entry `name` holding `bytes`.
    pub(super) fn record(&self, name: &str, bytes: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &message(name, bytes));
        format!("{}\n", hex::encode(tag.as_ref()))
    }

    /// Reads the entry `name` of `dir` and checks it is one this host stored.
    pub(super) fn read(&self, dir: &Path, name: &str) -> Entry {
        let path = dir.join(name);
        match private::open_no_follow(&path) {
            Ok(file) => match self.verify(&path, name, &file) {
                Ok(bytes) => Entry::Trusted { bytes, file },
                Err(error) => Entry::Refused(error),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Entry::Absent,
            Err(error) => Entry::Refused(
                anyhow!(error).context("opening it (a symbolic link is never followed)"),
            ),
        }
    }

    fn verify(&self, path: &Path, name: &str, file: &File) -> anyhow::Result<Vec<u8>> {
        let metadata = file.metadata().context("reading its metadata")?;
        ensure!(metadata.is_file(), "it is not a regular file");
        // This host's entries are its user's and mode 0600; anything else was put there.
        private::check(path, &metadata, NO_OTHER_WRITERS, "it is not used")?;
        ensure!(
            metadata.len() <= MAX_ENTRY_BYTES,
            "it has {} bytes, more than the {MAX_ENTRY_BYTES} an entry may have",
            metadata.len()
        );
        let mut bytes = Vec::with_capacity(metadata.len() as usize);
        file.take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("reading it")?;
        ensure!(
            bytes.len() as u64 <= MAX_ENTRY_BYTES,
            "it grew past {MAX_ENTRY_BYTES} bytes while being read"
        );
        let tag = read_record(&mac_path(path))?;
        hmac::verify(&self.key, &message(name, &bytes), &tag).map_err(|_| {
            anyhow!(
                "its contents do not match the MAC recorded for it: it was changed, cut short, \
                 moved from another name or not written by this host"
            )
        })?;
        Ok(bytes)
    }
}

/// Where the MAC record of the entry at `entry` is kept.
pub(super) fn mac_path(entry: &Path) -> PathBuf {
    let mut name = OsString::from(entry.as_os_str());
    name.push(MAC_SUFFIX);
    PathBuf::from(name)
}

/// What the key signs for the entry `name` holding `bytes`.
fn message(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + name.len() + 1 + 32);
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(name.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(&Sha256::digest(bytes));
    message
}

/// The tag in the MAC record at `path`.
fn read_record(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = match private::open_no_follow(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            bail!("it has no MAC record ({} is missing)", path.display())
        }
        Err(error) => {
            return Err(anyhow!(error).context(format!("opening {}", path.display())));
        }
    };
    let mut text = String::new();
    file.take(MAX_RECORD_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    hex::decode(text.trim()).with_context(|| format!("{} is not a MAC record", path.display()))
}

/// The key of the cache in `dir`, made on first use.
fn key(dir: &Path) -> anyhow::Result<hmac::Key> {
    let path = dir.join(KEY_FILE);
    if let Some(key) = read_key(&path)? {
        return Ok(key);
    }
    let mut value = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut value)
        .map_err(|_| anyhow!("the operating system gave no random bytes for the cache key"))?;
    // Written whole under a temporary name (mode 0600) and linked into place only if no other
    // process got there first, so that two processes never use different keys.
    let mut temporary = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    temporary.write_all(&value)?;
    temporary.as_file().sync_all()?;
    match temporary.persist_noclobber(&path) {
        Ok(_) => {
            private::sync_dir(dir);
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &value))
        }
        Err(error) if error.error.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(&path)?.with_context(|| format!("{} vanished", path.display()))
        }
        Err(error) => Err(anyhow!(error.error).context(format!("creating {}", path.display()))),
    }
}

/// The key in `path`, if there is one; an error if it cannot be trusted to be secret.
fn read_key(path: &Path) -> anyhow::Result<Option<hmac::Key>> {
    let fix = "delete it: a new key is made and the cached plugins are recompiled";
    let mut file = match private::open_no_follow(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(anyhow!(error).context(format!("opening {}; {fix}", path.display())));
        }
    };
    let metadata = file.metadata()?;
    ensure!(
        metadata.is_file() && metadata.len() == KEY_BYTES as u64,
        "{} is not a {KEY_BYTES}-byte key; {fix}",
        path.display()
    );
    private::check(path, &metadata, OWNER_ONLY, fix)?;
    let mut value = [0u8; KEY_BYTES];
    file.read_exact(&mut value)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(hmac::Key::new(hmac::HMAC_SHA256, &value)))
}
