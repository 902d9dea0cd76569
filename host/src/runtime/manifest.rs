//! The manifest a plugin returns from `describe`, checked before the host trusts it.

use anyhow::bail;

use super::bindings::Manifest as GuestManifest;
use crate::event::EventFilter;

/// A validated plugin manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The projection's name: names its database file and its schema in queries.
    pub name: String,
    /// The version of the projection's logic and schema.
    pub version: String,
    /// One line for operators.
    pub description: String,
    /// The events it wants.
    pub filter: EventFilter,
    /// DDL creating its tables, one statement per entry.
    pub schema: Vec<String>,
}

impl Manifest {
    /// Checks what the plugin returned and reports every problem at once.
    pub fn validate(guest: GuestManifest) -> anyhow::Result<Manifest> {
        let mut problems = Vec::new();
        if let Err(problem) = check_name(&guest.name) {
            problems.push(problem);
        }
        let printable = guest.version.chars().all(|c| c.is_ascii_graphic());
        if guest.version.is_empty() || guest.version.len() > 64 || !printable {
            // It names files, history rows and log lines: keep it short and plain.
            problems.push(format!(
                "the version {:?} must be 1 to 64 printable ASCII characters without spaces",
                guest.version.chars().take(80).collect::<String>()
            ));
        }
        if guest.schema.is_empty() {
            problems.push("the schema declares no tables".to_string());
        }
        for (index, statement) in guest.schema.iter().enumerate() {
            let first_words: Vec<String> = statement
                .split_whitespace()
                .take(4)
                .map(|w| w.to_ascii_uppercase())
                .collect();
            let creates = first_words.first().is_some_and(|w| w == "CREATE")
                && first_words
                    .iter()
                    .skip(1)
                    .any(|w| matches!(w.as_str(), "TABLE" | "INDEX" | "VIEW"));
            if !creates {
                problems.push(format!(
                    "schema statement {} is not a CREATE TABLE, INDEX or VIEW: {statement:?}",
                    index + 1
                ));
            }
        }
        for event_type in &guest.event_types {
            if event_type.is_empty() || event_type.starts_with('$') {
                problems.push(format!(
                    "event type {event_type:?} is empty or a system type"
                ));
            }
        }
        if !problems.is_empty() {
            bail!("the plugin's manifest is invalid: {}", problems.join("; "));
        }
        Ok(Manifest {
            name: guest.name,
            version: guest.version,
            description: guest.description,
            filter: EventFilter {
                event_types: guest.event_types,
                stream_prefixes: guest.stream_prefixes,
            },
            schema: guest.schema,
        })
    }
}

/// Projection names become file names and SQL schema names, so they are kept plain.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    // `main` and `temp` are SQLite's own schema names; the query path attaches projections by name.
    if valid && name != "main" && name != "temp" {
        Ok(())
    } else {
        Err(format!(
            "the name {name:?} must be 1 to 64 characters of a-z, 0-9, _ and -, starting with a \
             letter, and not `main` or `temp`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(name: &str, schema: &[&str]) -> GuestManifest {
        GuestManifest {
            name: name.into(),
            version: "1.0.0".into(),
            description: String::new(),
            event_types: vec![],
            stream_prefixes: vec![],
            schema: schema.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn accepts_a_plain_manifest() {
        let manifest = Manifest::validate(guest(
            "orders",
            &["CREATE TABLE t (a)", "create unique index i on t (a)"],
        ));
        assert_eq!(manifest.unwrap().name, "orders");
    }

    #[test]
    fn reports_every_problem_at_once() {
        let error = Manifest::validate(guest("../etc", &["DROP TABLE x"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("the name \"../etc\""), "{error}");
        assert!(
            error.contains("schema statement 1 is not a CREATE"),
            "{error}"
        );
        let mut long = guest("orders", &["CREATE TABLE t (a)"]);
        long.version = "1".repeat(65);
        assert!(Manifest::validate(long).is_err());
        let mut spaced = guest("orders", &["CREATE TABLE t (a)"]);
        spaced.version = "1.0 beta".into();
        assert!(Manifest::validate(spaced).is_err());
    }
}
