//! A plugin that misbehaves on demand, so tests can check what the host does about it.
//!
//! Each event's type says what to do: `Ok` inserts a row (`items(position, stream)`), `Trap`
//! panics, `Loop` never returns, `Grow` allocates until memory runs out, `Sql` runs the
//! statement in the event's data and fails the batch with the SQL error it gets, `Refuse`
//! returns `invalid-event`, `Print` writes its data to stdout and stderr and succeeds, `Shout` fails with a 12 MB
//! `sql-error`, and `Sleep` sleeps for an hour.

wit_bindgen::generate!({ path: "../../../wit", world: "projection" });

use projector::plugin::sql;
use projector::plugin::types::{InvalidEvent, Value};

struct Misbehave;

impl Guest for Misbehave {
    fn describe() -> Manifest {
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
            match event.event_type.as_str() {
                "Ok" => {
                    sql::execute(
                        "INSERT INTO items (position, stream) VALUES (?1, ?2)",
                        &[Value::Integer(event.position), Value::Text(event.stream_id.clone())],
                    )
                    .map_err(Error::Sql)?;
                }
                "Trap" => panic!("misbehave was told to trap at position {}", event.position),
                "Loop" => {
                    let mut counter: u64 = 0;
                    loop {
                        counter = std::hint::black_box(counter.wrapping_add(1));
                    }
                }
                "Grow" => {
                    let mut hoard: Vec<Vec<u8>> = Vec::new();
                    loop {
                        hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                    }
                }
                "Sql" => {
                    let statement = String::from_utf8_lossy(&event.data).into_owned();
                    sql::execute(&statement, &[]).map_err(Error::Sql)?;
                }
                "Sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
                "Refuse" => {
                    return Err(Error::InvalidEvent(InvalidEvent { index: index as u32, message: "refused on purpose".into() }));
                }
                "Shout" => {
                    return Err(Error::Sql(sql::SqlError::Other("shout ".repeat(2 << 20))));
                }
                "Print" => {
                    let text = String::from_utf8_lossy(&event.data);
                    println!("stdout says {text}");
                    eprintln!("stderr says {text}");
                }
                other => return Err(Error::Other(format!("unknown instruction {other}"))),
            }
        }
        Ok(())
    }
}

export!(Misbehave);
