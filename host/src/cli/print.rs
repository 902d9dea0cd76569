//! Printing query results as text tables (JSON comes from `QueryResult::to_json`).

use comfy_table::{ContentArrangement, Table, presets};

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

fn display(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => format!("x'{}'", hex::encode(b)),
    }
}
