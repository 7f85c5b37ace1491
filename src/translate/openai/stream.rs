//! OpenAI `chat.completion.chunk` streams: reading an upstream's chunks into neutral events,
//! and writing neutral events as chunks for an OpenAI client (role first, `tool_calls` deltas by
//! `index`, the finish reason, the usage chunk when asked, then `data: [DONE]`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{ChatUsage, stop_from_wire, stop_to_wire};
use crate::translate::ResponseContext;
use crate::translate::ir::Event;
use crate::translate::sse::write_data;
use crate::translate::wire::{opt_cow, unreadable};
use crate::usage::Usage;

#[derive(Deserialize)]
struct ChunkIn<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<ChoiceIn<'a>>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(default, borrow)]
    error: Option<ErrorIn<'a>>,
}

#[derive(Deserialize)]
struct ChoiceIn<'a> {
    #[serde(default, borrow)]
    delta: Option<DeltaIn<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolDeltaIn<'a>>>,
}

#[derive(Deserialize)]
struct ToolDeltaIn<'a> {
    #[serde(default)]
    index: usize,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionDeltaIn<'a>>,
}

#[derive(Deserialize)]
struct FunctionDeltaIn<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorIn<'a> {
    #[serde(default, borrow, deserialize_with = "opt_cow")]
    message: Option<Cow<'a, str>>,
}

/// Reads an OpenAI upstream's chunks.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    /// Tool calls begun and not yet ended, by `index`.
    open_tools: Vec<usize>,
    stopped: bool,
    done: bool,
}

impl Decoder {
    pub fn event(&mut self, data: &str, sink: &mut dyn FnMut(Event<'_>)) {
        if self.done {
            return;
        }
        if data.trim() == "[DONE]" {
            self.end_tools(sink);
            self.done = true;
            sink(Event::Done);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkIn>(data) else {
            return unreadable(sink, "OpenAI");
        };
        if let Some(e) = chunk.error {
            self.done = true;
            let message = e.message.unwrap_or(Cow::Borrowed("upstream error"));
            return sink(Event::Error {
                status: 500,
                message,
            });
        }
        if !self.started {
            self.started = true;
            sink(Event::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.unwrap_or_default(),
                usage: Usage::default(),
            });
        }
        // `n` > 1 is refused on the way in: every choice is choice 0.
        for choice in chunk.choices {
            if let Some(delta) = choice.delta {
                self.delta(delta, sink);
            }
            if let Some(reason) = choice.finish_reason {
                self.end_tools(sink);
                self.stopped = true;
                sink(Event::Stop {
                    reason: stop_from_wire(&reason),
                    sequence: None,
                });
            }
        }
        if let Some(u) = chunk.usage {
            sink(Event::Usage(u.into()));
        }
    }

    fn delta(&mut self, d: DeltaIn<'_>, sink: &mut dyn FnMut(Event<'_>)) {
        for text in [d.content, d.refusal].into_iter().flatten() {
            if !text.is_empty() {
                sink(Event::Text(text));
            }
        }
        for tc in d.tool_calls.into_iter().flatten() {
            let (name, args) = match tc.function {
                Some(f) => (f.name, f.arguments),
                None => (None, None),
            };
            if let Some(id) = tc.id {
                // OpenAI streams calls one after another: a new call ends the others.
                self.end_tools(sink);
                self.open_tools.push(tc.index);
                sink(Event::ToolStart {
                    index: tc.index,
                    id,
                    name: name.unwrap_or_default(),
                });
            }
            if let Some(json) = args.filter(|a| !a.is_empty()) {
                sink(Event::ToolArgs {
                    index: tc.index,
                    json,
                });
            }
        }
    }

    fn end_tools(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        for index in self.open_tools.drain(..) {
            sink(Event::ToolEnd { index });
        }
    }

    /// An upstream that gave its finish reason but closed before `[DONE]` did finish.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Event<'_>)) {
        if self.stopped && !self.done {
            self.done = true;
            sink(Event::Done);
        }
    }
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<ChatUsage>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Default, Serialize)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolDeltaOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolDeltaOut<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    function: FunctionDeltaOut<'a>,
}

#[derive(Serialize)]
struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Writes chunks for an OpenAI client.
pub struct Encoder {
    ctx: ResponseContext,
    id: String,
    model: String,
    usage: Usage,
    pub done: bool,
}

impl Encoder {
    pub fn new(ctx: ResponseContext) -> Self {
        Encoder {
            id: ctx.fallback_id.clone(),
            model: ctx.model.clone(),
            ctx,
            usage: Usage::default(),
            done: false,
        }
    }

    pub fn emit(&mut self, ev: Event<'_>, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            Event::Start { id, model, usage } => {
                if !id.is_empty() {
                    self.id = id.into_owned();
                }
                if !model.is_empty() {
                    self.model = model.into_owned();
                }
                self.usage.merge(&usage);
                self.chunk(
                    out,
                    DeltaOut {
                        role: Some("assistant"),
                        content: Some(""),
                        ..DeltaOut::default()
                    },
                    None,
                );
            }
            Event::Text(t) => self.chunk(
                out,
                DeltaOut {
                    content: Some(&t),
                    ..DeltaOut::default()
                },
                None,
            ),
            // OpenAI chat has no place for reasoning text; its count stays in the usage.
            Event::Thought(_) | Event::ThoughtSignature(_) | Event::ToolEnd { .. } => {}
            Event::ToolStart { index, id, name } => {
                let call = ToolDeltaOut {
                    index,
                    id: Some(&id),
                    kind: Some("function"),
                    function: FunctionDeltaOut {
                        name: Some(&name),
                        arguments: "",
                    },
                };
                self.tool_chunk(out, call);
            }
            Event::ToolArgs { index, json } => {
                let call = ToolDeltaOut {
                    index,
                    id: None,
                    kind: None,
                    function: FunctionDeltaOut {
                        name: None,
                        arguments: &json,
                    },
                };
                self.tool_chunk(out, call);
            }
            Event::Usage(u) => self.usage.merge(&u),
            Event::Stop { reason, .. } => {
                self.chunk(out, DeltaOut::default(), Some(stop_to_wire(&reason)))
            }
            Event::Done => {
                if self.ctx.include_usage {
                    let usage = ChatUsage::from(&self.usage);
                    self.write(out, &[], Some(usage));
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.done = true;
            }
            Event::Error { status, message } => {
                let ev = crate::providers::stream_error_event(
                    crate::domain::Provider::OpenAi,
                    status,
                    &message,
                );
                out.extend_from_slice(&ev);
                self.done = true;
            }
        }
    }

    fn tool_chunk(&self, out: &mut Vec<u8>, call: ToolDeltaOut<'_>) {
        let delta = DeltaOut {
            tool_calls: Some([call]),
            ..DeltaOut::default()
        };
        self.chunk(out, delta, None);
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish: Option<&str>) {
        let choice = ChoiceOut {
            index: 0,
            delta,
            finish_reason: finish,
        };
        self.write(out, std::slice::from_ref(&choice), None);
    }

    fn write(&self, out: &mut Vec<u8>, choices: &[ChoiceOut<'_>], usage: Option<ChatUsage>) {
        let chunk = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.ctx.created,
            model: &self.model,
            choices,
            usage,
        };
        write_data(out, &chunk, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::ir::StopReason;

    #[test]
    fn stop_reasons_round_trip_where_openai_has_words() {
        for r in ["stop", "length", "tool_calls", "content_filter"] {
            assert_eq!(stop_to_wire(&stop_from_wire(r)), r);
        }
        assert_eq!(stop_to_wire(&StopReason::StopSequence), "stop");
    }
}
