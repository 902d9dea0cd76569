//! An access control list: who may read, write, delete, read the metadata of and write the
//! metadata of a stream, as the `$acl` object of stream metadata (and of `$settings`) says.
//!
//! Each entry is a role or an array of roles; a role is a user name, a group (`$admins`,
//! `$ops`, ...) or `$all` for every user. An entry that is absent says nothing, so the next
//! ACL in line decides; an empty array grants nobody but admins.

use serde_json::{Map, Value};

/// One entry of an ACL, named by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `$r`: read events and subscribe.
    Read,
    /// `$w`: append.
    Write,
    /// `$d`: soft-delete and tombstone.
    Delete,
    /// `$mr`: read the stream's metadata (`$$<stream>`).
    MetadataRead,
    /// `$mw`: write the stream's metadata.
    MetadataWrite,
}

/// The entries of one ACL, each None where the ACL leaves it to the next one in line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamAcl {
    /// Indexed by [`Access`] in declaration order.
    entries: [Option<Vec<String>>; 5],
}

impl Access {
    /// Every access, in declaration order.
    const ALL: [Access; 5] = [
        Access::Read,
        Access::Write,
        Access::Delete,
        Access::MetadataRead,
        Access::MetadataWrite,
    ];

    /// The entry's key in an `$acl` object.
    pub fn key(self) -> &'static str {
        match self {
            Access::Read => "$r",
            Access::Write => "$w",
            Access::Delete => "$d",
            Access::MetadataRead => "$mr",
            Access::MetadataWrite => "$mw",
        }
    }
}

impl StreamAcl {
    /// The `$acl` of a stream's metadata, if it has one the real server can read.
    pub fn of_metadata(metadata: &Map<String, Value>) -> Option<StreamAcl> {
        metadata.get("$acl").and_then(StreamAcl::parse)
    }

    /// Reads an ACL object. None where the real server's reader fails: not an object, a key
    /// other than the five, or an entry that is neither a string nor an array of strings. The
    /// real server then ignores the whole metadata (or settings) object it was in.
    pub fn parse(value: &Value) -> Option<StreamAcl> {
        let mut acl = StreamAcl::default();
        for (key, entry) in value.as_object()? {
            let access = Access::ALL.into_iter().find(|access| access.key() == key)?;
            acl.entries[access as usize] = Some(roles(entry)?);
        }
        Some(acl)
    }

    /// The roles granted `access`, None when this ACL does not say.
    pub fn roles(&self, access: Access) -> Option<&[String]> {
        self.entries[access as usize].as_deref()
    }
}

/// One entry: a single role or an array of them.
fn roles(entry: &Value) -> Option<Vec<String>> {
    match entry {
        Value::String(role) => Some(vec![role.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn entries_are_a_role_or_an_array_of_roles() {
        let acl = StreamAcl::parse(&json!({"$r": "ops", "$w": ["a", "$admins"], "$d": []}))
            .expect("readable");
        assert_eq!(acl.roles(Access::Read), Some(&["ops".to_owned()][..]));
        assert_eq!(
            acl.roles(Access::Write),
            Some(&["a".to_owned(), "$admins".to_owned()][..])
        );
        assert_eq!(acl.roles(Access::Delete), Some(&[][..]));
        assert_eq!(acl.roles(Access::MetadataRead), None);
    }

    #[test]
    fn what_the_real_server_cannot_read_is_no_acl() {
        for unreadable in [
            json!("$userStreamAcl"),
            json!(null),
            json!({"$r": 1}),
            json!({"$r": ["a", 1]}),
            json!({"$r": null}),
            json!({"$read": "a"}),
        ] {
            assert_eq!(StreamAcl::parse(&unreadable), None, "{unreadable}");
        }
    }
}
