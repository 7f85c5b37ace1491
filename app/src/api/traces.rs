//! Observability reads: an endpoint's Overview totals, its trace list (filters, search, cursor
//! pages) and one trace in full for the observation drawer.
//!
//! Every function first resolves the endpoint through `visible_endpoint` (another
//! organization's endpoint or another user's personal one is `NotFound`), and every trace read
//! is checked to belong to that endpoint, so no id, filter or search reaches across tenants.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::{Overview, TraceDetail, TraceQuery, TracesPage};

/// The most of each body the drawer receives; larger bodies are cut, and the drawer says so.
pub const DRAWER_BODY_LIMIT: usize = 2 << 20;

#[cfg(feature = "ssr")]
pub mod convert {
    use antix::store::observe::{Breakdown, SearchError};
    use antix::store::traces::{DailyTotals, TraceRow};

    use crate::api::ApiError;
    use crate::model::{BreakdownRow, Totals, TraceSummary};

    pub fn totals(t: &DailyTotals) -> Totals {
        Totals {
            requests: t.requests,
            errors: t.errors,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cache_read_tokens: t.cache_read_tokens,
            cache_write_tokens: t.cache_write_tokens,
            reasoning_tokens: t.reasoning_tokens,
            cost_billed_nanos: t.cost_billed_nanos,
            cost_estimated_nanos: t.cost_estimated_nanos,
            unpriced: t.unpriced,
            retried: t.retried,
            fell_back: t.fell_back,
        }
    }

    pub fn summary(r: &TraceRow, key_name: Option<String>) -> TraceSummary {
        TraceSummary {
            id: r.id.0,
            started_at: r.started_at,
            auth_mode: r.auth_mode.clone(),
            key_id: r.virtual_key_id.map(|k| k.0),
            key_name,
            key_hint: r.key_hint.clone(),
            provider: r.provider.clone(),
            model: r.model.clone(),
            method: r.method.clone(),
            path: r.path.clone(),
            status_code: r.status_code,
            outcome: r.outcome.clone(),
            error: r.error.clone(),
            is_stream: r.is_stream,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cost_nanos: r.cost_nanos,
            cost_estimated: r.cost_estimated,
            latency_us: r.latency_us,
            ttft_us: r.ttft_us,
            session_key: r.session_key.clone(),
            snippet: None,
        }
    }

    pub fn breakdown(
        rows: Vec<Breakdown>,
        label: impl Fn(&str) -> (String, String),
    ) -> Vec<BreakdownRow> {
        rows.into_iter()
            .map(|b| {
                let (value, label) = label(&b.label);
                BreakdownRow {
                    value,
                    label,
                    totals: totals(&b.totals),
                }
            })
            .collect()
    }

    pub fn search_error(e: SearchError) -> ApiError {
        match e {
            SearchError::TooShort => ApiError::invalid("q", "Search for at least 3 characters."),
            SearchError::NoWord => {
                ApiError::invalid("q", "Search for something with a letter or digit in it.")
            }
            // What the user typed or picked is too broad: said under the search box (a 422,
            // like any input to correct, not a server failure).
            SearchError::TooSlow => ApiError::invalid(
                "q",
                "This took too long. Narrow the time range, add a filter, or search for \
                 something more specific.",
            ),
            SearchError::Busy => ApiError::Overloaded(
                "Too many searches are running. Try again in a moment.".to_owned(),
            ),
            SearchError::Store(s) => s.into(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        // H4: a search flood or a search too broad is the caller's to fix, never a 5xx.
        #[test]
        fn search_failures_are_4xx_with_a_reason() {
            let slow = search_error(SearchError::TooSlow);
            assert_eq!(slow.status(), 422);
            assert!(slow.field("q").unwrap().contains("Narrow the time range"));
            let busy = search_error(SearchError::Busy);
            assert_eq!(busy.status(), 429);
            assert!(busy.to_string().contains("Try again"));
            assert_eq!(
                search_error(SearchError::TooShort).field("q").as_deref(),
                Some("Search for at least 3 characters.")
            );
        }
    }
}

/// Names of the organization's virtual keys by id (`sk-vk-Ab…yz · name`), for labels.
#[cfg(feature = "ssr")]
pub async fn key_names(
    s: &antix::Services,
    org: antix::domain::OrgId,
) -> Result<std::collections::HashMap<Uuid, String>, ApiError> {
    Ok(s.store
        .list_virtual_keys(org)
        .await?
        .into_iter()
        .map(|k| (k.id.0, format!("{} · {}", k.name, k.display)))
        .collect())
}

/// The Overview: 30-day totals, one entry per day, and breakdowns by model, key and auth mode.
/// All of it comes from the daily totals kept with the traces, so it costs the same on a
/// million traces as on ten.
#[server(endpoint = "endpoint_overview", input = GetUrl)]
pub async fn endpoint_overview(endpoint: Uuid) -> Result<Overview, ApiError> {
    use super::ssr::*;
    use crate::model::{DayTotals, auth_label};
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, m) = visible_endpoint(&s, &user, endpoint).await?;
        let o = antix::overview::overview(&s.store, e.id, antix::domain::now_ms()).await?;
        let totals = convert::totals(&o.totals);
        let days = o
            .days
            .iter()
            .map(|(day, t)| DayTotals {
                day: *day,
                totals: convert::totals(t),
            })
            .collect();
        let names = key_names(&s, m.org.id).await?;
        let by_model = convert::breakdown(o.by_model, |m| {
            let label = if m.is_empty() { "(no model)" } else { m };
            (m.to_owned(), label.to_owned())
        });
        let by_key = convert::breakdown(o.by_key, |hex| match Uuid::parse_str(hex) {
            Ok(id) if !id.is_nil() => (
                id.to_string(),
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("deleted key {}", &hex[..8])),
            ),
            _ => (String::new(), "No virtual key (BYOK / OAuth)".into()),
        });
        let by_auth = convert::breakdown(o.by_auth, |a| (a.to_owned(), auth_label(a).to_owned()));
        let since = o.since;
        Ok(Overview {
            since,
            totals,
            days,
            by_model,
            by_key,
            by_auth,
        })
    })
    .await
}

/// The store filter for a URL query, or field-level messages for what cannot be read.
#[cfg(feature = "ssr")]
pub fn filter_of(q: &TraceQuery, now: i64) -> Result<antix::store::observe::TraceFilter, ApiError> {
    use crate::api::FieldMessage;
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errors.push(FieldMessage {
            field: field.into(),
            message: message.into(),
        })
    };
    let mut f = antix::store::observe::TraceFilter::default();
    const H: i64 = 3_600_000;
    match q.range.as_str() {
        "" | "all" => {}
        "1h" => f.from = Some(now - H),
        "24h" => f.from = Some(now - 24 * H),
        "7d" => f.from = Some(now - 7 * 24 * H),
        "30d" => f.from = Some(now - 30 * 24 * H),
        "custom" => {
            let mut bound = |field: &str, text: &str| {
                if text.trim().is_empty() {
                    return None;
                }
                let v = crate::format::parse_datetime_local(text);
                if v.is_none() {
                    bad(field, "Use a date and time like 2026-11-29T14:00 (UTC).");
                }
                v
            };
            f.from = bound("from", &q.from);
            f.to = bound("to", &q.to);
            if let (Some(a), Some(b)) = (f.from, f.to)
                && a >= b
            {
                bad("to", "The end must be after the start.");
            }
        }
        _ => bad("range", "Choose a time range from the list."),
    }
    match q.auth.as_str() {
        "" => {}
        "virtual_key" | "byok" | "oauth" | "none" => f.auth_mode = Some(q.auth.clone()),
        _ => bad("auth", "Choose Virtual Key, BYOK or OAuth."),
    }
    if !q.model.is_empty() {
        f.model = Some(q.model.chars().take(200).collect());
    }
    if q.key.trim() == "unknown" {
        f.unknown_key = true;
    } else if !q.key.trim().is_empty() {
        match q.key.trim().parse::<Uuid>() {
            Ok(k) => f.key = Some(antix::domain::VirtualKeyId(k)),
            Err(_) => bad("key", "Not a virtual key id."),
        }
    }
    match q.status.as_str() {
        "" => {}
        "ok" => f.errors = Some(false),
        "error" => f.errors = Some(true),
        "retried" => f.retried = true,
        _ => bad("status", "Choose OK, Error or Retried."),
    }
    if !q.q.trim().is_empty() {
        if q.q.len() > 1000 {
            bad("q", "Search for at most 1000 characters.");
        }
        f.search = Some(q.q.clone());
    }
    if errors.is_empty() {
        Ok(f)
    } else {
        Err(ApiError::Invalid(errors))
    }
}

/// A page of an endpoint's traces, newest first, as the URL query narrows it.
#[server(endpoint = "list_traces", input = GetUrl)]
pub async fn list_traces(endpoint: Uuid, query: TraceQuery) -> Result<TracesPage, ApiError> {
    use super::ssr::*;
    use crate::model::Choice;
    use antix::store::observe::{Cursor, Dimension};
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, m) = visible_endpoint(&s, &user, endpoint).await?;
        let filter = filter_of(&query, antix::domain::now_ms())?;
        let after = match query.after.as_str() {
            "" => None,
            c => Some(Cursor::decode(c).ok_or_else(|| {
                ApiError::invalid(
                    "after",
                    "This page link is out of date; start from the newest.",
                )
            })?),
        };
        let page = s
            .store
            .list_traces(e.id, &filter, after, 50)
            .await
            .map_err(convert::search_error)?;
        let names = key_names(&s, m.org.id).await?;
        let since = antix::overview::window_start(antix::domain::now_ms());
        let keys = s
            .store
            .breakdown(e.id, since, Dimension::Key)
            .await?
            .into_iter()
            .filter_map(|b| Uuid::parse_str(&b.label).ok().filter(|u| !u.is_nil()))
            .map(|id| Choice {
                value: id.to_string(),
                label: names.get(&id).cloned().unwrap_or_else(|| id.to_string()),
            })
            .collect();
        let mut rows: Vec<_> = page
            .rows
            .iter()
            .map(|r| {
                let name = r.virtual_key_id.and_then(|k| names.get(&k.0).cloned());
                convert::summary(r, name)
            })
            .collect();
        if let Some(needle) = filter.search.as_deref().map(str::trim) {
            for row in &mut rows {
                row.snippet = snippet(&s, row.id, needle).await?;
            }
        }
        Ok(TracesPage {
            rows,
            next: page.next.map(Cursor::encode),
            models: s.store.endpoint_models(e.id).await?,
            keys,
        })
    })
    .await
}

/// Where a search matched in a trace's bodies (response first: it is usually what people look
/// for, and it is short). The index matched the text without JSON escapes; the stored body
/// has them, so a match across an escape has no snippet.
#[cfg(feature = "ssr")]
async fn snippet(
    s: &antix::Services,
    id: Uuid,
    needle: &str,
) -> Result<Option<crate::model::Snippet>, ApiError> {
    let Some(b) = s.store.trace_bodies(antix::domain::TraceId(id)).await? else {
        return Ok(None);
    };
    for body in [&b.response_assembled, &b.response_body, &b.request_body] {
        let Some(raw) = body
            .as_deref()
            .and_then(|z| antix::store::compression::decompress(z, 256 << 20))
        else {
            continue;
        };
        if let Some(found) = crate::model::Snippet::find(&String::from_utf8_lossy(&raw), needle, 80)
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// One trace in full, for the observation drawer.
#[server(endpoint = "get_trace", input = GetUrl)]
pub async fn get_trace(endpoint: Uuid, trace: Uuid) -> Result<TraceDetail, ApiError> {
    use super::ssr::*;
    use crate::model::CostView;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, m) = visible_endpoint(&s, &user, endpoint).await?;
        let id = antix::domain::TraceId(trace);
        let row = s.store.trace(id).await?.ok_or(ApiError::NotFound)?;
        // The trace must be this endpoint's: an id from elsewhere is simply not found.
        if row.endpoint_id != e.id {
            return Err(ApiError::NotFound);
        }
        let bodies = s.store.trace_bodies(id).await?;
        let names = key_names(&s, m.org.id).await?;
        let text = |b: &Option<Vec<u8>>| -> (Option<String>, bool) {
            let Some(raw) = b
                .as_deref()
                .and_then(|z| antix::store::compression::decompress(z, 256 << 20))
            else {
                return (None, false);
            };
            let clipped = raw.len() > DRAWER_BODY_LIMIT;
            let mut end = raw.len().min(DRAWER_BODY_LIMIT);
            // Cut on a character boundary (UTF-8 continuation bytes are 0b10xxxxxx).
            while end < raw.len() && end > 0 && (raw[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            (
                Some(String::from_utf8_lossy(&raw[..end]).into_owned()),
                clipped,
            )
        };
        let (request_body, request_clipped, response_body, response_clipped, assembled) =
            match &bodies {
                Some(b) => {
                    let (req, rc) = text(&b.request_body);
                    let (res, sc) = text(&b.response_body);
                    let (asm, _) = text(&b.response_assembled);
                    (req, rc, res, sc, asm)
                }
                None => (None, false, None, false, None),
            };
        let cost = row
            .cost_detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<antix::pricing::Cost>(d).ok())
            .map(|c| CostView {
                total_nanos: c.total_nanos,
                input_nanos: c.input_nanos,
                output_nanos: c.output_nanos,
                cache_read_nanos: c.cache_read_nanos,
                cache_write_nanos: c.cache_write_nanos,
                reasoning_nanos: c.reasoning_nanos,
                priced_as: c.priced_as,
                price_input: c.prices.input,
                price_output: c.prices.output,
                price_cache_read: c.prices.cache_read,
                price_cache_write_5m: c.prices.cache_write_5m,
                price_cache_write_1h: c.prices.cache_write_1h,
                price_reasoning: c.prices.reasoning,
                tier_above: c.tier_above,
                catalog_version: c.catalog_version,
            });
        let key_name = row.virtual_key_id.and_then(|k| names.get(&k.0).cloned());
        Ok(TraceDetail {
            summary: convert::summary(&row, key_name),
            wire: row.wire.clone(),
            usage_source: row.usage_source.clone(),
            cache_write_tokens: row.cache_write_tokens,
            reasoning_tokens: row.reasoning_tokens,
            cost,
            session_parent: row.session_parent.clone(),
            response_id: row.response_id.clone(),
            request_headers: bodies
                .as_ref()
                .map(|b| b.request_headers.clone())
                .unwrap_or_default(),
            response_headers: bodies
                .as_ref()
                .map(|b| b.response_headers.clone())
                .unwrap_or_default(),
            request_body,
            response_body,
            response_assembled: assembled,
            request_bytes: row.request_bytes,
            response_bytes: row.response_bytes,
            request_truncated: bodies.as_ref().is_some_and(|b| b.request_truncated),
            response_truncated: bodies.as_ref().is_some_and(|b| b.response_truncated),
            request_clipped,
            response_clipped,
            attempts: row
                .attempts
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or_default(),
        })
    })
    .await
}
