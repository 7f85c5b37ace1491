//! Shutdown with streams open, and protocol limits against the real server loop.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::fixture_with;

#[tokio::test]
async fn sigterm_drains_then_cuts_open_streams_and_keeps_every_trace() {
    let mut f = fixture_with(|env| {
        env.insert("ANTIX_SHUTDOWN_TIMEOUT_MS".into(), "600".into());
    })
    .await;
    let url = format!("{}/chat/completions", f.base("openai"));
    // A short stream that finishes within the grace period, and a long one that cannot.
    let short = f
        .app
        .client
        .post(&url)
        .bearer_auth("sk-x")
        .header("x-mock", "chunks=5;delay_ms=50")
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "short"}]}))
        .send()
        .await
        .unwrap();
    let long = f
        .app
        .client
        .post(&url)
        .bearer_auth("sk-x")
        .header("x-mock", "chunks=500;delay_ms=50")
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "long"}]}))
        .send()
        .await
        .unwrap();
    let stopping = f.app.begin_shutdown().unwrap();
    let started = std::time::Instant::now();
    // Readiness fails at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let short_text = short.text().await.unwrap();
    assert!(
        short_text.contains("[DONE]"),
        "the short stream should finish: {short_text}"
    );
    let mut long_text = String::new();
    let mut s = long.bytes_stream();
    while let Some(Ok(c)) = s.next().await {
        long_text.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(long_text.contains("shutting down"), "{long_text}");
    assert!(!long_text.contains("[DONE]"));
    stopping.await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    let traces = f.traces(2).await;
    let outcomes: Vec<&str> = traces.iter().map(|t| t.outcome.as_str()).collect();
    assert!(
        outcomes.contains(&"ok") && outcomes.contains(&"shutdown_aborted"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed_and_huge_headers_refused() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_HEADER_TIMEOUT_MS".into(), "500".into());
    })
    .await;
    let started = std::time::Instant::now();
    // Slowloris: half a request line, then nothing.
    let mut slow = tokio::net::TcpStream::connect(f.app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Silent: connects and sends nothing.
    let mut silent = tokio::net::TcpStream::connect(f.app.addr).await.unwrap();
    let mut buf = [0u8; 256];
    for conn in [&mut slow, &mut silent] {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("connection was not closed")
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(3));

    let res = f
        .app
        .client
        .get(f.app.url("/healthz"))
        .header("x-big", "a".repeat(1 << 20))
        .send()
        .await;
    match res {
        Ok(r) => assert_eq!(r.status(), 431),
        // The server may close before the client finishes writing a megabyte of headers.
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "{e}"),
    }

    // Unauthenticated portal posts are capped small.
    let res = f
        .app
        .client
        .post(f.app.url("/api/login"))
        .header("origin", "http://127.0.0.1:3000")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // The server is still healthy.
    assert_eq!(
        f.app
            .client
            .get(f.app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn fuzzed_credentials_never_cause_a_5xx_or_a_leak() {
    let f = fixture_with(|_| {}).await;
    let url = format!("{}/chat/completions", f.base("openai"));
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let specials = [
        "' OR '1'='1",
        "sk-vk-' OR 1=1 --",
        "sk-vk-",
        "sk-antix-\u{0}",
        "Bearer",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "sk-vk-%00%ff",
        "sk-vk-😀😀😀",
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..400 {
        let len = (next() % 200) as usize;
        let mut value: String = (0..len)
            .map(|_| char::from_u32((next() % 0x7e) as u32 + 1).unwrap_or('x'))
            .filter(|c| !c.is_control())
            .collect();
        if i % 3 == 0 {
            value = format!("sk-vk-{value}");
        }
        if i < specials.len() {
            value = specials[i].to_owned();
        }
        let header = ["authorization", "x-api-key", "x-goog-api-key", "api-key"][i % 4];
        let Ok(hv) = reqwest::header::HeaderValue::from_str(&value) else {
            continue;
        };
        let res = f
            .app
            .client
            .post(&url)
            .header(header, hv)
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap();
        *statuses.entry(res.status().as_u16()).or_insert(0) += 1;
        assert!(
            res.status().as_u16() < 500,
            "{header}: {value:?} → {}",
            res.status()
        );
    }
    // Long values too.
    let res = f
        .app
        .client
        .post(&url)
        .header("x-api-key", format!("sk-vk-{}", "A".repeat(60_000)))
        .json(&json!({"model": "gpt-4o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Every value starting with the virtual-key prefix was refused without reaching upstream:
    // only the non-prefixed ones (BYOK) were forwarded.
    let forwarded = f.mock.stat("requests");
    let byok = statuses.get(&200).copied().unwrap_or(0);
    assert_eq!(forwarded, byok as u64, "{statuses:?}");
}
