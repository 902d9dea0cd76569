//! The `--require-auth` check: every call must carry basic credentials of the default
//! `admin:changeit` user. Without the flag, credentials are accepted and ignored.

use base64::Engine;
use tonic::{Request, Status};

use super::status;

/// The default user of a fresh EventStoreDB node.
const ADMIN: &str = "admin:changeit";

/// A tonic interceptor enforcing (or ignoring) credentials.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    /// Whether calls without valid credentials are refused.
    pub required: bool,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if !self.required {
            return Ok(request);
        }
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
            });
        match credentials {
            Some(credentials) if credentials == ADMIN.as_bytes() => Ok(request),
            _ => Err(Status::unauthenticated("Bad credentials")),
        }
    }
}
