//! Plugin modules as operators handle them: published into a plugins folder under a temporary
//! name and renamed into place, and rebuilt (other bytes, same code) to look like a new build.

use std::path::{Path, PathBuf};

/// Publishes `wasm` as `folder/name` atomically: written under a temporary name, then renamed.
pub fn deploy(folder: &Path, name: &str, wasm: &[u8]) -> anyhow::Result<PathBuf> {
    let temporary = folder.join(format!("{name}.tmp"));
    std::fs::write(&temporary, wasm)?;
    let path = folder.join(name);
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

/// The component `wasm` with a custom section appended: other bytes (another hash), the same
/// code and manifest, as a rebuild of unchanged source with another build id would be.
pub fn rebuilt(wasm: &[u8], tag: &str) -> Vec<u8> {
    let name = b"projector-test-build";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // the custom section's id
    out.extend(leb128(payload.len()));
    out.extend(payload);
    out
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The sha256 of `bytes`, hex, as the host names modules.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
