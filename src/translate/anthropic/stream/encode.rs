//! Writing neutral events for an Anthropic client, in the order its SDKs expect.

use std::borrow::Cow;

use serde::Serialize;

use crate::translate::ResponseContext;
use crate::translate::anthropic::{AnthropicUsage, stop_to_wire};
use crate::translate::ir::{Event, StopReason};
use crate::translate::sse::write_event;
use crate::usage::Usage;

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
                let content = StartContent {
                    kind: "tool_use",
                    id: Some(&id),
                    name: Some(&name),
                    input: Some(EmptyObject {}),
                    text: None,
                    ..StartContent::TEXT
                };
                block_start(out, block, content);
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
            Open::Thinking => StartContent {
                kind: "thinking",
                text: None,
                thinking: Some(""),
                signature: Some(""),
                ..StartContent::TEXT
            },
            Open::Text | Open::Tool(_) => StartContent::TEXT,
        };
        block_start(out, index, content);
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            let stop = BlockStopOut {
                kind: "content_block_stop",
                index,
            };
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
        let message_delta = MessageDeltaOut {
            kind: "message_delta",
            delta: StopOut {
                stop_reason: stop_to_wire(&reason),
                stop_sequence: sequence.as_deref(),
            },
            usage: AnthropicUsage::from(&self.usage),
        };
        write_event(out, "message_delta", &message_delta);
        let stop = MessageStopOut {
            kind: "message_stop",
        };
        write_event(out, "message_stop", &stop);
        self.done = true;
    }
}

#[derive(Serialize)]
struct BlockStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: StartContent<'a>,
}

/// The empty start of a text, thinking or tool-use block.
#[derive(Serialize)]
struct StartContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<EmptyObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
}

impl StartContent<'_> {
    const TEXT: StartContent<'static> = StartContent {
        kind: "text",
        id: None,
        name: None,
        input: None,
        text: Some(""),
        thinking: None,
        signature: None,
    };
}

/// `{}`, a tool call's input before its pieces arrive.
#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
struct BlockStopOut {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct MessageDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopOut<'a>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
struct StopOut<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct MessageStopOut {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn block_start(out: &mut Vec<u8>, index: usize, content_block: StartContent<'_>) {
    let start = BlockStartOut {
        kind: "content_block_start",
        index,
        content_block,
    };
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
