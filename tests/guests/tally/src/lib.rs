//! A projection named `tally` in several versions, so hot-reload tests can swap one for another.
//!
//! Every event adds to its type's row in `tally(event_type, events, version, last_position)`;
//! an event of type `Poison` is refused (`invalid-event`), so dead letters can be compared too.
//! A cargo feature picks the variant: none is v1 (`1.0.0`, adds 1, writes `version = '1'`); `v2`
//! is `2.0.0`, adds 2 and writes `'2'`, so its tables differ from v1's and a mix of rows shows;
//! `describe-traps` panics in `describe`; `bad-ddl` (`3.0.0`) declares a table that passes the
//! host's manifest check but that SQLite refuses; `broken` is a `2.0.0` that loads fine and
//! panics on every event, so its rebuild fails; `accepts-poison` is a `1.0.0` (a code fix of
//! v1) that counts `Poison` like any other type, so v1's dead letters can be retried on it;
//! `endless-schema` (`4.0.0`) declares its table as `CREATE TABLE … AS WITH RECURSIVE …` over a
//! query that never ends, which the host must refuse instead of running.

wit_bindgen::generate!({ path: "../../../wit", world: "projection" });

use projector::plugin::sql;
use projector::plugin::types::{InvalidEvent, Value};

// A build with two variants would silently be one of them; refuse it instead.
const VARIANTS: usize = cfg!(feature = "v2") as usize
    + cfg!(feature = "describe-traps") as usize
    + cfg!(feature = "bad-ddl") as usize
    + cfg!(feature = "broken") as usize
    + cfg!(feature = "accepts-poison") as usize
    + cfg!(feature = "endless-schema") as usize;
const _: () = assert!(
    VARIANTS <= 1,
    "enable at most one of the features v2, describe-traps, bad-ddl, broken, accepts-poison and endless-schema"
);

/// The manifest version: what tells the host a reload is a new version (rebuild) or a code fix.
const VERSION: &str = if cfg!(feature = "v2") || cfg!(feature = "broken") {
    "2.0.0"
} else if cfg!(feature = "bad-ddl") {
    "3.0.0"
} else if cfg!(feature = "endless-schema") {
    "4.0.0"
} else {
    "1.0.0"
};
// What each event adds to `events`, and the tag written to `version`: both differ between v1
// and v2, so a table built partly by each is told apart from one built by either alone.
const STEP: i64 = if cfg!(feature = "v2") { 2 } else { 1 };
const TAG: &str = if cfg!(feature = "v2") { "2" } else { "1" };
/// `WITHOUT NONSENSE` is not a table option: the statement starts like DDL but fails to prepare.
const SCHEMA: &str = if cfg!(feature = "bad-ddl") {
    "CREATE TABLE tally (event_type TEXT PRIMARY KEY) WITHOUT NONSENSE"
} else if cfg!(feature = "endless-schema") {
    // Passes the manifest's check (it starts like a CREATE TABLE); run, it would never end.
    "CREATE TABLE tally AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT i AS events FROM r"
} else {
    "CREATE TABLE tally (event_type TEXT PRIMARY KEY, events INTEGER NOT NULL, version TEXT NOT NULL, last_position INTEGER NOT NULL)"
};

struct Tally;

impl Guest for Tally {
    fn describe() -> Manifest {
        if cfg!(feature = "describe-traps") {
            panic!("tally was built to trap in describe");
        }
        Manifest {
            name: "tally".into(),
            version: VERSION.into(),
            description: format!("events per type, version {VERSION} (tests only)"),
            event_types: vec![],
            stream_prefixes: vec![],
            schema: vec![SCHEMA.into()],
        }
    }

    fn handle(events: Vec<Event>) -> Result<(), Error> {
        if cfg!(feature = "broken") {
            panic!("tally was built to trap on every event");
        }
        for (index, event) in events.iter().enumerate() {
            if event.event_type == "Poison" && !cfg!(feature = "accepts-poison") {
                let message = format!("tally {VERSION} refuses Poison");
                return Err(Error::InvalidEvent(InvalidEvent {
                    index: index as u32,
                    message,
                }));
            }
            // Values are parameters, not formatted in, so the host prepares the statement once.
            sql::execute(
                "INSERT INTO tally (event_type, events, version, last_position) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (event_type) DO UPDATE SET events = events + ?2, version = ?3, last_position = ?4",
                &[
                    Value::Text(event.event_type.clone()),
                    Value::Integer(STEP),
                    Value::Text(TAG.into()),
                    Value::Integer(event.position),
                ],
            )
            .map_err(Error::Sql)?;
        }
        Ok(())
    }
}

export!(Tally);
