//! The compile cache loads only what it stored, and still loads (by compiling) when it refuses.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::Linker;

use super::*;

/// The smallest component: no imports, no exports.
const EMPTY: &[u8] = b"\0asm\x0d\x00\x01\x00";

/// Another component, compiling to different code: it holds an empty core module.
fn with_module() -> Vec<u8> {
    [EMPTY, &[0x01, 0x08], b"\0asm\x01\x00\x00\x00"].concat()
}

fn sha(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// A cache in a fresh `.compiled` under `root`, as one process would make it.
fn cache(root: &Path, engine: &Engine) -> CompileCache {
    CompileCache::new(&root.join(".compiled"), engine)
}

fn entry(cache: &CompileCache, wasm: &[u8]) -> PathBuf {
    cache
        .dir
        .join(format!("{}-{}.cwasm", sha(wasm), cache.engine_hash))
}

/// Loads `wasm` through `cache`, and checks the component is `wasm`'s and instantiates.
fn load(cache: &CompileCache, engine: &Engine, wasm: &[u8]) {
    let component = cache.load(engine, &sha(wasm), wasm).unwrap();
    assert_eq!(
        component.serialize().unwrap(),
        engine.precompile_component(wasm).unwrap(),
        "the component loaded is the one asked for"
    );
    Linker::<()>::new(engine)
        .instantiate(&mut Store::new(engine, ()), &component)
        .unwrap();
}

fn stats(hits: u64, misses: u64, refused: u64) -> CacheStats {
    CacheStats {
        hits,
        misses,
        refused,
    }
}

fn cwasm_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .count()
    })
}

#[test]
fn the_two_test_components_compile_to_different_code() {
    let engine = Engine::default();
    assert_ne!(
        engine.precompile_component(EMPTY).unwrap(),
        engine.precompile_component(&with_module()).unwrap()
    );
}

#[test]
fn a_second_load_is_a_hit_in_this_process_and_the_next() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 1, 0));
    assert!(entry(&cache, EMPTY).exists());
    assert!(trust::mac_path(&entry(&cache, EMPTY)).exists());
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(1, 1, 0));
    let next = self::cache(root.path(), &engine);
    load(&next, &engine, EMPTY);
    assert_eq!(next.stats(), stats(1, 0, 0), "the key is kept on disk");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache.dir), 0o700);
        assert_eq!(mode(&cache.dir.join(trust::KEY_FILE)), 0o600);
        assert_eq!(mode(&entry(&cache, EMPTY)), 0o600);
    }
}

#[test]
fn an_entry_replaced_by_another_components_code_is_recompiled() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    let other = with_module();
    load(&cache, &engine, EMPTY);
    load(&cache, &engine, &other);
    std::fs::copy(entry(&cache, &other), entry(&cache, EMPTY)).unwrap();
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 3, 1));
    // The refused entry was replaced by a good one.
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(1, 3, 1));
}

#[test]
fn an_entry_moved_with_its_mac_record_under_another_name_is_recompiled() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    let other = with_module();
    load(&cache, &engine, &other);
    std::fs::rename(entry(&cache, &other), entry(&cache, EMPTY)).unwrap();
    std::fs::rename(
        trust::mac_path(&entry(&cache, &other)),
        trust::mac_path(&entry(&cache, EMPTY)),
    )
    .unwrap();
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 2, 1));
}

#[test]
fn an_entry_of_garbage_is_recompiled() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    load(&cache, &engine, EMPTY);
    std::fs::write(entry(&cache, EMPTY), b"\x7fELF not really").unwrap();
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 2, 1));
}

#[test]
fn an_entry_without_a_mac_record_is_recompiled() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    load(&cache, &engine, EMPTY);
    std::fs::remove_file(trust::mac_path(&entry(&cache, EMPTY))).unwrap();
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 2, 1));
    assert!(trust::mac_path(&entry(&cache, EMPTY)).exists());
}

#[test]
fn an_entry_recorded_with_another_key_is_recompiled() {
    let engine = Engine::default();
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (cache(first.path(), &engine), cache(second.path(), &engine));
    load(&first, &engine, EMPTY);
    load(&second, &engine, &with_module());
    let (from, to) = (entry(&first, EMPTY), entry(&second, EMPTY));
    std::fs::copy(&from, &to).unwrap();
    std::fs::copy(trust::mac_path(&from), trust::mac_path(&to)).unwrap();
    load(&second, &engine, EMPTY);
    assert_eq!(second.stats(), stats(0, 2, 1));
}

#[test]
fn an_entry_over_the_size_bound_is_refused_without_being_read() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    load(&cache, &engine, EMPTY);
    // Sparse: takes no disk, and would take 512 MiB of memory if it were read.
    let file = std::fs::File::options()
        .write(true)
        .open(entry(&cache, EMPTY))
        .unwrap();
    file.set_len(MAX_ENTRY_BYTES + 1).unwrap();
    drop(file);
    let name = entry(&cache, EMPTY).file_name().unwrap().to_owned();
    match cache
        .trust()
        .unwrap()
        .read(&cache.dir, name.to_str().unwrap())
    {
        Entry::Refused(error) => assert!(error.to_string().contains("more than"), "{error}"),
        _ => panic!("an entry over the bound is refused"),
    }
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 2, 1));
}

#[cfg(unix)]
#[test]
fn an_entry_behind_a_symbolic_link_is_recompiled() {
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    load(&cache, &engine, EMPTY);
    let elsewhere = root.path().join("elsewhere.cwasm");
    std::fs::rename(entry(&cache, EMPTY), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, entry(&cache, EMPTY)).unwrap();
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 2, 1));
}

#[cfg(unix)]
#[test]
fn a_directory_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    for mode in [0o777, 0o775, 0o720] {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        // A good entry, stored while the directory was private...
        let cache = cache(root.path(), &engine);
        load(&cache, &engine, EMPTY);
        // ...is not loaded once others could have replaced it.
        std::fs::set_permissions(&cache.dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let next = self::cache(root.path(), &engine);
        load(&next, &engine, EMPTY);
        load(&next, &engine, EMPTY);
        assert_eq!(next.stats(), stats(0, 2, 0), "mode {mode:o}");
        assert_eq!(cwasm_files(&next.dir), 1, "mode {mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn a_directory_made_by_the_cache_is_private_and_one_made_open_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let dir = root.path().join(".compiled");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cache = CompileCache::new(&dir, &engine);
    load(&cache, &engine, EMPTY);
    assert_eq!(cache.stats(), stats(0, 1, 0));
    assert!(!dir.join(trust::KEY_FILE).exists(), "no key is made there");
    assert_eq!(cwasm_files(&dir), 0);
}

#[cfg(unix)]
#[test]
fn a_key_others_can_read_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = cache(root.path(), &engine);
    load(&cache, &engine, EMPTY);
    let key = cache.dir.join(trust::KEY_FILE);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let next = self::cache(root.path(), &engine);
    load(&next, &engine, EMPTY);
    assert_eq!(next.stats(), stats(0, 1, 0));
}

#[test]
fn pruning_keeps_the_most_recently_used_within_the_bound_with_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let age = |path: &Path, seconds: u64| {
        let file = std::fs::File::options().append(true).open(path).unwrap();
        file.set_modified(now - Duration::from_secs(seconds))
            .unwrap();
    };
    for (index, name) in ["old", "middle", "new"].iter().enumerate() {
        let path = dir.path().join(format!("{name}.cwasm"));
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        age(&path, 100 - index as u64 * 10);
        std::fs::write(trust::mac_path(&path), "00\n").unwrap();
    }
    std::fs::write(dir.path().join("other.txt"), vec![0u8; 1000]).unwrap();
    // A record whose entry is gone: kept while it may be a store under way, then deleted.
    std::fs::write(dir.path().join("fresh.cwasm.hmac"), "00\n").unwrap();
    std::fs::write(dir.path().join("orphan.cwasm.hmac"), "00\n").unwrap();
    age(&dir.path().join("orphan.cwasm.hmac"), 7200);
    prune::prune(dir.path(), 250);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "fresh.cwasm.hmac",
            "middle.cwasm",
            "middle.cwasm.hmac",
            "new.cwasm",
            "new.cwasm.hmac",
            "other.txt"
        ]
    );
    prune::prune(dir.path(), 10);
    assert!(
        dir.path().join("new.cwasm").exists(),
        "the newest always stays"
    );
    assert!(!dir.path().join("middle.cwasm").exists());
    assert!(!dir.path().join("middle.cwasm.hmac").exists());
}
