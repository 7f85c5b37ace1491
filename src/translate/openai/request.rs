//! OpenAI Chat Completions requests to and from the neutral [`Request`].

use serde_json::{Value, json};

use super::{
    ChatMessage, ChatRequest, ChatTool, Content, ContentPart, FilePart, FunctionCall, FunctionDef,
    FunctionName, ImageUrl, JsonSchemaFormat, NamedToolChoice, OneOrMany, ResponseFormat,
    StreamOptions, ToolCall as WireToolCall, ToolChoice as WireToolChoice,
};
use crate::translate::ir::{
    Effort, Media, MediaSource, Part, Reasoning, Request, ResponseFormat as Format, Role, Tool,
    ToolCall, ToolChoice, ToolResult,
};
use crate::translate::{Res, check_rest, data_url, invalid, unsupported};

/// Top-level fields with no effect on the answer: storage and dashboards (`store`, `metadata`),
/// routing and caching hints (`service_tier`, `prompt_cache_key`, `prompt_cache_retention`),
/// and the newer name for `user` (`safety_identifier`).
const IGNORED: &[&str] = &[
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
];

pub fn read(body: &[u8]) -> Res<Request> {
    let mut req: ChatRequest = serde_json::from_slice(body).map_err(invalid)?;
    let audio = |v: &Value| v.as_array().is_some_and(|m| m.iter().any(|v| v == "audio"));
    if req.rest.get("audio").is_some_and(|a| !a.is_null())
        || req.rest.get("modalities").is_some_and(audio)
    {
        return unsupported("audio output (`modalities` / `audio`)");
    }
    // A text-only modality list and an empty bias map ask for nothing.
    for key in ["modalities", "logit_bias"] {
        if req.rest.get(key).is_some_and(|v| {
            v.as_array().is_some_and(|m| m.iter().all(|v| v == "text"))
                || v.as_object().is_some_and(|o| o.is_empty())
        }) {
            req.rest.remove(key);
        }
    }
    check_rest(&req.rest, IGNORED, "")?;
    if req.n.is_some_and(|n| n > 1) {
        return unsupported("`n` > 1 (several choices)");
    }
    if req.logprobs == Some(true) || req.top_logprobs.is_some_and(|n| n > 0) {
        return unsupported("`logprobs`");
    }
    let mut ir = Request {
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        seed: req.seed,
        presence_penalty: req.presence_penalty.filter(|p| *p != 0.0),
        frequency_penalty: req.frequency_penalty.filter(|p| *p != 0.0),
        // `true` is every shape's default; only `false` asks for something.
        parallel_tool_calls: req.parallel_tool_calls.filter(|p| !p),
        user: req.user.take(),
        stream: req.stream == Some(true),
        ..Request::default()
    };
    if let Some(opts) = &req.stream_options {
        check_rest(&opts.rest, &["include_obfuscation"], "stream_options.")?;
        ir.include_usage = ir.stream && opts.include_usage == Some(true);
    }
    ir.stop = match req.stop.take() {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    };
    ir.reasoning = match req.reasoning_effort.as_deref() {
        None => None,
        Some("none") => Some(Reasoning::Off),
        Some(e) => match Effort::parse(e) {
            Some(effort) => Some(Reasoning::Effort(effort)),
            None => return unsupported(format!("`reasoning_effort` \"{e}\"")),
        },
    };
    ir.response_format = read_format(req.response_format.take())?;
    ir.tool_choice = req.tool_choice.take().map(read_tool_choice).transpose()?;
    ir.tools = req.tools.drain(..).map(read_tool).collect::<Res<_>>()?;
    for m in std::mem::take(&mut req.messages) {
        read_message(m, &mut ir)?;
    }
    Ok(ir)
}

fn read_format(f: Option<ResponseFormat>) -> Res<Option<Format>> {
    let Some(f) = f else { return Ok(None) };
    Ok(match (f.kind.as_str(), f.json_schema) {
        ("text", _) => None,
        ("json_object", _) => Some(Format::JsonObject),
        ("json_schema", Some(s)) => {
            check_rest(&s.rest, &["description"], "response_format.json_schema.")?;
            Some(Format::JsonSchema {
                name: s.name,
                schema: s.schema.unwrap_or_else(|| json!({})),
            })
        }
        (kind, _) => return unsupported(format!("`response_format` type \"{kind}\"")),
    })
}

fn read_tool_choice(c: WireToolChoice) -> Res<ToolChoice> {
    Ok(match c {
        WireToolChoice::Mode(m) => match m.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return unsupported(format!("`tool_choice` \"{other}\"")),
        },
        WireToolChoice::Named(NamedToolChoice {
            kind,
            function: Some(f),
        }) if kind == "function" => ToolChoice::Tool(f.name),
        WireToolChoice::Named(n) => {
            return unsupported(format!("`tool_choice` type \"{}\"", n.kind));
        }
    })
}

/// `strict` is dropped: no other shape guarantees schema-exact arguments, and the schema itself
/// still goes across.
fn read_tool(t: ChatTool) -> Res<Tool> {
    let Some(f) = t.function.filter(|_| t.kind == "function") else {
        return unsupported(format!("`{}` tools", t.kind));
    };
    check_rest(&t.rest, &[], "tools[].")?;
    check_rest(&f.rest, &[], "tools[].function.")?;
    Ok(Tool {
        name: f.name,
        description: f.description,
        parameters: f
            .parameters
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

fn read_message(m: ChatMessage, ir: &mut Request) -> Res<()> {
    // A participant `name` has no equivalent elsewhere and does not change what is asked.
    check_rest(&m.rest, &["name", "annotations"], "messages[].")?;
    match m.role.as_str() {
        // Anthropic and Gemini take one system prompt before the conversation: a system message
        // in the middle is moved to the front, in order.
        "system" | "developer" => {
            let mut text = String::new();
            for p in read_content(m.content)? {
                match p {
                    Part::Text(t) => text.push_str(&t),
                    _ => return unsupported("non-text content in a system message"),
                }
            }
            ir.system.push(text);
        }
        "user" => ir.push(Role::User, read_content(m.content)?),
        "assistant" => {
            let mut parts: Vec<Part> = read_content(m.content)?
                .into_iter()
                .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
                .collect();
            if let Some(r) = m.refusal.filter(|r| !r.is_empty()) {
                parts.push(Part::Text(r));
            }
            for c in m.tool_calls {
                parts.push(Part::ToolCall(ToolCall {
                    arguments: parse_arguments(&c.function.arguments)?,
                    id: c.id,
                    name: c.function.name,
                }));
            }
            ir.push(Role::Assistant, parts);
        }
        "tool" => {
            let Some(id) = m.tool_call_id else {
                return Err(invalid("a `tool` message has no `tool_call_id`"));
            };
            let content = read_content(m.content)?;
            if content.iter().any(|p| !matches!(p, Part::Text(_))) {
                return unsupported("non-text content in a `tool` message");
            }
            let result = ToolResult {
                id,
                content,
                is_error: false,
            };
            ir.push(Role::User, vec![Part::ToolResult(result)]);
        }
        "function" => return unsupported("legacy `function` messages"),
        other => return Err(invalid(format!("unknown message role `{other}`"))),
    }
    Ok(())
}

/// Tool arguments as the object they encode (other shapes carry an object, not text).
pub fn parse_arguments(text: &str) -> Res<Value> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(invalid(format!(
            "tool call arguments are not a JSON object: {text}"
        ))),
    }
}

fn read_content(content: Option<Content>) -> Res<Vec<Part>> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(t)) => Ok(vec![Part::Text(t)]),
        Some(Content::Parts(parts)) => parts.into_iter().map(read_part).collect(),
    }
}

/// An image's `detail` is a resolution hint for OpenAI's own pricing; the others pick their own.
fn read_part(p: ContentPart) -> Res<Part> {
    match p.kind.as_str() {
        "text" | "refusal" | "image_url" | "file" => check_rest(&p.rest, &[], "content[].")?,
        "input_audio" => return unsupported("audio input (`input_audio`)"),
        other => return unsupported(format!("`{other}` content parts")),
    }
    match p.kind.as_str() {
        "text" => Ok(Part::Text(p.text.unwrap_or_default())),
        "refusal" => Ok(Part::Text(p.refusal.unwrap_or_default())),
        "image_url" => {
            let Some(img) = p.image_url else {
                return Err(invalid("an `image_url` part has no `image_url`"));
            };
            Ok(Part::Media(match data_url(&img.url) {
                Some((mime, data)) => Media {
                    mime: Some(mime.to_owned()),
                    source: MediaSource::Base64(data.to_owned()),
                },
                None => Media {
                    mime: None,
                    source: MediaSource::Url(img.url),
                },
            }))
        }
        "file" => match p.file {
            Some(FilePart {
                file_data: Some(d), ..
            }) => match data_url(&d) {
                Some((mime, data)) => Ok(Part::Media(Media {
                    mime: Some(mime.to_owned()),
                    source: MediaSource::Base64(data.to_owned()),
                })),
                None => Err(invalid("`file_data` is not a base64 data URL")),
            },
            _ => unsupported("`file_id` (a file uploaded to OpenAI)"),
        },
        other => unsupported(format!("`{other}` content parts")),
    }
}

pub fn write(ir: &Request, model: &str) -> Res<Vec<u8>> {
    if ir.top_k.is_some() {
        return unsupported("`top_k`");
    }
    let mut messages: Vec<ChatMessage> = ir
        .system
        .iter()
        .map(|s| ChatMessage {
            role: "system".into(),
            content: Some(Content::Text(s.clone())),
            ..ChatMessage::default()
        })
        .collect();
    for m in &ir.messages {
        match m.role {
            Role::User => write_user(&m.parts, &mut messages)?,
            Role::Assistant => messages.push(write_assistant(&m.parts)?),
        }
    }
    let req = ChatRequest {
        model: model.to_owned(),
        messages,
        tools: ir.tools.iter().map(write_tool).collect(),
        tool_choice: ir.tool_choice.as_ref().map(write_tool_choice),
        parallel_tool_calls: ir.parallel_tool_calls,
        // Reasoning models refuse `max_tokens`; every model takes `max_completion_tokens`.
        max_completion_tokens: ir.max_tokens,
        temperature: ir.temperature,
        top_p: ir.top_p,
        stop: (!ir.stop.is_empty()).then(|| OneOrMany::Many(ir.stop.clone())),
        seed: ir.seed,
        presence_penalty: ir.presence_penalty,
        frequency_penalty: ir.frequency_penalty,
        response_format: ir.response_format.as_ref().map(write_format),
        reasoning_effort: match ir.reasoning {
            Some(Reasoning::Effort(e)) => Some(e.as_str().to_owned()),
            Some(Reasoning::Budget(b)) => Some(Effort::from_budget(b).as_str().to_owned()),
            // Off and dynamic are what each OpenAI model does without the field.
            Some(Reasoning::Off | Reasoning::Dynamic) | None => None,
        },
        user: ir.user.clone(),
        stream: ir.stream.then_some(true),
        // Always on when streaming: the client's shape reports usage, so we need it.
        stream_options: ir.stream.then(|| StreamOptions {
            include_usage: Some(true),
            ..StreamOptions::default()
        }),
        ..ChatRequest::default()
    };
    serde_json::to_vec(&req).map_err(invalid)
}

fn write_user(parts: &[Part], out: &mut Vec<ChatMessage>) -> Res<()> {
    let mut content = Vec::new();
    for p in parts {
        match p {
            Part::ToolResult(r) => out.push(ChatMessage {
                role: "tool".into(),
                tool_call_id: Some(r.id.clone()),
                content: Some(Content::Text(tool_result_text(r)?)),
                ..ChatMessage::default()
            }),
            Part::Text(t) => content.push(ContentPart {
                kind: "text".into(),
                text: Some(t.clone()),
                ..ContentPart::default()
            }),
            Part::Media(m) => content.push(write_media(m)?),
            Part::ToolCall(_) | Part::Thought { .. } | Part::RedactedThought(_) => {
                return Err(invalid("a user turn holds model output"));
            }
        }
    }
    if !content.is_empty() {
        out.push(ChatMessage {
            role: "user".into(),
            content: Some(simplify(content)),
            ..ChatMessage::default()
        });
    }
    Ok(())
}

/// OpenAI has no error flag on tool results: the content, usually the error message, goes as is.
fn tool_result_text(r: &ToolResult) -> Res<String> {
    let mut text = String::new();
    for p in &r.content {
        match p {
            Part::Text(t) => text.push_str(t),
            _ => return unsupported("images in tool results"),
        }
    }
    Ok(text)
}

/// A lone text part is sent as a plain string, as clients write it.
fn simplify(mut parts: Vec<ContentPart>) -> Content {
    if parts.len() == 1 && parts[0].kind == "text" {
        return Content::Text(parts.remove(0).text.unwrap_or_default());
    }
    Content::Parts(parts)
}

fn write_media(m: &Media) -> Res<ContentPart> {
    let url = match &m.source {
        MediaSource::Base64(data) => {
            format!("data:{};base64,{data}", m.mime.as_deref().unwrap_or(""))
        }
        MediaSource::Url(url) => url.clone(),
    };
    if m.is_image() {
        return Ok(ContentPart {
            kind: "image_url".into(),
            image_url: Some(ImageUrl { url, detail: None }),
            ..ContentPart::default()
        });
    }
    match (&m.source, m.is_pdf()) {
        (MediaSource::Base64(_), true) => Ok(ContentPart {
            kind: "file".into(),
            file: Some(FilePart {
                file_data: Some(url),
                filename: Some("document.pdf".into()),
                file_id: None,
            }),
            ..ContentPart::default()
        }),
        (MediaSource::Url(_), true) => unsupported("PDF by URL (OpenAI takes inline PDFs only)"),
        _ => unsupported(format!(
            "media type `{}`",
            m.mime.as_deref().unwrap_or_default()
        )),
    }
}

fn write_assistant(parts: &[Part]) -> Res<ChatMessage> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall(c) => calls.push(WireToolCall {
                id: c.id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: c.name.clone(),
                    arguments: c.arguments.to_string(),
                },
            }),
            Part::Thought { .. } | Part::RedactedThought(_) => {
                return unsupported(
                    "reasoning blocks in the conversation (Anthropic `thinking`, Gemini `thought`)",
                );
            }
            Part::Media(_) | Part::ToolResult(_) => {
                return Err(invalid("an assistant turn holds user input"));
            }
        }
    }
    Ok(ChatMessage {
        role: "assistant".into(),
        content: (!text.is_empty() || calls.is_empty()).then_some(Content::Text(text)),
        tool_calls: calls,
        ..ChatMessage::default()
    })
}

fn write_tool(t: &Tool) -> ChatTool {
    ChatTool {
        kind: "function".into(),
        function: Some(FunctionDef {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: Some(t.parameters.clone()),
            strict: None,
            rest: Default::default(),
        }),
        rest: Default::default(),
    }
}

fn write_tool_choice(c: &ToolChoice) -> WireToolChoice {
    match c {
        ToolChoice::Auto => WireToolChoice::Mode("auto".into()),
        ToolChoice::None => WireToolChoice::Mode("none".into()),
        ToolChoice::Required => WireToolChoice::Mode("required".into()),
        ToolChoice::Tool(name) => WireToolChoice::Named(NamedToolChoice {
            kind: "function".into(),
            function: Some(FunctionName { name: name.clone() }),
        }),
    }
}

fn write_format(f: &Format) -> ResponseFormat {
    match f {
        Format::JsonObject => ResponseFormat {
            kind: "json_object".into(),
            json_schema: None,
        },
        Format::JsonSchema { name, schema } => ResponseFormat {
            kind: "json_schema".into(),
            json_schema: Some(JsonSchemaFormat {
                name: name.clone(),
                schema: Some(schema.clone()),
                strict: None,
                rest: Default::default(),
            }),
        },
    }
}
