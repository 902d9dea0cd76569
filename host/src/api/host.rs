//! DNS-rebinding protection. A web page can point a name its author controls at 127.0.0.1 and
//! have the browser send requests to it: the browser then talks to this API as if it were the
//! author's site, and hands the page the answers. Such requests carry the author's name in
//! `Host`, so only requests that name this server are served: `localhost`, a loopback address
//! (`127.0.0.1`, `[::1]`) or the address the connection reached (the listen address, or the
//! machine's address when listening on all of them), with the port it listens on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::Json;
use axum::extract::Request;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The local address a connection reached (set by `serve.rs` on every request).
#[derive(Clone, Copy, Debug)]
pub(super) struct Reached(pub SocketAddr);

/// Serves `request` if its `Host` names this server, refuses it with 421 otherwise.
pub(super) async fn check(
    ConnectInfo(Reached(reached)): ConnectInfo<Reached>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned());
    if host.as_deref().is_some_and(|host| names(host, reached)) {
        return next.run(request).await;
    }
    let port = reached.port();
    let message = format!(
        "refused: the Host header ({}) does not name this server; use http://127.0.0.1:{port} \
         or http://localhost:{port} (or the address it listens on). Other names are refused \
         so that no web page can reach the API through a name of its own (DNS rebinding)",
        host.as_deref().unwrap_or("missing")
    );
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(json!({ "error": message })),
    )
        .into_response()
}

/// Whether `host` (a `Host` header) names the server a connection reached at `reached`.
fn names(host: &str, reached: SocketAddr) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        // A colon inside brackets is part of an IPv6 address, not a port.
        Some((name, port)) if !port.contains(']') => match port.parse::<u16>() {
            Ok(port) => (name, port),
            Err(_) => return false,
        },
        _ => (host, 80),
    };
    if port != reached.port() {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = match name
        .strip_prefix('[')
        .and_then(|name| name.strip_suffix(']'))
    {
        Some(v6) => v6.parse::<Ipv6Addr>().map(IpAddr::V6),
        None => name.parse::<Ipv4Addr>().map(IpAddr::V4),
    };
    ip.is_ok_and(|ip| ip.is_loopback() || ip.to_canonical() == reached.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_server_with_its_port_pass() {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 8080));
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LocalHost:8080",
            "[::1]:8080",
        ] {
            assert!(names(host, loopback), "{host}");
        }
        for host in [
            "evil.example:8080",
            "evil.example",
            "127.0.0.1",
            "127.0.0.1:8081",
            "localhost:80",
            "localhost.evil.example:8080",
            "[::1]",
            "10.0.0.5:8080",
            "127.0.0.1:x",
            "",
        ] {
            assert!(!names(host, loopback), "{host}");
        }
    }

    #[test]
    fn the_address_a_connection_reached_passes_too() {
        let lan = SocketAddr::from(([10, 0, 0, 5], 80));
        assert!(names("10.0.0.5", lan));
        assert!(names("10.0.0.5:80", lan));
        assert!(names("localhost", lan));
        assert!(!names("10.0.0.6", lan));
        assert!(!names("myhost.lan", lan));
        let mapped: SocketAddr = "[::ffff:10.0.0.5]:9000".parse().unwrap();
        assert!(names("10.0.0.5:9000", mapped));
        let v6: SocketAddr = "[fd00::5]:9000".parse().unwrap();
        assert!(names("[fd00::5]:9000", v6));
        assert!(names("[FD00:0::5]:9000", v6));
        assert!(!names("fd00::5:9000", v6));
    }
}
