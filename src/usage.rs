//! Token usage, normalized across providers.
//!
//! Providers disagree on what their counters include (see the table in [`crate::providers`]).
//! [`Usage`] fixes one meaning so costs and dashboards add up the same way for everyone:
//!
//! - `input_tokens`: every prompt token, *including* cache reads and cache writes;
//! - `output_tokens`: every generated token, *including* reasoning / thinking tokens;
//! - `cache_read_tokens`, `cache_write_tokens` (and `cache_write_1h_tokens`, the part written
//!   with the one-hour TTL) and `reasoning_tokens` are subsets of the above.
//!
//! `None` means "not reported", never zero.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub cache_write_1h_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Whether any counter was reported.
    pub fn is_reported(&self) -> bool {
        self.input_tokens.is_some() || self.output_tokens.is_some()
    }

    /// Prompt tokens billed at the plain input rate: input minus cache reads and writes.
    pub fn uncached_input(&self) -> u64 {
        self.input_tokens
            .unwrap_or(0)
            .saturating_sub(self.cache_read_tokens.unwrap_or(0))
            .saturating_sub(self.cache_write_tokens.unwrap_or(0))
    }

    /// Fields present in `later` replace those here: streamed usage arrives in pieces (Anthropic
    /// reports input in `message_start` and output in `message_delta`) or is repeated with
    /// growing counts (Gemini chunks).
    pub fn merge(&mut self, later: &Usage) {
        macro_rules! take {
            ($($f:ident),*) => {$( if later.$f.is_some() { self.$f = later.$f; } )*};
        }
        take!(
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
            reasoning_tokens
        );
    }
}

/// Server-side tools a provider bills per use, beside the tokens (searches it ran for the model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolUses {
    /// OpenAI `web_search_call`s, Anthropic `server_tool_use.web_search_requests`.
    pub web_searches: u64,
    /// OpenAI `file_search_call`s.
    pub file_searches: u64,
    /// Gemini answers grounded with Google Search (billed per prompt).
    pub grounded_prompts: u64,
}

impl ToolUses {
    pub fn any(&self) -> bool {
        *self != ToolUses::default()
    }
}

/// Where a trace's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// Reported by the provider in the response.
    Provider,
    /// Estimated from the text (the response was cut short, or the provider sent no usage).
    Estimated,
    /// Neither reported nor estimable (e.g. an error response).
    Unavailable,
    /// The call is not metered (listing models, counting tokens).
    NotApplicable,
}

impl UsageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Provider => "provider",
            UsageSource::Estimated => "estimated",
            UsageSource::Unavailable => "unavailable",
            UsageSource::NotApplicable => "not_applicable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "provider" => UsageSource::Provider,
            "estimated" => UsageSource::Estimated,
            "unavailable" => UsageSource::Unavailable,
            "not_applicable" => UsageSource::NotApplicable,
            _ => return None,
        })
    }
}

/// A rough token count for text when the provider reported none: about four characters per
/// token for English prose and code, the ratio OpenAI documents for its tokenizers. Only used
/// for traces flagged `estimated`.
pub fn estimate_tokens(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    chars.div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_earlier_fields_and_takes_later_ones() {
        let mut u = Usage {
            input_tokens: Some(10),
            output_tokens: Some(1),
            cache_read_tokens: Some(4),
            ..Default::default()
        };
        u.merge(&Usage {
            output_tokens: Some(25),
            ..Default::default()
        });
        assert_eq!(u.input_tokens, Some(10));
        assert_eq!(u.output_tokens, Some(25));
        assert_eq!(u.cache_read_tokens, Some(4));
        assert_eq!(u.uncached_input(), 6);
    }

    #[test]
    fn uncached_input_never_underflows() {
        let u = Usage {
            input_tokens: Some(3),
            cache_read_tokens: Some(10),
            ..Default::default()
        };
        assert_eq!(u.uncached_input(), 0);
    }

    #[test]
    fn estimate() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
