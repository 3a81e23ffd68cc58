//! JSON: values as text, keys as context.

use serde_json::Value;

/// JSON as `path: value` lines; each element of a top-level array is its own paragraph.
pub fn json_text(value: &Value) -> String {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&p, v, out);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Null => {}
            Value::String(s) => out.push(if prefix.is_empty() { s.clone() } else { format!("{prefix}: {s}") }),
            other => out.push(if prefix.is_empty() { other.to_string() } else { format!("{prefix}: {other}") }),
        }
    }
    let render = |v: &Value| {
        let mut lines = Vec::new();
        walk("", v, &mut lines);
        lines.join("\n")
    };
    match value {
        Value::Array(items) => items.iter().map(render).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("\n\n"),
        other => render(other),
    }
}
