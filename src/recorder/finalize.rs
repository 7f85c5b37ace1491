//! Turns a [`TraceDraft`] into a [`TraceRecord`]: reads usage out of the response (streamed or
//! not), estimates it when the provider reported none, prices it, derives the session, scrubs
//! every credential the request carried from the stored copies, and compresses the bodies.

use std::collections::HashMap;

use serde_json::Value;

use super::TraceDraft;
use crate::domain::{AuthMode, Outcome};
use crate::metering::{self, Facts};
use crate::pricing::Catalog;
use crate::pricing::Cost;
use crate::providers::{self, Billing, Parsed, Wire};
use crate::redact;
use crate::sessions;
use crate::store::Store;
use crate::store::batches::BatchEvent;
use crate::store::compression::compress;
use crate::store::traces::{TraceBodies, TraceRecord};
use crate::usage::{Usage, UsageSource, estimate_tokens};

mod batches;
mod search;

use batches::{batch_id_in_path, created_batch_id, file_id_in_path, openai_batch_status};
use search::{search_text, truncate};

/// The sessions of responses named by `previous_response_id` in this batch, looked up in the
/// database (responses produced within the same batch are chained in [`finalize_all`]).
pub async fn resolve_chains(store: &Store, drafts: &[TraceDraft]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for d in drafts {
        if d.wire != Some(Wire::OpenAiResponses) {
            continue;
        }
        let Some(prev) = previous_response_id(&d.request_body.bytes) else {
            continue;
        };
        if out.contains_key(&prev) {
            continue;
        }
        if let Ok(Some(session)) = store.session_of_response(d.endpoint_id, &prev).await {
            out.insert(prev, session);
        }
    }
    out
}

fn previous_response_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        previous_response_id: Option<String>,
    }
    serde_json::from_slice::<Peek>(body)
        .ok()?
        .previous_response_id
}

/// Finalizes a batch in order, so a response and the call that continues it from the same batch
/// land in the same session.
pub fn finalize_all(
    drafts: Vec<TraceDraft>,
    mut chains: HashMap<String, String>,
) -> Vec<TraceRecord> {
    finalize_all_with(drafts, &mut chains)
}

/// [`finalize_all`] with the chain map kept by the caller across slices of one batch.
pub fn finalize_all_with(
    drafts: Vec<TraceDraft>,
    chains: &mut HashMap<String, String>,
) -> Vec<TraceRecord> {
    drafts
        .into_iter()
        .map(|d| finalize_chained(d, chains))
        .collect()
}

/// Finalizes one draft of a batch, noting its response in `chains` for the drafts after it.
pub fn finalize_chained(d: TraceDraft, chains: &mut HashMap<String, String>) -> TraceRecord {
    let record = finalize_with(d, chains);
    if let (Some(rid), Some(key)) = (&record.response_id, &record.session_key) {
        chains.insert(rid.clone(), key.clone());
    }
    record
}

/// The record of a draft as far as it can be known without reading its bodies (what is kept
/// of a trace whose finalization failed).
pub fn skeleton(d: &TraceDraft) -> TraceRecord {
    TraceRecord {
        id: d.id,
        org_id: d.org_id,
        endpoint_id: d.endpoint_id,
        started_at: d.started_at,
        auth_mode: d
            .auth_mode
            .map(AuthMode::as_str)
            .unwrap_or("none")
            .to_owned(),
        virtual_key_id: d.virtual_key_id,
        key_hint: d.key_hint.clone(),
        provider: d.provider.map(|p| p.as_str().to_owned()),
        wire: d.wire.map(|w| w.as_str().to_owned()),
        model: d.requested_model.clone(),
        method: d.method.clone(),
        path: d.path.clone(),
        status_code: d.status,
        outcome: d.outcome,
        error: None,
        is_stream: d.is_stream,
        usage: Usage::default(),
        usage_source: UsageSource::Unavailable,
        cost_nanos: None,
        cost_estimated: true,
        cost_detail: None,
        catalog_version: None,
        ttft_us: d.ttft.map(|t| t.as_micros() as i64),
        latency_us: d.latency.as_micros() as i64,
        session_key: None,
        session_parent: None,
        response_id: None,
        reservation: d.reservation.clone(),
        search_text: String::new(),
        session_preview: None,
        session_starts: None,
        tool_calls: None,
        attempts: Vec::new(),
        batch: None,
        request_bytes: d.request_body.total as i64,
        response_bytes: d.response_body.total as i64,
        bodies: TraceBodies {
            request_headers: "{}".into(),
            response_headers: "{}".into(),
            request_body: None,
            response_body: None,
            response_assembled: None,
            request_truncated: true,
            response_truncated: true,
        },
    }
}

/// Finalizes one draft with no chain information.
pub fn finalize(draft: TraceDraft) -> TraceRecord {
    finalize_with(draft, &HashMap::new())
}

fn finalize_with(mut d: TraceDraft, chains: &HashMap<String, String>) -> TraceRecord {
    // Lets the recorder's tests prove that a panic here quarantines the trace.
    #[cfg(test)]
    if d.path == "/__finalize_panics" {
        panic!("finalize test panic");
    }
    scrub(&mut d);
    let parsed = parse_response(&d);
    let (usage, source) = usage_of(&d, &parsed);
    let model = parsed.model.clone().or_else(|| d.requested_model.clone());
    let Charged {
        cost,
        usage,
        source,
        batch,
    } = charge(&d, model.as_deref(), usage, source, &parsed);
    let metered = d.wire.is_some_and(Wire::metered);
    let (cost_nanos, cost_detail) = match (&cost, metered) {
        (Some(c), _) => (Some(c.total_nanos), serde_json::to_string(c).ok()),
        // Free calls (listing models, counting tokens) cost nothing, exactly; a batch's cost is
        // held until its results are read.
        (None, false)
            if d.wire.is_some_and(|w| w.billing() != Billing::Unmetered)
                && d.outcome != Outcome::Rejected =>
        {
            (Some(0), None)
        }
        (None, true)
            if d.wire.map(Wire::billing) == Some(Billing::BatchCreate)
                && d.outcome != Outcome::Rejected =>
        {
            (Some(0), None)
        }
        // Results in which no request was billed (all failed, cancelled or expired).
        (None, true) if matches!(batch, Some(BatchEvent::Results { .. })) => (Some(0), None),
        // Refused by the gateway, or answered with an error and no usage: nothing was billed.
        // (Left unknown, such calls would read as "no price known" on the Overview.)
        (None, true)
            if source == UsageSource::Unavailable
                && (d.outcome == Outcome::Rejected || d.status >= 400) =>
        {
            (Some(0), None)
        }
        (None, _) => (None, None),
    };
    let error = d.error.clone().or_else(|| {
        (d.status >= 400 || !parsed.complete && d.outcome != Outcome::Ok)
            .then(|| parsed.error.clone())
            .flatten()
    });
    // Parsed for the search text (and sessions, and redaction of credential fields).
    let request_json: Option<Value> = serde_json::from_slice(&d.request_body.bytes).ok();
    let sessions = match (d.wire, &request_json) {
        (Some(w), Some(req)) if w.session_capable() && d.outcome != Outcome::Rejected => {
            let prev = req
                .get("previous_response_id")
                .and_then(Value::as_str)
                .and_then(|p| chains.get(p))
                .map(String::as_str);
            sessions::derive(w, req, &d.client_ids, prev)
        }
        _ => sessions::SessionKeys::default(),
    };
    let request_stored = redact::request_json(&d.request_body.bytes, request_json.as_ref());
    let tools = tool_calls(&d, &parsed);
    let assembled = parsed
        .assembled
        .as_ref()
        .and_then(|a| serde_json::to_vec(a).ok())
        .map(|b| compress(&b));
    TraceRecord {
        id: d.id,
        org_id: d.org_id,
        endpoint_id: d.endpoint_id,
        started_at: d.started_at,
        auth_mode: d
            .auth_mode
            .map(AuthMode::as_str)
            .unwrap_or("none")
            .to_owned(),
        virtual_key_id: d.virtual_key_id,
        key_hint: d.key_hint,
        provider: d.provider.map(|p| p.as_str().to_owned()),
        wire: d.wire.map(|w| w.as_str().to_owned()),
        model,
        method: d.method,
        path: d.path,
        status_code: d.status,
        outcome: d.outcome,
        error: error.map(|e| truncate(&e, 2000)),
        is_stream: d.is_stream,
        usage,
        usage_source: source,
        cost_nanos,
        cost_estimated: d.passthrough || source == UsageSource::Estimated,
        cost_detail,
        catalog_version: cost.as_ref().map(|c| c.catalog_version.clone()),
        ttft_us: d.ttft.map(|t| t.as_micros() as i64),
        latency_us: d.latency.as_micros() as i64,
        session_key: sessions.key,
        session_parent: sessions.parent,
        response_id: parsed.response_id.clone(),
        reservation: d.reservation.take(),
        search_text: search_text(
            request_json.as_ref(),
            &d.request_body.bytes,
            &parsed,
            &d.response_body.bytes,
        ),
        session_preview: sessions.preview.clone(),
        session_starts: sessions.starts,
        tool_calls: tools,
        attempts: d.attempts.clone(),
        batch,
        request_bytes: d.request_body.total as i64,
        response_bytes: d.response_body.total as i64,
        bodies: TraceBodies {
            request_headers: redact::headers_json(&d.request_headers),
            response_headers: redact::headers_json(&d.response_headers),
            request_body: (!request_stored.is_empty()).then(|| compress(&request_stored)),
            response_body: (!d.response_body.bytes.is_empty())
                .then(|| compress(&d.response_body.bytes)),
            response_assembled: assembled,
            request_truncated: d.request_body.truncated,
            response_truncated: d.response_body.truncated,
        },
    }
}

/// The response as parsed, with the usage reported at the end of a body too large to keep whole
/// (read from the capture's tail).
fn parse_response(d: &TraceDraft) -> Parsed {
    let Some(wire) = d
        .wire
        .filter(|_| !d.response_body.bytes.is_empty() || d.response_body.tail.is_some())
    else {
        return Parsed::default();
    };
    let mut parsed = providers::parse_response(wire, d.is_stream, &d.response_body.bytes);
    if let Some(tail) = d.response_body.tail.as_deref()
        && let Some(u) = providers::usage_in_tail(wire, tail)
    {
        parsed.usage.merge(&u);
        // The body was received to its end (when the outcome says so) and its last usage read:
        // as good as a complete parse for billing.
        parsed.complete = true;
    }
    parsed
}

/// The tools the model called, as a short comma-separated list (at most 20 names).
fn tool_calls(d: &TraceDraft, parsed: &Parsed) -> Option<String> {
    let wire = d.wire.filter(|w| w.session_capable())?;
    let names = match &parsed.assembled {
        Some(a) => providers::tool_calls(wire, a),
        None if providers::may_call_tools(&d.response_body.bytes) => {
            serde_json::from_slice::<Value>(&d.response_body.bytes)
                .map(|v| providers::tool_calls(wire, &v))
                .unwrap_or_default()
        }
        None => return None,
    };
    let names: Vec<String> = names
        .into_iter()
        .take(20)
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control() && *c != ',')
                .take(64)
                .collect()
        })
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// Usage as reported, or estimated when a metered call delivered output but no (complete)
/// usage: a stream cut short, a client that hung up, a provider that sent none. A call that
/// reached the provider and got no answer (a hang-up, a timeout) or runs in the background is
/// charged its estimate, never nothing; hidden reasoning is estimated at the output the request
/// allowed.
fn usage_of(d: &TraceDraft, parsed: &Parsed) -> (Usage, UsageSource) {
    let metered = d.wire.is_some_and(Wire::metered);
    if !metered {
        return (
            parsed.usage,
            if d.wire.is_some() {
                UsageSource::NotApplicable
            } else {
                UsageSource::Unavailable
            },
        );
    }
    let complete = parsed.complete && d.outcome == Outcome::Ok;
    if parsed.usage.is_reported() && complete {
        return (parsed.usage, UsageSource::Provider);
    }
    let model = parsed.model.as_deref().or(d.requested_model.as_deref());
    let bound = |facts: &Facts, model: &str| {
        metering::token_bound(
            Catalog::builtin(),
            model,
            facts.request_bytes,
            facts.max_output,
            facts.n,
        )
    };
    let background = d.status < 400
        && d.status != 0
        && d.facts.as_deref().is_some_and(|f| f.background)
        && !parsed.usage.is_reported();
    if (d.sent_unanswered || background)
        && let (Some(facts), Some(model)) = (d.facts.as_deref(), model)
    {
        return (bound(facts, model), UsageSource::Estimated);
    }
    let reached_upstream = d.status != 0 && d.status < 400 && d.outcome != Outcome::Rejected;
    if !reached_upstream {
        return (
            parsed.usage,
            if parsed.usage.is_reported() {
                UsageSource::Provider
            } else {
                UsageSource::Unavailable
            },
        );
    }
    // What was delivered so far: the reported prompt size when known (Anthropic sends it first),
    // else the request's size; at least the output text seen.
    let mut u = parsed.usage;
    if u.input_tokens.is_none() {
        u.input_tokens = Some(if d.request_body.truncated {
            d.request_body.total.div_ceil(4)
        } else {
            estimate_tokens(&String::from_utf8_lossy(&d.request_body.bytes))
        });
    }
    let seen = estimate_tokens(&parsed.text);
    let mut output = u.output_tokens.unwrap_or(0).max(seen);
    // Reasoning happens before the visible text and is billed as output: a reasoning model's
    // cut call is charged the output its request allowed. So is an answer too large to keep
    // whose end reported no usage: the text seen is only its beginning.
    if let (Some(facts), Some(model)) = (d.facts.as_deref(), model)
        && (metering::is_reasoning_model(model) || d.response_body.truncated)
    {
        output = output.max(bound(facts, model).output_tokens.unwrap_or(0));
    }
    u.output_tokens = Some(output);
    (u, UsageSource::Estimated)
}

/// What a finished call is charged, and what it did to a batch.
struct Charged {
    cost: Option<Cost>,
    usage: Usage,
    source: UsageSource,
    batch: Option<BatchEvent>,
}

fn charge(
    d: &TraceDraft,
    model: Option<&str>,
    usage: Usage,
    source: UsageSource,
    parsed: &Parsed,
) -> Charged {
    let catalog = Catalog::builtin();
    let mut out = Charged {
        cost: None,
        usage,
        source,
        batch: None,
    };
    let Some(wire) = d.wire else {
        return out;
    };
    let ok = d.status != 0 && d.status < 400 && d.outcome != Outcome::Rejected;
    let body = &d.response_body.bytes;
    let facts = d.facts.as_deref();
    match wire.billing() {
        Billing::Tokens => {
            out.cost = match (model, source) {
                // A model name the provider answers with but the catalog does not know (a new
                // snapshot) is priced as the model the request named.
                (Some(m), UsageSource::Provider | UsageSource::Estimated) => catalog
                    .cost(m, &usage)
                    .or_else(|| catalog.cost(d.requested_model.as_deref()?, &usage)),
                _ => None,
            };
            if let Some(c) = out.cost.as_mut() {
                c.add_tool_uses(&parsed.tool_uses);
            }
        }
        Billing::Images | Billing::Speech | Billing::Transcription => {
            if let (Some(m), Some(f)) = (model, facts) {
                if ok {
                    // gpt-image reports its token usage after the (large) images.
                    let tail_usage = d
                        .response_body
                        .tail
                        .as_deref()
                        .filter(|_| wire.billing() == Billing::Images)
                        .and_then(|t| providers::usage_body_in_tail(wire, t));
                    let body = tail_usage.as_deref().unwrap_or(body);
                    out.cost = metering::units_charge(wire, m, f, body).or_else(|| {
                        d.requested_model
                            .as_deref()
                            .and_then(|r| metering::units_charge(wire, r, f, body))
                    });
                    out.source = UsageSource::Provider;
                    let p = metering::produced(wire, body);
                    if p.usage.is_reported() {
                        out.usage = p.usage;
                    }
                    // An answer the gateway could not read (cut, unexpected shape) is charged
                    // what the request could cost: a metered call is never free.
                    if out.cost.is_none() {
                        out.cost = metering::estimate(wire, f)
                            .ok()
                            .and_then(|nanos| estimated(m, nanos));
                        out.source = UsageSource::Estimated;
                    }
                } else if d.sent_unanswered {
                    out.cost = metering::estimate(wire, f)
                        .ok()
                        .and_then(|nanos| estimated(m, nanos));
                    out.source = UsageSource::Estimated;
                }
            }
        }
        Billing::BatchCreate => {
            if ok && let Some(id) = created_batch_id(wire, body) {
                out.batch = Some(BatchEvent::Created {
                    provider: wire.family().as_str().to_owned(),
                    batch_id: id,
                    estimate_nanos: facts
                        .and_then(|f| metering::estimate(wire, f).ok())
                        .unwrap_or(0),
                });
            }
        }
        Billing::BatchResults => {
            // Settles a batch only from its whole results, received to the end, every line
            // priced: otherwise the hold stays, and is charged its estimate when it expires.
            if ok
                && d.outcome == Outcome::Ok
                && !d.response_body.truncated
                && let Some(r) = metering::results::parse(wire, body)
                && !r.unpriced
            {
                out.usage = r.usage;
                out.source = UsageSource::Provider;
                out.cost = r.model.as_deref().and_then(|m| {
                    let mut c = catalog.batch_cost(m, &Usage::default())?;
                    c.total_nanos = r.cost_nanos;
                    Some(c)
                });
                out.batch = Some(BatchEvent::Results {
                    provider: wire.family().as_str().to_owned(),
                    batch_id: batch_id_in_path(wire, &d.path),
                    file_id: (wire == Wire::OpenAiFileContent)
                        .then(|| file_id_in_path(&d.path))
                        .flatten(),
                });
            }
        }
        Billing::Free if wire == Wire::OpenAiBatchStatus && ok => {
            out.batch = openai_batch_status(body);
        }
        Billing::Free | Billing::FileUpload | Billing::Unmetered => {}
    }
    out
}

/// A cost known only as a total (an estimate), with the model's prices for reference.
fn estimated(model: &str, nanos: i64) -> Option<Cost> {
    let mut c = Catalog::builtin().cost(model, &Usage::default())?;
    c.total_nanos = nanos;
    c.units_nanos = nanos;
    Some(c)
}

/// Removes every credential value the request carried from what is stored (request and
/// response bodies, the error text): upstream errors sometimes echo the key they rejected.
fn scrub(d: &mut TraceDraft) {
    let secrets = std::mem::take(&mut d.secrets);
    if secrets.is_empty() {
        return;
    }
    let scrubber = redact::Scrubber::new(&secrets);
    for body in [&mut d.request_body, &mut d.response_body] {
        if let Some(clean) = scrubber.bytes(&body.bytes) {
            body.bytes = clean.into();
        }
    }
    if let Some(e) = d.error.as_mut()
        && let Some(clean) = scrubber.text(e)
    {
        *e = clean;
    }
    // A key sent in any query parameter (callers do: `?x=sk-…`) is one of the secrets too.
    if let Some(clean) = scrubber.text(&d.path) {
        d.path = clean;
    }
}

/// Under overload: works out the usage now, stores it in the draft as a minimal response, and
/// drops the bodies (the counters record that it happened).
pub fn keep_usage_drop_bodies(d: &mut TraceDraft) {
    if let Some(w) = d.wire {
        let parsed = parse_response(d);
        let (usage, _) = usage_of(d, &parsed);
        d.requested_model = parsed.model.or(d.requested_model.take());
        // Keep a tiny synthetic body that carries the usage in this wire's own format.
        d.response_body.bytes = usage_stub(w, &usage).into();
        d.is_stream = false;
    } else {
        d.response_body.bytes = bytes::Bytes::new();
    }
    d.response_body.truncated = true;
    d.response_body.tail = None;
    d.request_body.bytes = bytes::Bytes::new();
    d.request_body.truncated = true;
    // The bodies are gone: so is what they held of the memory budget.
    d.memory = Default::default();
    d.request_body.memory = Default::default();
    d.response_body.memory = Default::default();
}

fn usage_stub(w: Wire, u: &Usage) -> Vec<u8> {
    use crate::domain::Provider;
    let v = match w.family() {
        Provider::OpenAi => serde_json::json!({"usage": {
            "prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}}),
        Provider::Anthropic => serde_json::json!({"usage": {
            "input_tokens": u.uncached_input(), "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cache_read_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens}}),
        Provider::Gemini => serde_json::json!({"usageMetadata": {
            "promptTokenCount": u.input_tokens,
            "candidatesTokenCount": u.output_tokens.map(|o| o.saturating_sub(u.reasoning_tokens.unwrap_or(0))),
            "thoughtsTokenCount": u.reasoning_tokens,
            "cachedContentTokenCount": u.cache_read_tokens}}),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests;
