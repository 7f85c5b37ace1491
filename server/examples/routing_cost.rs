//! What routing adds to one proxied call, in CPU time: the pieces the gateway runs on every
//! call (credential pick, the fallback header lookup, the retry verdict on the answer) and, for
//! a call translated to another provider's shape, the request and answer translations.
//!
//!     cargo run --release -p server --example routing_cost
//!
//! Prints nanoseconds per call, the median of 5 runs of many calls each. Not a test: a figure
//! to compare before and after a change.

#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark: fixed inputs (a failure is a bug to see at once), figures printed"
)]

use std::hint::black_box;
use std::time::Instant;

use antix::credentials::UpstreamCredential;
use antix::domain::{CredentialId, Endpoint, EndpointId, OrgId, Provider, Scope, UserId};
use antix::gateway::{balance, fallback, retry};

fn median_ns(n: u32, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

fn credential(name: &str, weight: u32) -> UpstreamCredential {
    UpstreamCredential {
        id: CredentialId(uuid::Uuid::new_v4()),
        name: name.into(),
        secret: secrecy::SecretString::from("sk-x".to_owned()),
        base_url: None,
        weight,
        rpm: None,
        tpm: None,
        enabled: true,
    }
}

fn main() {
    let endpoint = Endpoint {
        id: EndpointId::new_v4(),
        org_id: OrgId::new_v4(),
        owner_id: UserId::new_v4(),
        scope: Scope::OrgShared,
        name: "bench".into(),
        created_at: 0,
        archived_at: None,
        passthrough: true,
        fallbacks: Vec::new(),
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer sk-vk-x".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    let ok = http::HeaderMap::new();
    let b = balance::Balancer::default();
    let one = vec![credential("default", 1)];
    let three = vec![credential("a", 3), credential("b", 1), credential("c", 1)];
    let mut r: u64 = 1;

    let per_call = median_ns(1_000_000, || {
        r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let c = b.pick(black_box(&one), &[], r);
        b.count(c.unwrap(), 100);
        black_box(fallback::list(black_box(&headers), &endpoint).unwrap());
        black_box(retry::failure(black_box(200), &ok));
    });
    println!("every call, one credential, no fallbacks: {per_call:.0} ns");
    let three_creds = median_ns(1_000_000, || {
        r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let c = b.pick(black_box(&three), &[], r);
        b.count(c.unwrap(), 100);
    });
    println!("credential pick among three: {three_creds:.0} ns");

    let chat = br#"{"model":"claude-sonnet-4-5","max_tokens":256,"stream":false,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France? Answer in one word."}]}"#;
    let request = median_ns(50_000, || {
        black_box(
            antix::translate::request(
                Provider::OpenAi,
                Provider::Anthropic,
                black_box(chat),
                "claude-sonnet-4-5",
                false,
            )
            .unwrap(),
        );
    });
    let out = antix::translate::request(
        Provider::OpenAi,
        Provider::Anthropic,
        chat,
        "claude-sonnet-4-5",
        false,
    )
    .unwrap();
    let ctx = out.context("claude-sonnet-4-5", 1_700_000_000, "trace-1");
    let answer = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":31,"output_tokens":4,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}"#;
    let response = median_ns(50_000, || {
        black_box(
            antix::translate::response(
                Provider::Anthropic,
                Provider::OpenAi,
                black_box(answer),
                &ctx,
            )
            .unwrap(),
        );
    });
    println!(
        "translated call (OpenAI shape to Claude and back): request {request:.0} ns + answer {response:.0} ns"
    );
}
