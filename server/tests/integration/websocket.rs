//! The Responses API over a WebSocket, as Codex CLI speaks it, through an endpoint: frames
//! relayed both ways, each response its own trace (usage, cost, first event, session), a
//! virtual key's limits on each `response.create`, and a provider without WebSockets answered
//! 426 so the client falls back at once.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Fixture, fixture};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(f: &Fixture, key: &str, extra: &[(&str, &str)]) -> Result<Client, u16> {
    let url = format!(
        "ws://{}/v1/{}/openai/v1/responses",
        f.app.addr, f.endpoint.id
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    req.headers_mut()
        .insert("session-id", "019a-codex-session".parse().unwrap());
    for (k, v) in extra {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// Sends one `response.create` and reads its events up to the last: (events, last event).
async fn create(ws: &mut Client, body: Value) -> (Vec<Value>, Value) {
    let mut frame = body;
    frame["type"] = json!("response.create");
    ws.send(Message::text(frame.to_string())).await.unwrap();
    let mut events = Vec::new();
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        let kind = v["type"].as_str().unwrap_or_default().to_owned();
        events.push(v.clone());
        if kind == "response.completed" || kind == "error" || kind == "response.failed" {
            return (events, v);
        }
    }
}

#[tokio::test]
async fn responses_over_a_websocket_are_relayed_and_each_traced() {
    let f = fixture().await;
    let mut ws = connect(&f, &f.vk, &[]).await.unwrap();
    let (events, done) = create(
        &mut ws,
        json!({"model": "gpt-4o", "input": "Say hello over the socket", "stream": true}),
    )
    .await;
    assert_eq!(done["type"], "response.completed");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.output_text.delta")
    );
    let first_id = done["response"]["id"].as_str().unwrap().to_owned();
    // The next turn chains on the first, as Codex does over a socket.
    let (_, second) = create(
        &mut ws,
        json!({"model": "gpt-4o", "input": [{"role": "user", "content": "and again"}],
               "previous_response_id": first_id, "stream": true}),
    )
    .await;
    assert_eq!(second["type"], "response.completed");
    ws.close(None).await.unwrap();
    let traces = f.traces(2).await;
    for t in &traces {
        assert_eq!(t.method, "WS");
        assert_eq!(t.wire.as_deref(), Some("openai.responses"));
        assert_eq!(t.auth_mode, "virtual_key");
        assert_eq!(t.usage_source, "provider");
        assert!(t.output_tokens.unwrap() > 0);
        assert!(t.cost_nanos.unwrap() > 0);
        assert!(t.ttft_us.is_some());
        assert_eq!(t.outcome, "ok");
    }
    assert_eq!(traces[0].session_key, traces[1].session_key);
    assert_eq!(
        traces[0].session_key.as_deref(),
        Some("cx:019a-codex-session")
    );
    // The organization's credential went upstream; the virtual key never did.
    let seen = f.mock.state.seen();
    assert!(!seen.contains("sk-vk-"), "{seen}");
}

#[tokio::test]
async fn a_virtual_keys_limits_hold_on_every_response_create() {
    let f = fixture().await;
    use secrecy::ExposeSecret;
    let s = &f.app.services;
    let key = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        f.org.id,
        f.admin.id,
        "mini only",
        None,
        &antix::domain::KeyLimits {
            allowed_models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .secret
    .expose_secret()
    .to_owned();
    let mut ws = connect(&f, &key, &[]).await.unwrap();
    let before = f.mock.stat("requests");
    let (_, refused) = create(&mut ws, json!({"model": "gpt-4o", "input": "hi"})).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["status"], 403);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o")
    );
    assert_eq!(f.mock.stat("requests"), before);
    // The socket stays usable for what the key may do.
    let (_, ok) = create(&mut ws, json!({"model": "gpt-4o-mini", "input": "hi"})).await;
    assert_eq!(ok["type"], "response.completed");
    ws.close(None).await.unwrap();
    let traces = f.traces(2).await;
    assert!(
        traces
            .iter()
            .any(|t| t.outcome == "rejected" && t.status_code == 403)
    );
    assert!(traces.iter().any(|t| t.outcome == "ok"));
}

#[tokio::test]
async fn a_provider_without_websockets_gets_the_client_to_fall_back() {
    let f = fixture().await;
    let refused = connect(&f, &f.vk, &[("x-mock", "no_websocket")]).await;
    assert_eq!(refused.err(), Some(426));
    // Unknown endpoints and bad keys are refused before any upstream socket is opened.
    let bad = connect(&f, "sk-vk-not-a-real-key", &[]).await;
    assert_eq!(bad.err(), Some(401));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        f.app
            .services
            .store
            .recent_traces(f.endpoint.id, 10)
            .await
            .unwrap()
            .len(),
        0,
        "a refused upgrade is not a model call"
    );
}
