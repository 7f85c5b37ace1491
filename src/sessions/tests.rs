//! The session rules on requests shaped like the real clients' (captured from Claude Code
//! 2.1.332 and Codex CLI 0.171.0).

use serde_json::{Value, json};

use super::*;

const SID: &str = "7d2c7b1e-1111-2222-3333-444455556666";

fn reminders() -> Vec<Value> {
    vec![
        json!({"type": "text", "text": "<system-reminder>\nCodebase and user instructions are shown below.\n</system-reminder>"}),
        json!({"type": "text", "text": "<system-reminder>\nAs you answer the user's questions, you can use the following context:\n# gitStatus\n</system-reminder>"}),
    ]
}

fn claude(first: &str, turns: usize, subagent: bool) -> Value {
    let mut content = reminders();
    content.push(json!({"type": "text", "text": first}));
    let mut messages = vec![json!({"role": "user", "content": content})];
    for i in 0..turns {
        messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        messages.push(json!({"role": "user", "content": format!("follow-up {i}")}));
    }
    let billing = if subagent {
        "x-anthropic-billing-header: cc_version=2.1.332.8d0; cc_entrypoint=sdk-cli; cc_is_subagent=true;"
    } else {
        "x-anthropic-billing-header: cc_version=2.1.332.8d0; cc_entrypoint=sdk-cli;"
    };
    json!({"model": "claude-sonnet-4-5", "messages": messages,
           "system": [{"type": "text", "text": billing}, {"type": "text", "text": "You are a Claude agent"}],
           "metadata": {"user_id": format!(r#"{{"device_id":"d","account_uuid":"","session_id":"{SID}"}}"#)}})
}

fn claude_ids(agent: Option<&str>) -> ClientIds {
    ClientIds {
        claude_session: Some(SID.into()),
        claude_agent: agent.map(str::to_owned),
        ..Default::default()
    }
}

#[test]
fn claude_code_keeps_one_session_through_continue_and_compaction() {
    let ids = claude_ids(None);
    let a = derive(
        Wire::AnthropicMessages,
        &claude("Fix the login bug", 0, false),
        &ids,
        None,
    );
    let b = derive(
        Wire::AnthropicMessages,
        &claude("Fix the login bug", 5, false),
        &ids,
        None,
    );
    assert_eq!(a.key.as_deref(), Some(format!("cc:{SID}").as_str()));
    assert_eq!(a.key, b.key);
    assert_eq!(a.preview.as_deref(), Some("Fix the login bug"));
    // After /compact the first message is the summary: still the same conversation.
    let compacted = json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "user", "content": "This session is being continued from a previous conversation that ran out of context. …"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "go on"}]});
    let c = derive(Wire::AnthropicMessages, &compacted, &ids, None);
    assert_eq!(c.key, a.key);
    // The title call of the same session joins it too.
    let title = json!({"model": "claude-haiku-4-5", "messages": [{"role": "user",
        "content": "<session>\nFix the login bug\n</session>\n\nWrite the title …"}]});
    assert_eq!(
        derive(Wire::AnthropicMessages, &title, &ids, None).key,
        a.key
    );
    // The id inside metadata is enough when the header is missing.
    let from_body = derive(
        Wire::AnthropicMessages,
        &claude("x", 0, false),
        &ClientIds::default(),
        None,
    );
    assert_eq!(from_body.key, a.key);
}

#[test]
fn claude_code_sub_agents_are_their_own_sessions_under_the_main_one() {
    let main = derive(
        Wire::AnthropicMessages,
        &claude("Fix the login bug", 1, false),
        &claude_ids(None),
        None,
    );
    let agent = derive(
        Wire::AnthropicMessages,
        &claude("Count the files", 0, true),
        &claude_ids(Some("a0a04a80b527861ec")),
        None,
    );
    assert_eq!(
        agent.key.as_deref(),
        Some(format!("cc:{SID}:agent:a0a04a80b527861ec").as_str())
    );
    assert_eq!(agent.parent, main.parent);
    assert_eq!(main.parent, main.key);
    // An older Claude Code without the agent header: told apart by its task.
    let old = derive(
        Wire::AnthropicMessages,
        &claude("Count the files", 0, true),
        &claude_ids(None),
        None,
    );
    assert!(
        old.key
            .as_deref()
            .unwrap()
            .starts_with(&format!("cc:{SID}:agent:"))
    );
    let other = derive(
        Wire::AnthropicMessages,
        &claude("Read the docs", 0, true),
        &claude_ids(None),
        None,
    );
    assert_ne!(old.key, other.key);
}

fn codex(prompt: &str, history: bool) -> Value {
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex, a coding agent based on GPT-5."}]}),
        json!({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "# AGENTS.md instructions for /work/proj\n\n<INSTRUCTIONS>\n# Project notes\n</INSTRUCTIONS>"},
            {"type": "input_text", "text": "<environment_context>\n  <cwd>/work/proj</cwd>\n</environment_context>"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}),
    ];
    if history {
        input.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}));
        input.push(json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and now?"}]}));
    }
    json!({"model": "gpt-5.5", "input": input, "store": false, "stream": true})
}

fn codex_ids(session: &str, thread: &str, parent: Option<&str>) -> ClientIds {
    ClientIds {
        codex_session: Some(session.into()),
        codex_thread: Some(thread.into()),
        codex_parent_thread: parent.map(str::to_owned),
        ..Default::default()
    }
}

#[test]
fn codex_conversations_in_one_folder_are_apart_and_resumes_join() {
    let a = derive(
        Wire::OpenAiResponses,
        &codex("Say hello", false),
        &codex_ids("s-a", "s-a", None),
        None,
    );
    let b = derive(
        Wire::OpenAiResponses,
        &codex("Write a haiku", false),
        &codex_ids("s-b", "s-b", None),
        None,
    );
    assert_ne!(a.key, b.key);
    assert_eq!(a.key.as_deref(), Some("cx:s-a"));
    // The boilerplate item is skipped: the preview is the prompt.
    assert_eq!(a.preview.as_deref(), Some("Say hello"));
    let resumed = derive(
        Wire::OpenAiResponses,
        &codex("Say hello", true),
        &codex_ids("s-a", "s-a", None),
        None,
    );
    assert_eq!(resumed.key, a.key);
    // A sub-agent: its own thread, the root as parent.
    let sub = derive(
        Wire::OpenAiResponses,
        &codex("Count files", false),
        &codex_ids("s-a", "t-child", Some("s-a")),
        None,
    );
    assert_eq!(sub.key.as_deref(), Some("cx:t-child"));
    assert_eq!(sub.parent, a.parent);
    // Without headers (a proxy in between dropped them), the body's client_metadata serves.
    let mut body = codex("Say hello", false);
    body["client_metadata"] = json!({"session_id": "s-a", "thread_id": "s-a"});
    assert_eq!(
        derive(Wire::OpenAiResponses, &body, &ClientIds::default(), None).key,
        a.key
    );
    // Without any id: fingerprinted on the prompt, not on the boilerplate.
    let x = derive(
        Wire::OpenAiResponses,
        &codex("Say hello", false),
        &ClientIds::default(),
        None,
    );
    let y = derive(
        Wire::OpenAiResponses,
        &codex("Write a haiku", false),
        &ClientIds::default(),
        None,
    );
    assert_ne!(x.key, y.key);
    assert_eq!(
        (
            x.starts,
            derive(
                Wire::OpenAiResponses,
                &codex("Say hello", true),
                &ClientIds::default(),
                None
            )
            .starts
        ),
        (Some(true), Some(false))
    );
}

#[test]
fn fingerprints_are_per_api_family() {
    let anthropic = json!({"messages": [{"role": "user", "content": "hi"}]});
    let responses = json!({"input": [{"role": "user", "content": "hi"}]});
    let chat = json!({"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let keys: Vec<String> = [
        derive(
            Wire::AnthropicMessages,
            &anthropic,
            &ClientIds::default(),
            None,
        ),
        derive(
            Wire::OpenAiResponses,
            &responses,
            &ClientIds::default(),
            None,
        ),
        derive(Wire::OpenAiChat, &chat, &ClientIds::default(), None),
        derive(Wire::GeminiGenerate, &gemini, &ClientIds::default(), None),
    ]
    .into_iter()
    .map(|k| k.key.unwrap())
    .collect();
    assert!(keys[0].starts_with("fp:anthropic:"), "{keys:?}");
    assert!(keys[1].starts_with("fp:openai:"));
    assert_ne!(keys[0], keys[1]);
    // Chat and Responses are both OpenAI's: the same first prompt is the same fingerprint.
    assert_eq!(keys[1], keys[2]);
    assert!(keys[3].starts_with("fp:gemini:"));
}

#[test]
fn a_conversation_that_starts_again_after_the_gap_is_a_new_session() {
    let gap = 30 * 60 * 1000;
    let base = "fp:openai:abc";
    // The first ever.
    assert_eq!(split_after_gap(base, true, 1_000, None, gap), base);
    // Again within the gap: the same session (the limit of what can be told apart).
    assert_eq!(
        split_after_gap(base, true, 2_000, Some((base, 1_500)), gap),
        base
    );
    // After the gap, a start opens a new one; a continuation joins the latest.
    let later = 1_500 + gap + 1;
    assert_eq!(
        split_after_gap(base, true, later, Some((base, 1_500)), gap),
        format!("{base}~{later}")
    );
    let newest = format!("{base}~{later}");
    assert_eq!(
        split_after_gap(base, false, later + gap * 3, Some((&newest, later)), gap),
        newest
    );
}

#[test]
fn headers_give_client_ids_and_hostile_ids_are_ignored() {
    let mut h = HeaderMap::new();
    h.insert("x-claude-code-session-id", "hdr-123".parse().unwrap());
    h.insert("session-id", "bad id<script>".parse().unwrap());
    h.insert("thread-id", "t-1".parse().unwrap());
    let ids = ClientIds::from_headers(&h);
    assert_eq!(ids.claude_session.as_deref(), Some("hdr-123"));
    assert_eq!(ids.codex_session, None);
    assert_eq!(ids.codex_thread.as_deref(), Some("t-1"));
}

#[test]
fn responses_chain_through_previous_response_id() {
    let first = json!({"model": "gpt-4.1", "input": "Plan a trip"});
    let k1 = derive(Wire::OpenAiResponses, &first, &ClientIds::default(), None);
    assert!(k1.key.as_deref().unwrap().starts_with("fp:openai:"));
    let next =
        json!({"model": "gpt-4.1", "input": "and hotels?", "previous_response_id": "resp_1"});
    let k2 = derive(
        Wire::OpenAiResponses,
        &next,
        &ClientIds::default(),
        k1.key.as_deref(),
    );
    assert_eq!(k1.key, k2.key);
    let orphan = derive(Wire::OpenAiResponses, &next, &ClientIds::default(), None);
    assert!(orphan.key.unwrap().starts_with("resp:"));
}

#[test]
fn embeddings_have_no_session() {
    assert_eq!(
        derive(
            Wire::OpenAiEmbeddings,
            &json!({"input": "x"}),
            &ClientIds::default(),
            None
        ),
        SessionKeys::default()
    );
}
