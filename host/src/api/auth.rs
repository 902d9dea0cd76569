//! Who may use the API.
//!
//! - Without a token it listens on loopback only: [`check_settings`] refuses any other
//!   address, since everyone who can reach it could read every projection and pause, reset or
//!   roll them back.
//! - With a token (`--api-token`, `[api] token` or `PROJECTOR_API_TOKEN`), every request must
//!   carry it as `Authorization: Bearer <token>`, wherever it listens. Only the console's
//!   static files are served without it: they hold no data, and the page asks for the token
//!   when a call is refused.
//! - A request that changes something (any method but GET and HEAD) and carries an `Origin`
//!   must come from this server's own pages: a page elsewhere cannot make the browser pause or
//!   reset a projection on loopback (cross-site request forgery). A browser's
//!   `Sec-Fetch-Site` must say `same-origin` or `none` on every request but the console's
//!   files, so a page elsewhere cannot read or busy the API with GETs either.

use std::net::SocketAddr;

use anyhow::bail;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{Shared, refuse};

/// Shortest token accepted: guessing one must be hopeless.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Refuses settings that would expose the API: a short token, or no token off loopback.
pub(super) fn check_settings(listen: SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    match token {
        Some(token) if token.chars().count() < MIN_TOKEN_CHARS => bail!(
            "the API token is {} characters; use at least {MIN_TOKEN_CHARS} (for example the \
             output of `openssl rand -hex 16`)",
            token.chars().count()
        ),
        None if !listen.ip().is_loopback() => bail!(
            "refusing to serve the API on {listen} without a token: it is not a loopback \
             address, and anyone who can reach it could read every projection and pause, \
             reset or roll them back. Pass --api-token (or set [api] token, or \
             PROJECTOR_API_TOKEN), or listen on 127.0.0.1"
        ),
        _ => Ok(()),
    }
}

/// The paths served without a token.
fn is_public(request: &Request) -> bool {
    request.method() == Method::GET
        && matches!(request.uri().path(), "/" | "/console.css" | "/console.js")
}

/// Serves `request` if it may be served; 401 or 403 otherwise.
pub(super) async fn check(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &shared.settings.token
        && !is_public(&request)
    {
        // The scheme's name is case-insensitive (RFC 7235); the token is not.
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        if !given.is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes())) {
            let mut response = refuse(
                StatusCode::UNAUTHORIZED,
                "this API needs its token: send `Authorization: Bearer <token>` (the token \
                 given to the projector with --api-token, [api] token or \
                 PROJECTOR_API_TOKEN)",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid"));
            return response;
        }
    }
    // What a browser says about who asked: only the console itself (same origin) or the user
    // typing an address (none) may; a page elsewhere, even with no-cors GETs that carry no
    // Origin, must not read through the user's browser or tie up the query slots.
    let fetched_by = request
        .headers()
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if !is_public(&request) && fetched_by.is_some_and(|by| !matches!(by, "same-origin" | "none")) {
        return refuse(
            StatusCode::FORBIDDEN,
            "refused: a page of another site may not use this API (Sec-Fetch-Site)",
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD)
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let host = request.headers().get(header::HOST);
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        let same_site = origin_host
            .zip(host.and_then(|h| h.to_str().ok()))
            .is_some_and(|(origin, host)| origin.eq_ignore_ascii_case(host));
        if !same_site {
            return refuse(
                StatusCode::FORBIDDEN,
                "refused: a page of another site may not change projections through this API \
                 (its Origin is not this server)",
            );
        }
    }
    next.run(request).await
}

/// Whether two secrets are equal, in time that depends on their lengths only.
fn same(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_required_off_loopback_and_must_be_long() {
        let public: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:7070".parse().unwrap();
        let error = check_settings(public, None).unwrap_err().to_string();
        assert!(error.contains("without a token"), "{error}");
        assert!(check_settings(loopback, None).is_ok());
        assert!(check_settings(public, Some("0123456789abcdef")).is_ok());
        let error = check_settings(loopback, Some("short"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("at least 16"), "{error}");
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
