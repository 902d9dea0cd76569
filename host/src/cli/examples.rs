//! The example projections compiled into the binary, `order_summary` and `payments` (built from
//! `plugins/` by `host/build.rs`), so that `projector dev` runs something on an empty data
//! directory: they project the order and payment events its demo workload appends.

use std::path::Path;

use anyhow::Context;

/// The example components: file name and bytes.
pub const EXAMPLES: [(&str, &[u8]); 2] = [
    (
        "order_summary.wasm",
        include_bytes!(env!("PROJECTOR_EXAMPLE_ORDER_SUMMARY")),
    ),
    (
        "payments.wasm",
        include_bytes!(env!("PROJECTOR_EXAMPLE_PAYMENTS")),
    ),
];

/// Writes the examples into `folder` when it holds no plugin (missing, or no `*.wasm`), and
/// returns the names written; leaves a folder with a plugin alone.
pub fn write_if_no_plugins(folder: &Path) -> anyhow::Result<Vec<&'static str>> {
    let holds_a_plugin = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .any(|entry| entry.file_name().to_string_lossy().ends_with(".wasm"));
    if holds_a_plugin {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(folder)
        .with_context(|| format!("creating the plugins folder {}", folder.display()))?;
    for (name, bytes) in EXAMPLES {
        let path = folder.join(name);
        // Written under a hidden name and renamed, so the folder's watcher never loads half a
        // module.
        let partial = folder.join(format!(".{name}.partial"));
        std::fs::write(&partial, bytes)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(EXAMPLES.map(|(name, _)| name).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_go_into_a_missing_or_empty_folder_only() -> anyhow::Result<()> {
        let temporary = tempfile::tempdir()?;
        let folder = temporary.path().join("plugins");
        assert_eq!(
            write_if_no_plugins(&folder)?,
            ["order_summary.wasm", "payments.wasm"]
        );
        assert_eq!(std::fs::read(folder.join("payments.wasm"))?, EXAMPLES[1].1);
        std::fs::remove_file(folder.join("payments.wasm"))?;
        // One plugin left: the folder is the user's now.
        assert!(write_if_no_plugins(&folder)?.is_empty());
        assert!(!folder.join("payments.wasm").exists());
        Ok(())
    }

    #[test]
    fn the_examples_are_components() {
        for (name, bytes) in EXAMPLES {
            // A component's preamble: `\0asm`, then version 0x0d and layer 1.
            assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "{name}");
        }
    }
}
