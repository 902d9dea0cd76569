//! The HTTP endpoints beside gRPC on the same port, as health checkers and client harnesses
//! call them: HTTP/1.1 over a plain connection while the same port serves gRPC.

use std::io::{Read, Write};

use crate::util::{events, start, stream};

/// One HTTP/1.1 request: the status code and the body.
fn request(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    let mut connection = std::net::TcpStream::connect(address)?;
    connection.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        connection,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    connection.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_info_answer_on_the_grpc_port() -> anyhow::Result<()> {
    let (server, client) = start().await?;
    let address = server.local_addr();
    let answers = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((
            request(address, "GET", "/health/live")?,
            request(address, "HEAD", "/health/live")?,
            request(address, "GET", "/health/live?liveCode=200")?,
            request(address, "GET", "/health/live?liveCode=nonsense")?,
            request(address, "GET", "/info")?,
            request(address, "GET", "/nothing-here")?,
        ))
    })
    .await??;
    let (live, head, asked, nonsense, info, missing) = answers;
    assert_eq!(live, (204, String::new()));
    assert_eq!(head.0, 204);
    assert_eq!(asked.0, 200);
    assert_eq!(nonsense.0, 204);
    assert_eq!(info.0, 200, "{}", info.1);
    let info: serde_json::Value = serde_json::from_str(&info.1)?;
    assert_eq!(info["esVersion"], "24.10.0", "{info}");
    assert_eq!(info["state"], "leader", "{info}");
    assert_eq!(info["features"]["projections"], false, "{info}");
    assert_eq!(missing.0, 404);
    // gRPC still works on the same port, over the same listener.
    client
        .append_to_stream(stream("http").as_str(), &Default::default(), events("E", 1))
        .await?;
    server.shutdown().await
}
