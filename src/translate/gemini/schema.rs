//! Gemini's own schema dialect (OpenAPI 3.0 style, as in `FunctionDeclaration.parameters` and
//! `responseSchema`) turned into the JSON Schema the other shapes carry. Writing never needs
//! the reverse: Gemini takes JSON Schema as is in `parametersJsonSchema` and
//! `responseJsonSchema`.

use serde_json::{Map, Value, json};

/// Gemini's OpenAPI-style schema as JSON Schema: lower-case type names, `nullable` as a
/// `"null"` type, and no `propertyOrdering` (an ordering hint JSON Schema has no word for).
pub fn json_schema(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            let nullable = map.get("nullable") == Some(&Value::Bool(true));
            for (k, v) in map {
                let v = match k.as_str() {
                    "nullable" | "propertyOrdering" => continue,
                    "type" => match v {
                        Value::String(t) if nullable => json!([t.to_ascii_lowercase(), "null"]),
                        Value::String(t) => Value::String(t.to_ascii_lowercase()),
                        other => other,
                    },
                    "properties" => match v {
                        Value::Object(props) => Value::Object(
                            props
                                .into_iter()
                                .map(|(k, v)| (k, json_schema(v)))
                                .collect(),
                        ),
                        other => other,
                    },
                    "items" | "anyOf" => json_schema(v),
                    _ => v,
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(json_schema).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_schemas_become_json_schema() {
        let openapi = json!({
            "type": "OBJECT",
            "properties": {
                "city": {"type": "STRING", "description": "City"},
                "days": {"type": "INTEGER", "nullable": true},
                "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a", "b"]}}
            },
            "required": ["city"],
            "propertyOrdering": ["city", "days", "tags"]
        });
        assert_eq!(
            json_schema(openapi),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City"},
                    "days": {"type": ["integer", "null"]},
                    "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}
                },
                "required": ["city"]
            })
        );
    }
}
