//! Reading an event's JSON data field by field, with rules and messages that are the same in
//! every language Projector's helpers exist for (this module, `projector.fields` in Python and
//! `projector/fields.js` in JavaScript). A projection written on them refuses the same events
//! with the same dead-letter messages whatever language it is in, so it can be ported, or
//! checked against a twin, table for table.
//!
//! The rules (docs/plugins.md, "Reading event data"), chosen so that each language's own
//! parser can apply them cheaply:
//! - data nesting deeper than [`MAX_DEPTH`] (500) arrays and objects is refused before
//!   parsing: `data nests deeper than 500 levels` (parsers differ in how deep they can go, and
//!   data shorter than 500 bytes cannot nest that deep, so most events skip the check);
//! - data must be UTF-8 JSON text (RFC 8259: no `NaN` or `Infinity`, no lone surrogates):
//!   otherwise `data is not valid JSON`, without a position, since every parser words and
//!   counts it differently. A number too large for a double is valid JSON; read as an integer
//!   it is out of range;
//! - the document must be an object: `data: expected an object, got an array`;
//! - a key given twice means its last value;
//! - integers are numbers with no fraction within ±(2^53 − 1), the range a double holds
//!   exactly (`2.0` and `1e2` are integers; `9007199254740993` is refused), so JavaScript reads
//!   them exactly too;
//! - a field's problem names its path: `items[1].quantity: expected an integer, got text`,
//!   `orderId: missing`. Values are never quoted back (languages print numbers differently).

mod json;

use std::borrow::Cow;

use json::Json;

/// How deeply data may nest arrays and objects: deep enough for any real document, shallow
/// enough for every language's parser on a plugin's 1 MiB stack.
pub const MAX_DEPTH: usize = 500;

/// The largest integer magnitude read: 2^53 − 1, the last of the run of integers a double
/// holds exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A parsed event's top-level object; its text borrows from the data.
pub struct Document<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

/// Parses `data` as a JSON object, or says why it is not one (see the module's rules).
pub fn parse(data: &[u8]) -> Result<Document<'_>, String> {
    if nests_deeper_than(data, MAX_DEPTH) {
        return Err(format!("data nests deeper than {MAX_DEPTH} levels"));
    }
    // Outside strings JSON is ASCII, so checking all of it as UTF-8 refuses exactly what
    // checking inside strings would.
    let parsed = std::str::from_utf8(data).ok().and_then(json::parse);
    match parsed {
        Some(Json::Object(members)) => Ok(Document(members)),
        Some(other) => Err(format!("data: expected an object, got {}", kind(&other))),
        None => Err("data is not valid JSON".to_owned()),
    }
}

impl Document<'_> {
    /// The object's fields.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            members: &self.0,
            place: None,
        }
    }
}

/// The fields of one object of a document, and where it sits in it (for messages).
pub struct Fields<'a> {
    members: &'a [(Cow<'a, str>, Json<'a>)],
    /// `None` at the top; for an object in an array, the object holding the array, the array's
    /// key and this object's index. The path is spelled out only for a message, so reading
    /// costs no string building (this runs for every item of every event).
    place: Option<(&'a Fields<'a>, &'a str, usize)>,
}

impl<'a> Fields<'a> {
    /// The text field `key`.
    pub fn text(&self, key: &str) -> Result<&'a str, String> {
        match self.get(key)? {
            Json::Text(text) => Ok(text),
            other => Err(self.expected(key, "text", other)),
        }
    }

    /// The integer field `key` (a number without fraction within ±(2^53 − 1)).
    pub fn integer(&self, key: &str) -> Result<i64, String> {
        let value = self.get(key)?;
        let Json::Number(number) = value else {
            return Err(self.expected(key, "an integer", value));
        };
        let integer = if !number.contains(['.', 'e', 'E']) {
            // Digits alone: too many for an i64 is out of range as well.
            number.parse::<i64>().ok()
        } else {
            // Correctly rounded, as Python and JavaScript read it; too large gives infinity.
            let float: f64 = number.parse().unwrap_or(f64::INFINITY);
            if float.is_finite() && float.fract() != 0.0 {
                return Err(format!(
                    "{}: expected an integer, got a fraction",
                    self.at(key)
                ));
            }
            // In range, the conversion is exact; out of it, refused just below.
            (float.abs() <= MAX_SAFE_INTEGER as f64).then_some(float as i64)
        };
        match integer {
            Some(integer) if integer.unsigned_abs() <= MAX_SAFE_INTEGER as u64 => Ok(integer),
            _ => Err(format!("{}: integer beyond ±(2^53 - 1)", self.at(key))),
        }
    }

    /// The field `key`, an array of objects.
    pub fn objects<'s>(&'s self, key: &'s str) -> Result<Vec<Fields<'s>>, String> {
        let array = match self.get(key)? {
            Json::Array(array) => array,
            other => return Err(self.expected(key, "an array", other)),
        };
        array
            .iter()
            .enumerate()
            .map(|(index, element)| match element {
                Json::Object(members) => Ok(Fields {
                    members,
                    place: Some((self, key, index)),
                }),
                other => Err(format!(
                    "{}[{index}]: expected an object, got {}",
                    self.at(key),
                    kind(other)
                )),
            })
            .collect()
    }

    /// The value of `key`; the last one when the key is given twice.
    fn get(&self, key: &str) -> Result<&'a Json<'a>, String> {
        self.members
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
            .ok_or_else(|| format!("{}: missing", self.at(key)))
    }

    fn expected(&self, key: &str, wanted: &str, got: &Json) -> String {
        format!("{}: expected {wanted}, got {}", self.at(key), kind(got))
    }

    /// The path of field `key` of this object.
    fn at(&self, key: &str) -> String {
        match self.place {
            None => key.to_owned(),
            Some((holder, array, index)) => format!("{}[{index}].{key}", holder.at(array)),
        }
    }
}

/// How messages name a value's kind.
fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::Text(_) => "text",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Whether `data` opens more than `max` arrays and objects at once, brackets inside strings
/// aside. Valid or not, the answer is the same in every language's helper: they all run this
/// scan, and only when the data holds more than `max` opening brackets at all.
pub fn nests_deeper_than(data: &[u8], max: usize) -> bool {
    if data.iter().filter(|&&b| b == b'[' || b == b'{').count() <= max {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in data {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
        } else if byte == b'[' || byte == b'{' {
            depth += 1;
            if depth > max {
                return true;
            }
        } else if byte == b']' || byte == b'}' {
            depth = depth.saturating_sub(1);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(data: &str) -> Result<(String, i64, Vec<i64>), String> {
        let document = parse(data.as_bytes())?;
        let fields = document.fields();
        let id = fields.text("orderId")?.to_owned();
        let count = fields.integer("count")?;
        let items = fields
            .objects("items")?
            .iter()
            .map(|item| item.integer("quantity"))
            .collect::<Result<_, _>>()?;
        Ok((id, count, items))
    }

    #[test]
    fn reads_fields_and_names_the_path_of_what_is_wrong() {
        let ok =
            r#"{"orderId":"o-1","count":2.0,"items":[{"quantity":1e2}],"orderId":"o-2","x":1e400}"#;
        assert_eq!(order(ok), Ok(("o-2".into(), 2, vec![100])));
        let cases = [
            ("", "data is not valid JSON"),
            ("{\"a\":NaN}", "data is not valid JSON"),
            ("{\"a\":\"\\ud800\"}", "data is not valid JSON"),
            ("[1]", "data: expected an object, got an array"),
            ("{}", "orderId: missing"),
            ("{\"orderId\":7}", "orderId: expected text, got a number"),
            (
                "{\"orderId\":\"o\",\"count\":null}",
                "count: expected an integer, got null",
            ),
            (
                "{\"orderId\":\"o\",\"count\":2.5}",
                "count: expected an integer, got a fraction",
            ),
            (
                "{\"orderId\":\"o\",\"count\":9007199254740992}",
                "count: integer beyond ±(2^53 - 1)",
            ),
            (
                "{\"orderId\":\"o\",\"count\":18446744073709551615}",
                "count: integer beyond ±(2^53 - 1)",
            ),
            (
                "{\"orderId\":\"o\",\"count\":-9223372036854775808}",
                "count: integer beyond ±(2^53 - 1)",
            ),
            (
                "{\"orderId\":\"o\",\"count\":-1e400}",
                "count: integer beyond ±(2^53 - 1)",
            ),
            (
                "{\"orderId\":\"o\",\"count\":-1e300}",
                "count: integer beyond ±(2^53 - 1)",
            ),
            (
                "{\"orderId\":\"o\",\"count\":1,\"items\":[{\"quantity\":1},true]}",
                "items[1]: expected an object, got a boolean",
            ),
            (
                "{\"orderId\":\"o\",\"count\":1,\"items\":[{\"quantity\":\"2\"}]}",
                "items[0].quantity: expected an integer, got text",
            ),
        ];
        for (data, message) in cases {
            assert_eq!(order(data).unwrap_err(), message, "{data}");
        }
        assert_eq!(
            order("{\"orderId\":\"o\",\"count\":-9007199254740991,\"items\":[]}"),
            Ok(("o".into(), -MAX_SAFE_INTEGER, vec![]))
        );
    }

    #[test]
    fn refuses_deep_data_before_parsing_it() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(500), "]".repeat(500));
        assert_eq!(
            parse(deep.as_bytes()).err().unwrap(),
            "data nests deeper than 500 levels"
        );
        let fits = format!("{{\"a\":{}1{}}}", "[".repeat(499), "]".repeat(499));
        assert!(parse(fits.as_bytes()).is_ok());
        // Brackets in strings do not count; unbalanced data is still scanned the same way.
        let quoted = format!("{{\"a\":\"{}\"}}", "[".repeat(1000));
        assert!(parse(quoted.as_bytes()).is_ok());
        let escaped = format!("{{\"a\":\"\\\"{}\"}}", "{".repeat(1000));
        assert!(parse(escaped.as_bytes()).is_ok());
        let closed_first = format!("{}{}", "]".repeat(10), "{".repeat(501));
        assert!(nests_deeper_than(closed_first.as_bytes(), 500));
    }
}
