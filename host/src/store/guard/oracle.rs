//! Tests of the replaced functions against SQLite's own: the same SQL on a plain connection
//! (the built-ins) and on a hardened one must give the same value, type included, for fixed
//! awkward arguments and for many random ones (numbers, blobs, NULL, non-ASCII text and text
//! that is not valid UTF-8).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

/// An argument or a result, as SQLite holds it (text as bytes, valid UTF-8 or not).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    Null,
    Integer(i64),
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Null => ValueRef::Null,
            Arg::Integer(integer) => ValueRef::Integer(*integer),
            Arg::Real(real) => ValueRef::Real(*real),
            Arg::Text(bytes) => ValueRef::Text(bytes),
            Arg::Blob(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

impl From<ValueRef<'_>> for Arg {
    fn from(value: ValueRef<'_>) -> Arg {
        match value {
            ValueRef::Null => Arg::Null,
            ValueRef::Integer(integer) => Arg::Integer(integer),
            ValueRef::Real(real) => Arg::Real(real),
            ValueRef::Text(bytes) => Arg::Text(bytes.to_vec()),
            ValueRef::Blob(bytes) => Arg::Blob(bytes.to_vec()),
        }
    }
}

/// Pieces the random arguments are made of: ASCII, two-, three- and four-byte characters, a
/// stray continuation byte, a lead byte alone, an overlong run, a NUL, hex digits.
const PIECES: &[&[u8]] = &[
    b"a",
    b"b",
    b"ab",
    b" ",
    b"0",
    b"f",
    "é".as_bytes(),
    "日".as_bytes(),
    "😀".as_bytes(),
    b"\x80",
    b"\xA9",
    b"\xC3",
    b"\xC0\x80\x80\x80\x80",
    b"\0",
];

/// Awkward arguments tried in every combination.
fn fixed() -> Vec<Arg> {
    let text = |s: &[u8]| Arg::Text(s.to_vec());
    vec![
        Arg::Null,
        Arg::Integer(0),
        Arg::Integer(12),
        Arg::Integer(-3),
        Arg::Real(1.5),
        Arg::Real(1e20),
        text(b""),
        text(b"a"),
        text(b"abcab"),
        text("aé日😀é".as_bytes()),
        text("é".as_bytes()),
        text(b"\x80"),
        text(b"\xC3"),
        text(b"a\0b"),
        text(b"  a b  "),
        text(b"1.5"),
        Arg::Blob(Vec::new()),
        Arg::Blob(b"ab".to_vec()),
        Arg::Blob("é".as_bytes().to_vec()),
        Arg::Blob(b"\xA9\xC3".to_vec()),
    ]
}

/// A plain connection and a hardened one.
pub(super) struct Oracle {
    builtin: Connection,
    ours: Connection,
}

impl Oracle {
    pub(super) fn new() -> Oracle {
        Oracle::with_max_length(1 << 20)
    }

    pub(super) fn with_max_length(max_length: usize) -> Oracle {
        let ours = Connection::open_in_memory().unwrap();
        super::harden(&ours, max_length).unwrap();
        Oracle {
            builtin: Connection::open_in_memory().unwrap(),
            ours,
        }
    }

    /// The first column of `sql`'s one row on the hardened connection.
    pub(super) fn ours(&self, sql: &str, args: &[Arg]) -> rusqlite::Result<Arg> {
        first(&self.ours, sql, args)
    }

    /// Asserts that both connections give the same value, or fail with the same message.
    pub(super) fn agree(&self, sql: &str, args: &[Arg]) {
        let builtin = first(&self.builtin, sql, args).map_err(|e| e.to_string());
        let ours = first(&self.ours, sql, args).map_err(|e| e.to_string());
        assert_eq!(ours, builtin, "{sql} with {args:?}");
    }

    /// [`Oracle::agree`] on every combination of `arity` fixed arguments.
    pub(super) fn agree_on_fixed(&self, sql: &str, arity: u32) {
        let values = fixed();
        for mut combination in 0..values.len().pow(arity) {
            let mut args = Vec::new();
            for _ in 0..arity {
                args.push(values[combination % values.len()].clone());
                combination /= values.len();
            }
            self.agree(sql, &args);
        }
    }

    /// [`Oracle::agree`] on `cases` random combinations of `arity` arguments (the same ones on
    /// every run).
    pub(super) fn agree_on_random(&self, sql: &str, arity: usize, cases: usize) {
        let mut random = fastrand::Rng::with_seed(0x5EED);
        for _ in 0..cases {
            let args: Vec<Arg> = (0..arity).map(|_| random_arg(&mut random)).collect();
            self.agree(sql, &args);
        }
    }
}

fn first(connection: &Connection, sql: &str, args: &[Arg]) -> rusqlite::Result<Arg> {
    connection
        .prepare_cached(sql)?
        .query_row(rusqlite::params_from_iter(args), |row| {
            Ok(Arg::from(row.get_ref(0)?))
        })
}

fn random_arg(random: &mut fastrand::Rng) -> Arg {
    let mut bytes = Vec::new();
    for _ in 0..random.usize(0..8) {
        bytes.extend_from_slice(PIECES[random.usize(..PIECES.len())]);
    }
    match random.u8(0..20) {
        0 => Arg::Null,
        1 => Arg::Integer(random.i64(-20..200)),
        2 => Arg::Real(f64::from(random.i32(-50..50)) / 4.0),
        3..=6 => Arg::Blob(bytes),
        _ => Arg::Text(bytes),
    }
}
