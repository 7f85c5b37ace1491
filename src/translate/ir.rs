//! The neutral representation every translation passes through: a request, a response and the
//! events of a stream, with only what the three shapes can agree on. Each provider module reads
//! its shape into these types and writes them back out; nothing here knows a wire format.
//!
//! The types are deliberately small: a feature that has no neutral meaning is refused while
//! reading (see the table in [`crate::translate`]) rather than smuggled through.

use std::borrow::Cow;

use serde_json::Value;

use crate::usage::Usage;

/// A chat request, stripped of its shape. `stream`/`include_usage` are what the client asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// System prompts, in order (OpenAI may have several; they are hoisted to the front).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` forbids several tool calls in one turn.
    pub parallel_tool_calls: Option<bool>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Reasoning>,
    /// The client wants to see the model's reasoning (Anthropic thinking, Gemini
    /// `includeThoughts`).
    pub show_reasoning: bool,
    /// An end-user id for the provider's abuse monitoring.
    pub user: Option<String>,
    pub stream: bool,
    /// OpenAI clients: the final usage chunk was asked for (`stream_options.include_usage`).
    pub include_usage: bool,
}

impl Request {
    /// Appends a turn, joining it to the previous one when the role repeats (the shapes differ
    /// in whether they allow that; joined turns mean the same to every model).
    pub fn push(&mut self, role: Role, parts: Vec<Part>) {
        if parts.is_empty() {
            return;
        }
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.parts.extend(parts),
            _ => self.messages.push(Message { role, parts }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn. Tool results ride in user turns (as Anthropic and Gemini place them); OpenAI's
/// `tool` messages are gathered into one.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Media(Media),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    /// Reasoning the model showed, with the provider's signature that lets it be sent back.
    Thought {
        text: String,
        signature: Option<String>,
    },
    /// Anthropic's encrypted reasoning: only Anthropic can read it back.
    RedactedThought(String),
}

/// An image or a document, inline or by URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// The media type; `None` for an image whose type the source did not say (an image URL).
    pub mime: Option<String>,
    pub source: MediaSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaSource {
    Base64(String),
    Url(String),
}

impl Media {
    pub fn is_image(&self) -> bool {
        self.mime.as_deref().is_none_or(|m| m.starts_with("image/"))
    }

    pub fn is_pdf(&self) -> bool {
        self.mime.as_deref() == Some("application/pdf")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments, always a JSON object.
    pub arguments: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The id of the call answered.
    pub id: String,
    /// Text and media parts only.
    pub content: Vec<Part>,
    pub is_error: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Any valid JSON.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema { name: String, schema: Value },
}

/// How much the model may reason before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    Off,
    /// At most this many reasoning tokens.
    Budget(u64),
    Effort(Effort),
    /// The model decides (Gemini's `thinkingBudget: -1`).
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

/// Effort levels as token budgets and back: Google's documented mapping for its OpenAI layer
/// (low 1K, medium 8K, high 24K); `minimal` is treated as low, the smallest budget Anthropic
/// accepts.
impl Effort {
    pub fn budget(self) -> u64 {
        match self {
            Effort::Minimal | Effort::Low => 1024,
            Effort::Medium => 8192,
            Effort::High => 24576,
        }
    }

    pub fn from_budget(budget: u64) -> Effort {
        match budget {
            0..=1024 => Effort::Low,
            1025..=8192 => Effort::Medium,
            _ => Effort::High,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s.to_ascii_lowercase().as_str() {
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            _ => return None,
        })
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub id: Option<String>,
    pub model: Option<String>,
    /// Unix seconds (only OpenAI says).
    pub created: Option<u64>,
    /// Text, tool calls and reasoning, in order.
    pub parts: Vec<Part>,
    pub stop: Option<StopReason>,
    /// The stop sequence that ended the answer, when the provider says which.
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// Why generation ended. Each shape has its own words; see the table in [`crate::translate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    StopSequence,
    MaxTokens,
    ToolUse,
    /// Blocked by a safety system, or the model refused.
    ContentFilter,
    /// A reason with no equivalent (Gemini `MALFORMED_FUNCTION_CALL`, Anthropic `pause_turn`),
    /// kept for the shapes that can say it.
    Other(String),
}

/// One step of a streamed answer, read from the upstream's events and written in the client's.
/// Strings borrow from the event being read; encoders copy what they keep.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The answer begins (always the first event). `usage` carries what is known so far.
    Start {
        id: Cow<'a, str>,
        model: Cow<'a, str>,
        usage: Usage,
    },
    Text(Cow<'a, str>),
    Thought(Cow<'a, str>),
    /// The signature closing the current reasoning.
    ThoughtSignature(Cow<'a, str>),
    /// A tool call begins; `index` counts tool calls in this answer from 0.
    ToolStart {
        index: usize,
        id: Cow<'a, str>,
        name: Cow<'a, str>,
    },
    /// A piece of the arguments' JSON text.
    ToolArgs {
        index: usize,
        json: Cow<'a, str>,
    },
    ToolEnd {
        index: usize,
    },
    /// Counters to merge into what is known (later values replace earlier ones).
    Usage(Usage),
    Stop {
        reason: StopReason,
        sequence: Option<Cow<'a, str>>,
    },
    /// The upstream finished the answer; the client's terminal event follows.
    Done,
    /// The upstream reported an error mid-stream.
    Error {
        status: u16,
        message: Cow<'a, str>,
    },
}
