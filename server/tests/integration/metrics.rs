//! `/metrics`: who may scrape it, what it counts, and that Prometheus' own linter accepts a
//! scrape taken while requests are in flight.

use serde_json::json;

use crate::common::fixture_with;

const TOKEN: &str = "metrics-token-0123456789";

/// The value of the first sample of `name` whose labels contain every one given.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `promtool check metrics` (Debian package `prometheus`) on a scrape. Without promtool the
/// check is skipped with a message, except where `ANTIX_REQUIRE_PROMTOOL=1` (CI) makes it fail.
#[expect(clippy::print_stderr, reason = "a skipped check says so")]
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("ANTIX_REQUIRE_PROMTOOL").ok().as_deref() != Some("1"),
                "ANTIX_REQUIRE_PROMTOOL=1 but promtool cannot run: {e}"
            );
            eprintln!("SKIPPED promtool check: promtool not found ({e}); apt install prometheus");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_need_their_token_and_count_what_the_proxy_did() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_METRICS_TOKEN".into(), TOKEN.into());
    })
    .await;
    let client = &f.app.client;
    let url = f.app.url("/metrics");
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let res = client
        .get(&url)
        .bearer_auth("metrics-token-wrong-000000")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // Twenty calls (half of them streamed) while a scraper reads: the scrape taken under load
    // must be as valid as a quiet one.
    let calls = (0..20).map(|i| {
        let body = json!({"model": "gpt-4o", "stream": i % 2 == 0,
            "messages": [{"role": "user", "content": format!("metrics call {i}")}]});
        client
            .post(format!("{}/chat/completions", f.base("openai")))
            .bearer_auth(&f.vk)
            .json(&body)
            .send()
    });
    let scrapes = (0..5).map(|_| client.get(&url).bearer_auth(TOKEN).send());
    let (answers, scraped) = tokio::join!(
        futures_util::future::join_all(calls),
        futures_util::future::join_all(scrapes)
    );
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.status(), 200);
        a.bytes().await.unwrap();
    }
    for s in scraped {
        let s = s.unwrap();
        assert_eq!(s.status(), 200);
        promtool_accepts(&s.text().await.unwrap());
    }
    f.traces(20).await;

    let res = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    promtool_accepts(&text);
    let ep = format!("endpoint=\"{}\"", f.endpoint.id);
    assert_eq!(
        sample(
            &text,
            "antix_requests_total",
            &[
                &ep,
                "provider=\"openai\"",
                "auth_mode=\"virtual_key\"",
                "outcome=\"ok\""
            ]
        ),
        Some(20.0),
        "{text}"
    );
    // The stored traces' own token counts, summed.
    let rows = f.traces(20).await;
    let input: i64 = rows.iter().filter_map(|t| t.input_tokens).sum();
    assert_eq!(
        sample(
            &text,
            "antix_tokens_total",
            &[&ep, "model=\"gpt-4o\"", "kind=\"input\""]
        ),
        Some(input as f64)
    );
    let cost: i64 = rows.iter().filter_map(|t| t.cost_nanos).sum();
    let shown = sample(
        &text,
        "antix_cost_dollars_total",
        &[&ep, "estimated=\"false\""],
    )
    .unwrap();
    assert!(
        (shown - cost as f64 / 1e9).abs() < 1e-9,
        "{shown} vs {cost} nanodollars"
    );
    assert_eq!(
        sample(
            &text,
            "antix_time_to_first_token_seconds_count",
            &["provider=\"openai\""]
        ),
        Some(10.0)
    );
    assert!(sample(&text, "antix_traces_written_total", &[]).unwrap() >= 20.0);
    assert_eq!(sample(&text, "antix_traces_lost_total", &[]), Some(0.0));
    assert!(
        sample(
            &text,
            "antix_db_pool_connections",
            &["pool=\"write\"", "state=\"max\""]
        )
        .is_some()
    );
    // The token is never part of what is served.
    assert!(!text.contains(TOKEN));
}

#[tokio::test]
async fn the_metrics_listener_serves_without_a_token_and_the_main_one_not_at_all() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_METRICS_LISTEN".into(), "127.0.0.1:0".into());
    })
    .await;
    let metrics = f.app.metrics_addr.expect("a metrics listener");
    let res = f
        .app
        .client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("antix_build_info{version="), "{text}");
    promtool_accepts(&text);
    // Nothing else of the product there.
    let res = f
        .app
        .client
        .get(format!(
            "http://{metrics}/v1/{}/openai/models",
            f.endpoint.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // And no metrics on the public listener without a token configured.
    let res = f
        .app
        .client
        .get(f.app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
