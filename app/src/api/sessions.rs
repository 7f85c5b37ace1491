//! Agent sessions of an endpoint (the Activity tab): the list, and one session's calls for the
//! Gantt chart. Scoped like the traces: the endpoint is resolved through `visible_endpoint`.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

use super::ApiError;
use crate::model::{SessionDetail, SessionsPage};

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

/// Sessions, most recently active first; `search` matches the first prompt; `before` is the
/// `next` of the previous page.
#[server(endpoint = "list_sessions", input = GetUrl)]
pub async fn list_sessions(
    endpoint: Uuid,
    search: String,
    before: Option<String>,
) -> Result<SessionsPage, ApiError> {
    use super::ssr::*;
    use antix::store::observe::SessionCursor;
    run(async {
        let s = services()?;
        let user = require_user(&s).await?;
        let (e, _) = visible_endpoint(&s, &user, endpoint).await?;
        let after = before.as_deref().and_then(SessionCursor::decode);
        let page =
            antix::manage::sessions::list(&s.store, e.id, &search, after.as_ref(), 50).await?;
        Ok(SessionsPage {
            next: page.next.map(|c| c.encode()),
            sessions: page.sessions.into_iter().map(summary).collect(),
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
        let found = antix::manage::sessions::get(
            &s.store,
            e.id,
            (!key.is_empty()).then_some(key.as_str()),
            &search,
        )
        .await?;
        let calls = found
            .calls
            .into_iter()
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
        Ok(SessionDetail {
            session: summary(found.session),
            calls,
            truncated: found.truncated,
            related: found.related.into_iter().map(summary).collect(),
        })
    })
    .await
}
