//! Agent sessions of an endpoint (the portal's Activity tab, the API's `/sessions`): pages of
//! sessions, most recently active first, and one session's calls in time order with the
//! sessions related to it. The caller has already resolved an endpoint the actor may see.

use super::{ManageError, Result};
use crate::domain::EndpointId;
use crate::store::Store;
use crate::store::observe::{SessionCursor, SessionRow};
use crate::store::traces::TraceRow;

/// The most calls one session shows (a session with more says so and shows the first ones).
pub const MAX_CALLS: i64 = 2000;
/// The most related sessions (a parent's other sub-agents) shown with one session.
pub const MAX_RELATED: i64 = 50;

pub struct SessionPage {
    pub sessions: Vec<SessionRow>,
    pub next: Option<SessionCursor>,
}

pub struct SessionCalls {
    pub session: SessionRow,
    pub calls: Vec<TraceRow>,
    /// The session has more than [`MAX_CALLS`] calls; `calls` holds the first.
    pub truncated: bool,
    pub related: Vec<SessionRow>,
}

fn search_of(search: &str) -> Option<&str> {
    Some(search.trim()).filter(|s| !s.is_empty())
}

/// One page of `limit` sessions; `search` matches the first prompt.
pub async fn list(
    store: &Store,
    endpoint: EndpointId,
    search: &str,
    after: Option<&SessionCursor>,
    limit: usize,
) -> Result<SessionPage> {
    let mut sessions = store
        .list_sessions(endpoint, search_of(search), after, limit as i64 + 1)
        .await?;
    let more = sessions.len() > limit;
    sessions.truncate(limit);
    let next = if more {
        sessions.last().map(|s| SessionCursor {
            last_end_at: s.last_end_at,
            key: s.session_key.clone(),
        })
    } else {
        None
    };
    Ok(SessionPage { sessions, next })
}

/// One session by key; with no key, the most recently active one matching `search` (what the
/// Activity tab opens on).
pub async fn get(
    store: &Store,
    endpoint: EndpointId,
    key: Option<&str>,
    search: &str,
) -> Result<SessionCalls> {
    let session = match key {
        Some(k) => store.session(endpoint, k).await?,
        None => store
            .list_sessions(endpoint, search_of(search), None, 1)
            .await?
            .into_iter()
            .next(),
    }
    .ok_or(ManageError::NotFound)?;
    let mut calls = store
        .session_traces(endpoint, &session.session_key, MAX_CALLS + 1)
        .await?;
    let truncated = calls.len() as i64 > MAX_CALLS;
    calls.truncate(MAX_CALLS as usize);
    let related = match &session.parent {
        Some(p) => store.related_sessions(endpoint, p, MAX_RELATED).await?,
        None => Vec::new(),
    };
    Ok(SessionCalls {
        session,
        calls,
        truncated,
        related,
    })
}
