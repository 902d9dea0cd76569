//! Tests of the `Watcher` against a real folder and real notify, in both modes.
//!
//! The settle thread runs on the real clock, so these wait with generous timeouts, and claim
//! "nothing happened" only after a second of silence.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{Change, WatchMode, WatchOptions, Watcher};

const PATIENCE: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_secs(1);

fn options(mode: WatchMode) -> WatchOptions {
    WatchOptions {
        mode,
        debounce: Duration::from_millis(100),
        poll_interval: Duration::from_millis(100),
        ..WatchOptions::default()
    }
}

/// The next batch that holds a change (the initial scan of an empty folder holds none), as
/// `+name=content` (content shown if short), `-name` and `!name`.
async fn next(watcher: &mut Watcher) -> anyhow::Result<Vec<String>> {
    loop {
        let batch = tokio::time::timeout(PATIENCE, watcher.next()).await?;
        let batch = batch.ok_or_else(|| anyhow::anyhow!("the watcher ended"))?;
        if !batch.is_empty() {
            return Ok(batch.iter().map(summary).collect());
        }
    }
}

fn summary(change: &Change) -> String {
    let name = change
        .path()
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    match change {
        Change::Present { wasm, sha256, .. } => {
            assert_eq!(*sha256, hex::encode(Sha256::digest(wasm)));
            match std::str::from_utf8(wasm) {
                Ok(text) if wasm.len() <= 64 => format!("+{name}={text}"),
                _ => format!("+{name}:{}", &sha256[..12]),
            }
        }
        Change::Removed { .. } => format!("-{name}"),
        Change::Unreadable { reason, .. } => format!("!{name} ({reason})"),
    }
}

async fn assert_silence(watcher: &mut Watcher) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + SILENCE;
    while let Ok(batch) = tokio::time::timeout_at(deadline, watcher.next()).await {
        let batch: Option<Vec<String>> = batch.map(|batch| batch.iter().map(summary).collect());
        if batch.as_ref().is_none_or(|b| !b.is_empty()) {
            return Err(anyhow::anyhow!("expected nothing, got {batch:?}"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn an_empty_folder_yields_an_empty_initial_scan_at_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = WatchOptions {
        debounce: Duration::from_secs(30),
        ..options(WatchMode::Notify)
    };
    let mut watcher = Watcher::start(dir.path(), options)?;
    let first = tokio::time::timeout(PATIENCE, watcher.next()).await?;
    assert_eq!(first.map(|b| b.len()), Some(0));
    Ok(())
}

#[tokio::test]
async fn initial_scan_reports_the_plugins_already_there_sorted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("b.wasm"), "bee")?;
    fs::write(dir.path().join("a.wasm"), "ay")?;
    fs::write(dir.path().join(".hidden.wasm"), "no")?;
    fs::write(dir.path().join("c.wasm.tmp"), "no")?;
    fs::write(dir.path().join("notes.txt"), "no")?;
    fs::create_dir(dir.path().join("sub.wasm"))?;
    fs::write(dir.path().join("sub.wasm").join("inner.wasm"), "no")?;
    // A long debounce: the files there at start are reported at once all the same.
    let options = WatchOptions {
        debounce: Duration::from_secs(30),
        ..options(WatchMode::Notify)
    };
    let mut watcher = Watcher::start(dir.path(), options)?;
    assert_eq!(watcher.mode(), WatchMode::Notify);
    assert_eq!(next(&mut watcher).await?, ["+a.wasm=ay", "+b.wasm=bee"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn only_visible_wasm_names_in_the_folder_count() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Auto))?;
    for name in [
        ".x.wasm.swp",
        "x.wasm.tmp",
        "x.wasm~",
        "x.wasm.part",
        ".x.wasm",
        "x.txt",
    ] {
        fs::write(dir.path().join(name), name)?;
    }
    fs::create_dir(dir.path().join("sub"))?;
    fs::write(dir.path().join("sub").join("nested.wasm"), "nested")?;
    fs::create_dir(dir.path().join("folder.wasm"))?;
    assert_silence(&mut watcher).await?;
    fs::write(dir.path().join("x.wasm"), "real")?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=real"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn a_burst_of_writes_is_one_present_with_the_final_bytes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let options = WatchOptions {
        debounce: Duration::from_millis(300),
        ..options(WatchMode::Notify)
    };
    let mut watcher = Watcher::start(dir.path(), options)?;
    let path = dir.path().join("growing.wasm");
    let mut file = File::create(&path)?;
    for _ in 0..20 {
        file.write_all(b"ab")?;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    drop(file);
    assert_eq!(
        next(&mut watcher).await?,
        [format!("+growing.wasm={}", "ab".repeat(20))]
    );
    assert_silence(&mut watcher).await
}

/// Writes 16 MiB in place, in chunks, the way `cp` does.
async fn copy_in_chunks(path: &Path) -> anyhow::Result<Vec<u8>> {
    let content: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut file = File::create(path)?;
    for chunk in content.chunks(256 * 1024) {
        file.write_all(chunk)?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(content)
}

#[tokio::test]
async fn an_in_place_copy_is_reported_once_whole() -> anyhow::Result<()> {
    for mode in [WatchMode::Notify, WatchMode::Poll] {
        let dir = tempfile::tempdir()?;
        let mut watcher = Watcher::start(dir.path(), options(mode))?;
        let content = copy_in_chunks(&dir.path().join("big.wasm")).await?;
        let sha256 = hex::encode(Sha256::digest(&content));
        assert_eq!(
            next(&mut watcher).await?,
            [format!("+big.wasm:{}", &sha256[..12])],
            "{mode:?}"
        );
        assert_silence(&mut watcher).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_atomic_rename_is_one_present() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("x.wasm"), "old")?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Notify))?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=old"]);
    let temporary = dir.path().join("x.wasm.tmp");
    let mut file = File::create(&temporary)?;
    for _ in 0..5 {
        file.write_all(b"new")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(file);
    fs::rename(&temporary, dir.path().join("x.wasm"))?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=newnewnewnewnew"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn renaming_away_is_removed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let elsewhere = tempfile::tempdir()?;
    fs::write(dir.path().join("x.wasm"), "x")?;
    fs::write(dir.path().join("y.wasm"), "y")?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Notify))?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=x", "+y.wasm=y"]);
    fs::rename(dir.path().join("x.wasm"), dir.path().join("x.wasm.old"))?;
    assert_eq!(next(&mut watcher).await?, ["-x.wasm"]);
    fs::rename(dir.path().join("y.wasm"), elsewhere.path().join("y.wasm"))?;
    assert_eq!(next(&mut watcher).await?, ["-y.wasm"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn unchanged_content_is_not_reported_again_until_removed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("x.wasm");
    fs::write(&path, "same")?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Notify))?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=same"]);
    let touched = SystemTime::now() + Duration::from_secs(60);
    OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_modified(touched)?;
    fs::write(&path, "same")?;
    assert_silence(&mut watcher).await?;
    fs::remove_file(&path)?;
    assert_eq!(next(&mut watcher).await?, ["-x.wasm"]);
    fs::write(&path, "same")?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=same"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn poll_mode_reports_create_modify_and_remove() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Poll))?;
    assert_eq!(watcher.mode(), WatchMode::Poll);
    let path = dir.path().join("x.wasm");
    fs::write(&path, "one")?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=one"]);
    fs::write(&path, "two, longer")?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=two, longer"]);
    fs::write(&path, "two, longer")?;
    assert_silence(&mut watcher).await?;
    fs::remove_file(&path)?;
    assert_eq!(next(&mut watcher).await?, ["-x.wasm"]);
    assert_silence(&mut watcher).await
}

/// notify's polling compares modification times in whole seconds only; the rescans must not.
#[tokio::test]
async fn poll_mode_sees_a_rewrite_that_keeps_the_modification_time() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("x.wasm");
    fs::write(&path, "one")?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Poll))?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=one"]);
    let modified = fs::metadata(&path)?.modified()?;
    fs::write(&path, "two")?;
    OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_modified(modified)?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=two"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn several_files_written_together_settle_in_one_batch() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Files that settle within half the debounce of each other are gathered.
    let debounce = Duration::from_millis(200);
    let options = WatchOptions {
        debounce,
        ..options(WatchMode::Notify)
    };
    let mut watcher = Watcher::start(dir.path(), options)?;
    fs::write(dir.path().join("b.wasm"), "b")?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    fs::write(dir.path().join("a.wasm"), "a")?;
    assert_eq!(next(&mut watcher).await?, ["+a.wasm=a", "+b.wasm=b"]);
    assert_silence(&mut watcher).await
}

#[tokio::test]
async fn a_file_over_the_limit_is_unreadable_and_never_read() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("x.wasm");
    fs::write(&path, "seventeen bytes!!")?;
    let options = WatchOptions {
        max_file_bytes: 16,
        ..options(WatchMode::Notify)
    };
    let mut watcher = Watcher::start(dir.path(), options)?;
    assert_eq!(
        next(&mut watcher).await?,
        ["!x.wasm (17 bytes, more than the limit of 16 bytes)"]
    );
    fs::write(&path, "seventeen bytes!!")?;
    assert_silence(&mut watcher).await?;
    fs::write(&path, "sixteen bytes!!!")?;
    assert_eq!(next(&mut watcher).await?, ["+x.wasm=sixteen bytes!!!"]);
    Ok(())
}

#[tokio::test]
async fn a_deleted_folder_is_watched_again_once_it_is_back() -> anyhow::Result<()> {
    for mode in [WatchMode::Notify, WatchMode::Poll] {
        let parent = tempfile::tempdir()?;
        let dir = parent.path().join("plugins");
        fs::create_dir(&dir)?;
        fs::write(dir.join("a.wasm"), "a")?;
        let rescan_interval = Duration::from_secs(3);
        let mut watcher = Watcher::start(
            &dir,
            WatchOptions {
                rescan_interval,
                ..options(mode)
            },
        )?;
        assert_eq!(next(&mut watcher).await?, ["+a.wasm=a"], "{mode:?}");
        fs::remove_dir_all(&dir)?;
        assert_eq!(next(&mut watcher).await?, ["-a.wasm"], "{mode:?}");
        assert_silence(&mut watcher).await?;
        // Found by the next rescan at the latest, which watches the folder again.
        fs::create_dir(&dir)?;
        fs::write(dir.join("b.wasm"), "b")?;
        assert_eq!(next(&mut watcher).await?, ["+b.wasm=b"], "{mode:?}");
        // Seen well before the rescan after that: the folder is watched again.
        fs::write(dir.join("b.wasm"), "bb")?;
        let batch = tokio::time::timeout(Duration::from_secs(2), next(&mut watcher)).await??;
        assert_eq!(batch, ["+b.wasm=bb"], "{mode:?}");
    }
    Ok(())
}

#[tokio::test]
async fn next_is_cancel_safe() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut watcher = Watcher::start(dir.path(), options(WatchMode::Notify))?;
    assert_eq!(
        watcher.next().await.map(|b| b.len()),
        Some(0),
        "the initial scan"
    );
    fs::write(dir.path().join("x.wasm"), "x")?;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let batch = loop {
        tokio::select! {
            batch = watcher.next() => break batch,
            () = tokio::time::sleep(Duration::from_millis(7)) => {}
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no batch");
    };
    let batch: Vec<String> = batch.unwrap_or_default().iter().map(summary).collect();
    assert_eq!(batch, ["+x.wasm=x"]);
    Ok(())
}

#[test]
fn starting_on_a_missing_folder_says_which() {
    let dir = std::env::temp_dir().join("projector-reload-test-no-such-folder");
    let error = Watcher::start(&dir, WatchOptions::default())
        .err()
        .map(|e| format!("{e:#}"));
    let error = error.unwrap_or_default();
    assert!(error.contains("cannot watch the plugins folder"), "{error}");
    assert!(error.contains("no-such-folder"), "{error}");
}
