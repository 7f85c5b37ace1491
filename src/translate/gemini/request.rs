//! Gemini `generateContent` requests to and from the neutral [`Request`].
//!
//! Gemini calls carry no ids: a function response answers the earlier call of the same name,
//! in order. Reading gives each call a stable id from its position (`call_<turn>_<n>`, unless
//! the client sent one) and pairs each response with the first unanswered call of its name;
//! writing drops ids and orders a turn's responses like the calls they answer.

use serde_json::{Map, Value, json};

use super::config::{
    read_config, read_declaration, read_tool_config, write_config, write_tool_config, write_tools,
};
use super::{
    Blob, Content, FileData, FunctionCall, FunctionResponse, GenerateRequest, Part as WirePart,
    split_call_id,
};
use crate::translate::ir::{Media, MediaSource, Part, Request, Role, ToolCall, ToolResult};
use crate::translate::{Res, check_rest, invalid, mime_from_url, unsupported};

/// `labels` only tag billing (Vertex).
const IGNORED_TOP: &[&str] = &["labels"];

pub fn read(body: &[u8], stream: bool) -> Res<Request> {
    let req: GenerateRequest = serde_json::from_slice(body).map_err(invalid)?;
    check_rest(&req.rest, IGNORED_TOP, "")?;
    let mut ir = Request {
        stream,
        ..Request::default()
    };
    if let Some(sys) = req.system_instruction {
        for p in sys.parts {
            match read_part(p)? {
                Some(Part::Text(t)) => ir.system.push(t),
                None => {}
                Some(_) => return unsupported("non-text `systemInstruction` parts"),
            }
        }
    }
    for t in req.tools {
        // Even an empty `{"googleSearch": {}}` turns a built-in tool on.
        if let Some(key) = t.rest.keys().next() {
            return unsupported(format!("Gemini `{key}` tool"));
        }
        for f in t.function_declarations {
            ir.tools.push(read_declaration(f)?);
        }
    }
    if let Some(tc) = req.tool_config {
        ir.tool_choice = read_tool_config(tc)?;
    }
    if let Some(g) = req.generation_config {
        read_config(g, &mut ir)?;
    }
    read_contents(req.contents, &mut ir)?;
    Ok(ir)
}

fn read_contents(contents: Vec<Content>, ir: &mut Request) -> Res<()> {
    // Calls of the latest model turn not yet answered: (id, name).
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut last_role = Role::User;
    for (turn, c) in contents.into_iter().enumerate() {
        let role = match c.role.as_deref() {
            None | Some("user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => return Err(invalid(format!("unknown content role `{other}`"))),
        };
        if role == Role::Assistant && last_role == Role::User {
            pending.clear();
        }
        last_role = role;
        let mut parts = Vec::with_capacity(c.parts.len());
        for (n, p) in c.parts.into_iter().enumerate() {
            let part = match (p.function_call.is_some(), p.function_response.is_some()) {
                (true, _) => read_call(p, turn, n, &mut pending),
                (_, true) => read_response(p, &mut pending)?,
                _ => match read_part(p)? {
                    Some(part) => part,
                    None => continue,
                },
            };
            // A thought streams as several parts, its signature on the last: one thought again.
            if let Part::Thought { text, signature } = &part
                && let Some(Part::Thought {
                    text: earlier,
                    signature: open,
                }) = parts.last_mut()
                && open.is_none()
            {
                earlier.push_str(text);
                open.clone_from(signature);
                continue;
            }
            parts.push(part);
        }
        // A thought summary without a signature cannot be verified by anyone, and Gemini does
        // not read it back either.
        parts.retain(|p| {
            !matches!(
                p,
                Part::Thought {
                    signature: None,
                    ..
                }
            )
        });
        ir.push(role, parts);
    }
    Ok(())
}

/// A thought signature on a function call is for Gemini alone; the target needs none.
fn read_call(p: WirePart, turn: usize, n: usize, pending: &mut Vec<(String, String)>) -> Part {
    let f = p.function_call.unwrap_or_default();
    let id = f.id.unwrap_or_else(|| format!("call_{turn}_{n}"));
    pending.push((id.clone(), f.name.clone()));
    Part::ToolCall(ToolCall {
        id,
        name: f.name,
        arguments: match f.args {
            Value::Object(_) => f.args,
            _ => json!({}),
        },
    })
}

fn read_response(p: WirePart, pending: &mut Vec<(String, String)>) -> Res<Part> {
    let r = p.function_response.unwrap_or_default();
    let position = match &r.id {
        Some(id) => pending.iter().position(|(i, _)| i == id),
        None => pending.iter().position(|(_, name)| *name == r.name),
    };
    let Some(position) = position else {
        return Err(invalid(format!(
            "functionResponse `{}` answers no earlier functionCall",
            r.name
        )));
    };
    let (id, _) = pending.remove(position);
    // Gemini's convention: `output` holds the result, `error` a failure; anything else is the
    // result as a whole.
    let (text, is_error) = match r.response {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("error") => {
            (text_of(o.remove("error").unwrap_or_default()), true)
        }
        Value::Object(mut o) if o.len() == 1 && o.contains_key("output") => {
            (text_of(o.remove("output").unwrap_or_default()), false)
        }
        other => (text_of(other), false),
    };
    Ok(Part::ToolResult(ToolResult {
        id,
        content: vec![Part::Text(text)],
        is_error,
    }))
}

fn text_of(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A text, thought or media part; `None` for a part that carries nothing to translate.
fn read_part(p: WirePart) -> Res<Option<Part>> {
    check_rest(&p.rest, &[], "parts[].")?;
    if let Some(text) = p.text {
        if p.thought == Some(true) {
            return Ok(Some(Part::Thought {
                text,
                signature: p.thought_signature,
            }));
        }
        // A signature on plain text only helps Gemini keep its reasoning; others need none.
        return Ok(Some(Part::Text(text)));
    }
    if let Some(Blob { mime_type, data }) = p.inline_data {
        return Ok(Some(Part::Media(Media {
            mime: Some(mime_type),
            source: MediaSource::Base64(data),
        })));
    }
    if let Some(FileData {
        mime_type,
        file_uri,
    }) = p.file_data
    {
        if !file_uri.starts_with("http") || file_uri.contains("generativelanguage.googleapis.com") {
            return unsupported("Gemini Files API and Cloud Storage files (`fileData`)");
        }
        return Ok(Some(Part::Media(Media {
            mime: mime_type,
            source: MediaSource::Url(file_uri),
        })));
    }
    Ok(None)
}

pub fn write(ir: &Request) -> Res<Vec<u8>> {
    if ir.parallel_tool_calls == Some(false) {
        return unsupported(
            "disabling parallel tool calls (`parallel_tool_calls` / `disable_parallel_tool_use`)",
        );
    }
    let mut names: Vec<(&str, &str)> = Vec::new();
    let mut contents = Vec::with_capacity(ir.messages.len());
    for m in &ir.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts = Vec::with_capacity(m.parts.len());
        // (slot in `parts`, position of the answered call) of each function response.
        let mut answers = Vec::new();
        for p in &m.parts {
            if let Part::ToolResult(r) = p {
                let call = names.iter().rposition(|(id, _)| *id == r.id);
                answers.push((parts.len(), call.unwrap_or(usize::MAX)));
            }
            parts.push(write_part(p, &mut names)?);
        }
        in_call_order(&mut parts, &answers);
        contents.push(Content {
            role: Some(role.into()),
            parts,
        });
    }
    let system_instruction = (!ir.system.is_empty()).then(|| Content {
        role: None,
        parts: ir.system.iter().map(|t| text_part(t)).collect(),
    });
    let req = GenerateRequest {
        contents,
        system_instruction,
        tools: write_tools(ir),
        tool_config: write_tool_config(ir),
        generation_config: write_config(ir),
        rest: Map::new(),
    };
    serde_json::to_vec(&req).map_err(invalid)
}

/// Gemini pairs responses with calls by position, so a turn's responses must follow the order
/// of the calls (OpenAI clients may send tool messages in any order).
fn in_call_order(parts: &mut [WirePart], answers: &[(usize, usize)]) {
    if answers.windows(2).all(|w| w[0].1 <= w[1].1) {
        return;
    }
    let mut sorted = answers.to_vec();
    sorted.sort_by_key(|&(_, call)| call);
    let moved: Vec<WirePart> = sorted
        .iter()
        .map(|&(slot, _)| std::mem::take(&mut parts[slot]))
        .collect();
    for (&(slot, _), part) in answers.iter().zip(moved) {
        parts[slot] = part;
    }
}

fn text_part(t: &str) -> WirePart {
    WirePart {
        text: Some(t.to_owned()),
        ..WirePart::default()
    }
}

/// `names` maps the ids of the calls written so far to their function names, which Gemini
/// function responses carry instead of ids.
fn write_part<'a>(p: &'a Part, names: &mut Vec<(&'a str, &'a str)>) -> Res<WirePart> {
    Ok(match p {
        Part::Text(t) => text_part(t),
        Part::Media(m) => write_media(m),
        Part::ToolCall(c) => {
            names.push((&c.id, &c.name));
            let (_, signature) = split_call_id(&c.id);
            WirePart {
                function_call: Some(FunctionCall {
                    id: None,
                    name: c.name.clone(),
                    args: c.arguments.clone(),
                }),
                thought_signature: signature,
                ..WirePart::default()
            }
        }
        Part::ToolResult(r) => {
            let Some(&(_, name)) = names.iter().rev().find(|(id, _)| *id == r.id) else {
                return Err(invalid(format!(
                    "tool result `{}` answers no earlier tool call",
                    r.id
                )));
            };
            WirePart {
                function_response: Some(FunctionResponse {
                    id: None,
                    name: name.to_owned(),
                    response: result_object(r)?,
                }),
                ..WirePart::default()
            }
        }
        Part::Thought { text, signature } => WirePart {
            text: Some(text.clone()),
            thought: Some(true),
            thought_signature: signature.clone().filter(|s| !s.is_empty()),
            ..WirePart::default()
        },
        Part::RedactedThought(_) => return unsupported("Anthropic `redacted_thinking` blocks"),
    })
}

/// A result that is a JSON object is the response itself; other text is `{"output": text}`
/// (or `{"error": text}`), Gemini's documented keys.
fn result_object(r: &ToolResult) -> Res<Value> {
    let mut text = String::new();
    for p in &r.content {
        match p {
            Part::Text(t) => text.push_str(t),
            _ => return unsupported("images in tool results"),
        }
    }
    if r.is_error {
        return Ok(json!({"error": text}));
    }
    Ok(match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"output": text}),
    })
}

/// An image URL whose type neither the client nor its extension says is sent as JPEG: Gemini
/// requires a type and reads the image's own header.
fn write_media(m: &Media) -> WirePart {
    match &m.source {
        MediaSource::Base64(data) => WirePart {
            inline_data: Some(Blob {
                mime_type: m.mime.clone().unwrap_or_else(|| "image/jpeg".into()),
                data: data.clone(),
            }),
            ..WirePart::default()
        },
        MediaSource::Url(url) => WirePart {
            file_data: Some(FileData {
                mime_type: Some(
                    m.mime
                        .clone()
                        .or_else(|| mime_from_url(url).map(str::to_owned))
                        .unwrap_or_else(|| "image/jpeg".into()),
                ),
                file_uri: url.clone(),
            }),
            ..WirePart::default()
        },
    }
}
