//! The system settings: the default ACLs of user streams and of system (`$`-named) streams,
//! which an admin may change by appending `{"$userStreamAcl": {..}, "$systemStreamAcl": {..}}`
//! to the `$settings` stream; its newest event is in force.
//!
//! Built in, as on a new node: every user may do everything to user streams, and only admins
//! to system streams. A settings ACL that leaves an entry out leaves it to the built-in default.

use serde_json::Value;

use super::stream_acl::{Access, StreamAcl};
use super::user::{ADMINS, EVERYONE};
use crate::store::Store;

/// The default ACLs in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemSettings {
    /// `$userStreamAcl`, if set.
    user_streams: Option<StreamAcl>,
    /// `$systemStreamAcl`, if set.
    system_streams: Option<StreamAcl>,
}

impl SystemSettings {
    /// The settings in `store` now: its `$settings` stream's newest event, the built-in
    /// defaults if there is none.
    pub fn load(store: &Store) -> SystemSettings {
        store
            .settings()
            .map(|data| SystemSettings::parse(&data))
            .unwrap_or_default()
    }

    /// Reads a settings event. Settings the real server cannot read (not a JSON object, or an
    /// ACL it cannot read) leave the built-in defaults in force, as there.
    pub fn parse(data: &[u8]) -> SystemSettings {
        let read = || -> Option<SystemSettings> {
            let Value::Object(settings) = serde_json::from_slice::<Value>(data).ok()? else {
                return None;
            };
            let acl = |key: &str| match settings.get(key) {
                None => Some(None),
                Some(value) => StreamAcl::parse(value).map(Some),
            };
            Some(SystemSettings {
                user_streams: acl("$userStreamAcl")?,
                system_streams: acl("$systemStreamAcl")?,
            })
        };
        read().unwrap_or_default()
    }

    /// The roles granted `access` to streams without an `$acl` entry for it.
    pub fn roles(&self, system_stream: bool, access: Access) -> Vec<String> {
        let (configured, built_in) = if system_stream {
            (&self.system_streams, ADMINS)
        } else {
            (&self.user_streams, EVERYONE)
        };
        match configured.as_ref().and_then(|acl| acl.roles(access)) {
            Some(roles) => roles.to_vec(),
            None => vec![built_in.to_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_replace_the_built_in_defaults_entry_by_entry() {
        let settings = SystemSettings::parse(
            br#"{"$userStreamAcl": {"$r": "$admins", "$w": ["ops"]}, "other": 1}"#,
        );
        assert_eq!(settings.roles(false, Access::Read), ["$admins"]);
        assert_eq!(settings.roles(false, Access::Write), ["ops"]);
        assert_eq!(settings.roles(false, Access::Delete), ["$all"]);
        assert_eq!(settings.roles(true, Access::Read), ["$admins"]);
    }

    #[test]
    fn unreadable_settings_are_the_built_in_defaults() {
        for data in [
            &b"not json"[..],
            br#"["$userStreamAcl"]"#,
            br#"{"$userStreamAcl": {"$r": "$admins"}, "$systemStreamAcl": "x"}"#,
        ] {
            assert_eq!(SystemSettings::parse(data), SystemSettings::default());
        }
    }
}
