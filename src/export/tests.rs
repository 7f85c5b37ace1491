use futures_util::StreamExt;

use super::*;
use crate::domain::{OrgId, TraceId};
use crate::store::tests::org_and_endpoint;
use crate::store_test;

fn row() -> TraceRow {
    let record = crate::recorder::finalize::finalize(crate::recorder::testing::sample_draft(
        OrgId::new_v4(),
        EndpointId::new_v4(),
    ));
    TraceRow {
        id: record.id,
        org_id: record.org_id,
        endpoint_id: record.endpoint_id,
        started_at: 1_764_547_200_123,
        auth_mode: "virtual_key".into(),
        virtual_key_id: Some(VirtualKeyId::new_v4()),
        provider: Some("openai".into()),
        wire: None,
        model: Some("gpt-4o".into()),
        method: "POST".into(),
        path: "/v1/chat/completions".into(),
        status_code: 200,
        outcome: "ok".into(),
        error: None,
        is_stream: true,
        input_tokens: Some(12),
        output_tokens: Some(3),
        cache_read_tokens: None,
        cache_write_tokens: None,
        reasoning_tokens: None,
        usage_source: "provider".into(),
        cost_nanos: Some(60_000),
        cost_estimated: false,
        cost_detail: None,
        catalog_version: None,
        ttft_us: Some(1500),
        latency_us: 9_250,
        session_key: Some("s-1".into()),
        session_parent: None,
        response_id: None,
        request_bytes: 10,
        response_bytes: 10,
        key_hint: None,
        tool_calls: None,
        attempts: None,
        attempt_count: 1,
        fallback: false,
    }
}

#[test]
fn a_csv_line_has_every_column_a_spreadsheet_needs() {
    let t = row();
    let keys = KeyNames::from([(t.virtual_key_id.unwrap(), "ci, nightly".to_owned())]);
    let line = String::from_utf8(line(&t, &keys, Format::Csv)).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(cells.len(), COLUMNS.len());
    let cell = |name: &str| &cells[COLUMNS.iter().position(|c| *c == name).unwrap()];
    assert_eq!(cell("time"), "2025-12-01T00:00:00.123Z");
    assert_eq!(
        cell("key"),
        "ci, nightly",
        "a comma inside a cell is quoted"
    );
    assert_eq!(cell("cost_usd"), "0.000060000");
    assert_eq!(cell("latency_ms"), "9.250");
    assert_eq!(cell("ttft_ms"), "1.500");
    assert_eq!(cell("input_tokens"), "12");
    assert_eq!(cell("cache_read_tokens"), "");
    assert_eq!(cell("stream"), "true");
    assert!(line.ends_with("\r\n"));
}

#[test]
fn a_json_line_is_typed() {
    let t = row();
    let line = line(&t, &KeyNames::new(), Format::JsonLines);
    assert_eq!(line.last(), Some(&b'\n'));
    let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(v["input_tokens"], 12);
    assert_eq!(v["cost_usd"], "0.000060000");
    assert_eq!(v["key"], serde_json::Value::Null);
    assert_eq!(v["status"], 200);
    assert_eq!(v.as_object().unwrap().len(), COLUMNS.len());
}

#[test]
fn cells_that_a_spreadsheet_would_evaluate_are_defused() {
    let mut t = row();
    t.model = Some("=HYPERLINK(\"http://evil\")".into());
    let line = String::from_utf8(line(&t, &KeyNames::new(), Format::Csv)).unwrap();
    assert!(line.contains("'=HYPERLINK"), "{line}");
    for bad in ["+1", "-1", "@SUM(A1)", "\tx"] {
        assert!(safe_cell(bad).starts_with('\''));
    }
    assert_eq!(safe_cell("gpt-4o"), "gpt-4o");
    assert_eq!(dollars(1_234_567_891), "1.234567891");
    assert_eq!(dollars(0), "0.000000000");
}

store_test!(an_export_streams_every_matching_trace_once, |db| {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    // More than two pages, a few of them failed.
    let drafts: Vec<_> = (0..1_205)
        .map(|i| {
            let mut d = crate::recorder::testing::sample_draft(o.id, e.id);
            d.started_at -= i;
            if i % 100 == 0 {
                d.status = 500;
            }
            d
        })
        .collect();
    crate::recorder::write_now(s, drafts).await.unwrap();
    let all = collect(s, e.id, TraceFilter::default(), Format::Csv).await;
    let lines: Vec<&str> = all.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], COLUMNS.join(","));
    assert_eq!(lines.len(), 1 + 1_205);
    let ids: std::collections::HashSet<TraceId> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 1_205, "every trace exactly once");

    let errors = TraceFilter {
        errors: Some(true),
        ..Default::default()
    };
    let jsonl = collect(s, e.id, errors, Format::JsonLines).await;
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 13);
    assert!(rows.iter().all(|r| r["status"] == 500));
});

async fn collect(s: &Store, e: EndpointId, f: TraceFilter, format: Format) -> String {
    let chunks: Vec<_> = stream(s.clone(), e, f, KeyNames::new(), format)
        .collect()
        .await;
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&c.unwrap());
    }
    String::from_utf8(out).unwrap()
}
