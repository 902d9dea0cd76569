//! `instr` and `replace` in linear time.
//!
//! SQLite's own compare the pattern at every position of the string (`memcmp` each time), so
//! one call costs the string's length times the pattern's: `instr` on a 4 MB string and a 2 MB
//! needle that almost matches runs for minutes. Here a linear-time substring search
//! (`memchr::memmem`, Two-Way) finds the same occurrences.

use memchr::memmem;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;

use super::text::{Text, is_continuation, text_of, too_big};

/// `instr(X, Y)`: the 1-based position of the first occurrence of Y in X, 0 if none, NULL if
/// either is NULL. Positions count bytes when both are blobs, characters otherwise (both read
/// as text); an empty Y is found at 1.
pub(super) fn instr(context: &Context<'_>) -> rusqlite::Result<Option<i64>> {
    let (haystack, needle) = (context.get_raw(0), context.get_raw(1));
    let bytes = matches!((haystack, needle), (ValueRef::Blob(_), ValueRef::Blob(_)));
    let (Some(haystack), Some(needle)) = (text_of(haystack)?, text_of(needle)?) else {
        return Ok(None);
    };
    let Some(&first) = needle.first() else {
        return Ok(Some(1));
    };
    if bytes {
        return Ok(Some(
            memmem::find(&haystack, &needle).map_or(0, |at| at as i64 + 1),
        ));
    }
    // SQLite tries the needle at the start, then at each byte that does not continue a
    // character. A needle starting with a continuation byte can only be found at the start.
    if is_continuation(first) {
        return Ok(Some(i64::from(haystack.starts_with(&needle))));
    }
    // Any other occurrence starts where SQLite tries, so the first one is its answer.
    Ok(Some(match memmem::find(&haystack, &needle) {
        None => 0,
        Some(0) => 1,
        Some(at) => {
            let tried_before = 1 + haystack[1..at]
                .iter()
                .filter(|&&byte| !is_continuation(byte))
                .count();
            tried_before as i64 + 1
        }
    }))
}

/// `replace(X, Y, Z)`: X (read as text) with every occurrence of Y, left to right and not
/// overlapping, replaced by Z. NULL if any is NULL, except that an empty Y (or one starting
/// with a NUL byte) gives X whatever Z is. A result over `max_length` bytes is refused as
/// SQLite refuses it, before it is built.
pub(super) fn replace(context: &Context<'_>, max_length: usize) -> rusqlite::Result<Option<Text>> {
    let Some(text) = text_of(context.get_raw(0))? else {
        return Ok(None);
    };
    let Some(pattern) = text_of(context.get_raw(1))? else {
        return Ok(None);
    };
    if pattern.first().is_none_or(|&byte| byte == 0) {
        return Ok(Some(Text(text.into_owned())));
    }
    let Some(with) = text_of(context.get_raw(2))? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(text.len());
    let mut copied = 0;
    for at in memmem::find_iter(&text, &pattern) {
        out.extend_from_slice(&text[copied..at]);
        out.extend_from_slice(&with);
        copied = at + pattern.len();
        if out.len() + (text.len() - copied) > max_length {
            return Err(too_big());
        }
    }
    out.extend_from_slice(&text[copied..]);
    Ok(Some(Text(out)))
}

#[cfg(test)]
mod tests {
    use super::super::oracle::{Arg, Oracle};

    #[test]
    fn instr_answers_as_sqlite_does() {
        let oracle = Oracle::new();
        oracle.agree_on_fixed("SELECT instr(?1, ?2)", 2);
        oracle.agree_on_random("SELECT instr(?1, ?2)", 2, 20_000);
    }

    #[test]
    fn replace_answers_as_sqlite_does() {
        let oracle = Oracle::new();
        oracle.agree_on_fixed("SELECT replace(?1, ?2, ?3)", 3);
        oracle.agree_on_random("SELECT replace(?1, ?2, ?3)", 3, 20_000);
    }

    #[test]
    fn replace_refuses_a_result_over_the_length_bound_before_building_it() {
        let oracle = Oracle::with_max_length(1000);
        let text = Arg::Text(vec![b'a'; 600]);
        let error = oracle
            .ours("SELECT replace(?1, 'a', 'bb')", std::slice::from_ref(&text))
            .unwrap_err();
        assert!(error.to_string().contains("too big"), "{error}");
        assert_eq!(
            oracle
                .ours("SELECT length(replace(?1, 'a', 'b'))", &[text])
                .unwrap(),
            Arg::Integer(600)
        );
    }

    /// On SQLite's `instr` the first call costs about 2 million `memcmp`s of 2 MB each,
    /// minutes; linear, both end in milliseconds (the bound asserted is generous on purpose).
    #[test]
    fn instr_on_megabytes_ends_well_within_the_deadline() {
        let oracle = Oracle::with_max_length(16 << 20);
        let started = std::time::Instant::now();
        let absent = oracle.ours(
            "SELECT instr(printf('%.*c', 4000000, 'a'), printf('%.*c', 2000000, 'a') || 'b')",
            &[],
        );
        let last = oracle.ours(
            "SELECT instr(printf('%.*c', 4000000, 'a') || 'b', printf('%.*c', 2000000, 'a') || 'b')",
            &[],
        );
        assert_eq!(absent.unwrap(), Arg::Integer(0));
        assert_eq!(last.unwrap(), Arg::Integer(2_000_001));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
