//! What a batch cost, from its results as the provider returns them: every succeeded request's
//! usage at its model's batch price. OpenAI's output file and Anthropic's results are JSON
//! Lines; Gemini returns the responses inline in the finished batch.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::pricing::Catalog;
use crate::providers::{Wire, anthropic, gemini, openai};
use crate::usage::Usage;

/// A batch's billed usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchUsage {
    /// Summed over the requests that were billed.
    pub usage: Usage,
    pub cost_nanos: i64,
    /// Requests with usage.
    pub requests: u64,
    /// A request's model had no price (its usage is counted, its cost is not).
    pub unpriced: bool,
    /// The model of the first billed request.
    pub model: Option<String>,
}

impl BatchUsage {
    fn add(&mut self, model: &str, usage: &Usage) {
        let catalog = Catalog::builtin();
        match catalog.batch_cost(model, usage) {
            Some(c) => self.cost_nanos = self.cost_nanos.saturating_add(c.total_nanos),
            None => self.unpriced = true,
        }
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        let u = &mut self.usage;
        u.input_tokens = sum(u.input_tokens, usage.input_tokens);
        u.output_tokens = sum(u.output_tokens, usage.output_tokens);
        u.cache_read_tokens = sum(u.cache_read_tokens, usage.cache_read_tokens);
        u.cache_write_tokens = sum(u.cache_write_tokens, usage.cache_write_tokens);
        u.reasoning_tokens = sum(u.reasoning_tokens, usage.reasoning_tokens);
        self.requests += 1;
        if self.model.is_none() {
            self.model = Some(model.to_owned());
        }
    }
}

/// The usage in a batch's results, when `body` is results (`None`: not results, or not
/// finished, e.g. an OpenAI file that is not a batch output or a Gemini batch still running).
pub fn parse(wire: Wire, body: &[u8]) -> Option<BatchUsage> {
    match wire {
        Wire::OpenAiFileContent => json_lines(body, openai_line),
        Wire::AnthropicBatchResults => json_lines(body, anthropic_line),
        Wire::GeminiBatchStatus => gemini_batch(body),
        _ => None,
    }
}

/// What one line of a results file says.
enum Line {
    /// A request the provider billed: its model and usage.
    Billed(String, Usage),
    /// A request that failed, was cancelled or expired: not billed.
    Unbilled,
}

/// A results file: every non-blank line must read as a result (else it is some other file and
/// settles nothing). A succeeded request without readable usage counts as unpriced.
fn json_lines(body: &[u8], line: fn(&[u8]) -> Option<Line>) -> Option<BatchUsage> {
    let mut out = BatchUsage::default();
    let mut lines = 0;
    for l in body.split(|b| *b == b'\n') {
        if l.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        match line(l)? {
            Line::Billed(model, usage) => out.add(&model, &usage),
            Line::Unbilled => {}
        }
    }
    (lines > 0).then_some(out)
}

fn openai_line(l: &[u8]) -> Option<Line> {
    #[derive(Deserialize)]
    struct ResultLine {
        #[serde(rename = "custom_id")]
        _custom_id: IgnoredAny,
        response: Option<Response>,
        error: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Response {
        status_code: Option<u16>,
        body: Option<Value>,
    }
    let line = serde_json::from_slice::<ResultLine>(l).ok()?;
    match line.response {
        Some(Response {
            status_code: Some(400..),
            ..
        })
        | Some(Response { body: None, .. }) => Some(Line::Unbilled),
        Some(Response {
            body: Some(body), ..
        }) => Some(billed(
            body.get("model").and_then(Value::as_str),
            body.get("usage").and_then(openai::usage),
        )),
        // An error line; a line with neither is not a result (a batch input line).
        None => line.error.filter(|e| !e.is_null()).map(|_| Line::Unbilled),
    }
}

fn anthropic_line(l: &[u8]) -> Option<Line> {
    #[derive(Deserialize)]
    struct ResultLine {
        #[serde(rename = "custom_id")]
        _custom_id: IgnoredAny,
        result: Value,
    }
    let r = serde_json::from_slice::<ResultLine>(l).ok()?.result;
    match r.get("type")?.as_str()? {
        "succeeded" => {
            let message = r.get("message");
            Some(billed(
                message.and_then(|m| m.get("model")).and_then(Value::as_str),
                message
                    .and_then(|m| m.get("usage"))
                    .and_then(anthropic::usage),
            ))
        }
        "errored" | "canceled" | "expired" => Some(Line::Unbilled),
        _ => None,
    }
}

/// A billed line; one whose model or usage cannot be read is priced as unknown (an empty model
/// name has no price), so the batch does not settle on a partial cost.
fn billed(model: Option<&str>, usage: Option<Usage>) -> Line {
    match (model, usage) {
        (Some(m), Some(u)) => Line::Billed(m.to_owned(), u),
        _ => Line::Billed(String::new(), Usage::default()),
    }
}

fn gemini_batch(body: &[u8]) -> Option<BatchUsage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("done").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    // A batch that failed as a whole produced nothing to bill.
    if v.get("error").is_some() && v.get("response").is_none() {
        return Some(BatchUsage::default());
    }
    let responses = v
        .pointer("/response/inlinedResponses/inlinedResponses")
        .and_then(Value::as_array)?;
    let mut out = BatchUsage::default();
    for r in responses {
        let Some(resp) = r.get("response") else {
            continue;
        };
        let model = resp
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match resp.get("usageMetadata").and_then(gemini::usage) {
            Some(u) => out.add(model, &u),
            None => out.add("", &Usage::default()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_of_each_provider() {
        let openai = b"{\"id\":\"b1\",\"custom_id\":\"1\",\"response\":{\"status_code\":200,\"body\":{\"model\":\"gpt-4o\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":10}}}}\n{\"id\":\"b2\",\"custom_id\":\"2\",\"response\":null,\"error\":{\"message\":\"x\"}}\n";
        let o = parse(Wire::OpenAiFileContent, openai).unwrap();
        assert_eq!(o.requests, 1);
        assert_eq!(o.cost_nanos, 100 * 1250 + 10 * 5000);
        let anthropic = b"{\"custom_id\":\"a\",\"result\":{\"type\":\"succeeded\",\"message\":{\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}}}\n{\"custom_id\":\"b\",\"result\":{\"type\":\"errored\"}}\n";
        let a = parse(Wire::AnthropicBatchResults, anthropic).unwrap();
        assert_eq!((a.requests, a.usage.output_tokens), (1, Some(2)));
        let gemini = br#"{"name":"batches/1","done":true,"response":{"inlinedResponses":{"inlinedResponses":[{"response":{"modelVersion":"gemini-2.5-flash","usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":4}}}]}}}"#;
        assert_eq!(parse(Wire::GeminiBatchStatus, gemini).unwrap().requests, 1);
        // Not finished, not results: nothing to settle.
        assert!(
            parse(
                Wire::GeminiBatchStatus,
                br#"{"name":"batches/1","done":false}"#
            )
            .is_none()
        );
        assert!(parse(Wire::OpenAiFileContent, b"some,csv,file\n").is_none());
        // A JSONL file that is not results (a batch input file) settles nothing either.
        assert!(parse(Wire::OpenAiFileContent, b"{\"custom_id\":\"1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}\n").is_none());
    }

    #[test]
    fn batches_that_billed_nothing_settle_at_zero_and_unreadable_ones_do_not_settle() {
        let cancelled = b"{\"custom_id\":\"a\",\"result\":{\"type\":\"canceled\"}}\n{\"custom_id\":\"b\",\"result\":{\"type\":\"expired\"}}\n";
        let a = parse(Wire::AnthropicBatchResults, cancelled).unwrap();
        assert_eq!((a.requests, a.cost_nanos, a.unpriced), (0, 0, false));
        let failed =
            br#"{"name":"batches/1","done":true,"error":{"code":13,"message":"internal"}}"#;
        assert_eq!(parse(Wire::GeminiBatchStatus, failed).unwrap().requests, 0);
        // A succeeded request with no usage, or a model without a price: the cost is not known.
        let no_usage = b"{\"custom_id\":\"1\",\"response\":{\"status_code\":200,\"body\":{\"model\":\"gpt-4o\"}}}\n";
        assert!(parse(Wire::OpenAiFileContent, no_usage).unwrap().unpriced);
        let unpriced = b"{\"custom_id\":\"a\",\"result\":{\"type\":\"succeeded\",\"message\":{\"model\":\"claude-from-the-future\",\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}}}\n";
        assert!(
            parse(Wire::AnthropicBatchResults, unpriced)
                .unwrap()
                .unpriced
        );
    }
}
