//! Round trips: every fixture request, sent to another shape and translated back, must mean
//! what it meant (same system prompts, turns, parts, tools, choices and sampling), up to what
//! the module doc says is not carried: ids Gemini does not have, the end-user id Gemini does
//! not take, the `max_tokens` Anthropic requires, and the usage the gateway always asks for.

use std::collections::HashMap;

use super::fixtures;
use crate::translate::ir::{Part, Request};
use crate::translate::{Provider, anthropic, gemini, openai, request};

fn client_requests(client: Provider, target: Provider) -> Vec<(String, Vec<u8>)> {
    let dir = fixtures().join(format!("{client}_to_{target}"));
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let case = e.unwrap().path();
            let body = std::fs::read(case.join("client_request.json")).ok()?;
            Some((case.file_name()?.to_string_lossy().into_owned(), body))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty());
    out
}

fn read(shape: Provider, body: &[u8], stream: bool) -> Request {
    let r = match shape {
        Provider::OpenAi => openai::request::read(body),
        Provider::Anthropic => anthropic::request::read(body),
        Provider::Gemini => gemini::request::read(body, stream),
    };
    r.unwrap_or_else(|f| panic!("{f:?}"))
}

/// Call ids renamed by order of appearance, for round trips through Gemini, which has none.
fn renumber_ids(r: &mut Request) {
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut rename = |id: &mut String| {
        let n = ids.len();
        *id = ids
            .entry(id.clone())
            .or_insert_with(|| format!("id{n}"))
            .clone();
    };
    for m in &mut r.messages {
        for p in &mut m.parts {
            match p {
                Part::ToolCall(c) => rename(&mut c.id),
                Part::ToolResult(t) => rename(&mut t.id),
                _ => {}
            }
        }
    }
}

fn round_trip(client: Provider, via: Provider) {
    for (case, body) in client_requests(client, via) {
        let streamed = case.starts_with("stream");
        let original = read(client, &body, streamed);
        let there = request(client, via, &body, "target-model", streamed).unwrap();
        let back = request(via, client, &there.body, "client-model", there.stream).unwrap();
        let mut returned = read(client, &back.body, back.stream);
        let mut expected = original.clone();
        // The gateway asks every upstream for usage; the client's own choice is kept aside
        // (`TranslatedRequest::include_usage`), not in the body.
        returned.include_usage = expected.include_usage;
        if expected.max_tokens.is_none() && via == Provider::Anthropic {
            returned.max_tokens = None;
        }
        if via == Provider::Gemini || client == Provider::Gemini {
            renumber_ids(&mut expected);
            renumber_ids(&mut returned);
        }
        if via == Provider::Gemini {
            expected.user = None;
        }
        assert!(
            expected == returned,
            "{client} → {via} → {client} changed the meaning of `{case}`:\n{}",
            debug_diff(&expected, &returned)
        );
    }
}

/// The lines around the first difference of two pretty-printed values.
fn debug_diff(expected: &Request, returned: &Request) -> String {
    let (e, r) = (format!("{expected:#?}"), format!("{returned:#?}"));
    let (e, r): (Vec<&str>, Vec<&str>) = (e.lines().collect(), r.lines().collect());
    let first = e
        .iter()
        .zip(&r)
        .position(|(a, b)| a != b)
        .unwrap_or(e.len().min(r.len()));
    let from = first.saturating_sub(4);
    let show =
        |lines: &[&str]| lines[from.min(lines.len())..(first + 3).min(lines.len())].join("\n");
    format!(
        "--- expected (line {first})\n{}\n--- returned\n{}",
        show(&e),
        show(&r)
    )
}

#[test]
fn openai_through_anthropic_and_back() {
    round_trip(Provider::OpenAi, Provider::Anthropic);
}

#[test]
fn openai_through_gemini_and_back() {
    round_trip(Provider::OpenAi, Provider::Gemini);
}

#[test]
fn anthropic_through_gemini_and_back() {
    round_trip(Provider::Anthropic, Provider::Gemini);
}

#[test]
fn gemini_through_anthropic_and_back() {
    round_trip(Provider::Gemini, Provider::Anthropic);
}
