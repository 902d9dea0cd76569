//! Users: the two a new node creates, and which ACL roles a user holds.
//!
//! There is no user management: `admin` (in `$admins`) and `ops` (in `$ops`), both with the
//! password `changeit`, are the only users, as on a real node nobody has added users to.

/// The group whose members may do everything that anyone may do.
pub const ADMINS: &str = "$admins";

/// The operators' group: node operations, but no special rights on streams.
pub const OPS: &str = "$ops";

/// The role every authenticated user holds.
pub const EVERYONE: &str = "$all";

/// The password of the default users.
const DEFAULT_PASSWORD: &str = "changeit";

/// The default users and their one group each.
const DEFAULT_USERS: [(&str, &str); 2] = [("admin", ADMINS), ("ops", OPS)];

/// An authenticated user: ACL roles name either the user or one of its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// The groups it is a member of.
    pub groups: Vec<String>,
}

impl User {
    /// The default user with these credentials, if they are one's.
    pub fn authenticate(login: &str, password: &str) -> Option<User> {
        let (name, group) = DEFAULT_USERS.into_iter().find(|(name, _)| *name == login)?;
        (password == DEFAULT_PASSWORD).then(|| User {
            name: name.to_owned(),
            groups: vec![group.to_owned()],
        })
    }

    /// Whether ACLs are bypassed: the user `admin` or a member of `$admins`.
    pub fn is_admin(&self) -> bool {
        self.name == "admin" || self.groups.iter().any(|group| group == ADMINS)
    }

    /// Whether one of `roles` is this user, one of its groups or everyone.
    pub fn holds_any(&self, roles: &[String]) -> bool {
        roles.iter().any(|role| {
            role == EVERYONE || *role == self.name || self.groups.iter().any(|group| group == role)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_users_need_their_password() {
        let ops = User::authenticate("ops", "changeit").expect("ops exists");
        assert_eq!(ops.groups, ["$ops"]);
        assert!(!ops.is_admin());
        assert!(User::authenticate("admin", "changeit").is_some_and(|admin| admin.is_admin()));
        assert_eq!(User::authenticate("ops", "wrong"), None);
        assert_eq!(User::authenticate("alice", "changeit"), None);
    }

    #[test]
    fn roles_name_the_user_its_groups_or_everyone() {
        let ops = User::authenticate("ops", "changeit").expect("ops exists");
        let roles = |list: &[&str]| list.iter().map(|role| role.to_string()).collect::<Vec<_>>();
        assert!(ops.holds_any(&roles(&["ops"])));
        assert!(ops.holds_any(&roles(&["alice", "$ops"])));
        assert!(ops.holds_any(&roles(&["$all"])));
        assert!(!ops.holds_any(&roles(&["$admins", "admin"])));
        assert!(!ops.holds_any(&roles(&[])));
    }
}
