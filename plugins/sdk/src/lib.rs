//! The Rust guest SDK for Projector projection plugins: the `projector:plugin` WIT bindings plus
//! the few seams that let one plugin's logic run both as a wasm component and natively.
//!
//! A plugin writes two functions, `manifest() -> Manifest` and
//! `handle(sql: &mut impl Sql, events: &[Event]) -> Result<(), Error>`, and hands them to
//! [`export_plugin!`]. Because `handle` only sees the [`Sql`] trait, the same code runs inside
//! the host (through `HostSql`, on wasm32) and natively, where tests and benchmarks pass a
//! rusqlite-backed `native::Database` or a fake of their own. The generated import functions
//! are only ever called from `HostSql` and [`log`], which exist for that purpose alone.
//!
//! Layout:
//! - [`sql`]: the [`Sql`] trait and `HostSql`, its implementation over the WIT import.
//! - [`log`]: writing to the host's log (captured in memory on native targets).
//! - [`value`]: conveniences on the generated [`Value`] and [`Error`] types.
//! - `json` (feature `json`): parsing event data into serde types, with errors that name the
//!   failing field.
//! - `fields` (feature `fields`): reading event data field by field, by rules and messages
//!   shared with the Python and JavaScript helpers.
//! - `native` (feature `rusqlite`): a native [`Sql`] over an in-memory SQLite database.

pub mod log;
pub mod sql;
pub mod value;

#[cfg(feature = "fields")]
pub mod fields;
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "rusqlite")]
pub mod native;

pub use bindings::Guest;
pub use bindings::projector::plugin::log::Level;
pub use bindings::projector::plugin::types::{
    Error, Event, InvalidEvent, Manifest, SqlError, Value,
};
#[cfg(target_arch = "wasm32")]
pub use sql::HostSql;
pub use sql::Sql;

/// The generated bindings of the `projection` world. Plugins rarely need this module directly:
/// everything they use is re-exported at the crate root.
///
/// It is a module rather than the crate root because wit-bindgen's public export macro clashes
/// with its own re-export when generated at a crate root.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "projection",
        // Plugins export through this crate, so the export macro must be usable from theirs...
        pub_export_macro: true,
        export_macro_name: "export_projection",
        // ...and find the generated types here without being told where they are.
        default_bindings_module: "projector_sdk::bindings",
        // Tests compare values, rows and errors.
        additional_derives: [PartialEq],
    });
}

/// Exports a plugin's `manifest` and `handle` functions as the `projection` world's `describe`
/// and `handle`.
///
/// ```
/// use projector_sdk::{Error, Event, Manifest, Sql};
///
/// pub fn manifest() -> Manifest {
///     Manifest {
///         name: "counter".into(),
///         version: "1.0.0".into(),
///         description: "Counts events".into(),
///         event_types: vec![],
///         stream_prefixes: vec![],
///         schema: vec!["CREATE TABLE counter (n INTEGER NOT NULL)".into()],
///     }
/// }
///
/// pub fn handle(sql: &mut impl Sql, events: &[Event]) -> Result<(), Error> {
///     let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
///     sql.execute("UPDATE counter SET n = n + ?1", &[n.into()])?;
///     Ok(())
/// }
///
/// projector_sdk::export_plugin!(manifest, handle);
/// ```
///
/// It expands to nothing off wasm32, so the crate still builds (and tests) natively.
#[macro_export]
#[rustfmt::skip] // rustfmt misplaces wit-bindgen's `with_types_in` form.
macro_rules! export_plugin {
    ($manifest:path, $handle:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Plugin;

            impl $crate::Guest for Plugin {
                fn describe() -> $crate::Manifest {
                    $manifest()
                }

                fn handle(
                    events: ::std::vec::Vec<$crate::Event>,
                ) -> ::core::result::Result<(), $crate::Error> {
                    $handle(&mut $crate::HostSql, &events)
                }
            }

            $crate::bindings::export_projection!(Plugin with_types_in $crate::bindings);
        };
    };
}
