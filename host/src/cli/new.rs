//! `projector new <name> --lang rust|python|js`: writes a plugin folder that builds and passes
//! its own `projector test --expect` with nothing to edit, for someone who has only this binary.
//!
//! Everything the folder needs is compiled into the binary (`files`): the WIT contract, the Rust
//! SDK or the Python or JavaScript helpers from this repository, and a small template projection
//! that is the same in the three languages, with one fixture and one expectation for all three.

mod files;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

pub use files::Lang;

/// Arguments of `projector new`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The projection's name, also its manifest's: 1 to 64 of a-z, 0-9, _ and -, starting with
    /// a letter, not `main` or `temp`.
    pub name: String,
    /// The language of the plugin.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The folder to write (it must not exist, or be empty). Default: `./<name>`.
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

/// Writes the folder and says how to build and test it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_name(&args.name, args.lang)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = files::plugin(args.lang, &args.name);
    write(&dir, &files)?;
    let shown = dir.display();
    let wasm = files::wasm_path(args.lang, &args.name);
    println!(
        "wrote the {lang} projection `{name}` to {shown} ({count} files)\n\
         \nBuild it and test it:\
         \n  cd {shown}\
         \n  {build}\
         \n  projector test {wasm} --events events.jsonl --expect expected\
         \n\nREADME.md says how to change it and accept the new tables.",
        lang = args.lang.title(),
        name = args.name,
        count = files.len(),
        build = files::build_command(args.lang),
    );
    Ok(ExitCode::SUCCESS)
}

/// Refuses a name the host would refuse in a manifest, or that the language's build would.
pub fn check_name(name: &str, lang: Lang) -> anyhow::Result<()> {
    if let Err(message) = crate::runtime::check_name(name) {
        bail!("{message}; it becomes the projection's name (e.g. `projector new my_projection`)");
    }
    let crate_name = name.replace('-', "_");
    if lang == Lang::Rust && RESERVED_IN_RUST.contains(&crate_name.as_str()) {
        bail!(
            "{name:?} is reserved in Rust and cannot name the plugin's crate; pick another \
             name, e.g. `{name}_projection`"
        );
    }
    Ok(())
}

/// Names a Rust crate cannot take: the keywords, and the crates every build links.
const RESERVED_IN_RUST: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Writes `files` under `dir`, which must be missing or empty so nothing of the user's is
/// overwritten.
fn write(dir: &Path, files: &[files::File]) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} exists and is not empty; pass --dir with a new folder, or remove it",
                    dir.display()
                );
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", dir.display()));
        }
    }
    for file in files {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, file.text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        if file.executable {
            make_executable(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_manifest_rules() {
        for name in ["a", "orders", "cart_items-2", &"x".repeat(64)] {
            assert!(check_name(name, Lang::Python).is_ok(), "{name}");
        }
        for name in [
            "", "Orders", "2carts", "_x", "-x", "a.b", "a b", "main", "temp", "é",
        ] {
            let error = check_name(name, Lang::Js).unwrap_err().to_string();
            assert!(error.contains("a-z, 0-9, _ and -"), "{name}: {error}");
        }
        assert!(check_name(&"x".repeat(65), Lang::Rust).is_err());
    }

    #[test]
    fn rust_keywords_are_refused_for_rust_only() {
        let error = check_name("fn", Lang::Rust).unwrap_err().to_string();
        assert!(error.contains("reserved in Rust"), "{error}");
        assert!(check_name("proc-macro", Lang::Rust).is_err());
        assert!(check_name("fn", Lang::Python).is_ok());
    }

    #[test]
    fn a_non_empty_folder_is_refused_and_a_missing_one_created() -> anyhow::Result<()> {
        let temporary = tempfile::tempdir()?;
        let files = files::plugin(Lang::Python, "carts");
        let target = temporary.path().join("nested/carts");
        write(&target, &files)?;
        assert!(target.join("app.py").is_file());
        let error = write(&target, &files).unwrap_err().to_string();
        assert!(error.contains("is not empty"), "{error}");
        let empty = temporary.path().join("empty");
        std::fs::create_dir(&empty)?;
        write(&empty, &files)?;
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn the_python_build_script_is_executable() -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let temporary = tempfile::tempdir()?;
        write(temporary.path(), &files::plugin(Lang::Python, "carts"))?;
        let mode = std::fs::metadata(temporary.path().join("build.sh"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        Ok(())
    }
}
