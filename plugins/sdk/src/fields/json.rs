//! A strict JSON parser (RFC 8259) for [`super`]: values borrow from the data, numbers stay as
//! written, and nothing is assumed about how deep the data nests (the caller bounds it first).
//!
//! Why not serde_json: `fields` must accept what the Python and JavaScript parsers accept (a
//! number too large for a double is valid JSON to them; serde_json refuses it), and the
//! serde_json features that would allow it (`arbitrary_precision`) change every serde_json in a
//! Cargo build that links this crate natively, the host's included.

use std::borrow::Cow;

/// A JSON value; text and keys borrow from the data unless they hold escapes.
#[derive(Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// As written, e.g. `-12.5e3`.
    Number(&'a str),
    Text(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in the order written, repeated keys included (the last one counts).
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// Parses `text` as one JSON value, or `None` if it is not valid JSON.
pub fn parse(text: &str) -> Option<Json<'_>> {
    let mut parser = Parser { text, at: 0 };
    let value = parser.value()?;
    parser.whitespace();
    (parser.at == text.len()).then_some(value)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.at += usize::from(matched);
        matched
    }

    fn value(&mut self) -> Option<Json<'a>> {
        self.whitespace();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Json::Text),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        let matched = self.text[self.at..].starts_with(word);
        self.at += word.len();
        matched.then_some(value)
    }

    fn object(&mut self) -> Option<Json<'a>> {
        self.at += 1; // {
        let mut members = Vec::new();
        self.whitespace();
        if self.eat(b'}') {
            return Some(Json::Object(members));
        }
        loop {
            self.whitespace();
            if self.peek() != Some(b'"') {
                return None;
            }
            let key = self.string()?;
            self.whitespace();
            if !self.eat(b':') {
                return None;
            }
            members.push((key, self.value()?));
            self.whitespace();
            if self.eat(b'}') {
                return Some(Json::Object(members));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn array(&mut self) -> Option<Json<'a>> {
        self.at += 1; // [
        let mut elements = Vec::new();
        self.whitespace();
        if self.eat(b']') {
            return Some(Json::Array(elements));
        }
        loop {
            elements.push(self.value()?);
            self.whitespace();
            if self.eat(b']') {
                return Some(Json::Array(elements));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<Json<'a>> {
        let start = self.at;
        self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.') {
            self.some_digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.some_digits()?;
        }
        Some(Json::Number(&self.text[start..self.at]))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// A string, the opening quote at `self.at`.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.at += 1; // "
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Borrowed(&self.text[start..self.at - 1]));
                }
                b'\\' => break,
                0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        let mut owned = String::from(&self.text[start..self.at]);
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Owned(owned));
                }
                b'\\' => {
                    self.at += 1;
                    owned.push(self.escape()?);
                }
                0x00..=0x1f => return None,
                _ => {
                    // Copy the run up to the next quote, escape or control character.
                    let run = self.at;
                    while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                        self.at += 1;
                    }
                    owned.push_str(&self.text[run..self.at]);
                }
            }
        }
    }

    /// The character of an escape, the backslash already read. Half a surrogate pair is not
    /// one: UTF-8 cannot hold it.
    fn escape(&mut self) -> Option<char> {
        let byte = self.peek()?;
        self.at += 1;
        Some(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        if !(self.eat(b'\\') && self.eat(b'u')) {
                            return None;
                        }
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?
                    }
                    _ => char::from_u32(unit)?, // None for a lone low surrogate
                }
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_json_and_nothing_else() {
        for valid in [
            "{}",
            "[]",
            " 0 ",
            "-0",
            "1.5e-3",
            "1E+400",
            "\"\"",
            "true",
            "null",
            "{\"a\":[1,{\"b\":null}],\"a\":false}",
            "\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\"",
            "\"é😀\"",
            "[1,2 , 3]",
        ] {
            assert!(parse(valid).is_some(), "{valid}");
        }
        for invalid in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "01",
            "1.",
            ".5",
            "1e",
            "-",
            "+1",
            "NaN",
            "Infinity",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12zz\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800x\"",
            "\"\\ud800\\u0041\"",
            "\"a\u{1}b\"",
            "{} x",
            "[1 2]",
            "\u{feff}{}",
            "'a'",
        ] {
            assert!(parse(invalid).is_none(), "{invalid:?}");
        }
    }

    #[test]
    fn borrows_plain_text_and_decodes_escapes() {
        assert_eq!(parse("\"abc\""), Some(Json::Text(Cow::Borrowed("abc"))));
        assert_eq!(
            parse("\"a\\\"b\\u00e9c\""),
            Some(Json::Text(Cow::Owned("a\"béc".into())))
        );
        assert_eq!(parse("-1.5e3"), Some(Json::Number("-1.5e3")));
    }
}
