//! `antix traces generate` and `antix traces bench`: fill a database with realistic traces and
//! time the observability queries on it (the figures the Traces tab and Overview depend on).

use std::time::{Duration, Instant};

use antix::Services;
use antix::domain::{self, DAY_MS as DAY, EndpointId, KeyLimits, Millis};
use antix::store::observe::{Cursor, Dimension, TraceFilter};

use crate::output::say;

mod generate;

use generate::{Generator, RARE_WORD, TRANSCRIPT_MARKER};

/// Writes one agent session of `calls` calls ending now (see [`generate::agent_session`]).
pub async fn generate_session(
    services: &Services,
    endpoint: EndpointId,
    calls: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let e = services
        .store
        .endpoint(endpoint)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no endpoint {endpoint}"))?;
    let records = generate::agent_session(e.org_id, e.id, calls, domain::now_ms(), seed);
    for chunk in records.chunks(500) {
        services.store.insert_traces(chunk).await?;
    }
    say(&format!("{calls} calls in one session written"));
    Ok(())
}

/// Writes `count` traces spread over the last `days` days, oldest first, in batches.
pub async fn generate(
    services: &Services,
    endpoint: EndpointId,
    count: u64,
    days: i64,
    seed: u64,
) -> anyhow::Result<()> {
    let e = services
        .store
        .endpoint(endpoint)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no endpoint {endpoint}"))?;
    let mut keys: Vec<_> = services
        .store
        .list_virtual_keys(e.org_id)
        .await?
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(|k| k.id)
        .take(5)
        .collect();
    if keys.is_empty() {
        for i in 1..=3 {
            let issued = antix::virtual_keys::issue(
                &services.store,
                &services.keys,
                e.org_id,
                e.owner_id,
                &format!("generated key {i}"),
                None,
                &KeyLimits::default(),
            )
            .await?;
            keys.push(issued.key.id);
        }
    }
    let now = domain::now_ms();
    let start = now - days * DAY;
    let step = (days * DAY) as f64 / count.max(1) as f64;
    // Generation (JSON, compression) on a blocking thread while the previous batch is written.
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut g = Generator::new(seed, e.org_id, e.id, keys).with_horizon(now);
        let mut i = 0u64;
        while i < count {
            let n = (count - i).min(500);
            let batch: Vec<_> = (i..i + n)
                .map(|j| g.trace(start + (j as f64 * step) as Millis))
                .collect();
            i += n;
            if tx.blocking_send(batch).is_err() {
                break;
            }
        }
    });
    let began = Instant::now();
    let mut written = 0u64;
    let mut last_report = Instant::now();
    while let Some(batch) = rx.recv().await {
        written += services.store.insert_traces(&batch).await?;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            let rate = written as f64 / began.elapsed().as_secs_f64();
            say(&format!(
                "{written} / {count} traces ({rate:.0}/s, about {:.0} s left)",
                (count - written) as f64 / rate.max(1.0)
            ));
        }
    }
    producer.await?;
    say(&format!(
        "wrote {written} traces in {:.1} s; refreshing planner statistics…",
        began.elapsed().as_secs_f64()
    ));
    services.store.analyze().await?;
    say("done");
    Ok(())
}

struct Timing {
    name: String,
    runs: Vec<Duration>,
    rows: usize,
    error: Option<String>,
}

impl Timing {
    fn median(&self) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }
    fn max(&self) -> f64 {
        self.runs
            .iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .fold(0.0, f64::max)
    }
}

/// Times each observability query `runs` times on one endpoint and prints a table (or JSON).
pub async fn bench(
    services: &Services,
    endpoint: EndpointId,
    runs: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let s = &services.store;
    let total = s.count_traces().await?;
    let now = domain::now_ms();
    let models = s.endpoint_models(endpoint).await?;
    let keys: Vec<_> = s
        .breakdown(endpoint, now - 30 * DAY, Dimension::Key)
        .await?
        .into_iter()
        .filter_map(|b| uuid::Uuid::parse_str(&b.label).ok().filter(|u| !u.is_nil()))
        .map(domain::VirtualKeyId)
        .collect();
    let model = models.first().cloned();
    let rare_model = models.last().cloned();
    let key = keys.first().copied();
    let f = |g: &dyn Fn(&mut TraceFilter)| {
        let mut t = TraceFilter::default();
        g(&mut t);
        t
    };
    let second_page = s
        .list_traces(endpoint, &TraceFilter::default(), None, 50)
        .await?
        .next;
    let cases: Vec<(String, TraceFilter, Option<Cursor>)> = vec![
        ("first page".into(), TraceFilter::default(), None),
        (
            "second page (cursor)".into(),
            TraceFilter::default(),
            second_page,
        ),
        (
            "last 24 hours".into(),
            f(&|t| t.from = Some(now - DAY)),
            None,
        ),
        (
            "custom range, a week 2 weeks ago".into(),
            f(&|t| {
                t.from = Some(now - 21 * DAY);
                t.to = Some(now - 14 * DAY)
            }),
            None,
        ),
        (
            format!("model = {}", model.clone().unwrap_or_default()),
            f(&|t| t.model = model.clone()),
            None,
        ),
        (
            format!(
                "model = {} (rarest)",
                rare_model.clone().unwrap_or_default()
            ),
            f(&|t| t.model = rare_model.clone()),
            None,
        ),
        (
            "auth = oauth".into(),
            f(&|t| t.auth_mode = Some("oauth".into())),
            None,
        ),
        ("virtual key".into(), f(&|t| t.key = key), None),
        ("status = error".into(), f(&|t| t.errors = Some(true)), None),
        ("status = ok".into(), f(&|t| t.errors = Some(false)), None),
        (
            "model + auth + error + 7 days".into(),
            f(&|t| {
                t.model = model.clone();
                t.auth_mode = Some("byok".into());
                t.errors = Some(true);
                t.from = Some(now - 7 * DAY)
            }),
            None,
        ),
        (
            "key + error + 30 days".into(),
            f(&|t| {
                t.key = key;
                t.errors = Some(true);
                t.from = Some(now - 30 * DAY)
            }),
            None,
        ),
        (
            format!("search \"{RARE_WORD}\" (rare)"),
            f(&|t| t.search = Some(RARE_WORD.into())),
            None,
        ),
        (
            format!("search \"{TRANSCRIPT_MARKER}\" (end of 200 KB transcripts)"),
            f(&|t| t.search = Some(TRANSCRIPT_MARKER.into())),
            None,
        ),
        (
            "search \"latency\" (common)".into(),
            f(&|t| t.search = Some("latency".into())),
            None,
        ),
        (
            "search \"zzqxjv\" (absent)".into(),
            f(&|t| t.search = Some("zzqxjv".into())),
            None,
        ),
        (
            "search \"%%%\" (wildcards are text)".into(),
            f(&|t| t.search = Some("%%%".into())),
            None,
        ),
        (
            "search \"\\\" OR * NEAR(\" (syntax is text)".into(),
            f(&|t| t.search = Some("\" OR * NEAR(".into())),
            None,
        ),
        (
            format!("search \"{RARE_WORD}\" + error"),
            f(&|t| {
                t.search = Some(RARE_WORD.into());
                t.errors = Some(true)
            }),
            None,
        ),
        (
            "search \"latency\" + model + 24 hours".into(),
            f(&|t| {
                t.search = Some("latency".into());
                t.model = model.clone();
                t.from = Some(now - DAY)
            }),
            None,
        ),
    ];
    let mut timings = Vec::new();
    for (name, filter, cursor) in cases {
        let mut t = Timing {
            name,
            runs: Vec::new(),
            rows: 0,
            error: None,
        };
        for _ in 0..runs {
            let began = Instant::now();
            match s.list_traces(endpoint, &filter, cursor, 50).await {
                Ok(p) => t.rows = p.rows.len(),
                Err(e) => t.error = Some(e.to_string()),
            }
            t.runs.push(began.elapsed());
        }
        timings.push(t);
    }
    // The Overview and Activity reads.
    let since = antix::overview::window_start(now);
    let mut t = Timing {
        name: "overview (30 days + 3 breakdowns)".into(),
        runs: Vec::new(),
        rows: 0,
        error: None,
    };
    for _ in 0..runs {
        let began = Instant::now();
        t.rows = s.daily_totals(endpoint, since).await?.len();
        for d in [Dimension::Model, Dimension::Key, Dimension::AuthMode] {
            s.breakdown(endpoint, since, d).await?;
        }
        t.runs.push(began.elapsed());
    }
    timings.push(t);
    let mut t = Timing {
        name: "sessions list".into(),
        runs: Vec::new(),
        rows: 0,
        error: None,
    };
    let mut first_session = None;
    for _ in 0..runs {
        let began = Instant::now();
        let list = s.list_sessions(endpoint, None, None, 51).await?;
        t.runs.push(began.elapsed());
        t.rows = list.len();
        first_session = list.into_iter().max_by_key(|r| r.calls);
    }
    timings.push(t);
    if let Some(sess) = first_session {
        let mut t = Timing {
            name: format!("session with {} calls", sess.calls),
            runs: Vec::new(),
            rows: 0,
            error: None,
        };
        for _ in 0..runs {
            let began = Instant::now();
            t.rows = s
                .session_traces(endpoint, &sess.session_key, 2001)
                .await?
                .len();
            t.runs.push(began.elapsed());
        }
        timings.push(t);
    }

    if as_json {
        let rows: Vec<_> = timings
            .iter()
            .map(|t| serde_json::json!({"query": t.name, "median_ms": t.median(), "max_ms": t.max(), "rows": t.rows, "error": t.error}))
            .collect();
        say(&serde_json::json!({"backend": s.kind().as_str(), "traces": total, "runs": runs, "queries": rows}).to_string());
    } else {
        say(&format!(
            "{} traces in the database ({}), {runs} runs each, server-side time:",
            total,
            s.kind().as_str()
        ));
        say(&format!(
            "{:<62} {:>10} {:>10} {:>6}",
            "query", "median ms", "max ms", "rows"
        ));
        for t in &timings {
            say(&format!(
                "{:<62} {:>10.1} {:>10.1} {:>6}{}",
                t.name,
                t.median(),
                t.max(),
                t.rows,
                t.error
                    .as_deref()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(())
}
