//! A plugin that misbehaves on demand, so tests can check what the host does about it.
//!
//! Each event's type is an instruction:
//!
//! - `Ok` inserts a row `items(position, stream)` with the event's position and stream.
//! - `Trap` panics.
//! - `Loop` never returns.
//! - `Recurse` recurses without end, until the wasm stack overflows.
//! - `Grow` allocates until memory runs out.
//! - `Sql` runs the statement in the event's data and fails the batch with the SQL error it gets.
//! - `Inject` inserts the event's data as a bound parameter into `items.stream`, so an
//!   injection attempt in it (`x'); DROP TABLE items; --`) can be checked to be stored as text.
//! - `Huge` queries 200 rows of 1 MB each, past any result bound, and fails the batch with the
//!   SQL error it gets.
//! - `LogFlood` calls the `log` import 100,000 times, each line tagged with the event's data,
//!   then inserts `items(position, 'flooded')`, so a test sees that the call went on to its end.
//! - `ManyStatements` sends `"SELECT 1;"` repeated 100,000 times as one `sql` call and fails the
//!   batch with the SQL error it gets (event data is too small to carry that text).
//! - `Wasi` tries to read `/etc/passwd`, to write the file named on the data's first line, to
//!   connect to `127.0.0.1` on the port on its second line, and reads the environment,
//!   arguments, wall clock and monotonic clock; it inserts what it observed as one line of text
//!   into `items.stream` (`fs-read:denied fs-write:denied env:0 args:0 net:denied clock:0
//!   instant:0` in a sandbox that holds), so a test asserts exactly what the plugin could see.
//! - `Refuse` returns `invalid-event`.
//! - `Print` writes its data to stdout and stderr and succeeds.
//! - `Shout` fails with a 12 MB `sql-error`.
//! - `Sleep` sleeps for an hour.
//! - `PanicAfterOutput` writes 100 KiB to stderr, past the host's capture, then panics: the panic
//!   message comes after the capture's bound.
//! - `PanicHuge` panics with a 10 MB message.
//!
//! `describe` prints a line to stdout.

wit_bindgen::generate!({ path: "../../../wit", world: "projection" });

use projector::plugin::types::{InvalidEvent, Value};
use projector::plugin::{log, sql};

struct Misbehave;

impl Guest for Misbehave {
    fn describe() -> Manifest {
        // Printing while being loaded: `projector test` must not fall over it (it once panicked
        // the host, whose WASI output blocked through tokio on an async thread).
        println!("misbehave is being described");
        Manifest {
            name: "misbehave".into(),
            version: "1.0.0".into(),
            description: "misbehaves on demand (tests only)".into(),
            event_types: vec![],
            stream_prefixes: vec![],
            schema: vec!["CREATE TABLE items (position INTEGER PRIMARY KEY, stream TEXT NOT NULL)".into()],
        }
    }

    fn handle(events: Vec<Event>) -> Result<(), Error> {
        for (index, event) in events.iter().enumerate() {
            let data = String::from_utf8_lossy(&event.data).into_owned();
            match event.event_type.as_str() {
                "Ok" => insert(event.position, &event.stream_id)?,
                "Trap" => panic!("misbehave was told to trap at position {}", event.position),
                "Loop" => {
                    let mut counter: u64 = 0;
                    loop {
                        counter = std::hint::black_box(counter.wrapping_add(1));
                    }
                }
                "Recurse" => {
                    std::hint::black_box(recurse(0));
                }
                "Grow" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                    }
                }
                "Sql" => {
                    sql::execute(&data, &[]).map_err(Error::Sql)?;
                }
                "Inject" => insert(event.position, &data)?,
                "Huge" => {
                    let rows = sql::query(
                        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 200) \
                         SELECT zeroblob(1000000) FROM r",
                        &[],
                    )
                    .map_err(Error::Sql)?;
                    return Err(Error::Other(format!("a huge query returned {} rows", rows.len())));
                }
                "LogFlood" => {
                    for line in 0..100_000 {
                        log::write(log::Level::Info, &format!("flood {data} line {line}"));
                    }
                    insert(event.position, "flooded")?;
                }
                "ManyStatements" => {
                    sql::execute(&"SELECT 1;".repeat(100_000), &[]).map_err(Error::Sql)?;
                }
                "Wasi" => insert(event.position, &observe_wasi(&data))?,
                "Sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
                "Refuse" => {
                    return Err(Error::InvalidEvent(InvalidEvent { index: index as u32, message: "refused on purpose".into() }));
                }
                "Shout" => {
                    return Err(Error::Sql(sql::SqlError::Other("shout ".repeat(2 << 20))));
                }
                "PanicAfterOutput" => {
                    eprint!("{}", "noise ".repeat((100 << 10) / 6));
                    panic!("misbehave panicked after its output at position {}", event.position);
                }
                "PanicHuge" => panic!("misbehave panicked at length: {}", "huge ".repeat(2 << 20)),
                "Print" => {
                    println!("stdout says {data}");
                    eprintln!("stderr says {data}");
                }
                other => return Err(Error::Other(format!("unknown instruction {other}"))),
            }
        }
        Ok(())
    }
}

fn insert(position: i64, stream: &str) -> Result<(), Error> {
    sql::execute(
        "INSERT INTO items (position, stream) VALUES (?1, ?2)",
        &[Value::Integer(position), Value::Text(stream.into())],
    )
    .map_err(Error::Sql)?;
    Ok(())
}

/// Recurses until the stack runs out; `black_box` on the argument and the result keeps the
/// optimiser from turning the recursion into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))).wrapping_add(depth)
}

/// Tries each WASI capability a plugin should not have and says what came of it, one word per
/// capability: `denied` for an error, or what the plugin got.
fn observe_wasi(data: &str) -> String {
    let mut lines = data.lines();
    let write_to = lines.next().unwrap_or("/tmp/misbehave-escape");
    let port: u16 = lines.next().and_then(|p| p.trim().parse().ok()).unwrap_or(9);
    let fs_read = match std::fs::read("/etc/passwd") {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(_) => "denied".into(),
    };
    let fs_write = match std::fs::write(write_to, b"escaped") {
        Ok(()) => "written".into(),
        Err(_) => "denied".to_string(),
    };
    let env = std::env::vars_os().count();
    let args = std::env::args_os().count();
    let net = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => "connected".to_string(),
        Err(_) => "denied".into(),
    };
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(u128::MAX);
    // Busy work between two readings of the monotonic clock: a real clock would advance.
    let started = std::time::Instant::now();
    let mut spin: u64 = 0;
    for i in 0..10_000_000u64 {
        spin = std::hint::black_box(spin.wrapping_add(i));
    }
    let instant = started.elapsed().as_nanos();
    format!("fs-read:{fs_read} fs-write:{fs_write} env:{env} args:{args} net:{net} clock:{clock} instant:{instant}")
}

export!(Misbehave);
