//! The one `bindgen!` of the host: Rust types and traits generated from `wit/`.
//!
//! Everything else refers to these through `runtime::bindings`, so a new WIT version means a
//! change here and in the conversions, not all over the host.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "projection",
    // Imports may trap: a host `sql` or `log` call that breaks a limit kills the instance rather
    // than returning an error the plugin could ignore.
    imports: { default: trappable },
});

// `Event`, `Manifest` and `Error` are already at the root: the world `use`s them.
pub use self::projector::plugin::types::{SqlError as GuestSqlError, Value as GuestValue};
pub use self::projector::plugin::{log, sql, types};
