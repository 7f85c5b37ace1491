//! Agent sessions of an endpoint (the Activity tab): the list, and one session's calls for the
//! Gantt chart. Scoped like the traces: the endpoint is resolved through `visible_endpoint`.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::{SessionDetail, SessionsPage};

/// The most calls one chart shows (a session with more says so and shows the first ones).
pub const MAX_CALLS: i64 = 2000;

#[cfg(feature = "ssr")]
fn summary(r: antix::store::observe::SessionRow) -> crate::model::SessionSummary {
    crate::model::SessionSummary {
        key: r.session_key,
        parent: r.parent,
        first_at: r.first_at,
        last_end_at: r.last_end_at,
        calls: r.calls,
        errors: r.errors,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cost_nanos: r.cost_nanos,
        preview: r.preview,
    }
}

/// Sessions, most recently active first; `search` matches the first prompt.
#[server(endpoint = "list_sessions", input = GetUrl)]
pub async fn list_sessions(
    endpoint: Uuid,
    search: String,
    before: Option<i64>,
) -> Result<SessionsPage, ApiError> {
    use super::ssr::*;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, _) = visible_endpoint(&s, &user, endpoint).await?;
        const PAGE: i64 = 50;
        let search = search.trim();
        let rows = s
            .store
            .list_sessions(
                e.id,
                (!search.is_empty()).then_some(search),
                before,
                PAGE + 1,
            )
            .await?;
        let more = rows.len() as i64 > PAGE;
        let sessions: Vec<_> = rows.into_iter().take(PAGE as usize).map(summary).collect();
        Ok(SessionsPage {
            next: if more {
                sessions.last().map(|s| s.last_end_at)
            } else {
                None
            },
            sessions,
        })
    })
    .await
}

/// One session: its calls in time order, and the sessions related to it. An empty `key` means
/// the most recently active session matching `search` (what the Activity tab opens on).
#[server(endpoint = "get_session", input = GetUrl)]
pub async fn get_session(
    endpoint: Uuid,
    key: String,
    search: String,
) -> Result<SessionDetail, ApiError> {
    use super::ssr::*;
    use crate::model::SessionCall;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, _) = visible_endpoint(&s, &user, endpoint).await?;
        let search = search.trim();
        let session = if key.is_empty() {
            s.store
                .list_sessions(e.id, (!search.is_empty()).then_some(search), None, 1)
                .await?
                .into_iter()
                .next()
        } else {
            s.store.session(e.id, &key).await?
        }
        .ok_or(ApiError::NotFound)?;
        let key = session.session_key.clone();
        let rows = s.store.session_traces(e.id, &key, MAX_CALLS + 1).await?;
        let truncated = rows.len() as i64 > MAX_CALLS;
        let calls = rows
            .into_iter()
            .take(MAX_CALLS as usize)
            .map(|r| SessionCall {
                id: r.id.0,
                started_at: r.started_at,
                latency_us: r.latency_us,
                ttft_us: r.ttft_us,
                model: r.model,
                status_code: r.status_code,
                outcome: r.outcome,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cost_nanos: r.cost_nanos,
                cost_estimated: r.cost_estimated,
                is_stream: r.is_stream,
                tool_calls: r
                    .tool_calls
                    .map(|t| t.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let related = match &session.parent {
            Some(p) => s
                .store
                .related_sessions(e.id, p, 50)
                .await?
                .into_iter()
                .map(summary)
                .collect(),
            None => Vec::new(),
        };
        Ok(SessionDetail {
            session: summary(session),
            calls,
            truncated,
            related,
        })
    })
    .await
}
