//! Tests of the translator as a whole: golden fixtures for every direction ([`golden`]), round
//! trips that must keep a conversation's meaning ([`roundtrip`]), one refusal per refused
//! feature ([`refusals`]) and the streaming edge cases ([`streams`]). Helpers to compare JSON
//! and SSE with readable diffs live here.

use std::path::PathBuf;

use serde_json::Value;

use crate::providers::sse;

mod golden;
mod refusals;
mod roundtrip;
mod streams;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/translate/fixtures")
}

/// Every difference between two JSON values, one line per differing path.
fn json_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let p = format!("{path}/{k}");
                match a.get(k) {
                    Some(av) => json_diff(&p, ev, av, out),
                    None => out.push(format!("{p}: missing (expected {})", short(ev))),
                }
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    out.push(format!("{path}/{k}: unexpected {}", short(av)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for i in 0..e.len().max(a.len()) {
                let p = format!("{path}/{i}");
                match (e.get(i), a.get(i)) {
                    (Some(ev), Some(av)) => json_diff(&p, ev, av, out),
                    (Some(ev), None) => out.push(format!("{p}: missing (expected {})", short(ev))),
                    (None, Some(av)) => out.push(format!("{p}: unexpected {}", short(av))),
                    (None, None) => {}
                }
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "/" } else { path },
            short(expected),
            short(actual)
        )),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

/// Event-by-event differences between two SSE bodies: names must match, data is compared as
/// JSON when it is JSON.
fn sse_diff(expected: &[u8], actual: &[u8], out: &mut Vec<String>) {
    let (e, a) = (sse::events(expected), sse::events(actual));
    if e.len() != a.len() {
        out.push(format!("{} events expected, got {}", e.len(), a.len()));
    }
    for (i, (ee, ae)) in e.iter().zip(&a).enumerate() {
        if ee.event != ae.event {
            out.push(format!(
                "event #{i}: expected `{}`, got `{}`",
                ee.event, ae.event
            ));
        }
        match (
            serde_json::from_str::<Value>(&ee.data),
            serde_json::from_str::<Value>(&ae.data),
        ) {
            (Ok(ev), Ok(av)) => json_diff(&format!("event #{i} "), &ev, &av, out),
            _ if ee.data == ae.data => {}
            _ => out.push(format!(
                "event #{i}: expected data {:?}, got {:?}",
                ee.data, ae.data
            )),
        }
    }
}

#[test]
fn diffs_name_the_paths_that_differ() {
    let mut out = Vec::new();
    json_diff(
        "",
        &serde_json::json!({"a": [1, {"b": "x"}], "c": true}),
        &serde_json::json!({"a": [1, {"b": "y"}, 3], "d": null}),
        &mut out,
    );
    assert_eq!(
        out,
        vec![
            "/a/1/b: expected \"x\", got \"y\"",
            "/a/2: unexpected 3",
            "/c: missing (expected true)",
            "/d: unexpected null",
        ]
    );
}
