//! Printing query results as text tables or JSON.

use base64::Engine as _;
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::{Map, Value as Json};

use crate::store::QueryResult;
use crate::value::Value;

/// Renders `result` as an aligned text table.
pub fn text_table(result: &QueryResult) -> String {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(result.columns.iter());
    for row in &result.rows {
        table.add_row(row.iter().map(display));
    }
    table.to_string()
}

/// Converts `result` to a JSON array of objects, one per row.
pub fn json_rows(result: &QueryResult) -> Json {
    let rows = result.rows.iter().map(|row| {
        let object: Map<String, Json> = result
            .columns
            .iter()
            .cloned()
            .zip(row.iter().map(to_json))
            .collect();
        Json::Object(object)
    });
    Json::Array(rows.collect())
}

fn display(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => format!("x'{}'", hex::encode(b)),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(*i),
        Value::Real(r) => serde_json::Number::from_f64(*r).map_or(Json::Null, Json::Number),
        Value::Text(t) => Json::String(t.clone()),
        Value::Blob(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
    }
}
