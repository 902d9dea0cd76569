//! Who is calling, and the stream access check a handler makes before it touches a stream.
//!
//! The auth interceptor (`auth`) puts a [`Caller`] in every request's extensions; a handler
//! takes it with [`Caller::of`] and asks [`check`] before it reads, writes or deletes, as the
//! real server does before it starts the operation. Without `--require-auth` the caller is
//! [`Caller::Unchecked`] and every check passes: ACLs are stored but not enforced.

use tonic::{Request, Status};

use super::status;
use crate::acl::{self, User};
use crate::store::Store;

pub use crate::acl::{ALL_STREAM, Operation};

/// Who a call comes from, as far as stream access goes.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `--require-auth` is off: nothing is checked.
    Unchecked,
    /// An authenticated user, whose access is checked against stream ACLs.
    User(User),
}

impl Caller {
    /// The caller the auth interceptor recorded on `request`. A request that did not pass
    /// through the interceptor is refused, so a service wired without it fails closed.
    pub fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| {
                Status::internal("devstore: this service is not behind the auth interceptor")
            })
    }
}

/// Refuses `operation` on `stream` (a stream, `$$<stream>` for its metadata, or `$all`) with
/// the real server's access-denied status unless `caller` may do it.
pub fn check(
    store: &Store,
    caller: &Caller,
    stream: &str,
    operation: Operation,
) -> Result<(), Status> {
    match caller {
        Caller::Unchecked => Ok(()),
        Caller::User(user) if acl::allows(store, user, stream, operation) => Ok(()),
        Caller::User(_) => Err(status::access_denied()),
    }
}
