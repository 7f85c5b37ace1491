use super::*;
use crate::domain::{EndpointId, OrgId};
use crate::recorder::finalize::finalize;
use crate::recorder::testing::sample_draft;

fn render(m: &Metrics) -> String {
    m.render(&Readings {
        recorder: RecorderReadings::default(),
        memory: &crate::memory::MemoryBudget::new(1 << 20),
        pools: Vec::new(),
    })
}

/// The value of the one sample whose line starts with `name{` and contains every label given.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_trace_counts_its_request_tokens_cost_and_latency() {
    let m = Metrics::new();
    let endpoint = EndpointId::new_v4();
    let mut record = finalize(sample_draft(OrgId::new_v4(), endpoint));
    record.is_stream = true;
    assert!(record.cost_nanos.is_some_and(|n| n > 0), "gpt-4o is priced");
    m.observe(&record);
    m.observe(&record);
    let text = render(&m);
    let ep = format!("endpoint=\"{endpoint}\"");
    assert_eq!(
        sample(
            &text,
            "antix_requests_total",
            &[
                &ep,
                "provider=\"openai\"",
                "auth_mode=\"byok\"",
                "outcome=\"ok\"",
                "status_class=\"2xx\""
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "antix_tokens_total",
            &[&ep, "model=\"gpt-4o\"", "kind=\"input\""]
        ),
        Some(24.0)
    );
    assert_eq!(
        sample(&text, "antix_tokens_total", &[&ep, "kind=\"output\""]),
        Some(6.0)
    );
    let cost = sample(
        &text,
        "antix_cost_dollars_total",
        &[&ep, "estimated=\"true\""],
    )
    .unwrap();
    let expected = 2.0 * record.cost_nanos.unwrap() as f64 / 1e9;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    assert_eq!(
        sample(
            &text,
            "antix_request_duration_seconds_count",
            &["provider=\"openai\"", "stream=\"true\""]
        ),
        Some(2.0)
    );
    // 9 ms: in the 10 ms bucket, not the 5 ms one.
    assert_eq!(
        sample(
            &text,
            "antix_request_duration_seconds_bucket",
            &["le=\"0.005\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "antix_request_duration_seconds_bucket",
            &["le=\"0.01\""]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "antix_time_to_first_token_seconds_count",
            &["provider=\"openai\""]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "antix_upstream_attempts_total",
            &["status_class=\"2xx\"", "fallback=\"false\""]
        ),
        Some(2.0)
    );
    assert!(
        sample(&text, "antix_errors_total", &[]).is_none(),
        "no errors: {text}"
    );
    assert_eq!(
        sample(
            &text,
            "antix_build_info",
            &[&format!("version=\"{}\"", crate::VERSION)]
        ),
        Some(1.0)
    );
}

#[test]
fn failures_are_counted_by_class() {
    let m = Metrics::new();
    let mut upstream_5xx = sample_draft(OrgId::new_v4(), EndpointId::new_v4());
    upstream_5xx.status = 503;
    let mut rejected = sample_draft(OrgId::new_v4(), EndpointId::new_v4());
    rejected.status = 401;
    rejected.outcome = Outcome::Rejected;
    let mut timeout = sample_draft(OrgId::new_v4(), EndpointId::new_v4());
    timeout.status = 0;
    timeout.outcome = Outcome::Timeout;
    for d in [upstream_5xx, rejected, timeout] {
        m.observe(&finalize(d));
    }
    let text = render(&m);
    for class in ["upstream_5xx", "rejected", "timeout"] {
        assert_eq!(
            sample(
                &text,
                "antix_errors_total",
                &[&format!("class=\"{class}\"")]
            ),
            Some(1.0),
            "{class}: {text}"
        );
    }
    // A refused request never reached the provider: no upstream attempt for it.
    assert_eq!(
        sample(
            &text,
            "antix_upstream_attempts_total",
            &["status_class=\"4xx\""]
        ),
        None
    );
    assert_eq!(
        sample(
            &text,
            "antix_upstream_attempts_total",
            &["status_class=\"none\""]
        ),
        Some(1.0)
    );
}

#[test]
fn model_and_endpoint_labels_are_bounded() {
    let m = Metrics::new();
    let endpoint = EndpointId::new_v4();
    for i in 0..(MAX_UNKNOWN_MODELS + 50) {
        let mut d = sample_draft(OrgId::new_v4(), endpoint);
        d.requested_model = Some(format!("custom-model-{i}"));
        let mut r = finalize(d);
        r.model = Some(format!("custom-model-{i}"));
        m.observe(&r);
    }
    // A refused request's model name is the caller's invention: never a label of its own.
    let mut refused = finalize(sample_draft(OrgId::new_v4(), endpoint));
    refused.outcome = Outcome::Rejected;
    refused.model = Some("made-up-by-an-attacker".into());
    m.observe(&refused);
    let text = render(&m);
    let models: HashSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("antix_tokens_total{"))
        .filter_map(|l| l.split("model=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(models.len(), MAX_UNKNOWN_MODELS + 1, "{models:?}");
    assert!(models.contains("other"));
    assert!(!models.contains("made-up-by-an-attacker"));

    let m = Metrics::new();
    for _ in 0..(MAX_ENDPOINTS + 5) {
        m.observe(&finalize(sample_draft(
            OrgId::new_v4(),
            EndpointId::new_v4(),
        )));
    }
    let text = render(&m);
    let endpoints = text
        .lines()
        .filter(|l| l.starts_with("antix_requests_total{"))
        .count();
    assert_eq!(endpoints, MAX_ENDPOINTS + 1);
    assert_eq!(
        sample(&text, "antix_requests_total", &["endpoint=\"other\""]),
        Some(5.0)
    );
    assert_eq!(cut(&"x".repeat(300)).len(), MAX_LABEL_LEN);
}

#[test]
fn scrapes_read_the_recorder_and_the_pools() {
    let m = Metrics::new();
    let mut stats = RecorderReadings {
        written: 7,
        queued: 3,
        spool_bytes: 4096,
        ..Default::default()
    };
    let memory = crate::memory::MemoryBudget::new(1000);
    let read = |stats: &RecorderReadings| {
        m.render(&Readings {
            recorder: *stats,
            memory: &memory,
            pools: vec![crate::store::PoolUse {
                name: "read",
                in_use: 2,
                idle: 1,
                max: 8,
            }],
        })
    };
    let text = read(&stats);
    assert_eq!(sample(&text, "antix_traces_written_total", &[]), Some(7.0));
    assert_eq!(sample(&text, "antix_trace_queue_depth", &[]), Some(3.0));
    assert_eq!(sample(&text, "antix_trace_spool_bytes", &[]), Some(4096.0));
    assert_eq!(
        sample(&text, "antix_body_memory_budget_bytes", &[]),
        Some(1000.0)
    );
    assert_eq!(
        sample(
            &text,
            "antix_db_pool_connections",
            &["pool=\"read\"", "state=\"in_use\""]
        ),
        Some(2.0)
    );
    // A second scrape moves the counter by what happened in between, no more.
    stats.written += 5;
    let text = read(&stats);
    assert_eq!(sample(&text, "antix_traces_written_total", &[]), Some(12.0));
    let text = read(&stats);
    assert_eq!(sample(&text, "antix_traces_written_total", &[]), Some(12.0));
    assert!(text.contains("# TYPE antix_traces_written_total counter"));
    assert!(text.contains("# HELP antix_traces_written_total "));
}
