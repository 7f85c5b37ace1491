//! Agent sessions without client instrumentation: every call of one conversation gets the same
//! session key, derived from what the calls themselves carry. The rules, per client:
//!
//! - **Claude Code** names its conversation (`x-claude-code-session-id`, also inside
//!   `metadata.user_id`), keeps the id on `--continue`, `--resume` and `/compact`, and names its
//!   sub-agents (`x-claude-code-agent-id`; older versions only mark them `cc_is_subagent=true`
//!   in the system prompt). The main thread is `cc:{session}`, whatever its first message says
//!   (a compaction summary replaces it); a sub-agent is `cc:{session}:agent:{agent}`, linked to
//!   the main thread through `parent`. Title and quota calls carry the session id and join it.
//! - **Codex CLI** names its conversation (`session-id`, with `thread-id` for each agent
//!   thread; also `client_metadata` and `prompt_cache_key` in the body), kept on
//!   `codex exec resume` and through compaction; a sub-agent has its own `thread-id` and
//!   `x-codex-parent-thread-id`. The key is `cx:{thread}`, the parent `cx:{session}`.
//! - **OpenAI Responses** chains: a `previous_response_id` continues the session of the call
//!   that produced that response (Codex over WebSocket chains this way).
//! - **Anyone else** (SDK scripts, other agents): the first real user prompt, fingerprinted,
//!   per API family: `fp:{family}:{hash}`. Boilerplate that every conversation of a client
//!   starts with is skipped (Claude Code's `<system-reminder>` blocks, Codex's AGENTS.md and
//!   `<environment_context>` items). A fingerprinted session splits when the same first prompt
//!   starts a conversation again after an idle gap (see [`SessionKeys::starts`]): "hi" today and
//!   "hi" tomorrow are two sessions.

use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::providers::Wire;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionKeys {
    pub key: Option<String>,
    /// Groups related sessions (a main agent and its sub-agents).
    pub parent: Option<String>,
    /// The first real user prompt, shortened, for the session list.
    pub preview: Option<String>,
    /// For a fingerprinted key only (no client id to go by): whether this call starts a
    /// conversation (its history is one user turn) or continues one. The recorder uses it to
    /// split a key whose conversation starts again after an idle gap.
    pub starts: Option<bool>,
}

/// Conversation ids that agent clients send in headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIds {
    pub claude_session: Option<String>,
    pub claude_agent: Option<String>,
    pub codex_session: Option<String>,
    pub codex_thread: Option<String>,
    pub codex_parent_thread: Option<String>,
}

impl ClientIds {
    pub fn from_headers(h: &HeaderMap) -> Self {
        let get = |names: &[&str]| {
            names.iter().find_map(|n| {
                h.get(*n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|s| is_plausible_id(s))
                    .map(str::to_owned)
            })
        };
        ClientIds {
            claude_session: get(&["x-claude-code-session-id"]),
            claude_agent: get(&["x-claude-code-agent-id"]),
            // Codex 0.17x sends `session-id`; older versions `session_id` / `conversation_id`.
            codex_session: get(&["session-id", "session_id", "conversation_id"]),
            codex_thread: get(&["thread-id", "thread_id"]),
            codex_parent_thread: get(&["x-codex-parent-thread-id"]),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ClientIds::default()
    }
}

/// How much of the first prompt the session list shows.
const PREVIEW_CHARS: usize = 200;

/// Derives the session of one call. `previous_session` is the session of the response named by
/// `previous_response_id`, when the recorder found it.
pub fn derive(
    wire: Wire,
    request: &Value,
    ids: &ClientIds,
    previous_session: Option<&str>,
) -> SessionKeys {
    let family = wire.family().as_str();
    let first = first_prompt(wire, request);
    let preview = first.as_ref().map(|f| f.preview.clone());
    // Claude Code.
    if wire == Wire::AnthropicMessages
        && let Some(sid) = ids
            .claude_session
            .clone()
            .or_else(|| claude_code_session(request).filter(|s| is_plausible_id(s)))
    {
        let main = format!("cc:{sid}");
        let agent = ids.claude_agent.clone().or_else(|| {
            // Older versions mark sub-agents only in the system prompt: tell them apart by
            // their task.
            is_claude_subagent(request).then(|| {
                first
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), |f| f.hash.clone())
            })
        });
        return SessionKeys {
            key: Some(match &agent {
                Some(a) => format!("{main}:agent:{a}"),
                None => main.clone(),
            }),
            parent: Some(main),
            preview,
            starts: None,
        };
    }
    // Codex CLI (its ids also ride in the body).
    if wire == Wire::OpenAiResponses {
        let meta = |k: &str| {
            request
                .pointer(&format!("/client_metadata/{k}"))
                .and_then(Value::as_str)
                .filter(|s| is_plausible_id(s))
                .map(str::to_owned)
        };
        let session = ids.codex_session.clone().or_else(|| meta("session_id"));
        let thread = ids
            .codex_thread
            .clone()
            .or_else(|| meta("thread_id"))
            .or_else(|| session.clone());
        if let (Some(session), Some(thread)) = (session, thread) {
            let root = ids.codex_parent_thread.clone().unwrap_or(session);
            return SessionKeys {
                key: Some(format!("cx:{thread}")),
                parent: Some(format!("cx:{root}")),
                preview,
                starts: None,
            };
        }
        if let Some(prev) = previous_session {
            return SessionKeys {
                key: Some(prev.to_owned()),
                parent: None,
                preview,
                starts: None,
            };
        }
        if let Some(id) = request.get("previous_response_id").and_then(Value::as_str) {
            // The chain started somewhere we did not see: key it by that response, so the
            // calls that follow still line up behind it.
            return SessionKeys {
                key: Some(format!("resp:{}", short_hash(id))),
                parent: None,
                preview,
                starts: None,
            };
        }
    }
    let Some(first) = first else {
        return SessionKeys::default();
    };
    SessionKeys {
        key: Some(format!("fp:{family}:{}", first.hash)),
        parent: None,
        preview,
        starts: Some(first.only_turn),
    }
}

/// The conversation's first real user prompt.
struct FirstPrompt {
    hash: String,
    preview: String,
    /// The request holds no turn after it (nothing from the assistant yet): a conversation
    /// starts here.
    only_turn: bool,
}

fn first_prompt(wire: Wire, request: &Value) -> Option<FirstPrompt> {
    match wire {
        Wire::AnthropicMessages | Wire::OpenAiChat => turns(request.get("messages")?, "content"),
        Wire::OpenAiResponses => match request.get("input")? {
            Value::String(s) => Some(FirstPrompt {
                hash: short_hash(s),
                preview: shorten(s),
                only_turn: request.get("previous_response_id").is_none(),
            }),
            v @ Value::Array(_) => turns(v, "content"),
            _ => None,
        },
        Wire::GeminiGenerate => turns(request.get("contents")?, "parts"),
        _ => None,
    }
}

/// The first user turn of a message list with real content (turns made only of boilerplate
/// are skipped; if every turn is, the first counts), and whether anything follows it.
fn turns(list: &Value, content_key: &str) -> Option<FirstPrompt> {
    let items = list.as_array()?;
    let is_user = |m: &Value| m.get("role").and_then(Value::as_str) == Some("user");
    let mut fallback: Option<(usize, Material)> = None;
    for (i, m) in items.iter().enumerate() {
        if !is_user(m) {
            continue;
        }
        let material = material(m.get(content_key)?);
        if material.boilerplate_only {
            fallback.get_or_insert((i, material));
            continue;
        }
        return Some(finish(items, i, material));
    }
    fallback.map(|(i, m)| finish(items, i, m))
}

fn finish(items: &[Value], at: usize, m: Material) -> FirstPrompt {
    // Anything from the model (or a tool) after the first prompt means the conversation
    // is under way.
    let only_turn = !items[at + 1..].iter().any(|m| {
        m.get("role")
            .and_then(Value::as_str)
            .is_some_and(|r| r != "user" && r != "system" && r != "developer")
            || m.get("type").and_then(Value::as_str).is_some_and(|t| {
                t.ends_with("_call") || t.ends_with("_call_output") || t == "reasoning"
            })
    });
    let preview = if m.preview.is_empty() {
        m.text.clone()
    } else {
        m.preview
    };
    FirstPrompt {
        hash: short_hash(&m.text),
        preview: shorten(&preview),
        only_turn,
    }
}

/// What a user turn says, without the blocks its client adds to every conversation.
struct Material {
    text: String,
    preview: String,
    boilerplate_only: bool,
}

fn material(content: &Value) -> Material {
    match content {
        Value::String(s) => Material {
            text: s.clone(),
            preview: if is_boilerplate(s) {
                String::new()
            } else {
                s.clone()
            },
            boilerplate_only: is_boilerplate(s),
        },
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            let mut preview = String::new();
            for b in blocks {
                match b.get("text").and_then(Value::as_str) {
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
                Material {
                    text: content.to_string(),
                    preview,
                    boilerplate_only: true,
                }
            } else {
                Material {
                    text: parts.join("\n"),
                    preview,
                    boilerplate_only: false,
                }
            }
        }
        other => Material {
            text: other.to_string(),
            preview: String::new(),
            boilerplate_only: false,
        },
    }
}

/// Text agent clients put at the start of every conversation (so it says nothing about which
/// conversation this is).
fn is_boilerplate(text: &str) -> bool {
    let t = text.trim_start();
    t.is_empty()
        || [
            "<system-reminder>",
            "<environment_context>",
            "# AGENTS.md instructions for",
            "<user_instructions>",
            "<INSTRUCTIONS>",
            "<subagent_notification>",
        ]
        .iter()
        .any(|p| t.starts_with(p))
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

/// Claude Code's sub-agents carry `cc_is_subagent=true` in their first system block.
fn is_claude_subagent(request: &Value) -> bool {
    request
        .get("system")
        .and_then(Value::as_array)
        .and_then(|blocks| blocks.first())
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("cc_is_subagent=true"))
}

/// Client-supplied ids end up in keys shown in the portal: keep them short and plain.
fn is_plausible_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn shorten(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= PREVIEW_CHARS {
        flat
    } else {
        format!("{}…", flat.chars().take(PREVIEW_CHARS).collect::<String>())
    }
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a fingerprinted call goes, given the latest session of its key (`key~suffix`
/// variants included) and when that session was last active: it joins that session unless it
/// starts a conversation after more than `gap_ms` of silence, which opens a new one.
pub fn split_after_gap(
    base: &str,
    starts: bool,
    started_at: i64,
    latest: Option<(&str, i64)>,
    gap_ms: i64,
) -> String {
    match latest {
        Some((key, last_end)) if !starts || started_at - last_end <= gap_ms => key.to_owned(),
        Some(_) => format!("{base}~{started_at}"),
        None => base.to_owned(),
    }
}

#[cfg(test)]
mod tests;
