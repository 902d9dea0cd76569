//! Builds the example plugins in `plugins/`, `order_summary` and `payments`, for wasm32-wasip2,
//! so the binary can carry them: `projector dev` writes them into an empty plugins folder, and
//! its demo workload appends the events they project.
//!
//! They are built in `plugins/target`, like `tests/build.rs` and `scripts/dev` do, so a
//! workspace build compiles them once; a nested cargo on the outer target dir would wait
//! forever for the outer build's lock.

#[path = "build/cargo_wasm.rs"]
mod cargo_wasm;

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("build/cargo_wasm.rs").display()
    );
    cargo_wasm::rerun_if_workspace_changes(&plugins);
    // The whole workspace, as tests/build.rs builds it, so the two builds find each other fresh.
    cargo_wasm::cargo_build(&plugins, &[]);
    for (variable, crate_name) in [
        ("PROJECTOR_EXAMPLE_ORDER_SUMMARY", "order_summary"),
        ("PROJECTOR_EXAMPLE_PAYMENTS", "payments"),
    ] {
        let wasm = plugins
            .join("target/wasm32-wasip2/release")
            .join(format!("{crate_name}.wasm"));
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        println!("cargo:rustc-env={variable}={}", wasm.display());
    }
}
