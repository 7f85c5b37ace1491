//! Golden fixtures. Each directory `fixtures/<client>_to_<target>/<case>/` may hold:
//!
//! | Input | Expected | Checked |
//! |---|---|---|
//! | `client_request.json` | `upstream_request.json` | [`request`] (client shape → target shape) |
//! | `upstream_response.json` | `client_response.json` | [`response`] (target → client) |
//! | `upstream_stream.sse` | `client_stream.sse` | [`StreamTranslator`], fed whole and byte by byte |
//! | `upstream_error.json` | `client_error.json` | [`error`] |
//!
//! and `case.json` with options (`model`, `gemini_stream`, `status`, `include_usage`). JSON is
//! compared semantically and SSE event by event; a failure lists every differing path of every
//! case. `UPDATE_GOLDEN=1 cargo test -p antix --lib translate` rewrites the expected files from
//! the current output, for review in `git diff`.
//!
//! Beyond the files, each answer is read back by [`crate::providers::parse_response`] on both
//! sides: the usage and the text the gateway records must come out the same, except the counts
//! the client's shape has no field for.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{fixtures, json_diff, sse_diff};
use crate::providers::{Wire, parse_response};
use crate::translate::{Provider, ResponseContext, StreamTranslator, error, request, response};

const CREATED: u64 = 1_735_689_600;
const FALLBACK_ID: &str = "trace-0001";

#[derive(Default, Deserialize)]
#[serde(default)]
struct CaseOptions {
    model: Option<String>,
    gemini_stream: bool,
    status: Option<u16>,
    include_usage: Option<bool>,
}

fn default_model(target: Provider) -> &'static str {
    match target {
        Provider::OpenAi => "gpt-4o",
        Provider::Anthropic => "claude-sonnet-4-5",
        Provider::Gemini => "gemini-2.5-flash",
    }
}

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

macro_rules! golden {
    ($($name:ident: $client:ident -> $target:ident;)*) => {$(
        #[test]
        fn $name() {
            run(Provider::$client, Provider::$target);
        }
    )*};
}

golden! {
    openai_to_anthropic: OpenAi -> Anthropic;
    openai_to_gemini: OpenAi -> Gemini;
    anthropic_to_openai: Anthropic -> OpenAi;
    anthropic_to_gemini: Anthropic -> Gemini;
    gemini_to_openai: Gemini -> OpenAi;
    gemini_to_anthropic: Gemini -> Anthropic;
}

fn run(client: Provider, target: Provider) {
    let dir = fixtures().join(format!("{client}_to_{target}"));
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        for f in check_case(client, target, case) {
            failures.push(format!("{client}_to_{target}/{name}: {f}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es); if the change is intended, rerun with UPDATE_GOLDEN=1 and review \
         the diff:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn check_case(client: Provider, target: Provider, case: &Path) -> Vec<String> {
    let opts: CaseOptions = read(&case.join("case.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_default();
    let model = opts
        .model
        .clone()
        .unwrap_or_else(|| default_model(target).to_owned());
    let mut ctx = ResponseContext {
        model: model.clone(),
        created: CREATED,
        fallback_id: FALLBACK_ID.to_owned(),
        include_usage: opts.include_usage.unwrap_or(false),
    };
    let mut fails = Vec::new();
    if let Some(body) = read(&case.join("client_request.json")) {
        match request(client, target, &body, &model, opts.gemini_stream) {
            Ok(t) => {
                ctx.include_usage = opts.include_usage.unwrap_or(t.include_usage);
                expect_json(&case.join("upstream_request.json"), &t.body, &mut fails);
            }
            Err(e) => fails.push(format!("request refused: {e}")),
        }
    }
    if let Some(body) = read(&case.join("upstream_response.json")) {
        match response(target, client, &body, &ctx) {
            Ok(out) => {
                expect_json(&case.join("client_response.json"), &out, &mut fails);
                same_record(target, client, &body, &out, false, &ctx, &mut fails);
            }
            Err(e) => fails.push(format!("response refused: {e}")),
        }
    }
    if let Some(body) = read(&case.join("upstream_stream.sse")) {
        let whole = translate_stream(target, client, &ctx, [body.as_slice()]);
        let bytewise = translate_stream(target, client, &ctx, body.chunks(1));
        if whole != bytewise {
            fails.push("the stream fed byte by byte differs from the stream fed whole".into());
        }
        expect_sse(&case.join("client_stream.sse"), &whole, &mut fails);
        same_record(target, client, &body, &whole, true, &ctx, &mut fails);
    }
    if let Some(body) = read(&case.join("upstream_error.json")) {
        let status = opts.status.unwrap_or(500);
        let out = error(target, client, status, &body);
        expect_json(&case.join("client_error.json"), &out, &mut fails);
    }
    fails
}

fn translate_stream<'a>(
    from: Provider,
    to: Provider,
    ctx: &ResponseContext,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut t = StreamTranslator::new(from, to, ctx.clone());
    let mut out = Vec::new();
    for p in pieces {
        out.extend_from_slice(&t.push(p));
    }
    out.extend_from_slice(&t.finish());
    assert!(
        t.is_done(),
        "a complete upstream stream must end the client's"
    );
    out
}

fn expect_json(path: &Path, actual: &[u8], fails: &mut Vec<String>) {
    let actual: Value = match serde_json::from_slice(actual) {
        Ok(v) => v,
        Err(e) => return fails.push(format!("output is not JSON ({e})")),
    };
    if update() {
        let mut text = serde_json::to_string_pretty(&actual).unwrap();
        text.push('\n');
        std::fs::write(path, text).unwrap();
        return;
    }
    let Some(expected) = read(path) else {
        return fails.push(format!("{} is missing", file(path)));
    };
    let expected: Value = serde_json::from_slice(&expected).unwrap();
    let mut diff = Vec::new();
    json_diff("", &expected, &actual, &mut diff);
    fails.extend(diff.into_iter().map(|d| format!("{} {d}", file(path))));
}

fn expect_sse(path: &Path, actual: &[u8], fails: &mut Vec<String>) {
    if update() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let Some(expected) = read(path) else {
        return fails.push(format!("{} is missing", file(path)));
    };
    let mut diff = Vec::new();
    sse_diff(&expected, actual, &mut diff);
    fails.extend(diff.into_iter().map(|d| format!("{} {d}", file(path))));
}

fn file(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn wire(p: Provider) -> Wire {
    match p {
        Provider::OpenAi => Wire::OpenAiChat,
        Provider::Anthropic => Wire::AnthropicMessages,
        Provider::Gemini => Wire::GeminiGenerate,
    }
}

/// What the gateway records of the upstream's answer and of the translated one agree: text,
/// completeness and every usage count the client's shape can say.
fn same_record(
    upstream: Provider,
    client: Provider,
    upstream_body: &[u8],
    client_body: &[u8],
    streamed: bool,
    ctx: &ResponseContext,
    fails: &mut Vec<String>,
) {
    let up = parse_response(wire(upstream), streamed, upstream_body);
    let cl = parse_response(wire(client), streamed, client_body);
    let what = if streamed { "stream" } else { "response" };
    if up.text != cl.text {
        fails.push(format!(
            "{what} text: upstream {:?}, client {:?}",
            up.text, cl.text
        ));
    }
    if up.complete != cl.complete {
        fails.push(format!(
            "{what} completeness: upstream {}, client {}",
            up.complete, cl.complete
        ));
    }
    if client == Provider::OpenAi && streamed && !ctx.include_usage {
        if cl.usage.is_reported() {
            fails.push("usage sent to an OpenAI client that did not ask for it".into());
        }
        return;
    }
    let (u, c) = (up.usage, cl.usage);
    let zero = |v: Option<u64>| v.unwrap_or(0);
    let mut counts = vec![
        ("input", u.input_tokens, c.input_tokens),
        ("output", u.output_tokens, c.output_tokens),
        ("cache read", u.cache_read_tokens, c.cache_read_tokens),
    ];
    if client == Provider::Anthropic {
        counts.push(("cache write", u.cache_write_tokens, c.cache_write_tokens));
    } else {
        counts.push(("reasoning", u.reasoning_tokens, c.reasoning_tokens));
    }
    for (name, a, b) in counts {
        if zero(a) != zero(b) {
            fails.push(format!("{what} usage {name}: upstream {a:?}, client {b:?}"));
        }
    }
}
