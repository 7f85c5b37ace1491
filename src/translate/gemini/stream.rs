//! Gemini `streamGenerateContent?alt=sse` streams: every event is a whole response holding the
//! newest parts, with cumulative `usageMetadata`, and the last one carries `finishReason` (Gemini
//! has no terminal event of its own). Reading turns each chunk's parts into neutral events;
//! writing sends each text piece at once and each tool call whole, since a Gemini function call
//! has its arguments as one object.

use std::borrow::Cow;

use super::response::{
    CandidateOut, ContentOut, FunctionCallOut, PartOut, ResponseIn, ResponseOut, UsageMetadata,
};
use super::{call_id, stop_from_wire, stop_to_wire};
use crate::translate::ResponseContext;
use crate::translate::ir::{Event, StopReason};
use crate::translate::openai::request::parse_arguments;
use crate::translate::sse::write_data;
use crate::translate::wire::unreadable;
use crate::usage::Usage;

/// Reads a Gemini upstream's chunks.
pub struct Decoder {
    /// The response id, which Gemini repeats in every chunk; it names the tool calls.
    id: String,
    started: bool,
    calls: usize,
    done: bool,
}

impl Decoder {
    pub fn new(ctx: &ResponseContext) -> Self {
        Decoder {
            id: ctx.fallback_id.clone(),
            started: false,
            calls: 0,
            done: false,
        }
    }

    pub fn event(&mut self, data: &str, sink: &mut dyn FnMut(Event<'_>)) {
        if self.done {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<ResponseIn>(data) else {
            return unreadable(sink, "Gemini");
        };
        if let Some(e) = chunk.error {
            self.done = true;
            return sink(Event::Error {
                status: e.code.unwrap_or(500),
                message: e.message.unwrap_or(Cow::Borrowed("upstream error")),
            });
        }
        let usage = chunk.usage_metadata.map(Usage::from);
        if !self.started {
            self.started = true;
            if let Some(id) = &chunk.response_id {
                self.id = id.to_string();
            }
            sink(Event::Start {
                id: Cow::Borrowed(&self.id),
                model: chunk.model_version.unwrap_or_default(),
                usage: usage.unwrap_or_default(),
            });
        }
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            if let Some(u) = usage {
                sink(Event::Usage(u));
            }
            if chunk
                .prompt_feedback
                .is_some_and(|f| f.block_reason.is_some())
            {
                self.finish_with(StopReason::ContentFilter, sink);
            }
            return;
        };
        for p in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(what) = p.untranslatable() {
                self.done = true;
                return sink(Event::Error {
                    status: 502,
                    message: Cow::Owned(format!("{what} has no equivalent in this API")),
                });
            }
            if let Some(f) = p.function_call {
                let index = self.calls;
                self.calls += 1;
                let base = match f.id {
                    Some(id) => id.into_owned(),
                    None => format!("call_{}_{index}", self.id),
                };
                let args = f.args.unwrap_or_else(|| serde_json::json!({}));
                sink(Event::ToolStart {
                    index,
                    id: Cow::Owned(call_id(&base, p.thought_signature.as_deref())),
                    name: f.name,
                });
                sink(Event::ToolArgs {
                    index,
                    json: Cow::Owned(args.to_string()),
                });
                sink(Event::ToolEnd { index });
                continue;
            }
            let Some(text) = p.text else { continue };
            if p.thought == Some(true) {
                if !text.is_empty() {
                    sink(Event::Thought(text));
                }
                if let Some(sig) = p.thought_signature {
                    sink(Event::ThoughtSignature(sig));
                }
            } else if !text.is_empty() {
                // A signature on plain text only helps Gemini itself; the client needs none.
                sink(Event::Text(text));
            }
        }
        if let Some(u) = usage {
            sink(Event::Usage(u));
        }
        if let Some(reason) = candidate.finish_reason {
            let stop = stop_from_wire(&reason, self.calls > 0);
            self.finish_with(stop, sink);
        }
    }

    fn finish_with(&mut self, reason: StopReason, sink: &mut dyn FnMut(Event<'_>)) {
        self.done = true;
        sink(Event::Stop {
            reason,
            sequence: None,
        });
        sink(Event::Done);
    }
}

struct PendingCall {
    id: String,
    name: String,
    args: String,
}

/// Writes chunks for a Gemini client.
pub struct Encoder {
    id: String,
    model: String,
    usage: Usage,
    /// Tool calls being gathered, by tool index.
    calls: Vec<Option<PendingCall>>,
    stop: Option<StopReason>,
    pub done: bool,
}

impl Encoder {
    pub fn new(ctx: ResponseContext) -> Self {
        Encoder {
            id: ctx.fallback_id,
            model: ctx.model,
            usage: Usage::default(),
            calls: Vec::new(),
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
                if !id.is_empty() {
                    self.id = id.into_owned();
                }
                if !model.is_empty() {
                    self.model = model.into_owned();
                }
                self.usage.merge(&usage);
            }
            Event::Text(t) => {
                let part = PartOut {
                    text: Some(&t),
                    ..PartOut::default()
                };
                self.chunk(out, &[part], None);
            }
            Event::Thought(t) => {
                let part = PartOut {
                    text: Some(&t),
                    thought: Some(true),
                    ..PartOut::default()
                };
                self.chunk(out, &[part], None);
            }
            Event::ThoughtSignature(s) => {
                let part = PartOut {
                    text: Some(""),
                    thought: Some(true),
                    thought_signature: Some(&s),
                    ..PartOut::default()
                };
                self.chunk(out, &[part], None);
            }
            Event::ToolStart { index, id, name } => {
                if self.calls.len() <= index {
                    self.calls.resize_with(index + 1, || None);
                }
                self.calls[index] = Some(PendingCall {
                    id: id.into_owned(),
                    name: name.into_owned(),
                    args: String::new(),
                });
            }
            Event::ToolArgs { index, json } => {
                if let Some(Some(call)) = self.calls.get_mut(index) {
                    call.args.push_str(&json);
                }
            }
            Event::ToolEnd { index } => self.flush(index, out),
            Event::Usage(u) => self.usage.merge(&u),
            Event::Stop { reason, .. } => {
                for index in 0..self.calls.len() {
                    self.flush(index, out);
                }
                self.stop = Some(reason);
            }
            Event::Done => {
                let stop = self.stop.take().unwrap_or(StopReason::EndTurn);
                let part = PartOut {
                    text: Some(""),
                    ..PartOut::default()
                };
                self.chunk(out, &[part], Some(stop_to_wire(&stop)));
                self.done = true;
            }
            Event::Error { status, message } => self.error(out, status, &message),
        }
    }

    fn flush(&mut self, index: usize, out: &mut Vec<u8>) {
        let Some(call) = self.calls.get_mut(index).and_then(Option::take) else {
            return;
        };
        match parse_arguments(&call.args) {
            Ok(args) => {
                let part = PartOut {
                    function_call: Some(FunctionCallOut {
                        id: &call.id,
                        name: &call.name,
                        args: &args,
                    }),
                    ..PartOut::default()
                };
                self.chunk(out, &[part], None);
            }
            Err(_) => self.error(
                out,
                502,
                &format!(
                    "the upstream's `{}` call has arguments that are not a JSON object",
                    call.name
                ),
            ),
        }
    }

    fn error(&mut self, out: &mut Vec<u8>, status: u16, message: &str) {
        let ev =
            crate::providers::stream_error_event(crate::domain::Provider::Gemini, status, message);
        out.extend_from_slice(&ev);
        self.done = true;
    }

    /// Every chunk carries the usage known so far, as Gemini's own do, so a client whose
    /// stream breaks off still learns what the prompt cost.
    fn chunk(&self, out: &mut Vec<u8>, parts: &[PartOut<'_>], finish: Option<&str>) {
        let chunk = ResponseOut {
            candidates: [CandidateOut {
                content: ContentOut {
                    parts,
                    role: "model",
                },
                finish_reason: finish,
                index: 0,
            }],
            usage_metadata: self
                .usage
                .input_tokens
                .is_some()
                .then(|| UsageMetadata::from(&self.usage)),
            model_version: &self.model,
            response_id: &self.id,
        };
        write_data(out, &chunk, true);
    }
}
