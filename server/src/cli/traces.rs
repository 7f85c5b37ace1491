//! `antix traces list|get|export|generate|bench`: reading an endpoint's traces from a shell,
//! and filling one with synthetic traces for benchmarks and demos.

use antix::Services;
use antix::config::Settings;
use antix::domain;
use clap::Subcommand;
use serde_json::json;

use super::start;
use crate::output::say;

#[derive(Subcommand)]
pub enum TracesCommand {
    /// The newest traces of an endpoint, one JSON object per line.
    List {
        #[arg(long)]
        endpoint: domain::EndpointId,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One trace as JSON, with its headers and decompressed bodies.
    Get { id: domain::TraceId },
    /// Every trace of an endpoint matching the filters, newest first, as CSV or JSON Lines on
    /// standard output (streamed: memory stays flat however many traces match).
    Export {
        #[arg(long)]
        endpoint: domain::EndpointId,
        /// `csv` or `jsonl`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// `1h`, `24h`, `7d` or `30d` (default: all time).
        #[arg(long, default_value = "")]
        range: String,
        #[arg(long, default_value = "")]
        model: String,
        /// `virtual_key`, `byok` or `oauth`.
        #[arg(long, default_value = "")]
        auth: String,
        /// `ok`, `error` or `retried`.
        #[arg(long, default_value = "")]
        status: String,
        /// Text searched in request and response bodies.
        #[arg(long, default_value = "")]
        search: String,
    },
    /// Fill an endpoint with realistic synthetic traces (benchmarks and demos): a month of mixed
    /// providers, auth modes, streams, errors, agent sessions and some 200 KB transcripts.
    Generate {
        #[arg(long)]
        endpoint: domain::EndpointId,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Spread over this many days up to now.
        #[arg(long, default_value_t = 30)]
        days: i64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Instead: one agent session of this many calls (the Activity tab at agent scale).
        #[arg(long)]
        session_calls: Option<u64>,
    },
    /// Time the Traces, Overview and Activity queries on an endpoint (server-side time).
    Bench {
        #[arg(long)]
        endpoint: domain::EndpointId,
        #[arg(long, default_value_t = 7)]
        runs: usize,
        #[arg(long)]
        json: bool,
    },
}

fn trace_json(t: &antix::store::traces::TraceRow) -> serde_json::Value {
    json!({
        "id": t.id, "endpoint_id": t.endpoint_id, "started_at": t.started_at,
        "auth_mode": t.auth_mode, "virtual_key_id": t.virtual_key_id, "provider": t.provider,
        "wire": t.wire, "model": t.model, "method": t.method, "path": t.path,
        "status_code": t.status_code, "outcome": t.outcome, "error": t.error,
        "is_stream": t.is_stream, "input_tokens": t.input_tokens, "output_tokens": t.output_tokens,
        "cache_read_tokens": t.cache_read_tokens, "cache_write_tokens": t.cache_write_tokens,
        "reasoning_tokens": t.reasoning_tokens, "usage_source": t.usage_source,
        "cost_nanos": t.cost_nanos, "cost_estimated": t.cost_estimated,
        "catalog_version": t.catalog_version, "ttft_us": t.ttft_us, "latency_us": t.latency_us,
        "session_key": t.session_key, "session_parent": t.session_parent,
        "response_id": t.response_id, "request_bytes": t.request_bytes,
        "response_bytes": t.response_bytes,
    })
}

pub async fn traces(settings: Settings, command: TracesCommand) -> anyhow::Result<()> {
    let services = start(settings).await?;
    match command {
        TracesCommand::List { endpoint, limit } => {
            for t in services.store.recent_traces(endpoint, limit).await? {
                say(&trace_json(&t).to_string());
            }
        }
        TracesCommand::Get { id } => {
            let t = services
                .store
                .trace(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no trace {id}"))?;
            let mut v = trace_json(&t);
            if let Some(b) = services.store.trace_bodies(id).await? {
                let text = |blob: &Option<Vec<u8>>| {
                    blob.as_ref()
                        .and_then(|c| antix::store::compression::decompress(c, 64 << 20))
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                };
                v["request_headers"] = serde_json::from_str(&b.request_headers).unwrap_or_default();
                v["response_headers"] =
                    serde_json::from_str(&b.response_headers).unwrap_or_default();
                v["request_body"] = json!(text(&b.request_body));
                v["response_body"] = json!(text(&b.response_body));
                v["response_assembled"] = json!(text(&b.response_assembled));
                v["request_truncated"] = json!(b.request_truncated);
                v["response_truncated"] = json!(b.response_truncated);
            }
            say(&v.to_string());
        }
        TracesCommand::Export {
            endpoint,
            format,
            range,
            model,
            auth,
            status,
            search,
        } => {
            export_traces(
                &services,
                endpoint,
                &format,
                app::model::TraceQuery {
                    range,
                    model,
                    auth,
                    status,
                    q: search,
                    ..Default::default()
                },
            )
            .await?;
        }
        TracesCommand::Generate {
            endpoint,
            session_calls: Some(calls),
            seed,
            ..
        } => crate::tracegen::generate_session(&services, endpoint, calls, seed).await?,
        TracesCommand::Generate {
            endpoint,
            count,
            days,
            seed,
            session_calls: None,
        } => crate::tracegen::generate(&services, endpoint, count, days.max(1), seed).await?,
        TracesCommand::Bench {
            endpoint,
            runs,
            json,
        } => crate::tracegen::bench(&services, endpoint, runs.max(1), json).await?,
    }
    services.store.close().await;
    Ok(())
}

/// Streams an export to standard output, page by page.
async fn export_traces(
    services: &Services,
    endpoint: domain::EndpointId,
    format: &str,
    query: app::model::TraceQuery,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use std::io::Write;
    let format = antix::export::Format::parse(format)
        .ok_or_else(|| anyhow::anyhow!("--format: `{format}` is neither csv nor jsonl"))?;
    let e = services
        .store
        .endpoint(endpoint)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no endpoint {endpoint}"))?;
    let filter =
        app::api::traces::filter_of(&query, domain::now_ms()).map_err(|err| match err {
            app::api::ApiError::Invalid(fields) => anyhow::anyhow!(
                "{}",
                fields
                    .iter()
                    .map(|f| format!(
                        "--{}: {}",
                        if f.field == "q" { "search" } else { &f.field },
                        f.message
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => anyhow::anyhow!("{other}"),
        })?;
    let keys = services
        .store
        .list_virtual_keys(e.org_id)
        .await?
        .into_iter()
        .map(|k| (k.id, k.name))
        .collect();
    let mut chunks = std::pin::pin!(antix::export::stream(
        services.store.clone(),
        endpoint,
        filter,
        keys,
        format
    ));
    let stdout = std::io::stdout();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let mut out = stdout.lock();
        out.write_all(&chunk)?;
    }
    stdout.lock().flush()?;
    Ok(())
}
