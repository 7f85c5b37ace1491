//! Agent sessions without client instrumentation: every call of one conversation gets the same
//! session key, derived from what the calls themselves carry.
//!
//! - Anthropic Messages: the conversation's first real user prompt, fingerprinted. Claude
//!   Code's first message starts with `<system-reminder>` blocks that hold the date and project
//!   context (identical for every conversation that day), so those are skipped. When Claude
//!   Code sends its session id (`x-claude-code-session-id`, or inside `metadata.user_id`) it
//!   namespaces the key: a sub-agent's calls share the session id but start their own
//!   conversation, so they get their own key, linked to the others through `parent`.
//! - OpenAI Responses: a `previous_response_id` continues the session of the call that produced
//!   that response; a first call is fingerprinted from its first user input.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::providers::Wire;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionKeys {
    pub key: Option<String>,
    /// Groups related sessions (a Claude Code session and its sub-agents).
    pub parent: Option<String>,
    /// The first real user prompt, shortened, for the session list.
    pub preview: Option<String>,
}

/// How much of the first prompt the session list shows.
const PREVIEW_CHARS: usize = 200;

/// Derives the session of one call. `previous_session` is the session of the response named by
/// `previous_response_id`, when the recorder found it.
pub fn derive(
    wire: Wire,
    request: &Value,
    session_hint: Option<&str>,
    previous_session: Option<&str>,
) -> SessionKeys {
    match wire {
        Wire::AnthropicMessages => {
            let Some((fp, preview)) = first_user_fingerprint(request.get("messages")) else {
                return SessionKeys::default();
            };
            let preview = Some(preview);
            let client_session = session_hint
                .map(str::to_owned)
                .filter(|s| is_plausible_id(s))
                .or_else(|| claude_code_session(request).filter(|s| is_plausible_id(s)));
            match client_session {
                Some(sid) => SessionKeys {
                    key: Some(format!("cc:{sid}:{fp}")),
                    parent: Some(format!("cc:{sid}")),
                    preview,
                },
                None => SessionKeys {
                    key: Some(format!("fp:{fp}")),
                    parent: None,
                    preview,
                },
            }
        }
        Wire::OpenAiResponses => {
            let input = request.get("input");
            let first = match input {
                Some(Value::String(s)) => Some((short_hash(s), shorten(s))),
                Some(v @ Value::Array(_)) => first_user_fingerprint(Some(v)),
                _ => None,
            };
            let preview = first.as_ref().map(|(_, p)| p.clone());
            if let Some(prev) = previous_session {
                return SessionKeys {
                    key: Some(prev.to_owned()),
                    parent: None,
                    preview,
                };
            }
            if let Some(id) = request.get("previous_response_id").and_then(Value::as_str) {
                // The chain started somewhere we did not see: key it by that response, so the
                // calls that follow still line up behind it.
                return SessionKeys {
                    key: Some(format!("resp:{}", short_hash(id))),
                    parent: None,
                    preview,
                };
            }
            SessionKeys {
                key: first.map(|(f, _)| format!("fp:{f}")),
                parent: None,
                preview,
            }
        }
        _ => SessionKeys::default(),
    }
}

/// Claude Code puts its session id in `metadata.user_id`: either a JSON document with a
/// `session_id`, or text ending in `_session_<uuid>`.
fn claude_code_session(request: &Value) -> Option<String> {
    let user_id = request.pointer("/metadata/user_id")?.as_str()?;
    if let Ok(v) = serde_json::from_str::<Value>(user_id)
        && let Some(s) = v.get("session_id").and_then(Value::as_str)
    {
        return Some(s.to_owned());
    }
    user_id.rsplit_once("_session_").map(|(_, s)| s.to_owned())
}

/// Client-supplied ids end up in keys shown in the portal: keep them short and plain.
fn is_plausible_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_boilerplate(text: &str) -> bool {
    let t = text.trim_start();
    t.is_empty() || t.starts_with("<system-reminder>")
}

fn shorten(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= PREVIEW_CHARS {
        flat
    } else {
        format!("{}…", flat.chars().take(PREVIEW_CHARS).collect::<String>())
    }
}

/// Fingerprint of the first user turn: its text without boilerplate blocks (all of it if that
/// leaves nothing), plus the kinds and content of non-text blocks; and a preview of that text.
fn first_user_fingerprint(messages: Option<&Value>) -> Option<(String, String)> {
    let first = messages?
        .as_array()?
        .iter()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let content = first.get("content")?;
    let mut preview = String::new();
    let material = match content {
        Value::String(s) => {
            preview = s.clone();
            s.clone()
        }
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            for b in blocks {
                let text = b.get("text").and_then(Value::as_str);
                match text {
                    Some(t) if is_boilerplate(t) => {}
                    Some(t) => {
                        if preview.is_empty() {
                            preview = t.to_owned();
                        }
                        parts.push(t.to_owned());
                    }
                    None => parts.push(b.to_string()),
                }
            }
            if parts.is_empty() {
                content.to_string()
            } else {
                parts.join("\n")
            }
        }
        other => other.to_string(),
    };
    if preview.is_empty() {
        preview = material.clone();
    }
    Some((short_hash(&material), shorten(&preview)))
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claude_turn(first: &str, turns: usize) -> Value {
        let mut messages = vec![json!({"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-28.\n</system-reminder>"},
            {"type": "text", "text": "<system-reminder>\nAs you answer, use the context in CLAUDE.md\n</system-reminder>"},
            {"type": "text", "text": first},
        ]})];
        for i in 0..turns {
            messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
            messages.push(json!({"role": "user", "content": format!("follow-up {i}")}));
        }
        json!({"model": "claude-sonnet-4-5", "messages": messages,
               "metadata": {"user_id": "user_abc_account_def_session_7d2c7b1e-1111-2222-3333-444455556666"}})
    }

    #[test]
    fn turns_of_one_conversation_share_a_key() {
        let a = derive(
            Wire::AnthropicMessages,
            &claude_turn("Fix the login bug", 0),
            None,
            None,
        );
        let b = derive(
            Wire::AnthropicMessages,
            &claude_turn("Fix the login bug", 5),
            None,
            None,
        );
        assert_eq!(a, b);
        assert!(
            a.key
                .unwrap()
                .starts_with("cc:7d2c7b1e-1111-2222-3333-444455556666:")
        );
    }

    #[test]
    fn shared_boilerplate_never_merges_conversations() {
        let a = derive(
            Wire::AnthropicMessages,
            &claude_turn("Fix the login bug", 1),
            None,
            None,
        );
        let b = derive(
            Wire::AnthropicMessages,
            &claude_turn("Write the release notes", 1),
            None,
            None,
        );
        assert_ne!(a.key, b.key);
        // Sub-agents of one Claude Code session: different keys, same parent.
        assert_eq!(a.parent, b.parent);
        // Without any client session id, still apart.
        let strip = |mut v: Value| {
            v.as_object_mut().unwrap().remove("metadata");
            v
        };
        let a = derive(
            Wire::AnthropicMessages,
            &strip(claude_turn("Fix the login bug", 1)),
            None,
            None,
        );
        let b = derive(
            Wire::AnthropicMessages,
            &strip(claude_turn("Write the release notes", 1)),
            None,
            None,
        );
        assert_ne!(a.key, b.key);
        assert!(a.key.unwrap().starts_with("fp:"));
    }

    #[test]
    fn header_session_id_wins_and_hostile_ids_are_ignored() {
        let req = claude_turn("hello", 0);
        let k = derive(Wire::AnthropicMessages, &req, Some("hdr-123"), None);
        assert_eq!(k.parent.as_deref(), Some("cc:hdr-123"));
        let k = derive(Wire::AnthropicMessages, &req, Some("bad\nid<script>"), None);
        assert!(k.parent.as_deref().is_some_and(|p| !p.contains('<')));
    }

    #[test]
    fn json_user_id_metadata() {
        let mut req = claude_turn("hello", 0);
        req["metadata"]["user_id"] = json!(r#"{"device_id":"d","session_id":"s-42"}"#);
        let k = derive(Wire::AnthropicMessages, &req, None, None);
        assert_eq!(k.parent.as_deref(), Some("cc:s-42"));
    }

    #[test]
    fn responses_chain_through_previous_response_id() {
        let first = json!({"model": "gpt-4.1", "input": "Plan a trip"});
        let k1 = derive(Wire::OpenAiResponses, &first, None, None);
        assert!(k1.key.as_deref().unwrap().starts_with("fp:"));
        let next =
            json!({"model": "gpt-4.1", "input": "and hotels?", "previous_response_id": "resp_1"});
        let k2 = derive(Wire::OpenAiResponses, &next, None, k1.key.as_deref());
        assert_eq!(k1.key, k2.key);
        let orphan = derive(Wire::OpenAiResponses, &next, None, None);
        assert!(orphan.key.unwrap().starts_with("resp:"));
    }

    #[test]
    fn other_wires_have_no_session() {
        assert_eq!(
            derive(Wire::OpenAiChat, &json!({}), None, None),
            SessionKeys::default()
        );
    }
}
