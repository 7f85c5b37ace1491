//! What a batch call tells the billing of batches: the id of a batch just created, a finished
//! batch's results file, ids named in paths.

use serde_json::Value;

use crate::providers::Wire;
use crate::store::batches::BatchEvent;

/// The id of a batch the provider just created: OpenAI's and Anthropic's `id`, Gemini's `name`.
pub(super) fn created_batch_id(wire: Wire, body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = match wire {
        Wire::GeminiBatch => v.get("name")?.as_str()?.trim_start_matches("batches/"),
        _ => v.get("id")?.as_str()?,
    };
    (!id.is_empty()).then(|| id.to_owned())
}

/// A finished OpenAI batch names its results file; one that ended with no request completed
/// (failed, cancelled, expired) billed nothing and settles at once.
pub(super) fn openai_batch_status(body: &[u8]) -> Option<BatchEvent> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let batch_id = v.get("id")?.as_str()?.to_owned();
    if let Some(file_id) = v.get("output_file_id").and_then(Value::as_str) {
        return Some(BatchEvent::Output {
            provider: "openai".into(),
            batch_id,
            file_id: file_id.to_owned(),
        });
    }
    let ended = matches!(
        v.get("status").and_then(Value::as_str),
        Some("failed" | "cancelled" | "expired")
    );
    let completed = v
        .pointer("/request_counts/completed")
        .and_then(Value::as_u64);
    (ended && completed == Some(0)).then(|| BatchEvent::Results {
        provider: "openai".into(),
        batch_id: Some(batch_id),
        file_id: None,
    })
}

/// `…/messages/batches/{id}/results` and `…/batches/{id}`: the batch id.
pub(super) fn batch_id_in_path(wire: Wire, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let id = match wire {
        Wire::AnthropicBatchResults => segments.nth(1),
        Wire::GeminiBatchStatus => segments.next(),
        _ => None,
    }?;
    Some(id.to_owned())
}

/// `…/files/{id}/content`: the file id.
pub(super) fn file_id_in_path(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    path.strip_suffix("/content")?
        .rsplit('/')
        .next()
        .map(str::to_owned)
}
