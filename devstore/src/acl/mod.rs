//! Stream access control as the real server's legacy ACL authorization decides it: may this
//! user do this operation on this stream?
//!
//! A request names a stream and an [`Operation`]. Reading or writing `$$<stream>` reads or
//! writes `<stream>`'s metadata, so it needs that stream's `$mr` or `$mw` ([`Access`]). The
//! roles granted an access come from the stream's own `$acl`, else from the `$settings`
//! stream's default for user or system (`$`-named) streams, else from the built-in default,
//! one access at a time ([`SystemSettings`]). Admins may do everything that anyone may do.
//!
//! This module knows nothing of gRPC: `grpc::access` turns a refusal into the real server's
//! status, and leaves everything allowed when `--require-auth` is off.

mod settings;
mod stream_acl;
mod user;

use serde_json::{Map, Value};

use crate::store::Store;
use settings::SystemSettings;
use stream_acl::{Access, StreamAcl};

pub use user::User;

/// The stream of every event: reading it reads the whole log.
pub const ALL_STREAM: &str = "$all";

/// What a request does to the stream it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Read events or subscribe; on `$$<stream>`, read its metadata.
    Read,
    /// Append; on `$$<stream>`, set its metadata.
    Write,
    /// Soft-delete or tombstone.
    Delete,
}

/// Whether `user` may do `operation` on `stream`, by the stream's metadata and the system
/// settings in `store` as they are now.
pub fn allows(store: &Store, user: &User, stream: &str, operation: Operation) -> bool {
    let Some((target, access)) = required(stream, operation) else {
        return false;
    };
    if user.is_admin() {
        return true;
    }
    let settings = SystemSettings::load(store);
    user.holds_any(&effective_roles(
        target,
        access,
        &store.metadata(target),
        &settings,
    ))
}

/// The stream whose ACL decides `operation` on `stream`, and the access it needs there; None
/// for what nobody may do, admins included: write or delete `$all`, or delete a metadata
/// stream.
fn required(stream: &str, operation: Operation) -> Option<(&str, Access)> {
    if stream == ALL_STREAM && operation != Operation::Read {
        return None;
    }
    match (stream.strip_prefix("$$"), operation) {
        (None, Operation::Read) => Some((stream, Access::Read)),
        (None, Operation::Write) => Some((stream, Access::Write)),
        (None, Operation::Delete) => Some((stream, Access::Delete)),
        (Some(original), Operation::Read) => Some((original, Access::MetadataRead)),
        (Some(original), Operation::Write) => Some((original, Access::MetadataWrite)),
        (Some(_), Operation::Delete) => None,
    }
}

/// The roles granted `access` to `stream`: its own `$acl`'s if that names them, else the
/// system settings' (which fall back to the built-in defaults). An `$acl` the real server
/// cannot read counts as none.
fn effective_roles(
    stream: &str,
    access: Access,
    metadata: &Map<String, Value>,
    settings: &SystemSettings,
) -> Vec<String> {
    let own = StreamAcl::of_metadata(metadata);
    match own.as_ref().and_then(|acl| acl.roles(access)) {
        Some(roles) => roles.to_vec(),
        None => settings.roles(is_system_stream(stream), access),
    }
}

/// System streams (`$`-named, `$all` among them) default to admins only.
fn is_system_stream(stream: &str) -> bool {
    stream.starts_with('$')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn metadata_streams_need_the_metadata_accesses_of_their_stream() {
        assert_eq!(required("s", Operation::Read), Some(("s", Access::Read)));
        assert_eq!(
            required("$$s", Operation::Read),
            Some(("s", Access::MetadataRead))
        );
        assert_eq!(
            required("$$s", Operation::Write),
            Some(("s", Access::MetadataWrite))
        );
        assert_eq!(
            required("$$$all", Operation::Write),
            Some(("$all", Access::MetadataWrite))
        );
        assert_eq!(required("$$s", Operation::Delete), None);
    }

    #[test]
    fn all_can_be_read_but_never_written_or_deleted() {
        assert_eq!(
            required("$all", Operation::Read),
            Some(("$all", Access::Read))
        );
        assert_eq!(required("$all", Operation::Write), None);
        assert_eq!(required("$all", Operation::Delete), None);
    }

    #[test]
    fn a_stream_acl_overrides_the_defaults_one_access_at_a_time() {
        let settings = SystemSettings::default();
        let own = metadata(json!({"$acl": {"$r": "$admins", "$w": ["ops", "alice"]}}));
        assert_eq!(
            effective_roles("s", Access::Read, &own, &settings),
            ["$admins"]
        );
        assert_eq!(
            effective_roles("s", Access::Write, &own, &settings),
            ["ops", "alice"]
        );
        assert_eq!(
            effective_roles("s", Access::Delete, &own, &settings),
            ["$all"]
        );
        assert_eq!(
            effective_roles("$system", Access::Delete, &own, &settings),
            ["$admins"]
        );
    }

    #[test]
    fn an_unreadable_acl_leaves_the_defaults() {
        let settings = SystemSettings::default();
        let string = metadata(json!({"$acl": "$userStreamAcl"}));
        assert_eq!(
            effective_roles("s", Access::Read, &string, &settings),
            ["$all"]
        );
        let unknown_key = metadata(json!({"$acl": {"$r": "$admins", "$x": "ops"}}));
        assert_eq!(
            effective_roles("s", Access::Read, &unknown_key, &settings),
            ["$all"]
        );
    }
}
