//! The store suite's observability reads: body search, filtered pages, Overview totals and
//! agent sessions.

use super::*;
use crate::store::observe::{Cursor, SearchError, TraceFilter};

async fn second_endpoint(
    s: &Store,
    o: &crate::domain::Organization,
    u: &crate::domain::User,
) -> crate::domain::Endpoint {
    s.create_endpoint(&NewEndpoint {
        org: o.id,
        owner: u.id,
        scope: Scope::OrgShared,
        name: "other",
    })
    .await
    .unwrap()
}

fn draft_with(
    o: crate::domain::OrgId,
    e: crate::domain::EndpointId,
    request: &str,
    response: &str,
) -> crate::recorder::TraceDraft {
    let mut d = crate::recorder::testing::sample_draft(o, e);
    d.request_body = crate::capture::Capture::of(&bytes::Bytes::from(request.to_owned()), 4 << 20);
    d.response_body =
        crate::capture::Capture::of(&bytes::Bytes::from(response.to_owned()), 4 << 20);
    d
}

fn chat(text: &str) -> String {
    serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
        .to_string()
}

fn reply(text: &str) -> String {
    serde_json::json!({"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}}).to_string()
}

async fn search_ids(
    s: &Store,
    e: crate::domain::EndpointId,
    q: &str,
) -> Vec<crate::domain::TraceId> {
    let f = TraceFilter {
        search: Some(q.into()),
        ..Default::default()
    };
    s.list_traces(e, &f, None, 100)
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.id)
        .collect()
}

store_test!(search_finds_substrings_in_bodies, |db| {
    let s = &db.store;
    let (u, o, e) = org_and_endpoint(s).await;
    let other = second_endpoint(s, &o, &u).await;
    // A 200 KB agent transcript with the needle near its end, in a JSON-escaped string.
    let filler: String = (0..9000)
        .map(|i| format!("turn {i} reads a file. "))
        .collect();
    assert!(filler.len() > 200_000);
    let big = chat(&format!(
        "{filler} then \"Zebra-Quokka\" said: 50% of a_b\nOK"
    ));
    let drafts = vec![
        draft_with(o.id, e.id, &big, &reply("done")),
        draft_with(
            o.id,
            e.id,
            &chat("plain question"),
            &reply("the answer is Marmalade"),
        ),
        draft_with(o.id, e.id, &chat("nothing here"), &reply("nothing")),
        draft_with(o.id, other.id, &chat("zebra-quokka elsewhere"), &reply("x")),
        draft_with(
            o.id,
            e.id,
            &serde_json::json!({"model": "gpt-4o", "api_key": "sk-secretvalue123", "messages": []})
                .to_string(),
            &reply("y"),
        ),
    ];
    let ids: Vec<_> = drafts.iter().map(|d| d.id).collect();
    assert_eq!(crate::recorder::write_now(s, drafts).await.unwrap(), 5);

    // Case-insensitive, through JSON escaping, scoped to the endpoint.
    assert_eq!(search_ids(s, e.id, "zebra-QUOKKA").await, vec![ids[0]]);
    assert_eq!(
        search_ids(s, e.id, "\"Zebra-Quokka\" said").await,
        vec![ids[0]]
    );
    assert_eq!(search_ids(s, other.id, "Zebra-Quokka").await, vec![ids[3]]);
    // Response text is searched too.
    assert_eq!(search_ids(s, e.id, "marmalade").await, vec![ids[1]]);
    // Query syntax is literal text: LIKE wildcards, FTS operators, quotes.
    assert_eq!(search_ids(s, e.id, "50% of a_b").await, vec![ids[0]]);
    assert!(search_ids(s, e.id, "5_%").await.is_empty());
    assert!(search_ids(s, e.id, "zebra OR nothing").await.is_empty());
    assert!(search_ids(s, e.id, "NEAR(zebra quokka)").await.is_empty());
    // Punctuation alone: matched literally on SQLite; refused at once on Postgres, whose
    // trigram index has nothing to look up (it would scan every body).
    let f = TraceFilter {
        search: Some("\"\"\"".into()),
        ..Default::default()
    };
    match s.list_traces(e.id, &f, None, 100).await {
        Ok(page) => {
            assert!(db.schema.is_none());
            assert!(page.rows.is_empty());
        }
        Err(err) => {
            assert!(db.schema.is_some());
            assert!(matches!(err, SearchError::NoWord), "{err}");
        }
    }
    // Credential fields are redacted in storage, so not searchable either.
    assert!(search_ids(s, e.id, "secretvalue").await.is_empty());
    // Fewer than three characters cannot use the trigram index: a clear error, not a scan.
    let short = TraceFilter {
        search: Some("ab".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.list_traces(e.id, &short, None, 10).await,
        Err(SearchError::TooShort)
    ));
    // Search combines with filters.
    let f = TraceFilter {
        search: Some("zebra".into()),
        model: Some("claude".into()),
        ..Default::default()
    };
    assert!(
        s.list_traces(e.id, &f, None, 10)
            .await
            .unwrap()
            .rows
            .is_empty()
    );

    // Retention removes traces from the index too.
    assert_eq!(
        s.delete_traces_before(crate::domain::now_ms() + 1000, 100)
            .await
            .unwrap(),
        5
    );
    assert!(search_ids(s, e.id, "zebra").await.is_empty());
});

store_test!(search_results_page_without_gaps, |db| {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    let mut all = Vec::new();
    for batch in 0..3 {
        let drafts: Vec<_> = (0..40)
            .map(|i| {
                let word = if i % 2 == 0 { "needle" } else { "hay" };
                draft_with(
                    o.id,
                    e.id,
                    &chat(&format!("{word} {batch} {i}")),
                    &reply("ok"),
                )
            })
            .collect();
        all.extend(
            drafts
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, d)| d.id),
        );
        crate::recorder::write_now(s, drafts).await.unwrap();
    }
    let f = TraceFilter {
        search: Some("needle".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_traces(e.id, &f, after, 7).await.unwrap();
        assert!(page.rows.len() <= 7);
        seen.extend(page.rows.iter().map(|r| r.id));
        match page.next {
            Some(c) => after = Some(Cursor::decode(&c.encode()).unwrap()),
            None => break,
        }
    }
    let mut want = all.clone();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, want, "every match exactly once");
    assert_eq!(seen.len(), 60);
});

store_test!(trace_list_filters_and_pages, |db| {
    let s = &db.store;
    let (u, o, e) = org_and_endpoint(s).await;
    let other = second_endpoint(s, &o, &u).await;
    let key = crate::domain::VirtualKeyId::new_v4();
    let base = 1_700_000_000_000;
    let mut records = Vec::new();
    for i in 0..300i64 {
        let mut r = crate::store::testing::sample_record(o.id, e.id, base + (i / 3) * 1000);
        r.model = Some(["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro"][(i % 3) as usize].into());
        if i % 5 == 0 {
            r.auth_mode = "virtual_key".into();
            r.virtual_key_id = Some(key);
        }
        if i % 7 == 0 {
            r.status_code = 429;
        }
        if i % 11 == 0 {
            r.outcome = crate::domain::Outcome::ClientDisconnected;
        }
        records.push(r);
    }
    records.push(crate::store::testing::sample_record(
        o.id,
        other.id,
        base + 5,
    ));
    s.insert_traces(&records).await.unwrap();
    let mine: Vec<_> = records.iter().filter(|r| r.endpoint_id == e.id).collect();

    type Keep = Box<dyn Fn(&&crate::store::traces::TraceRecord) -> bool>;
    let cases: Vec<(TraceFilter, Keep)> = vec![
        (TraceFilter::default(), Box::new(|_| true)),
        (
            TraceFilter {
                model: Some("claude-sonnet-4-5".into()),
                ..Default::default()
            },
            Box::new(|r| r.model.as_deref() == Some("claude-sonnet-4-5")),
        ),
        (
            TraceFilter {
                auth_mode: Some("virtual_key".into()),
                ..Default::default()
            },
            Box::new(|r| r.auth_mode == "virtual_key"),
        ),
        (
            TraceFilter {
                key: Some(key),
                ..Default::default()
            },
            Box::new(move |r| r.virtual_key_id == Some(key)),
        ),
        (
            TraceFilter {
                errors: Some(true),
                ..Default::default()
            },
            Box::new(|r| r.status_code >= 400 || r.outcome != crate::domain::Outcome::Ok),
        ),
        (
            TraceFilter {
                errors: Some(false),
                ..Default::default()
            },
            Box::new(|r| r.status_code < 400 && r.outcome == crate::domain::Outcome::Ok),
        ),
        (
            TraceFilter {
                from: Some(base + 10_000),
                to: Some(base + 20_000),
                model: Some("gpt-4o".into()),
                ..Default::default()
            },
            Box::new(move |r| {
                r.started_at >= base + 10_000
                    && r.started_at < base + 20_000
                    && r.model.as_deref() == Some("gpt-4o")
            }),
        ),
    ];
    for (filter, keep) in cases {
        let mut want: Vec<_> = mine
            .iter()
            .filter(|r| keep(r))
            .map(|r| (r.started_at, r.id))
            .collect();
        want.sort_by(|a, b| b.cmp(a));
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = s.list_traces(e.id, &filter, after, 13).await.unwrap();
            got.extend(page.rows.iter().map(|r| (r.started_at, r.id)));
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(got, want, "{filter:?}");
    }
});

store_test!(overview_totals_match_traces, |db| {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    let day = 86_400_000;
    let base = 1_700_006_400_000 / day * day;
    let key = crate::domain::VirtualKeyId::new_v4();
    let mut records = Vec::new();
    for i in 0..90i64 {
        let mut r = crate::store::testing::sample_record(o.id, e.id, base + (i % 3) * day + i);
        r.usage.input_tokens = Some(100 + i as u64);
        r.usage.output_tokens = Some(i as u64);
        r.cost_nanos = Some(1000 * i);
        r.cost_estimated = i % 2 == 0;
        r.model = Some(if i % 4 == 0 { "gpt-4o-mini" } else { "gpt-4o" }.into());
        if i % 3 == 0 {
            r.virtual_key_id = Some(key);
        }
        // Every fifth call needed a second try; every tenth was then served by a fallback
        // (after passing over one it could not use).
        if i % 5 == 0 {
            let a = |fallback: bool, skipped: bool| crate::domain::Attempt {
                provider: "openai".into(),
                model: None,
                credential: None,
                status: 503,
                latency_ms: 1,
                error: None,
                translated: None,
                fallback,
                skipped,
            };
            r.attempts = vec![a(false, false), a(true, true), a(i % 10 == 0, false)];
        }
        records.push(r);
    }
    s.insert_traces(&records).await.unwrap();
    let days = s.daily_totals(e.id, base).await.unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(
        days.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        vec![base, base + day, base + 2 * day]
    );
    let sum = |f: &dyn Fn(&crate::store::traces::DailyTotals) -> i64| {
        days.iter().map(|(_, t)| f(t)).sum::<i64>()
    };
    assert_eq!(sum(&|t| t.requests), 90);
    assert_eq!(
        sum(&|t| t.input_tokens),
        records
            .iter()
            .map(|r| r.usage.input_tokens.unwrap() as i64)
            .sum::<i64>()
    );
    assert_eq!(sum(&|t| t.output_tokens), (0..90).sum::<i64>());
    assert_eq!(
        sum(&|t| t.cost_billed_nanos + t.cost_estimated_nanos),
        records.iter().map(|r| r.cost_nanos.unwrap()).sum::<i64>()
    );
    assert_eq!(
        sum(&|t| t.cost_estimated_nanos),
        (0..90)
            .filter(|i| i % 2 == 0)
            .map(|i| 1000 * i)
            .sum::<i64>()
    );
    assert_eq!(sum(&|t| t.retried), 18);
    assert_eq!(sum(&|t| t.fell_back), 9);
    // Later days only.
    assert_eq!(s.daily_totals(e.id, base + day).await.unwrap().len(), 2);

    let models = s
        .breakdown(e.id, base, crate::store::observe::Dimension::Model)
        .await
        .unwrap();
    assert_eq!(models[0].label, "gpt-4o");
    assert_eq!(models[0].totals.requests, 67);
    assert_eq!(models[1].totals.requests, 23);
    let keys = s
        .breakdown(e.id, base, crate::store::observe::Dimension::Key)
        .await
        .unwrap();
    let by_key = keys
        .iter()
        .find(|b| b.label == key.0.simple().to_string())
        .expect("key row");
    assert_eq!(by_key.totals.requests, 30);
    let modes = s
        .breakdown(e.id, base, crate::store::observe::Dimension::AuthMode)
        .await
        .unwrap();
    assert_eq!(modes.len(), 1);
    assert_eq!(
        (modes[0].label.as_str(), modes[0].totals.requests),
        ("byok", 90)
    );
    assert_eq!(
        s.endpoint_models(e.id).await.unwrap(),
        vec!["gpt-4o".to_string(), "gpt-4o-mini".to_string()]
    );
});

store_test!(sessions_group_agent_calls, |db| {
    let s = &db.store;
    let (_, o, e) = org_and_endpoint(s).await;
    assert!(!s.has_sessions(e.id).await.unwrap());
    let base = 1_700_000_000_000;
    let offset = |key: &str| match key {
        "cc:abc:222" => 20,
        _ => key.len() as i64,
    };
    let mut records = Vec::new();
    for (key, parent, n, preview) in [
        ("cc:abc:111", Some("cc:abc"), 5, "Refactor the parser"),
        // The sub-agent starts later than its parent session (the
        // related list is in start order).
        ("cc:abc:222", Some("cc:abc"), 2, "Sub-agent: find usages"),
        ("fp:333", None, 3, "Write a haiku about Rust"),
    ] {
        for i in 0..n {
            let mut r =
                crate::store::testing::sample_record(o.id, e.id, base + i * 10_000 + offset(key));
            r.session_key = Some(key.into());
            r.session_parent = parent.map(Into::into);
            r.session_preview = Some(preview.into());
            r.latency_us = 3_000_000;
            if i == 1 {
                r.status_code = 500;
            }
            records.push(r);
        }
    }
    // Two batches, as the recorder would write them: totals accumulate.
    s.insert_traces(&records[..4]).await.unwrap();
    s.insert_traces(&records[4..]).await.unwrap();
    assert!(s.has_sessions(e.id).await.unwrap());
    let all = s.list_sessions(e.id, None, None, 50).await.unwrap();
    assert_eq!(all.len(), 3);
    let main = all.iter().find(|r| r.session_key == "cc:abc:111").unwrap();
    assert_eq!(main.calls, 5);
    assert_eq!(main.errors, 1);
    assert_eq!(main.parent.as_deref(), Some("cc:abc"));
    assert_eq!(main.first_at, base + 10);
    assert_eq!(main.last_end_at, base + 40_000 + 10 + 3_000);
    assert_eq!(main.input_tokens, 50);
    assert_eq!(main.preview, "Refactor the parser");
    assert_eq!(
        all[0].session_key, "cc:abc:111",
        "most recently active first"
    );
    let found = s
        .list_sessions(e.id, Some("HAIKU"), None, 50)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].session_key, "fp:333");
    assert!(
        s.list_sessions(e.id, Some("100%"), None, 50)
            .await
            .unwrap()
            .is_empty()
    );
    let calls = s.session_traces(e.id, "cc:abc:111", 100).await.unwrap();
    assert_eq!(calls.len(), 5);
    assert!(calls.windows(2).all(|w| w[0].started_at <= w[1].started_at));
    assert_eq!(s.session(e.id, "fp:333").await.unwrap().unwrap().calls, 3);
    assert!(s.session(e.id, "nope").await.unwrap().is_none());
    let related = s.related_sessions(e.id, "cc:abc", 10).await.unwrap();
    assert_eq!(
        related
            .iter()
            .map(|r| r.session_key.as_str())
            .collect::<Vec<_>>(),
        vec!["cc:abc:111", "cc:abc:222"]
    );
});

store_test!(slow_queries_are_cut_off, |db| {
    let s = &db.store;
    let t = std::time::Instant::now();
    let r = s
        .slow_query_within(std::time::Duration::from_millis(100))
        .await;
    assert!(matches!(r, Err(SearchError::TooSlow)), "{r:?}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    // The connections went back to the pool without the budget: later queries run normally.
    for _ in 0..20 {
        s.is_initialized().await.unwrap();
    }
});

store_test!(
    session_pages_skip_none_that_end_in_the_same_millisecond,
    |db| {
        let s = &db.store;
        let (_, o, e) = org_and_endpoint(s).await;
        let base = 1_700_000_000_000;
        let mut records = Vec::new();
        // Five two-call sessions that all end at the same instant, and one that ends earlier.
        for (key, start) in [
            ("cc:a", base),
            ("cc:b", base),
            ("cc:c", base),
            ("cc:d", base),
            ("cc:e", base),
            ("cc:old", base - 60_000),
        ] {
            for _ in 0..2 {
                let mut r = crate::store::testing::sample_record(o.id, e.id, start);
                r.session_key = Some(key.into());
                records.push(r);
            }
        }
        s.insert_traces(&records).await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<crate::store::observe::SessionCursor> = None;
        loop {
            let page = s
                .list_sessions(e.id, None, after.as_ref(), 2)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(crate::store::observe::SessionCursor {
                last_end_at: last.last_end_at,
                key: last.session_key.clone(),
            });
            seen.extend(page.iter().map(|r| r.session_key.clone()));
        }
        assert_eq!(seen, ["cc:e", "cc:d", "cc:c", "cc:b", "cc:a", "cc:old"]);
        let c = crate::store::observe::SessionCursor {
            last_end_at: base,
            key: "fp:x_y".into(),
        };
        assert_eq!(
            crate::store::observe::SessionCursor::decode(&c.encode()),
            Some(c)
        );
        assert_eq!(crate::store::observe::SessionCursor::decode("nope"), None);
    }
);
