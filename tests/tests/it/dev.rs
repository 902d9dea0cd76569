//! `projector dev`, the README's main command, as a user runs it: the embedded event store,
//! the demo workload, the projections, the HTTP API, Ctrl-C, and a second run that resumes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use projector_tests::tables;

use crate::esdb::{PROJECTIONS, PROJECTOR, checkpoint, interrupt};

/// A plain HTTP/1.1 GET of `path` from `address`: the response's status line and body.
pub fn http_get(address: &str, path: &str) -> anyhow::Result<(String, String)> {
    http(address, "GET", path, None)
}

/// A plain HTTP/1.1 request, with a JSON body if given: the response's status line and body.
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let (head, body) = exchange(address, address, method, path, json)?;
    Ok((head.lines().next().unwrap_or_default().to_string(), body))
}

/// A plain HTTP/1.1 request to `address` naming `host` in its `Host` header, with a JSON body
/// if given: the response's head (status line and headers) and body.
pub fn exchange(
    address: &str,
    host: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(String, String)> {
    exchange_with(address, host, method, path, &[], json)
}

/// [`exchange`] with extra request headers.
pub fn exchange_with(
    address: &str,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> anyhow::Result<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let body = json.unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if json.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    write!(stream, "{head}Content-Length: {}\r\n\r\n{body}", body.len())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP header end in {response}"))?;
    Ok((head.to_string(), body.to_string()))
}

/// Collects a child's stdout in the background.
fn collect_stdout(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::BufRead;
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stdout = child.stdout.take().expect("piped stdout");
    let sink = std::sync::Arc::clone(&printed);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let mut printed = sink.lock().unwrap();
            printed.push_str(&line);
            printed.push('\n');
        }
    });
    printed
}

/// `projector dev`, the README's main command, with nothing but the binary: on an empty data
/// directory it writes the example plugins it carries, prints what to do next, projects the
/// demo backlog and the live workload, serves the API, stops on Ctrl-C with exit code 0, and a
/// second run resumes from the stored positions without appending the backlog again.
#[test]
fn dev_runs_the_whole_product_and_resumes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("dev");
    let dev = |log: &Path| -> anyhow::Result<Child> {
        Ok(Command::new(PROJECTOR)
            .args(["dev", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(["--rate", "200", "--backlog", "400"])
            .arg("--data")
            .arg(&data)
            .env("PROJECTOR_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?)
    };
    let log = dir.path().join("first.log");
    let mut first = dev(&log)?;
    let printed = collect_stdout(&mut first);
    let started = Instant::now();
    // The backlog (400) plus some live events.
    while PROJECTIONS
        .iter()
        .map(|name| checkpoint(&data, name).unwrap_or(0))
        .sum::<i64>()
        < 2 * 500
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no progress: {}",
            std::fs::read_to_string(&log)?
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = printed.lock().unwrap().clone();
    let logged = std::fs::read_to_string(&log)?;
    assert!(logged.contains("wrote the example projections"), "{logged}");
    assert!(text.contains("order_summary.wasm, payments.wasm"), "{text}");
    assert!(text.contains("esdb://127.0.0.1:"), "{text}");
    assert!(text.contains(" query --data "), "{text}");
    assert!(text.contains("after a backlog of 400"), "{text}");
    let api = text
        .split("curl -s http://")
        .nth(1)
        .and_then(|rest| rest.split("/api/").next())
        .ok_or_else(|| anyhow::anyhow!("no API address printed: {text}"))?
        .to_string();
    let (status, body) = http_get(&api, "/api/projections")?;
    assert!(status.contains("200"), "{status} {body}");
    let projections: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(projections["projections"][0]["name"], "order_summary");
    assert_eq!(projections["projections"][0]["caught_up"], true);
    let (status, body) = http_get(
        &api,
        "/api/query?sql=SELECT%20count(*)%20AS%20n%20FROM%20order_summary.orders",
    )?;
    assert!(status.contains("200"), "{status} {body}");
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    assert!(answer["rows"][0]["n"].as_i64() > Some(100), "{body}");
    // The answer says which position of the projection it reflects.
    assert!(
        answer["positions"]["order_summary"].as_u64() > Some(0),
        "{body}"
    );
    let (status, body) = http_get(&api, "/api/query?sql=DELETE%20FROM%20order_summary.orders")?;
    assert!(status.contains("400"), "{status} {body}");
    assert!(body.contains("read-only"), "{body}");

    assert!(
        interrupt(first)?.success(),
        "{}",
        std::fs::read_to_string(&log)?
    );
    let orders = tables::rows(&data, "order_summary", "orders")?.len();
    assert!(orders > 100, "{orders} orders");
    let before = PROJECTIONS.map(|name| checkpoint(&data, name));

    let log = dir.path().join("second.log");
    let mut second = dev(&log)?;
    let printed = collect_stdout(&mut second);
    std::thread::sleep(Duration::from_secs(3));
    assert!(interrupt(second)?.success());
    let text = printed.lock().unwrap().clone();
    assert!(text.contains("projector dev is running"), "{text}");
    assert!(!text.contains("backlog"), "{text}");
    assert!(!std::fs::read_to_string(&log)?.contains("wrote the example projections"));
    let after = PROJECTIONS.map(|name| checkpoint(&data, name));
    assert!(
        after.iter().zip(&before).all(|(a, b)| a >= b),
        "{before:?} -> {after:?}"
    );
    assert!(tables::rows(&data, "order_summary", "orders")?.len() > orders);
    Ok(())
}
