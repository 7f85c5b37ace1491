//! Anthropic Messages streams: reading an upstream's events into neutral events, and writing
//! neutral events for an Anthropic client in the order its SDKs expect (`message_start`, then
//! for each block `content_block_start`/`_delta`/`_stop`, then `message_delta` with the stop
//! reason and usage, then `message_stop`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AnthropicUsage, ErrorBody, error_status, stop_from_wire, stop_to_wire};
use crate::translate::ResponseContext;
use crate::translate::ir::{Event, StopReason};
use crate::translate::sse::write_event;
use crate::translate::stream::{opt_cow, unreadable};
use crate::usage::Usage;

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: StartMessage<'a>,
}

#[derive(Deserialize)]
struct StartMessage<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    index: usize,
    #[serde(borrow)]
    content_block: StartBlock<'a>,
}

#[derive(Deserialize)]
struct StartBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    index: usize,
    #[serde(borrow)]
    delta: Delta<'a>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    partial_json: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    signature: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockStop {
    index: usize,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow)]
    delta: StopDelta<'a>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct StopDelta<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    stop_sequence: Option<Cow<'a, str>>,
}

/// Reads an Anthropic upstream's events.
#[derive(Default)]
pub struct Decoder {
    /// The tool ordinal of each content block that is a tool call, by block index.
    tools: Vec<Option<usize>>,
    tool_count: usize,
    stopped: bool,
    done: bool,
}

impl Decoder {
    pub fn event(&mut self, name: &str, data: &str, sink: &mut dyn FnMut(Event<'_>)) {
        if self.done {
            return;
        }
        // Anthropic names every event; the `type` inside is read only when a hop dropped it.
        let peeked;
        let kind = if name.is_empty() {
            match serde_json::from_str::<TypeOnly>(data) {
                Ok(t) => {
                    peeked = t.kind;
                    peeked.as_ref()
                }
                Err(_) => return unreadable(sink, "Anthropic"),
            }
        } else {
            name
        };
        if self.read(kind, data, sink).is_err() {
            unreadable(sink, "Anthropic");
        }
    }

    fn read(
        &mut self,
        kind: &str,
        data: &str,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> serde_json::Result<()> {
        match kind {
            "message_start" => {
                let m = serde_json::from_str::<MessageStart>(data)?.message;
                sink(Event::Start {
                    id: m.id.unwrap_or_default(),
                    model: m.model.unwrap_or_default(),
                    usage: m.usage.map(Usage::from).unwrap_or_default(),
                });
            }
            "content_block_start" => {
                let b: BlockStart = serde_json::from_str(data)?;
                let block = b.content_block;
                if self.tools.len() <= b.index {
                    self.tools.resize(b.index + 1, None);
                }
                match block.kind.as_ref() {
                    "tool_use" => {
                        let index = self.tool_count;
                        self.tool_count += 1;
                        self.tools[b.index] = Some(index);
                        sink(Event::ToolStart {
                            index,
                            id: block.id.unwrap_or_default(),
                            name: block.name.unwrap_or_default(),
                        });
                    }
                    "text" => emit_nonempty(block.text, Event::Text, sink),
                    "thinking" => emit_nonempty(block.thinking, Event::Thought, sink),
                    // Redacted reasoning is readable by Anthropic alone.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let b: BlockDelta = serde_json::from_str(data)?;
                let d = b.delta;
                match d.kind.as_ref() {
                    "text_delta" => emit_nonempty(d.text, Event::Text, sink),
                    "thinking_delta" => emit_nonempty(d.thinking, Event::Thought, sink),
                    "signature_delta" => emit_nonempty(d.signature, Event::ThoughtSignature, sink),
                    "input_json_delta" => {
                        if let (Some(Some(index)), Some(json)) =
                            (self.tools.get(b.index), d.partial_json)
                            && !json.is_empty()
                        {
                            sink(Event::ToolArgs {
                                index: *index,
                                json,
                            });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let b: BlockStop = serde_json::from_str(data)?;
                if let Some(Some(index)) = self.tools.get(b.index) {
                    sink(Event::ToolEnd { index: *index });
                }
            }
            "message_delta" => {
                let m: MessageDelta = serde_json::from_str(data)?;
                if let Some(u) = m.usage {
                    sink(Event::Usage(u.into()));
                }
                if let Some(reason) = m.delta.stop_reason {
                    self.stopped = true;
                    sink(Event::Stop {
                        reason: stop_from_wire(&reason),
                        sequence: m.delta.stop_sequence,
                    });
                }
            }
            "message_stop" => {
                self.done = true;
                sink(Event::Done);
            }
            "error" => {
                let e = serde_json::from_str::<ErrorBody>(data)?.error;
                let (kind, message) = e.map(|e| (e.kind, e.message)).unwrap_or_default();
                self.done = true;
                sink(Event::Error {
                    status: error_status(kind.as_deref().unwrap_or_default()),
                    message: message.unwrap_or(Cow::Borrowed("upstream error")),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// An upstream that gave its stop reason but closed before `message_stop` did finish.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        if self.stopped && !self.done {
            self.done = true;
            sink(Event::Done);
        }
    }
}

fn emit_nonempty<'a>(
    text: Option<Cow<'a, str>>,
    make: fn(Cow<'a, str>) -> Event<'a>,
    sink: &mut dyn FnMut(Event<'_>),
) {
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        sink(make(t));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool(usize),
}

/// Writes events for an Anthropic client.
pub struct Encoder {
    ctx: ResponseContext,
    started: bool,
    /// The block being written and its index.
    open: Option<(Open, usize)>,
    next_block: usize,
    /// Block index of each tool call, by tool ordinal.
    tool_blocks: Vec<usize>,
    usage: Usage,
    stop: Option<(StopReason, Option<String>)>,
    pub done: bool,
}

#[derive(Serialize)]
struct Start<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: StartOut<'a>,
}

#[derive(Serialize)]
struct StartOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<()>,
    stop_sequence: Option<()>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
struct DeltaOut<D: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: D,
}

#[derive(Serialize)]
struct Piece<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_json: Option<&'a str>,
}

impl Piece<'_> {
    const EMPTY: Piece<'static> = Piece {
        kind: "",
        text: None,
        thinking: None,
        signature: None,
        partial_json: None,
    };
}

impl Encoder {
    pub fn new(ctx: ResponseContext) -> Self {
        Encoder {
            ctx,
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: Vec::new(),
            usage: Usage::default(),
            stop: None,
            done: false,
        }
    }

    pub fn emit(&mut self, ev: Event<'_>, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            Event::Start { id, model, usage } => {
                self.usage.merge(&usage);
                self.start(out, &id, &model);
            }
            Event::Text(t) => {
                let index = self.open_block(out, Open::Text);
                let piece = Piece {
                    kind: "text_delta",
                    text: Some(&t),
                    ..Piece::EMPTY
                };
                delta(out, index, piece);
            }
            Event::Thought(t) => {
                let index = self.open_block(out, Open::Thinking);
                let piece = Piece {
                    kind: "thinking_delta",
                    thinking: Some(&t),
                    ..Piece::EMPTY
                };
                delta(out, index, piece);
            }
            Event::ThoughtSignature(s) => {
                let index = self.open_block(out, Open::Thinking);
                let piece = Piece {
                    kind: "signature_delta",
                    signature: Some(&s),
                    ..Piece::EMPTY
                };
                delta(out, index, piece);
                self.close(out);
            }
            Event::ToolStart { index, id, name } => {
                self.close(out);
                let block = self.next_block;
                self.next_block += 1;
                if self.tool_blocks.len() <= index {
                    self.tool_blocks.resize(index + 1, block);
                }
                self.tool_blocks[index] = block;
                self.open = Some((Open::Tool(index), block));
                let content = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                block_start(out, block, &content);
            }
            Event::ToolArgs { index, json } => {
                // Calls arrive one after another; a late piece still goes to its own block.
                if let Some(&block) = self.tool_blocks.get(index) {
                    let piece = Piece {
                        kind: "input_json_delta",
                        partial_json: Some(&json),
                        ..Piece::EMPTY
                    };
                    delta(out, block, piece);
                }
            }
            Event::ToolEnd { index } => {
                if matches!(self.open, Some((Open::Tool(i), _)) if i == index) {
                    self.close(out);
                }
            }
            Event::Usage(u) => self.usage.merge(&u),
            Event::Stop { reason, sequence } => {
                self.close(out);
                self.stop = Some((reason, sequence.map(Cow::into_owned)));
            }
            Event::Done => self.end(out),
            Event::Error { status, message } => {
                let ev = crate::providers::stream_error_event(
                    crate::domain::Provider::Anthropic,
                    status,
                    &message,
                );
                out.extend_from_slice(&ev);
                self.done = true;
            }
        }
    }

    fn start(&mut self, out: &mut Vec<u8>, id: &str, model: &str) {
        self.started = true;
        let start = Start {
            kind: "message_start",
            message: StartOut {
                id: if id.is_empty() {
                    &self.ctx.fallback_id
                } else {
                    id
                },
                kind: "message",
                role: "assistant",
                model: if model.is_empty() {
                    &self.ctx.model
                } else {
                    model
                },
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: AnthropicUsage::from(&self.usage),
            },
        };
        write_event(out, "message_start", &start);
    }

    /// The index of an open block of kind `want`, starting one (and closing another) if needed.
    fn open_block(&mut self, out: &mut Vec<u8>, want: Open) -> usize {
        if let Some((kind, index)) = self.open
            && kind == want
        {
            return index;
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((want, index));
        let content = match want {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Open::Text | Open::Tool(_) => json!({"type": "text", "text": ""}),
        };
        block_start(out, index, &content);
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            let stop = json!({"type": "content_block_stop", "index": index});
            write_event(out, "content_block_stop", &stop);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            let (id, model) = (self.ctx.fallback_id.clone(), self.ctx.model.clone());
            self.start(out, &id, &model);
        }
        self.close(out);
        let (reason, sequence) = self.stop.take().unwrap_or((StopReason::EndTurn, None));
        let message_delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_to_wire(&reason), "stop_sequence": sequence},
            "usage": AnthropicUsage::from(&self.usage),
        });
        write_event(out, "message_delta", &message_delta);
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.done = true;
    }
}

fn block_start(out: &mut Vec<u8>, index: usize, content: &serde_json::Value) {
    let start = json!({"type": "content_block_start", "index": index, "content_block": content});
    write_event(out, "content_block_start", &start);
}

fn delta(out: &mut Vec<u8>, index: usize, piece: Piece<'_>) {
    let d = DeltaOut {
        kind: "content_block_delta",
        index,
        delta: piece,
    };
    write_event(out, "content_block_delta", &d);
}
