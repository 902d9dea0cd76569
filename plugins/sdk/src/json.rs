//! Parsing an event's JSON data into a plugin's own types, with error messages that name the
//! field at fault (they end up in the host's dead-letter table, read by people).
//!
//! The happy path is plain `serde_json`, which borrows strings from the data where it can
//! (declare text fields as `Cow<'a, str>` with `#[serde(borrow)]` to allocate only for strings
//! with escapes). Only when that fails is the data parsed a second time, tracking the path, to
//! say where: malformed events are rare, so the common case pays nothing for the better message.

use serde::Deserialize;
use serde_json::error::Category;

/// Parses `data` as JSON into `T`, or says what is wrong with it: `"data is not valid JSON: …"`
/// for a syntax error, otherwise `"<path>: <problem>"`, e.g.
/// `"items[0].quantity: invalid type: string \"2\", expected i64 at line 1 column 57"`.
pub fn parse<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, String> {
    match serde_json::from_slice(data) {
        Ok(value) => Ok(value),
        Err(error) => Err(explain::<T>(data, error)),
    }
}

/// Builds the message for data that `T` failed to parse from with `error`.
fn explain<'a, T: Deserialize<'a>>(data: &'a [u8], error: serde_json::Error) -> String {
    if matches!(
        error.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return format!("data is not valid JSON: {error}");
    }
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(error) if error.path().iter().next().is_some() => {
            format!("{}: {}", error.path(), error.inner())
        }
        // A problem with the document as a whole, e.g. an array where an object belongs.
        _ => format!("data: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde::Deserialize;

    use super::parse;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Order<'a> {
        #[serde(borrow)]
        order_id: Cow<'a, str>,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    struct Item {
        quantity: i64,
    }

    #[test]
    fn borrows_plain_strings_and_parses_nested_values() {
        let order: Order = parse(br#"{"orderId": "o-1", "items": [{"quantity": 2}]}"#).unwrap();
        assert!(matches!(order.order_id, Cow::Borrowed("o-1")));
        assert_eq!(order.items[0].quantity, 2);
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let error = parse::<Order>(br#"{"orderId": "o-1", "items": [{"quantity": "2"}]}"#);
        let message = error.unwrap_err();
        assert!(
            message.starts_with("items[0].quantity: invalid type"),
            "{message}"
        );

        let message = parse::<Order>(br#"{"items": []}"#).unwrap_err();
        assert!(message.contains("missing field `orderId`"), "{message}");

        let message = parse::<Order>(br#""o-1""#).unwrap_err();
        assert!(
            message.starts_with("data: invalid type: string"),
            "{message}"
        );
    }

    #[test]
    fn syntax_errors_say_the_data_is_not_json() {
        for data in [
            &b"{\"orderId\": "[..],
            b"not json",
            b"",
            br#"{"orderId": "o-1", "items": []} x"#,
        ] {
            let message = parse::<Order>(data).unwrap_err();
            assert!(message.starts_with("data is not valid JSON"), "{message}");
        }
    }
}
