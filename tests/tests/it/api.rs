//! The HTTP API under the requests an attacker sends, over real HTTP against `projector run`:
//! results past the bounds, a single quadratic function call, a text of 100,000 statements,
//! a foreign `Host`, more queries than slots, and Ctrl-C with a query running and a client
//! that never finishes its request. After each, the process must still answer.

use std::time::{Duration, Instant};

use projector_tests::guests;

use crate::deploy::{PATIENCE, Running, Scene, Writer, deploy, read, tail, wait_for_position};
use crate::dev::{exchange, http};

/// A scene whose config ends with `extra`, tally projecting a few events, and `projector run`
/// serving the API: the scene, the run and the API's address.
async fn serving(extra: &str) -> anyhow::Result<(Scene, Running, String)> {
    let scene = Scene::new(extra).await?;
    let appended = Writer::backlog(&scene.connection, 10).await?;
    deploy(&scene.plugins, "tally.wasm", &read(guests::TALLY_V1)?)?;
    let (run, api) = scene.run_api("info")?;
    let last = appended.lock().unwrap().last().expect("appended").0;
    wait_for_position(&scene.data, last, PATIENCE, &scene.log)?;
    Ok((scene, run, api))
}

/// `sql` through `POST /api/query`: the status code and the body.
fn query(api: &str, sql: &str) -> anyhow::Result<(u16, String)> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let (status, body) = http(api, "POST", "/api/query", Some(&body))?;
    Ok((code(&status), body))
}

/// The status code of an HTTP status line.
pub fn code(status_line: &str) -> u16 {
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// `sql` percent-encoded for a query string.
fn encoded(sql: &str) -> String {
    sql.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The process still answers: `GET /api/projections` lists tally.
fn still_answers(api: &str, scene: &Scene) -> anyhow::Result<()> {
    let (status, body) = http(api, "GET", "/api/projections", None)?;
    anyhow::ensure!(
        status.contains("200") && body.contains("\"tally\""),
        "{status} {body}\n{}",
        tail(&scene.log)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn results_past_the_bounds_are_refused_saying_how_to_narrow_them() -> anyhow::Result<()> {
    let (scene, run, api) = serving("[api]\nmax_result_rows = 100\nmax_result_mib = 1\n").await?;
    let counting = |n: u32| {
        format!(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT {n}) SELECT n FROM c"
        )
    };
    let (status, body) = query(&api, &counting(100))?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body)?["rows"]
            .as_array()
            .map(Vec::len),
        Some(100)
    );
    let (status, body) = query(&api, &counting(101))?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("the result was cut: it has more than 100 rows"),
        "{body}"
    );
    assert!(
        body.contains("a LIMIT") && body.contains("[api] max_result_rows"),
        "{body}"
    );

    // Four values of 300,000 bytes: more than 1 MiB together.
    let sql = "SELECT zeroblob(300000) FROM (VALUES (1), (2), (3), (4))";
    let (status, body) = http(
        &api,
        "GET",
        &format!("/api/query?sql={}", encoded(sql)),
        None,
    )?;
    assert_eq!(code(&status), 400, "{body}");
    assert!(body.contains("more than 1048576 bytes"), "{body}");
    assert!(body.contains("[api] max_result_mib"), "{body}");
    // The attack: four values of 200 MB, 1 GB of JSON; now no such value is even built.
    let sql = "SELECT zeroblob(200000000) FROM (VALUES (1), (2), (3), (4))";
    let started = Instant::now();
    let (status, body) = http(
        &api,
        "GET",
        &format!("/api/query?sql={}", encoded(sql)),
        None,
    )?;
    assert_eq!(code(&status), 400, "{body}");
    assert!(body.contains("larger than 1048576 bytes"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    still_answers(&api, &scene)?;
    drop(run);
    scene.stop().await
}

/// One `instr` call that SQLite's own implementation spends minutes on (2 million `memcmp`s
/// of 2 MB) answers within the query deadline, and so does a `trim` SQLite spends hours on.
#[tokio::test(flavor = "multi_thread")]
async fn a_single_quadratic_call_answers_within_the_deadline() -> anyhow::Result<()> {
    let (scene, run, api) = serving("").await?;
    for (sql, answer) in [
        (
            "SELECT instr(printf('%.*c', 4000000, 'a'), printf('%.*c', 2000000, 'a') || 'b') AS i",
            "[{\"i\":0}]",
        ),
        (
            "SELECT length(trim(printf('%.*c', 8000000, 'a'), printf('%.*c', 2000000, 'b') || 'a')) AS i",
            "[{\"i\":0}]",
        ),
    ] {
        let started = Instant::now();
        let (status, body) = query(&api, sql)?;
        let took = started.elapsed();
        let rows = serde_json::from_str::<serde_json::Value>(&body)?["rows"].to_string();
        assert_eq!((status, rows.as_str()), (200, answer), "{sql}: {body}");
        assert!(took < projector::store::QUERY_DEADLINE, "{sql}: {took:?}");
    }
    still_answers(&api, &scene)?;
    drop(run);
    scene.stop().await
}

/// `SELECT 1;` 100,000 times overflowed the stack in rusqlite's `prepare` and killed the
/// process; now it is refused as more than one statement.
#[tokio::test(flavor = "multi_thread")]
async fn a_text_of_many_statements_is_refused_and_the_process_lives() -> anyhow::Result<()> {
    let (scene, run, api) = serving("").await?;
    let (status, body) = query(&api, &"SELECT 1;".repeat(100_000))?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid query: one statement per query"),
        "{body}"
    );
    let (status, body) = query(&api, "SELECT count(*) AS n FROM tally; -- one statement")?;
    assert_eq!(status, 200, "{body}");
    still_answers(&api, &scene)?;
    drop(run);
    scene.stop().await
}

/// A `Host` that does not name this server (what a DNS-rebinding page sends) is refused with
/// 421 and the reason; local names with the right port are served.
#[tokio::test(flavor = "multi_thread")]
async fn requests_must_name_this_server() -> anyhow::Result<()> {
    let (scene, run, api) = serving("").await?;
    let port = api.rsplit_once(':').expect("a port").1;
    let path = format!("/api/query?sql={}", encoded("SELECT 1 AS one"));
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "localhost:1",
    ] {
        for path in ["/api/projections", &path] {
            let (head, body) = exchange(&api, host, "GET", path, None)?;
            assert!(head.starts_with("HTTP/1.1 421"), "{host} {path}: {head}");
            assert!(body.contains("does not name this server"), "{body}");
            assert!(body.contains("DNS rebinding"), "{body}");
        }
    }
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let (head, body) = exchange(&api, &host, "GET", &path, None)?;
        assert!(head.starts_with("HTTP/1.1 200"), "{host}: {head}");
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(answer["rows"].to_string(), "[{\"one\":1}]", "{body}");
    }
    still_answers(&api, &scene)?;
    drop(run);
    scene.stop().await
}

/// With one query slot, a second query while one runs gets 503 with `Retry-After`. Then
/// Ctrl-C, with that query still running (it runs until its deadline) and a client that sent
/// half a request and never the rest: the process exits within the API's shutdown grace.
#[tokio::test(flavor = "multi_thread")]
async fn busy_queries_are_refused_and_nothing_holds_the_exit() -> anyhow::Result<()> {
    let (scene, run, api) = serving("[api]\nmax_concurrent_queries = 1\n").await?;
    let endless = {
        let api = api.clone();
        std::thread::spawn(move || {
            query(
                &api,
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c",
            )
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let body = serde_json::json!({ "sql": "SELECT 1" }).to_string();
    let (head, answer) = exchange(&api, &api, "POST", "/api/query", Some(&body))?;
    assert!(head.starts_with("HTTP/1.1 503"), "{head} {answer}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert!(answer.contains("max_concurrent_queries"), "{answer}");
    still_answers(&api, &scene)?;

    let mut half = std::net::TcpStream::connect(&api)?;
    std::io::Write::write_all(&mut half, b"GET /api/projections HTTP/1.1\r\nHost: ")?;
    let grace = projector::api::SHUTDOWN_GRACE;
    let (status, took) = run.stop_within(grace + Duration::from_secs(10))?;
    assert!(status.success(), "exit {status}\n{}", tail(&scene.log));
    assert!(took < grace + Duration::from_secs(5), "{took:?}");
    drop(half);
    let _ = endless.join();
    scene.stop().await
}

/// A client that opens connections and sends nothing, or half a header: past the API's cap
/// on open connections new ones are closed at once, and a header not sent within the
/// header-read timeout closes its connection. The process answers throughout and after.
#[tokio::test(flavor = "multi_thread")]
async fn idle_and_excess_connections_are_closed_and_the_api_answers() -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let (scene, run, api) = serving("").await?;
    let cap = projector::api::MAX_CONNECTIONS;
    let mut held = Vec::with_capacity(cap);
    for _ in 0..cap {
        held.push(TcpStream::connect(&api)?);
    }
    // The server accepts in order: give it a moment to take the whole backlog.
    std::thread::sleep(Duration::from_millis(300));
    let mut over = TcpStream::connect(&api)?;
    over.set_read_timeout(Some(Duration::from_secs(5)))?;
    let started = Instant::now();
    let mut buffer = [0u8; 64];
    let read = over.read(&mut buffer);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && started.elapsed() < Duration::from_secs(5),
        "the connection past the cap was served: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    still_answers(&api, &scene)?;

    // Half a header, then nothing: closed after the header-read timeout, not held forever.
    let mut slow = TcpStream::connect(&api)?;
    slow.write_all(b"GET /api/projections HTTP/1.1\r\nHo")?;
    slow.set_read_timeout(Some(Duration::from_secs(30)))?;
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let took = started.elapsed();
    let timeout = projector::api::HEADER_READ_TIMEOUT;
    assert!(
        took >= timeout - Duration::from_secs(1) && took < timeout + Duration::from_secs(10),
        "closed after {took:?}: {}",
        String::from_utf8_lossy(&answer)
    );
    still_answers(&api, &scene)?;
    drop(run);
    scene.stop().await
}
