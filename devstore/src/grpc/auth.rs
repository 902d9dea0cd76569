//! The `--require-auth` check: every call must carry basic credentials of a default user
//! (`admin:changeit` or `ops:changeit`). The interceptor records who is calling ([`Caller`]) in
//! the request's extensions, for handlers to check stream access against. Without the flag,
//! credentials are accepted and ignored, and the caller is [`Caller::Unchecked`].

use base64::Engine;
use tonic::{Request, Status};

use super::access::Caller;
use super::status;
use crate::acl::User;

/// A tonic interceptor enforcing (or ignoring) credentials.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    /// Whether calls without valid credentials are refused.
    pub required: bool,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = if self.required {
            Caller::User(authenticate(&request)?)
        } else {
            Caller::Unchecked
        };
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// The user whose basic credentials `request` carries.
fn authenticate(request: &Request<()>) -> Result<User, Status> {
    let Some(header) = request.metadata().get("authorization") else {
        // The real server lets anonymous callers in and then denies the operation.
        return Err(status::access_denied());
    };
    let credentials = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    credentials
        .as_deref()
        .and_then(|credentials| credentials.split_once(':'))
        .and_then(|(login, password)| User::authenticate(login, password))
        .ok_or_else(|| Status::unauthenticated("Bad credentials"))
}
