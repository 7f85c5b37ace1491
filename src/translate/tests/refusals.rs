//! One test per refused feature (the table in the module doc): the request is refused with a
//! 400 whose message names the feature as the client wrote it. Plus the fields that are
//! accepted because they do not change the answer.

use serde_json::{Value, json};

use crate::translate::{Provider, TranslateError, request, response};

fn refusal(from: Provider, to: Provider, body: &Value) -> TranslateError {
    let body = serde_json::to_vec(body).unwrap();
    match request(from, to, &body, "target-model", false) {
        Ok(t) => panic!(
            "accepted, translated to {}",
            String::from_utf8_lossy(&t.body)
        ),
        Err(e) => e,
    }
}

macro_rules! refuses {
    ($($name:ident: $from:ident -> $to:ident, $body:expr, names $feature:literal;)*) => {$(
        #[test]
        fn $name() {
            let e = refusal(Provider::$from, Provider::$to, &$body);
            assert!(matches!(e, TranslateError::Unsupported { .. }), "{e:?}");
            assert_eq!(e.status(), 400);
            assert!(
                e.feature().is_some_and(|f| f.contains($feature)),
                "`{e}` does not name {}",
                $feature
            );
        }
    )*};
}

fn openai(extra: Value) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn openai_user(content: Value) -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]})
}

fn anthropic(extra: Value) -> Value {
    let mut body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
                          "messages": [{"role": "user", "content": "Hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn anthropic_messages(messages: Value) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages})
}

fn gemini(extra: Value) -> Value {
    let mut body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

fn gemini_parts(parts: Value) -> Value {
    json!({"contents": [{"role": "user", "parts": parts}]})
}

const THINKING_TURNS: &str = r#"[
    {"role": "user", "content": "Is 1001 prime?"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "7 divides it.", "signature": "EqQBCgIYAhIM1gbcDa9G"},
        {"type": "text", "text": "No."}]},
    {"role": "user", "content": "Why?"}]"#;

refuses! {
    several_choices: OpenAi -> Anthropic, openai(json!({"n": 2})), names "`n`";
    several_candidates: Gemini -> OpenAi,
        gemini(json!({"generationConfig": {"candidateCount": 2}})), names "`candidateCount`";
    openai_logprobs: OpenAi -> Gemini, openai(json!({"logprobs": true, "top_logprobs": 3})),
        names "`logprobs`";
    gemini_logprobs: Gemini -> Anthropic,
        gemini(json!({"generationConfig": {"responseLogprobs": true}})), names "`generationConfig.responseLogprobs`";
    audio_input: OpenAi -> Anthropic,
        openai_user(json!([{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}])),
        names "audio input (`input_audio`)";
    audio_output: OpenAi -> Gemini,
        openai(json!({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}})),
        names "`audio`";
    gemini_audio_to_openai: Gemini -> OpenAi,
        gemini_parts(json!([{"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}])),
        names "media type `audio/wav`";
    gemini_speech_output: Gemini -> OpenAi,
        gemini(json!({"generationConfig": {"responseModalities": ["AUDIO"]}})),
        names "`generationConfig.responseModalities`";
    signed_thinking_to_openai: Anthropic -> OpenAi,
        anthropic_messages(serde_json::from_str(THINKING_TURNS).unwrap()),
        names "Anthropic `thinking`";
    redacted_thinking_to_gemini: Anthropic -> Gemini,
        anthropic_messages(json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EmwKAhgB"}, {"type": "text", "text": "Hello"}]},
            {"role": "user", "content": "Go on"}])),
        names "`redacted_thinking`";
    gemini_code_execution: Gemini -> OpenAi,
        gemini(json!({"tools": [{"codeExecution": {}}]})), names "Gemini `codeExecution` tool";
    gemini_google_search: Gemini -> Anthropic,
        gemini(json!({"tools": [{"googleSearch": {}}]})), names "Gemini `googleSearch` tool";
    anthropic_server_tool: Anthropic -> OpenAi,
        anthropic(json!({"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]})),
        names "server tool `web_search_20250305`";
    openai_web_search: OpenAi -> Gemini, openai(json!({"web_search_options": {}})),
        names "`web_search_options`";
    openai_custom_tool: OpenAi -> Anthropic,
        openai(json!({"tools": [{"type": "custom", "custom": {"name": "sql"}}]})), names "`custom` tools";
    json_schema_to_anthropic: OpenAi -> Anthropic,
        openai(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}})),
        names "`response_format`";
    json_mode_to_anthropic: Gemini -> Anthropic,
        gemini(json!({"generationConfig": {"responseMimeType": "application/json"}})),
        names "`responseMimeType`";
    enum_mode: Gemini -> OpenAi,
        gemini(json!({"generationConfig": {"responseMimeType": "text/x.enum"}})), names "`responseMimeType`";
    top_k_to_openai: Anthropic -> OpenAi, anthropic(json!({"top_k": 40})), names "`top_k`";
    seed_to_anthropic: OpenAi -> Anthropic, openai(json!({"seed": 42})), names "`seed`";
    penalties_to_anthropic: Gemini -> Anthropic,
        gemini(json!({"generationConfig": {"presencePenalty": 0.5}})), names "penalties";
    logit_bias: OpenAi -> Gemini, openai(json!({"logit_bias": {"1734": -100}})), names "`logit_bias`";
    predicted_outputs: OpenAi -> Anthropic,
        openai(json!({"prediction": {"type": "content", "content": "x"}})), names "`prediction`";
    legacy_functions: OpenAi -> Gemini,
        openai(json!({"functions": [{"name": "f", "parameters": {}}]})), names "`functions`";
    serial_tool_calls_to_gemini: OpenAi -> Gemini,
        openai(json!({"parallel_tool_calls": false})), names "`parallel_tool_calls`";
    several_allowed_functions: Gemini -> OpenAi,
        gemini(json!({"toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}}})),
        names "`allowedFunctionNames`";
    allowed_tools_choice: OpenAi -> Anthropic,
        openai(json!({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}})),
        names "`tool_choice`";
    dynamic_thinking_to_anthropic: Gemini -> Anthropic,
        gemini(json!({"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}})),
        names "dynamic thinking";
    safety_settings: Gemini -> Anthropic,
        gemini(json!({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]})),
        names "`safetySettings`";
    cached_content: Gemini -> OpenAi,
        gemini(json!({"cachedContent": "cachedContents/abc123"})), names "`cachedContent`";
    gemini_files_api: Gemini -> Anthropic,
        gemini_parts(json!([{"fileData": {"mimeType": "application/pdf",
            "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}])),
        names "Gemini Files API";
    openai_file_id: OpenAi -> Gemini,
        openai_user(json!([{"type": "file", "file": {"file_id": "file-abc123"}}])), names "`file_id`";
    pdf_url_to_openai: Anthropic -> OpenAi,
        anthropic_messages(json!([{"role": "user", "content": [
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}]}])),
        names "PDF by URL";
    image_in_tool_result_to_openai: Anthropic -> OpenAi,
        anthropic_messages(json!([
            {"role": "user", "content": "Screenshot?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}]}]}])),
        names "images in tool results";
    anthropic_citations: Anthropic -> Gemini,
        anthropic_messages(json!([{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
             "citations": {"enabled": true}}]}])),
        names "`content[].citations`";
    search_results: Anthropic -> Gemini,
        anthropic_messages(json!([{"role": "user", "content": [
            {"type": "search_result", "source": "https://example.com/a", "title": "A",
             "content": [{"type": "text", "text": "Result"}]},
            {"type": "text", "text": "Summarize."}]}])),
        names "`search_result` content blocks";
    mcp_servers: Anthropic -> OpenAi,
        anthropic(json!({"mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "x"}]})),
        names "`mcp_servers`";
    unknown_field: OpenAi -> Anthropic, openai(json!({"frobnicate": 1})), names "`frobnicate`";
}

#[test]
fn untranslatable_output_is_an_upstream_fault() {
    let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"executableCode":{"language":"PYTHON","code":"print(1)"}}]},"finishReason":"STOP"}]}"#;
    let e = response(
        Provider::Gemini,
        Provider::OpenAi,
        body,
        &Default::default(),
    )
    .unwrap_err();
    assert_eq!(e.status(), 502);
    assert!(e.to_string().contains("code execution"), "{e}");
}

/// Fields that ask for nothing the target would do differently are accepted (see the table).
#[test]
fn harmless_fields_are_accepted() {
    let cases = [
        (
            Provider::OpenAi,
            openai(
                json!({"store": false, "metadata": {"k": "v"}, "service_tier": "auto",
                          "n": 1, "logprobs": false, "presence_penalty": 0, "parallel_tool_calls": true,
                          "modalities": ["text"], "stream_options": null}),
            ),
        ),
        (
            Provider::Anthropic,
            anthropic(json!({"service_tier": "auto",
                             "system": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]})),
        ),
        (
            Provider::Gemini,
            gemini(json!({"labels": {"team": "a"},
                          "generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW", "responseModalities": ["TEXT"], "candidateCount": 1}})),
        ),
    ];
    for (from, body) in cases {
        for to in [Provider::OpenAi, Provider::Anthropic, Provider::Gemini] {
            if to != from {
                let body = serde_json::to_vec(&body).unwrap();
                if let Err(e) = request(from, to, &body, "m", false) {
                    panic!("{from} → {to}: {e}");
                }
            }
        }
    }
}

#[test]
fn malformed_requests_are_the_clients_fault() {
    let e = request(
        Provider::OpenAi,
        Provider::Gemini,
        b"{\"messages\": 3}",
        "m",
        false,
    )
    .unwrap_err();
    assert!(matches!(e, TranslateError::InvalidRequest { .. }), "{e:?}");
    assert_eq!(e.status(), 400);
    let orphan = gemini(json!({"contents": [
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}));
    let e = refusal(Provider::Gemini, Provider::OpenAi, &orphan);
    assert!(
        e.to_string().contains("answers no earlier functionCall"),
        "{e}"
    );
}
