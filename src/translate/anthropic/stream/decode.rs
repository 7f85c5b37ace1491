//! Reading an Anthropic upstream's stream events into neutral events. Each event is parsed once,
//! into the struct its SSE event name says (no tag-buffering enum).

use std::borrow::Cow;

use serde::Deserialize;

use crate::translate::anthropic::{AnthropicUsage, ErrorBody, error_status, stop_from_wire};
use crate::translate::ir::Event;
use crate::translate::wire::{opt_cow, unreadable};
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
