//! Exporting a filtered trace list as CSV or JSON Lines, for spreadsheets and scripts.
//!
//! The export is a stream of pages read with the trace list's own keyset cursor, so its memory
//! does not grow with the number of traces (a million-row export holds one page at a time), and
//! the filters mean exactly what they mean in the portal. Text cells a spreadsheet would run as
//! a formula (`=`, `+`, `-`, `@`, tab, CR first) are prefixed with `'` in CSV: a model name or a
//! key name is the caller's text and must not become a formula on someone's desk.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::Stream;

use crate::domain::{EndpointId, VirtualKeyId};
use crate::store::Store;
use crate::store::observe::{Cursor, SearchError, TraceFilter};
use crate::store::traces::TraceRow;

/// Rows read per page: large enough to keep round trips few, small enough to bound memory.
const PAGE: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::JsonLines => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
        }
    }
}

/// The exported columns, in order (CSV header, JSON keys).
pub const COLUMNS: [&str; 21] = [
    "time",
    "trace_id",
    "endpoint_id",
    "key",
    "key_id",
    "auth_mode",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_estimated",
    "latency_ms",
    "ttft_ms",
    "status",
    "outcome",
    "stream",
    "session",
];

/// Virtual key names by id, to show a name where the trace has an id.
pub type KeyNames = HashMap<VirtualKeyId, String>;

/// The export as a stream of byte chunks, one per page (the first with the CSV header). An error
/// ends the stream with that error, so a download cut short fails visibly instead of looking
/// complete.
pub fn stream(
    store: Store,
    endpoint: EndpointId,
    filter: TraceFilter,
    keys: KeyNames,
    format: Format,
) -> impl Stream<Item = Result<Bytes, SearchError>> + Send + 'static {
    enum State {
        First,
        Page(Cursor),
        Done,
    }
    futures_util::stream::unfold(State::First, move |state| {
        let store = store.clone();
        let filter = filter.clone();
        let keys = keys.clone();
        async move {
            let (mut out, after) = match state {
                State::Done => return None,
                // The header goes out with the first page, so a caller that waits for the
                // first chunk learns whether the query runs at all before answering 200.
                State::First => {
                    let head = match format {
                        Format::Csv => csv_line(COLUMNS.iter().map(|c| (*c).to_owned())),
                        Format::JsonLines => Vec::new(),
                    };
                    (head, None)
                }
                State::Page(c) => (Vec::new(), Some(c)),
            };
            match store.list_traces(endpoint, &filter, after, PAGE).await {
                Ok(page) => {
                    out.reserve(page.rows.len() * 256);
                    for row in &page.rows {
                        out.extend(line(row, &keys, format));
                    }
                    let next = page.next.map_or(State::Done, State::Page);
                    Some((Ok(Bytes::from(out)), next))
                }
                Err(e) => Some((Err(e), State::Done)),
            }
        }
    })
}

/// One trace as a CSV line or a JSON line.
pub fn line(t: &TraceRow, keys: &KeyNames, format: Format) -> Vec<u8> {
    let key = t.virtual_key_id.and_then(|k| keys.get(&k).cloned());
    let time = chrono::DateTime::from_timestamp_millis(t.started_at)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let cost = t.cost_nanos.map(dollars);
    let latency_ms = t.latency_us as f64 / 1000.0;
    let ttft_ms = t.ttft_us.map(|us| us as f64 / 1000.0);
    match format {
        Format::JsonLines => {
            let v = serde_json::json!({
                "time": time,
                "trace_id": t.id.to_string(),
                "endpoint_id": t.endpoint_id.to_string(),
                "key": key,
                "key_id": t.virtual_key_id.map(|k| k.to_string()),
                "auth_mode": t.auth_mode,
                "provider": t.provider,
                "model": t.model,
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "cache_read_tokens": t.cache_read_tokens,
                "cache_write_tokens": t.cache_write_tokens,
                "reasoning_tokens": t.reasoning_tokens,
                // A decimal string: dollars to the nanodollar, without float rounding.
                "cost_usd": cost,
                "cost_estimated": t.cost_estimated,
                "latency_ms": latency_ms,
                "ttft_ms": ttft_ms,
                "status": t.status_code,
                "outcome": t.outcome,
                "stream": t.is_stream,
                "session": t.session_key,
            });
            let mut out = serde_json::to_vec(&v).unwrap_or_default();
            out.push(b'\n');
            out
        }
        Format::Csv => {
            let n = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
            csv_line([
                time,
                t.id.to_string(),
                t.endpoint_id.to_string(),
                safe_cell(key.as_deref().unwrap_or("")),
                t.virtual_key_id.map(|k| k.to_string()).unwrap_or_default(),
                t.auth_mode.clone(),
                safe_cell(t.provider.as_deref().unwrap_or("")),
                safe_cell(t.model.as_deref().unwrap_or("")),
                n(t.input_tokens),
                n(t.output_tokens),
                n(t.cache_read_tokens),
                n(t.cache_write_tokens),
                n(t.reasoning_tokens),
                cost.unwrap_or_default(),
                t.cost_estimated.to_string(),
                format!("{latency_ms:.3}"),
                ttft_ms.map(|v| format!("{v:.3}")).unwrap_or_default(),
                t.status_code.to_string(),
                t.outcome.clone(),
                t.is_stream.to_string(),
                safe_cell(t.session_key.as_deref().unwrap_or("")),
            ])
        }
    }
}

fn csv_line(cells: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256));
    // Writing to memory cannot fail.
    let _ = w.write_record(cells);
    w.into_inner().unwrap_or_default()
}

/// Nanodollars as a decimal string (`0.000123450`).
pub fn dollars(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    format!("{sign}{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}

/// A text cell a spreadsheet will not evaluate.
fn safe_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests;
