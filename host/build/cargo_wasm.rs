//! Building a Cargo workspace of guests for wasm32-wasip2 from a build script, shared by
//! `host/build.rs` (the example plugins `projector dev` embeds) and `tests/build.rs` (every guest
//! the tests run).

use std::path::Path;
use std::process::Command;

/// Tells cargo to run the build script again when anything a build of `workspace` reads
/// changes: its manifest and lock file, and each member crate's manifest, `src/` and `wit/`
/// (members are the folders holding a `Cargo.toml`; other folders, such as `plugins/js` with
/// its `node_modules`, are not scanned).
pub fn rerun_if_workspace_changes(workspace: &Path) {
    let mut watched = vec![workspace.join("Cargo.toml"), workspace.join("Cargo.lock")];
    let members = std::fs::read_dir(workspace).expect("listing the guest workspace");
    for member in members.flatten().map(|entry| entry.path()) {
        if member.join("Cargo.toml").is_file() {
            for part in ["Cargo.toml", "src", "wit"] {
                if member.join(part).exists() {
                    watched.push(member.join(part));
                }
            }
        }
    }
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Runs `cargo build --release --target wasm32-wasip2` with `extra` arguments (packages,
/// features) in `workspace`, into the workspace's own `target/`, with a clean environment so the
/// outer build's flags, target dir and jobserver do not leak into it (and its lock on the outer
/// target dir cannot block it). Panics with the output, and a hint when the target is missing.
pub fn cargo_build(workspace: &Path, extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .args(extra)
        .current_dir(workspace)
        .env_clear();
    for key in [
        "PATH",
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "TMPDIR",
    ] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    let output = command.output().expect("running cargo for the wasm guests");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint =
            if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
                "\nhint: run `rustup target add wasm32-wasip2`"
            } else {
                ""
            };
        panic!(
            "building the wasm guests in {} (extra arguments {extra:?}) failed:\n{stderr}{hint}",
            workspace.display()
        );
    }
}
