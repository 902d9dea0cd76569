//! The persistent-subscription statuses, with the real server's codes, messages and trailers
//! (`exception`, `stream-name`, `group-name`, `reason`): the Rust client maps them by code and
//! trailer, the Python client by code and message.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

use super::settings::Source;

fn status(
    code: Code,
    message: String,
    exception: &str,
    source: &Source,
    group: &str,
    reason: Option<&str>,
) -> Status {
    let mut metadata = MetadataMap::new();
    let mut insert = |key: &'static str, value: &str| {
        // Names are client input: one that is not a valid header value is left out rather
        // than failing the whole error.
        if let Ok(value) = MetadataValue::try_from(value) {
            metadata.insert(key, value);
        }
    };
    insert("exception", exception);
    insert("stream-name", source.name());
    insert("group-name", group);
    if let Some(reason) = reason {
        insert("reason", reason);
    }
    Status::with_metadata(code, message, metadata)
}

/// `Create` of a group that exists.
pub fn exists(source: &Source, group: &str) -> Status {
    status(
        Code::AlreadyExists,
        format!(
            "Subscription group {group} on stream {} exists.",
            source.name()
        ),
        "persistent-subscription-exists",
        source,
        group,
        None,
    )
}

/// Any call naming a group that does not exist.
pub fn not_found(source: &Source, group: &str) -> Status {
    status(
        Code::NotFound,
        format!(
            "Subscription group {group} on stream {} does not exist.",
            source.name()
        ),
        "persistent-subscription-does-not-exist",
        source,
        group,
        None,
    )
}

/// `Read` when the group has its maximum of consumers.
pub fn maximum_subscribers_reached(source: &Source, group: &str) -> Status {
    status(
        Code::FailedPrecondition,
        format!(
            "Maximum subscriptions reached for subscription group {group} on stream {}.",
            source.name()
        ),
        "maximum-subscribers-reached",
        source,
        group,
        None,
    )
}

/// What consumers get when their group is deleted, updated or restarted.
pub fn dropped(source: &Source, group: &str) -> Status {
    status(
        Code::Cancelled,
        format!(
            "Subscription group {group} on stream {} was dropped.",
            source.name()
        ),
        "persistent-subscription-dropped",
        source,
        group,
        None,
    )
}

/// A request the server cannot carry out, with why.
pub fn failed(source: &Source, group: &str, reason: &str) -> Status {
    status(
        Code::Internal,
        format!(
            "Subscription group {group} on stream {} failed: '{reason}'",
            source.name()
        ),
        "persistent-subscription-failed",
        source,
        group,
        Some(reason),
    )
}
