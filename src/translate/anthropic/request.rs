//! Anthropic Messages requests to and from the neutral [`Request`].

use serde_json::{Value, json};

use super::{
    Block, Content, DEFAULT_MAX_TOKENS, MIN_THINKING_BUDGET, Message, MessagesRequest, Metadata,
    Source, Thinking, Tool as WireTool, ToolChoice as WireToolChoice,
};
use crate::translate::ir::{
    Media, MediaSource, Part, Reasoning, Request, ResponseFormat, Role, Tool, ToolCall, ToolChoice,
    ToolResult,
};
use crate::translate::{Res, check_rest, invalid, unsupported};

/// Prompt-caching breakpoints are a cost hint: OpenAI caches prompts by itself and Gemini
/// implicitly, and the usage still reports what was read from cache. `service_tier` is a
/// capacity choice that does not change the answer.
const IGNORED_TOP: &[&str] = &["service_tier", "cache_control"];
const IGNORED_BLOCK: &[&str] = &["cache_control", "title"];

pub fn read(body: &[u8]) -> Res<Request> {
    let req: MessagesRequest = serde_json::from_slice(body).map_err(invalid)?;
    check_rest(&req.rest, IGNORED_TOP, "")?;
    let mut ir = Request {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        stop: req.stop_sequences,
        stream: req.stream == Some(true),
        ..Request::default()
    };
    if let Some(m) = req.metadata {
        check_rest(&m.rest, &[], "metadata.")?;
        ir.user = m.user_id;
    }
    if let Some(t) = req.thinking {
        check_rest(&t.rest, &[], "thinking.")?;
        ir.reasoning = match (t.kind.as_str(), t.budget_tokens) {
            ("enabled", Some(b)) => Some(Reasoning::Budget(b)),
            ("adaptive", _) => Some(Reasoning::Dynamic),
            ("disabled", _) => Some(Reasoning::Off),
            (kind, _) => return unsupported(format!("`thinking` type \"{kind}\"")),
        };
        ir.show_reasoning = !matches!(ir.reasoning, Some(Reasoning::Off));
    }
    if let Some(f) = req.output_format {
        let (true, Some(schema)) = (f.kind == "json_schema", f.schema) else {
            return unsupported(format!("`output_format` type \"{}\"", f.kind));
        };
        ir.response_format = Some(ResponseFormat::JsonSchema {
            name: "output".into(),
            schema,
        });
    }
    if let Some(c) = req.tool_choice {
        ir.tool_choice = Some(match (c.kind.as_str(), c.name) {
            ("auto", _) => ToolChoice::Auto,
            ("any", _) => ToolChoice::Required,
            ("none", _) => ToolChoice::None,
            ("tool", Some(name)) => ToolChoice::Tool(name),
            (kind, _) => return unsupported(format!("`tool_choice` type \"{kind}\"")),
        });
        if c.disable_parallel_tool_use == Some(true) {
            ir.parallel_tool_calls = Some(false);
        }
    }
    ir.tools = req.tools.into_iter().map(read_tool).collect::<Res<_>>()?;
    match req.system {
        None => {}
        Some(Content::Text(t)) => ir.system.push(t),
        Some(Content::Blocks(blocks)) => {
            for b in blocks {
                match read_block(b)? {
                    Part::Text(t) => ir.system.push(t),
                    _ => return unsupported("non-text system blocks"),
                }
            }
        }
    }
    for m in req.messages {
        read_message(m, &mut ir)?;
    }
    Ok(ir)
}

fn read_tool(t: WireTool) -> Res<Tool> {
    match t.kind.as_deref() {
        None | Some("custom") => {}
        Some(kind) => return unsupported(format!("server tool `{kind}`")),
    }
    // `strict` promises schema-exact input, which no other shape guarantees; the schema
    // itself still goes across.
    check_rest(&t.rest, &["cache_control", "strict"], "tools[].")?;
    Ok(Tool {
        name: t.name,
        description: t.description,
        parameters: t
            .input_schema
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    })
}

fn read_message(m: Message, ir: &mut Request) -> Res<()> {
    check_rest(&m.rest, &[], "messages[].")?;
    let role = match m.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => return Err(invalid(format!("unknown message role `{other}`"))),
    };
    let parts = match m.content {
        Content::Text(t) => vec![Part::Text(t)],
        Content::Blocks(blocks) => blocks.into_iter().map(read_block).collect::<Res<_>>()?,
    };
    ir.push(role, parts);
    Ok(())
}

const BLOCKS: &[&str] = &[
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
];

fn read_block(b: Block) -> Res<Part> {
    if !BLOCKS.contains(&b.kind.as_str()) {
        return unsupported(format!("`{}` content blocks", b.kind));
    }
    // Citations on text the model wrote earlier describe where it came from; the text stands.
    let ignored: &[&str] = if b.kind == "text" {
        &["cache_control", "citations"]
    } else {
        IGNORED_BLOCK
    };
    check_rest(&b.rest, ignored, "content[].")?;
    Ok(match b.kind.as_str() {
        "text" => Part::Text(b.text.unwrap_or_default()),
        "image" => Part::Media(read_source(b.source, None)?),
        "document" => match b.source {
            Some(Source {
                kind,
                data: Some(data),
                ..
            }) if kind == "text" => Part::Text(data),
            source => Part::Media(read_source(source, Some("application/pdf"))?),
        },
        "tool_use" => Part::ToolCall(ToolCall {
            id: b.id.unwrap_or_default(),
            name: b.name.unwrap_or_default(),
            arguments: match b.input {
                None => json!({}),
                Some(v @ Value::Object(_)) => v,
                Some(_) => return Err(invalid("`tool_use.input` is not an object")),
            },
        }),
        "tool_result" => Part::ToolResult(ToolResult {
            id: b.tool_use_id.unwrap_or_default(),
            content: match b.content {
                None => Vec::new(),
                Some(Content::Text(t)) => vec![Part::Text(t)],
                Some(Content::Blocks(blocks)) => {
                    blocks.into_iter().map(read_block).collect::<Res<_>>()?
                }
            },
            is_error: b.is_error == Some(true),
        }),
        "thinking" => Part::Thought {
            text: b.thinking.unwrap_or_default(),
            signature: b.signature,
        },
        _ => Part::RedactedThought(b.data.unwrap_or_default()),
    })
}

/// `url_mime` is what a URL source holds when the block type says (documents are PDFs).
fn read_source(source: Option<Source>, url_mime: Option<&str>) -> Res<Media> {
    let Some(s) = source else {
        return Err(invalid("a media block has no `source`"));
    };
    check_rest(&s.rest, &[], "content[].source.")?;
    match (s.kind.as_str(), s.data, s.url) {
        ("base64", Some(data), _) => Ok(Media {
            mime: s.media_type,
            source: MediaSource::Base64(data),
        }),
        ("url", _, Some(url)) => Ok(Media {
            mime: url_mime.map(str::to_owned),
            source: MediaSource::Url(url),
        }),
        (kind, _, _) => unsupported(format!("`{kind}` media sources")),
    }
}

pub fn write(ir: &Request, model: &str) -> Res<Vec<u8>> {
    if ir.seed.is_some() {
        return unsupported("`seed`");
    }
    if ir.presence_penalty.is_some() || ir.frequency_penalty.is_some() {
        return unsupported("presence and frequency penalties");
    }
    if ir.response_format.is_some() {
        // Anthropic's structured outputs need a beta header the gateway does not add.
        return unsupported("JSON output (`response_format` / `responseMimeType`)");
    }
    let budget = match ir.reasoning {
        None | Some(Reasoning::Off) => None,
        Some(Reasoning::Budget(b)) => Some(b.max(MIN_THINKING_BUDGET)),
        Some(Reasoning::Effort(e)) => Some(e.budget()),
        Some(Reasoning::Dynamic) => {
            return unsupported("dynamic thinking (`thinkingBudget: -1`)");
        }
    };
    let system = match ir.system.as_slice() {
        [] => None,
        [one] => Some(Content::Text(one.clone())),
        many => Some(Content::Blocks(
            many.iter().map(|t| text_block(t)).collect(),
        )),
    };
    let messages = ir
        .messages
        .iter()
        .map(|m| {
            Ok(Message {
                role: match m.role {
                    Role::User => "user".into(),
                    Role::Assistant => "assistant".into(),
                },
                content: Content::Blocks(write_parts(&m.parts)?),
                rest: Default::default(),
            })
        })
        .collect::<Res<_>>()?;
    let mut tool_choice = ir.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => choice("auto", None),
        ToolChoice::None => choice("none", None),
        ToolChoice::Required => choice("any", None),
        ToolChoice::Tool(name) => choice("tool", Some(name.clone())),
    });
    if ir.parallel_tool_calls == Some(false) {
        tool_choice
            .get_or_insert_with(|| choice("auto", None))
            .disable_parallel_tool_use = Some(true);
    }
    let req = MessagesRequest {
        model: model.to_owned(),
        messages,
        system,
        // With thinking on, the budget is part of `max_tokens`: the default leaves room for it.
        max_tokens: Some(
            ir.max_tokens
                .unwrap_or(DEFAULT_MAX_TOKENS + budget.unwrap_or(0)),
        ),
        tools: ir
            .tools
            .iter()
            .map(|t| WireTool {
                name: t.name.clone(),
                description: t.description.clone(),
                input_schema: Some(t.parameters.clone()),
                ..WireTool::default()
            })
            .collect(),
        tool_choice,
        temperature: ir.temperature,
        top_p: ir.top_p,
        top_k: ir.top_k,
        stop_sequences: ir.stop.clone(),
        stream: ir.stream.then_some(true),
        metadata: ir.user.as_ref().map(|u| Metadata {
            user_id: Some(u.clone()),
            rest: Default::default(),
        }),
        thinking: budget.map(|b| Thinking {
            kind: "enabled".into(),
            budget_tokens: Some(b),
            rest: Default::default(),
        }),
        output_format: None,
        rest: Default::default(),
    };
    serde_json::to_vec(&req).map_err(invalid)
}

fn choice(kind: &str, name: Option<String>) -> WireToolChoice {
    WireToolChoice {
        kind: kind.into(),
        name,
        disable_parallel_tool_use: None,
    }
}

pub fn text_block(text: &str) -> Block {
    Block {
        kind: "text".into(),
        text: Some(text.to_owned()),
        ..Block::default()
    }
}

/// Tool results go first in a user turn, as Anthropic requires; empty text blocks, which it
/// rejects, are left out.
fn write_parts(parts: &[Part]) -> Res<Vec<Block>> {
    let mut blocks = Vec::with_capacity(parts.len());
    for p in parts.iter().filter(|p| matches!(p, Part::ToolResult(_))) {
        blocks.push(write_part(p)?);
    }
    for p in parts.iter().filter(|p| !matches!(p, Part::ToolResult(_))) {
        if !matches!(p, Part::Text(t) if t.is_empty()) {
            blocks.push(write_part(p)?);
        }
    }
    Ok(blocks)
}

pub fn write_part(p: &Part) -> Res<Block> {
    Ok(match p {
        Part::Text(t) => text_block(t),
        Part::Media(m) => write_media(m)?,
        Part::ToolCall(c) => Block {
            kind: "tool_use".into(),
            id: Some(c.id.clone()),
            name: Some(c.name.clone()),
            input: Some(c.arguments.clone()),
            ..Block::default()
        },
        Part::ToolResult(r) => Block {
            kind: "tool_result".into(),
            tool_use_id: Some(r.id.clone()),
            content: Some(Content::Blocks(
                r.content.iter().map(write_part).collect::<Res<_>>()?,
            )),
            is_error: r.is_error.then_some(true),
            ..Block::default()
        },
        Part::Thought { text, signature } => Block {
            kind: "thinking".into(),
            thinking: Some(text.clone()),
            signature: Some(signature.clone().unwrap_or_default()),
            ..Block::default()
        },
        Part::RedactedThought(data) => Block {
            kind: "redacted_thinking".into(),
            data: Some(data.clone()),
            ..Block::default()
        },
    })
}

fn write_media(m: &Media) -> Res<Block> {
    let kind = if m.is_image() {
        "image"
    } else if m.is_pdf() {
        "document"
    } else {
        let mime = m.mime.as_deref().unwrap_or_default();
        return unsupported(format!("media type `{mime}`"));
    };
    let source = match &m.source {
        MediaSource::Base64(data) => Source {
            kind: "base64".into(),
            media_type: m.mime.clone(),
            data: Some(data.clone()),
            ..Source::default()
        },
        MediaSource::Url(url) => Source {
            kind: "url".into(),
            url: Some(url.clone()),
            ..Source::default()
        },
    };
    Ok(Block {
        kind: kind.into(),
        source: Some(source),
        ..Block::default()
    })
}
