//! One statement per text: finding a second statement without asking SQLite.
//!
//! rusqlite checks a statement's tail by preparing it, and that check prepares the tail's tail
//! the same way, one stack frame per statement: `"SELECT 1;"` repeated 100,000 times overflows
//! the stack and kills the process. Every text from a plugin or a user passes this scan first:
//! it reads the text once, with the tokens SQLite uses to tell a `;` that ends a statement from
//! one inside a literal, a quoted name or a comment, and refuses anything after the first real
//! `;` but blanks, comments and more semicolons. Where the scan and SQLite could disagree (a
//! `;` inside a `$name(…)` parameter, a trigger's body) it sees a second statement, so it errs
//! towards refusing, never towards letting rusqlite recurse.
//!
//! Plugin statements need this scan rather than `guard::prepare_single` (which asks SQLite
//! where the first statement ends): they go through rusqlite's statement cache, whose prepare
//! runs the recursive check itself before anything else could look.

/// Fails with the reason when `text` holds more than one statement.
pub fn check(text: &str) -> Result<(), String> {
    match end_of_first(text.as_bytes())? {
        Some(end) if !only_blanks(&text.as_bytes()[end..]) => Err(
            "one statement per call: the text holds more than one (it goes on after a `;`)".into(),
        ),
        _ => Ok(()),
    }
}

/// The index just past the first `;` that ends a statement, if any; an error for the one
/// token whose extent the scan cannot mirror.
fn end_of_first(text: &[u8]) -> Result<Option<usize>, String> {
    let mut index = 0;
    while index < text.len() {
        index = match text[index] {
            b';' => return Ok(Some(index + 1)),
            // SQLite reads `$name(…)` (and `@`, `:`, `#`) as one parameter running to the next
            // blank or `)`, quotes and comment openers included: a text could hide a string
            // opener from this scan inside one. Plugins bind `?N`; the form is refused.
            b'$' | b'@' | b':' | b'#'
                if !follows_identifier(text, index) && opens_tcl_parameter(&text[index + 1..]) =>
            {
                return Err(
                    "parameters of the form $name(…) are not supported: bind values as ?1, ?2, …"
                        .into(),
                );
            }
            quote @ (b'\'' | b'"' | b'`') => past_quoted(text, index, quote),
            b'[' => past(text, index + 1, b"]"),
            b'-' if text.get(index + 1) == Some(&b'-') => past(text, index + 2, b"\n"),
            b'/' if text.get(index + 1) == Some(&b'*') => past(text, index + 2, b"*/"),
            _ => index + 1,
        };
    }
    Ok(None)
}

/// Whether the byte at `index` continues a name (`cost$usd`), rather than starting a parameter.
fn follows_identifier(text: &[u8], index: usize) -> bool {
    index > 0 && {
        let before = text[index - 1];
        before.is_ascii_alphanumeric() || before == b'_' || before == b'$' || before >= 0x80
    }
}

/// Whether `rest` (what follows a parameter sigil) is a name followed by `(`.
fn opens_tcl_parameter(rest: &[u8]) -> bool {
    let name = rest
        .iter()
        .take_while(|&&b| {
            b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b':' || b >= 0x80
        })
        .count();
    name > 0 && rest.get(name) == Some(&b'(')
}

/// Whether `rest` holds nothing but blanks, comments and semicolons.
fn only_blanks(rest: &[u8]) -> bool {
    let mut index = 0;
    while index < rest.len() {
        index = match rest[index] {
            b';' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => index + 1,
            b'-' if rest.get(index + 1) == Some(&b'-') => past(rest, index + 2, b"\n"),
            b'/' if rest.get(index + 1) == Some(&b'*') => past(rest, index + 2, b"*/"),
            _ => return false,
        };
    }
    true
}

/// The index past a literal or name opened by `quote` at `start`; a doubled quote inside it is
/// an escaped quote, as in SQL.
fn past_quoted(text: &[u8], start: usize, quote: u8) -> usize {
    let mut index = start + 1;
    while index < text.len() {
        if text[index] == quote {
            if text.get(index + 1) == Some(&quote) {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    // Unterminated: SQLite refuses the text when it prepares it.
    text.len()
}

/// The index past the first `end` at or after `from`, or the end of the text.
fn past(text: &[u8], from: usize, end: &[u8]) -> usize {
    text.get(from..)
        .and_then(|rest| rest.windows(end.len()).position(|window| window == end))
        .map_or(text.len(), |at| from + at + end.len())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn one_statement_passes_with_or_without_trailing_blanks() {
        for text in [
            "SELECT 1",
            "SELECT 1;",
            "SELECT 1 ;  \n -- done\n ;; /* end */",
            "SELECT ';' AS a, \"x;y\", `p;q`, [r;s] -- ; SELECT 2",
            "SELECT 'it''s; fine' /* ; SELECT 2 */",
            "SELECT 1 -- trailing comment without a newline",
            "",
        ] {
            assert_eq!(check(text), Ok(()), "{text}");
        }
    }

    #[test]
    fn a_second_statement_is_refused() {
        for text in [
            "SELECT 1; SELECT 2",
            "SELECT 1;DELETE FROM t",
            "SELECT 'a'; -- x\n SELECT 2",
            "SELECT 1; /* c */ x",
        ] {
            assert!(check(text).is_err(), "{text}");
        }
    }

    /// A `$name(…)` parameter could hide a quote from the scan (SQLite reads it to the next
    /// `)` or blank); the form is refused wherever it appears outside literals and comments.
    #[test]
    fn tcl_style_parameters_are_refused() {
        for sigil in ["$", "@", ":", "#"] {
            let hidden = format!("SELECT {sigil}a(')") + &";SELECT 1".repeat(1000);
            assert!(check(&hidden).unwrap_err().contains("?1"), "{sigil}");
        }
        for text in ["SELECT $a(--)", "SELECT $a::b(/*)", "SELECT @a([)"] {
            assert!(check(text).is_err(), "{text}");
        }
        assert_eq!(check("SELECT :a, $b, @c, ?1, '$a('"), Ok(()));
        // A `$` inside a name is part of the name.
        assert_eq!(check("INSERT INTO cost$usd(x) VALUES (1)"), Ok(()));
    }

    /// The text that used to overflow rusqlite's recursive check is refused in one pass.
    #[test]
    fn a_hundred_thousand_statements_are_refused_without_recursing() {
        let text = "SELECT 1;".repeat(100_000);
        assert!(check(&text).is_err());
        let blanks = format!("SELECT 1{}", ";".repeat(100_000));
        assert_eq!(check(&blanks), Ok(()));
    }

    /// Whatever this scan lets through, SQLite sees as one statement too.
    #[test]
    fn sqlite_agrees_on_what_passes() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        for text in [
            "SELECT ';' AS a, 'x;y' -- ; SELECT 2",
            "SELECT 'it''s; fine' /* ; SELECT 2 */ ;;",
        ] {
            assert_eq!(check(text), Ok(()));
            connection.prepare(text).unwrap();
        }
    }
}
