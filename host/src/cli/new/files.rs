//! The files `projector new` writes, compiled into the binary: the template projection (in
//! `template/`, one per language, with the fixture and expectation they share) and, included
//! from their one place in this repository, the WIT contract and the language's SDK or helpers.
//!
//! Only the template files are filled in (`{{name}}`, `{{lib}}`); the included sources are
//! written exactly as they are here, so a plugin folder holds the same SDK the examples test.

use std::borrow::Cow;

use clap::ValueEnum;

/// A plugin language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust with the SDK (`projector-sdk`), built by cargo for wasm32-wasip2.
    Rust,
    /// Python with the `projector` helpers, built by componentize-py.
    Python,
    /// JavaScript with the `projector` helpers, built by componentize-qjs (QuickJS).
    Js,
}

impl Lang {
    /// The language's name in prose.
    pub fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

/// One file of a plugin folder.
#[derive(Debug)]
pub struct File {
    /// The path inside the folder, `/`-separated.
    pub path: &'static str,
    /// The content.
    pub text: Cow<'static, str>,
    /// Whether to mark it executable (build scripts).
    pub executable: bool,
}

/// The files of a new `lang` plugin named `name` (already checked).
pub fn plugin(lang: Lang, name: &str) -> Vec<File> {
    let fill = |template: &str| -> Cow<'static, str> {
        Cow::Owned(
            template
                .replace("{{name}}", name)
                .replace("{{lib}}", &name.replace('-', "_")),
        )
    };
    let mut files = vec![
        file("README.md", fill(&readme(lang, name))),
        file("events.jsonl", EVENTS.into()),
        file("expected/cart_items.jsonl", EXPECTED_CART_ITEMS.into()),
        file("expected/_dead_letters.jsonl", EXPECTED_DEAD_LETTERS.into()),
    ];
    files.extend(WIT.iter().map(|(path, text)| file(path, (*text).into())));
    match lang {
        Lang::Rust => {
            files.push(file("Cargo.toml", fill(RUST_CARGO_TOML)));
            // The versions the examples are tested with; cargo drops what this crate does not use.
            files.push(file("Cargo.lock", RUST_CARGO_LOCK.into()));
            files.push(file("src/lib.rs", fill(RUST_LIB)));
            files.push(file(".gitignore", "/target\n".into()));
            files.extend(
                RUST_SDK
                    .iter()
                    .map(|(path, text)| file(path, (*text).into())),
            );
        }
        Lang::Python => {
            files.push(file("app.py", fill(PYTHON_APP)));
            files.push(File {
                executable: true,
                ..file("build.sh", fill(PYTHON_BUILD))
            });
            files.push(file("requirements.txt", PYTHON_REQUIREMENTS.into()));
            files.push(file(".gitignore", "/.venv\n/target\n__pycache__/\n".into()));
            files.extend(
                PYTHON_HELPERS
                    .iter()
                    .map(|(path, text)| file(path, (*text).into())),
            );
        }
        Lang::Js => {
            files.push(file("index.js", fill(JS_INDEX)));
            files.push(file("package.json", fill(JS_PACKAGE)));
            files.push(file(".gitignore", "/node_modules\n/target\n".into()));
            files.extend(
                JS_HELPERS
                    .iter()
                    .map(|(path, text)| file(path, (*text).into())),
            );
        }
    }
    files
}

/// The component a build writes, relative to the folder.
pub fn wasm_path(lang: Lang, name: &str) -> String {
    match lang {
        Lang::Rust => format!(
            "target/wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ),
        Lang::Python | Lang::Js => format!("target/{name}.wasm"),
    }
}

/// The command that builds the component, run in the folder.
pub fn build_command(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "cargo build --release --target wasm32-wasip2",
        Lang::Python => "./build.sh",
        Lang::Js => "npm install && npm run build",
    }
}

fn file(path: &'static str, text: Cow<'static, str>) -> File {
    File {
        path,
        text,
        executable: false,
    }
}

/// The README, with the language's parts in place (`{{name}}` is filled after).
fn readme(lang: Lang, name: &str) -> String {
    let (needs, files) = match lang {
        Lang::Rust => (
            "Needs Rust 1.95 or later with the wasm target: `rustup target add wasm32-wasip2` (once).",
            "| `src/lib.rs` | The projection: its manifest, `handle`, and native unit tests (`cargo test`). |\n\
             | `Cargo.toml`, `Cargo.lock` | The crate; the release profile optimises for speed. |\n\
             | `vendor/projector-sdk/` | The Rust SDK (`projector-sdk`): the WIT bindings, `Sql`, `log`, `json::parse`, `export_plugin!`. |\n",
        ),
        Lang::Python => (
            "Needs `python3` (3.10 or later) and access to PyPI: `build.sh` installs componentize-py (pinned in `requirements.txt`) into `.venv` on first use; it bundles the Python that runs the plugin.",
            "| `app.py` | The projection: its manifest and `handle`. |\n\
             | `build.sh`, `requirements.txt` | The build and its one tool, componentize-py. |\n\
             | `projector/` | The helpers: `Sql`, `log`, `InvalidEvent`, `export`, and `json.parse` with shapes. |\n",
        ),
        Lang::Js => (
            "Needs Node.js 20 or later and access to npm: `npm install` installs componentize-qjs (pinned in `package.json`), which builds with QuickJS. Integers beyond ±2^53 cannot pass to the host from QuickJS.",
            "| `index.js` | The projection: its manifest and `handle`. |\n\
             | `package.json` | The build (`npm run build`) and its one tool, componentize-qjs. |\n\
             | `projector/` | The helpers: `sql`, `log`, `InvalidEvent`, `plugin`, and `json.parse` with shapes. |\n",
        ),
    };
    README
        .replace("{{language}}", lang.title())
        .replace("{{needs}}", needs)
        .replace("{{build}}", build_command(lang))
        .replace("{{wasm}}", &wasm_path(lang, name))
        .replace("{{files}}", files)
}

const README: &str = include_str!("template/README.md");
const EVENTS: &str = include_str!("template/events.jsonl");
const EXPECTED_CART_ITEMS: &str = include_str!("template/expected/cart_items.jsonl");
const EXPECTED_DEAD_LETTERS: &str = include_str!("template/expected/_dead_letters.jsonl");
const RUST_CARGO_TOML: &str = include_str!("template/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("template/rust/src/lib.rs");
const PYTHON_APP: &str = include_str!("template/python/app.py");
const PYTHON_BUILD: &str = include_str!("template/python/build.sh");
const JS_INDEX: &str = include_str!("template/js/index.js");
const JS_PACKAGE: &str = include_str!("template/js/package.json");

/// The contract, where each language's build looks for it (the SDK's `generate!` reads
/// `../../wit` from `vendor/projector-sdk`).
const WIT: &[(&str, &str)] = &[
    ("wit/world.wit", include_str!("../../../../wit/world.wit")),
    ("wit/types.wit", include_str!("../../../../wit/types.wit")),
    ("wit/sql.wit", include_str!("../../../../wit/sql.wit")),
    ("wit/log.wit", include_str!("../../../../wit/log.wit")),
];

const RUST_CARGO_LOCK: &str = include_str!("../../../../plugins/Cargo.lock");

const RUST_SDK: &[(&str, &str)] = &[
    (
        "vendor/projector-sdk/Cargo.toml",
        include_str!("../../../../plugins/sdk/Cargo.toml"),
    ),
    (
        "vendor/projector-sdk/src/lib.rs",
        include_str!("../../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "vendor/projector-sdk/src/fields/mod.rs",
        include_str!("../../../../plugins/sdk/src/fields/mod.rs"),
    ),
    (
        "vendor/projector-sdk/src/fields/json.rs",
        include_str!("../../../../plugins/sdk/src/fields/json.rs"),
    ),
    (
        "vendor/projector-sdk/src/json.rs",
        include_str!("../../../../plugins/sdk/src/json.rs"),
    ),
    (
        "vendor/projector-sdk/src/log.rs",
        include_str!("../../../../plugins/sdk/src/log.rs"),
    ),
    (
        "vendor/projector-sdk/src/native.rs",
        include_str!("../../../../plugins/sdk/src/native.rs"),
    ),
    (
        "vendor/projector-sdk/src/sql.rs",
        include_str!("../../../../plugins/sdk/src/sql.rs"),
    ),
    (
        "vendor/projector-sdk/src/value.rs",
        include_str!("../../../../plugins/sdk/src/value.rs"),
    ),
];

const PYTHON_REQUIREMENTS: &str = include_str!("../../../../plugins/python/requirements.txt");

const PYTHON_HELPERS: &[(&str, &str)] = &[
    (
        "projector/__init__.py",
        include_str!("../../../../plugins/python/projector/__init__.py"),
    ),
    (
        "projector/fields.py",
        include_str!("../../../../plugins/python/projector/fields.py"),
    ),
];

const JS_HELPERS: &[(&str, &str)] = &[
    (
        "projector/index.js",
        include_str!("../../../../plugins/js/projector/index.js"),
    ),
    (
        "projector/fields.js",
        include_str!("../../../../plugins/js/projector/fields.js"),
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn paths(lang: Lang) -> BTreeSet<&'static str> {
        plugin(lang, "my-carts")
            .iter()
            .map(|file| file.path)
            .collect()
    }

    const SHARED: [&str; 8] = [
        "README.md",
        "events.jsonl",
        "expected/cart_items.jsonl",
        "expected/_dead_letters.jsonl",
        "wit/world.wit",
        "wit/types.wit",
        "wit/sql.wit",
        "wit/log.wit",
    ];

    #[test]
    fn each_language_writes_its_files_and_the_shared_ones() {
        let expect = |own: &[&'static str]| -> BTreeSet<&'static str> {
            SHARED.iter().chain(own).copied().collect()
        };
        assert_eq!(
            paths(Lang::Rust),
            expect(&[
                "Cargo.toml",
                "Cargo.lock",
                "src/lib.rs",
                ".gitignore",
                "vendor/projector-sdk/Cargo.toml",
                "vendor/projector-sdk/src/lib.rs",
                "vendor/projector-sdk/src/fields/mod.rs",
                "vendor/projector-sdk/src/fields/json.rs",
                "vendor/projector-sdk/src/json.rs",
                "vendor/projector-sdk/src/log.rs",
                "vendor/projector-sdk/src/native.rs",
                "vendor/projector-sdk/src/sql.rs",
                "vendor/projector-sdk/src/value.rs",
            ])
        );
        assert_eq!(
            paths(Lang::Python),
            expect(&[
                "app.py",
                "build.sh",
                "requirements.txt",
                ".gitignore",
                "projector/__init__.py",
                "projector/fields.py",
            ])
        );
        assert_eq!(
            paths(Lang::Js),
            expect(&[
                "index.js",
                "package.json",
                ".gitignore",
                "projector/index.js",
                "projector/fields.js",
            ])
        );
    }

    #[test]
    fn templates_are_filled_with_the_name() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for file in plugin(lang, "my-carts") {
                let is_template = !file.path.starts_with("vendor/")
                    && !file.path.starts_with("projector/")
                    && !file.path.starts_with("wit/");
                if is_template {
                    assert!(!has_placeholder(&file.text), "{lang:?} {}", file.path);
                }
            }
            let files = plugin(lang, "my-carts");
            let readme = &files[0];
            assert!(readme.text.contains(&wasm_path(lang, "my-carts")));
            assert!(readme.text.starts_with("# my-carts\n"));
        }
        let lib = plugin(Lang::Rust, "my-carts");
        let lib = lib.iter().find(|file| file.path == "src/lib.rs").unwrap();
        assert!(lib.text.contains("name: \"my-carts\".into()"));
        assert!(lib.text.contains("release/my_carts.wasm"));
    }

    /// Whether `text` holds a `{{word}}` left unfilled (`{{"…` in a Rust format string is not).
    fn has_placeholder(text: &str) -> bool {
        text.split("{{").skip(1).any(|rest| {
            rest.split_once("}}").is_some_and(|(word, _)| {
                !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase())
            })
        })
    }

    /// The embedded lists must follow the sources: a file added to the SDK, the helpers or the
    /// WIT package has to be added here too, or new plugins would not build.
    #[test]
    fn every_source_file_is_embedded() -> std::io::Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        // Every file under `dir` (in subfolders too) ending in `extension`, relative to it.
        fn listed_in(
            dir: &Path,
            prefix: &str,
            extension: &str,
            names: &mut BTreeSet<String>,
        ) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type()?.is_dir() {
                    listed_in(&entry.path(), &format!("{name}/"), extension, names)?;
                } else if name.ends_with(extension) {
                    names.insert(name);
                }
            }
            Ok(())
        }
        let listed = |dir: &str, extension: &str| -> std::io::Result<BTreeSet<String>> {
            let mut names = BTreeSet::new();
            listed_in(&root.join(dir), "", extension, &mut names)?;
            Ok(names)
        };
        let embedded = |list: &[(&str, &str)], under: &str| -> BTreeSet<String> {
            list.iter()
                .filter_map(|(path, _)| path.strip_prefix(under))
                .map(String::from)
                .collect()
        };
        assert_eq!(listed("wit", ".wit")?, embedded(WIT, "wit/"));
        assert_eq!(
            listed("plugins/sdk/src", ".rs")?,
            embedded(RUST_SDK, "vendor/projector-sdk/src/")
        );
        assert_eq!(
            listed("plugins/python/projector", ".py")?,
            embedded(PYTHON_HELPERS, "projector/")
        );
        assert_eq!(
            listed("plugins/js/projector", ".js")?,
            embedded(JS_HELPERS, "projector/")
        );
        Ok(())
    }
}
