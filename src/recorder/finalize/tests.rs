//! Finalizing drafts: usage read or estimated per API, prices, scrubbing, search text.

use super::*;
use crate::capture::Capture;
use crate::domain::{EndpointId, OrgId};
use crate::recorder::testing::sample_draft;
use bytes::Bytes;

fn draft(wire: Wire, stream: bool, response: String, capture: usize) -> TraceDraft {
    let mut d = sample_draft(OrgId::new_v4(), EndpointId::new_v4());
    d.wire = Some(wire);
    d.is_stream = stream;
    d.response_body = Capture::of(&Bytes::from(response), capture);
    d.facts = Some(Box::new(Facts {
        models: vec!["gpt-4o".into()],
        request_bytes: 60,
        max_output: Some(500),
        n: 1,
        ..Default::default()
    }));
    d
}

fn priced(model: &str, input: u64, output: u64) -> i64 {
    let u = Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        ..Default::default()
    };
    Catalog::builtin().cost(model, &u).unwrap().total_nanos
}

#[test]
fn an_answer_larger_than_the_capture_is_charged_its_reported_usage() {
    let text = "word ".repeat(100_000);
    let body = format!(
        r#"{{"id":"c1","model":"gpt-4o","choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}"}}}}],"usage":{{"prompt_tokens":12,"completion_tokens":123456}}}}"#
    );
    let r = finalize(draft(Wire::OpenAiChat, false, body, 4096));
    assert!(r.bodies.response_truncated);
    assert_eq!(r.usage_source, UsageSource::Provider);
    assert_eq!(r.usage.output_tokens, Some(123456));
    assert_eq!(r.cost_nanos, Some(priced("gpt-4o", 12, 123456)));

    let chunk = |i: usize| {
        format!(
            "data: {{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
        )
    };
    let sse: String = (0..20_000).map(chunk).collect::<String>()
        + "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":20000}}\n\ndata: [DONE]\n\n";
    let r = finalize(draft(Wire::OpenAiChat, true, sse, 4096));
    assert_eq!(r.usage_source, UsageSource::Provider);
    assert_eq!(r.cost_nanos, Some(priced("gpt-4o", 7, 20000)));
}

#[test]
fn a_cut_answer_without_usage_is_charged_at_least_what_the_request_allowed() {
    let chunk = |i: usize| {
        format!(
            "data: {{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
        )
    };
    let sse: String = (0..20_000).map(chunk).collect::<String>() + "data: [DONE]\n\n";
    let r = finalize(draft(Wire::OpenAiChat, true, sse, 4096));
    assert_eq!(r.usage_source, UsageSource::Estimated);
    assert!(r.usage.output_tokens.unwrap() >= 500, "{:?}", r.usage);
    assert!(r.cost_nanos.unwrap() >= priced("gpt-4o", 0, 500));
}

#[test]
fn searches_the_provider_ran_are_charged_per_use() {
    let body = r#"{"id":"resp_1","model":"gpt-4o","output":[{"type":"web_search_call","status":"completed"},{"type":"web_search_call","status":"completed"},{"type":"file_search_call"},{"type":"message","content":[{"type":"output_text","text":"hi"}]}],"usage":{"input_tokens":12,"output_tokens":30}}"#;
    let r = finalize(draft(Wire::OpenAiResponses, false, body.into(), 1 << 20));
    assert_eq!(
        r.cost_nanos,
        Some(
            priced("gpt-4o", 12, 30)
                + 2 * crate::pricing::WEB_SEARCH_NANOS
                + crate::pricing::FILE_SEARCH_NANOS
        )
    );
    let sse = [
        r#"event: message_start"#,
        r#"data: {"type":"message_start","message":{"id":"m","model":"claude-sonnet-4-5","usage":{"input_tokens":10,"output_tokens":1}}}"#,
        "",
        r#"event: message_delta"#,
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":20,"server_tool_use":{"web_search_requests":3}}}"#,
        "",
        r#"event: message_stop"#,
        r#"data: {"type":"message_stop"}"#,
        "",
        "",
    ]
    .join("\n");
    let mut d = draft(Wire::AnthropicMessages, true, sse, 1 << 20);
    d.requested_model = Some("claude-sonnet-4-5".into());
    let r = finalize(d);
    assert_eq!(
        r.cost_nanos,
        Some(priced("claude-sonnet-4-5", 10, 20) + 3 * crate::pricing::WEB_SEARCH_NANOS)
    );
    let gemini = r#"{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP","groundingMetadata":{"webSearchQueries":["q"]}}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":5},"modelVersion":"gemini-2.5-flash"}"#;
    let mut d = draft(Wire::GeminiGenerate, false, gemini.into(), 1 << 20);
    d.requested_model = Some("gemini-2.5-flash".into());
    let r = finalize(d);
    assert_eq!(
        r.cost_nanos,
        Some(priced("gemini-2.5-flash", 5, 5) + crate::pricing::GROUNDED_PROMPT_NANOS)
    );
}

#[test]
fn the_tools_the_model_called_are_noted() {
    let body = r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"read_file","arguments":"{}"}},{"id":"t2","type":"function","function":{"name":"run,tests","arguments":"{}"}}]}}],"usage":{"prompt_tokens":12,"completion_tokens":3}}"#;
    let r = finalize(draft(Wire::OpenAiChat, false, body.into(), 1 << 20));
    assert_eq!(r.tool_calls.as_deref(), Some("read_file,runtests"));
    let responses = r#"{"id":"r","model":"gpt-5","output":[{"type":"function_call","name":"exec_command","arguments":"{}"},{"type":"web_search_call"},{"type":"message","content":[]}],"usage":{"input_tokens":1,"output_tokens":1}}"#;
    let r = finalize(draft(
        Wire::OpenAiResponses,
        false,
        responses.into(),
        1 << 20,
    ));
    assert_eq!(r.tool_calls.as_deref(), Some("exec_command,web_search"));
    let plain = r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
    assert_eq!(
        finalize(draft(Wire::OpenAiChat, false, plain.into(), 1 << 20)).tool_calls,
        None
    );
}

#[test]
fn a_model_the_catalog_does_not_know_is_priced_as_the_one_requested() {
    let body = r#"{"id":"c1","model":"gpt-4o-2031-01-01-preview","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30}}"#;
    let r = finalize(draft(Wire::OpenAiChat, false, body.into(), 1 << 20));
    assert_eq!(r.cost_nanos, Some(priced("gpt-4o", 12, 30)));
}

#[test]
fn an_image_answer_the_gateway_cannot_read_is_charged_its_estimate() {
    let mut d = draft(
        Wire::OpenAiImages,
        false,
        format!(
            r#"{{"created":1,"data":[{{"b64_json":"{}"#,
            "A".repeat(100_000)
        ),
        4096,
    );
    d.requested_model = Some("gpt-image-1".into());
    let facts = Facts {
        models: vec!["gpt-image-1".into()],
        n: 2,
        image_tier: Some("high/1024x1024".into()),
        ..Default::default()
    };
    let expected = metering::estimate(Wire::OpenAiImages, &facts).unwrap();
    d.facts = Some(Box::new(facts));
    let r = finalize(d);
    assert!(expected > 0);
    assert_eq!(r.cost_nanos, Some(expected));
    assert_eq!(r.usage_source, UsageSource::Estimated);
}
