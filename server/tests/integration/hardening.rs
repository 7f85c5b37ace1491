//! Overload and hostile input: the memory budget, responses made inert on the portal's origin,
//! deadlines toward slow clients and a slow database.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::fixture_with;

/// Bodies past the memory budget are refused up front with a provider-shaped 503 and
/// Retry-After; what is held is given back when the traces are written.
#[tokio::test]
async fn bodies_past_the_memory_budget_are_refused_and_given_back() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_MEMORY_BUDGET_BYTES".into(), (2 << 20).to_string());
    })
    .await;
    let url = format!("{}/chat/completions", f.base("openai"));
    let big =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x".repeat(3 << 20)}]});
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth("sk-made-up")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retry in a moment")
    );
    assert_eq!(f.mock.stat("requests"), 0);
    // Ordinary calls go through, and once their traces are written nothing is held.
    for _ in 0..5 {
        let res = f
            .app
            .client
            .post(&url)
            .bearer_auth("sk-made-up")
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let _ = res.bytes().await.unwrap();
    }
    let memory = &f.app.services.memory;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while memory.used() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(memory.used(), 0);
    assert!(memory.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

/// An upstream (a custom base URL can point anywhere) answering with a page, a cookie for the
/// portal and a redirect: none of it takes effect on the portal's origin.
#[tokio::test]
async fn proxied_pages_cookies_and_redirects_are_inert() {
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_url = format!("http://{}", evil.local_addr().unwrap());
    let router = axum::Router::new().fallback(|| async {
        (
            [
                ("content-type", "text/html; charset=utf-8"),
                ("set-cookie", "antix_session=stolen; Path=/; HttpOnly"),
                ("location", "https://evil.example/"),
            ],
            "<script>fetch('/api/create_key',{method:'POST'})</script>",
        )
    });
    tokio::spawn(async move { axum::serve(evil, router).await });
    let f = fixture_with(|env| {
        env.insert("ANTIX_UPSTREAM_OPENAI".into(), evil_url.clone());
    })
    .await;
    for path in ["/v1/models", "/v1/chat/completions"] {
        let res = f
            .app
            .client
            .get(format!("{}{path}", f.base("openai")))
            .bearer_auth("sk-byok")
            .send()
            .await
            .unwrap();
        let h = res.headers();
        assert!(h.get("set-cookie").is_none(), "{path}: {h:?}");
        assert!(h.get("location").is_none(), "{path}: {h:?}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("sandbox"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-disposition"], "attachment");
    }
    // The gateway's own answers carry the same headers.
    let res = f
        .app
        .client
        .get(
            f.app
                .url("/v1/00000000-0000-0000-0000-000000000000/openai/v1/models"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}

/// The proxy on its own address: the portal's address no longer serves it, and the proxy's
/// serves nothing of the portal.
#[tokio::test]
async fn the_proxy_can_have_its_own_address() {
    let f = fixture_with(|env| {
        env.insert("ANTIX_PROXY_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("ANTIX_PORTAL_SERVES_PROXY".into(), "false".into());
    })
    .await;
    let proxy = f.app.proxy_addr.unwrap();
    let path = format!("/v1/{}/openai/chat/completions", f.endpoint.id);
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let res = f
        .app
        .client
        .post(format!("http://{proxy}{path}"))
        .bearer_auth("sk-byok")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = f
        .app
        .client
        .post(f.app.url(&path))
        .bearer_auth("sk-byok")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 200, "the portal's address still proxies");
    assert_eq!(f.mock.stat("requests"), 1);
    let res = f
        .app
        .client
        .get(format!("http://{proxy}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = f
        .app
        .client
        .get(format!("http://{proxy}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A client that stops reading is cut off after the write timeout: the server's task, buffers
/// and upstream stream do not live on.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::AsyncWriteExt;
    struct Endless(Arc<AtomicBool>);
    impl Drop for Endless {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let router = axum::Router::new().fallback(move || {
        let guard = Endless(flag.clone());
        async move {
            let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            let stream = futures_util::stream::repeat_with(move || {
                let _ = &guard;
                Ok::<_, std::io::Error>(chunk.clone())
            });
            axum::body::Body::from_stream(stream)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve::serve(
        listener,
        router,
        Duration::from_secs(5),
        Duration::from_millis(300),
        std::future::pending(),
    ));
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // Never read. The socket buffers fill, writes block, the timeout fires.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !dropped.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the response was never dropped"
    );
    drop(client);
}

/// A database that holds its lock: a budgeted call gets a 503 with Retry-After by the request
/// path's deadline, never a hang and never a 401; traffic that needs no write goes on.
#[tokio::test]
async fn a_locked_database_gives_a_fast_503() {
    use secrecy::ExposeSecret;
    let f = fixture_with(|env| {
        env.insert("ANTIX_DATABASE_TIMEOUT_MS".into(), "400".into());
    })
    .await;
    let s = &f.app.services;
    let key = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        f.org.id,
        f.admin.id,
        "budgeted",
        None,
        &antix::domain::KeyLimits {
            budget_total_nanos: Some(1_000_000_000),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .secret
    .expose_secret()
    .to_owned();
    let url = format!("{}/chat/completions", f.base("openai"));
    let chat = json!({"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    // Warm the caches (endpoint, key, credential) while the database answers.
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let db_url = match &s.settings.database_url {
        antix::config::DatabaseUrl::Sqlite(u) => u.clone(),
        antix::config::DatabaseUrl::Postgres(_) => unreachable!(),
    };
    let mut blocker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db_url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&chat)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // A passthrough call needs no write on the request path: it goes through.
    let res = f
        .app
        .client
        .post(&url)
        .bearer_auth("sk-byok")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
}
