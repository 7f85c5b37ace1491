//! Health, first-run redirects, security headers and the CSRF guard.

use crate::common::spawn_app;

#[tokio::test]
async fn healthz_reports_version_and_database() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], antix::VERSION);
    assert_eq!(body["database"]["backend"], "sqlite");
    assert_eq!(body["database"]["status"], "ok");

    // A database that stops answering turns the probe into a 503, not a hang or a crash.
    app.services.store.close().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["database"]["status"], "unavailable");
}

#[tokio::test]
async fn empty_instance_redirects_to_setup_then_login() {
    let app = spawn_app().await;
    // As a browser asks for a page.
    let get = |path: &str| {
        app.client
            .get(app.url(path))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
    };
    let res = get("/").await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/setup");
    let res = get("/setup").await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Welcome to Antix"));

    antix::accounts::create_first_admin(
        &app.services.store,
        antix::accounts::FirstAdmin {
            email: "ada@example.com",
            name: "Ada",
            password: "a long password",
            org_name: "Acme",
        },
    )
    .await
    .unwrap();
    let res = get("/").await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/login");
    let res = get("/setup").await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/login");
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_and_unknown_pages_are_404() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/setup")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self' 'nonce-"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap()
        .to_owned();
    let html = res.text().await.unwrap();
    // Every inline script carries this response's nonce.
    for script in html.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap();
        if !tag.contains("src=") {
            assert!(tag.contains(&format!("nonce=\"{nonce}\"")), "{tag}");
        }
    }
    let res = app
        .client
        .get(app.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn cross_site_server_function_calls_are_refused() {
    let app = spawn_app().await;
    let token = app.services.keys.setup_token();
    let form = [
        ("email", "ada@example.com"),
        ("name", "Ada"),
        ("password", "a long password"),
        ("org", "Acme"),
        ("token", token.as_str()),
    ];
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("sec-fetch-site", "cross-site")],
        vec![],
    ] {
        let mut req = app.client.post(app.url("/api/setup")).form(&form);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 403);
    }
    assert!(!app.services.store.is_initialized().await.unwrap());

    // The same call from the portal's own origin goes through.
    let res = app
        .client
        .post(app.url("/api/setup"))
        .header("origin", "http://127.0.0.1:3000")
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    assert!(app.services.store.is_initialized().await.unwrap());
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn setup_reports_field_errors_with_422() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/setup"))
        .header("origin", "http://127.0.0.1:3000")
        .header("accept", "application/json")
        .form(&[
            ("email", "x"),
            ("name", ""),
            ("password", "short"),
            ("org", "Acme"),
            ("token", app.services.keys.setup_token().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("\"field\":\"email\""), "{body}");
    assert!(body.contains("\"field\":\"password\""), "{body}");
    assert!(!app.services.store.is_initialized().await.unwrap());
}

/// Whoever reaches a fresh server first, from the portal's own origin (or through DNS
/// rebinding), cannot claim it without the token from the server's log.
#[tokio::test]
async fn first_run_setup_needs_the_token_from_the_log() {
    let app = spawn_app().await;
    let token = app.services.keys.setup_token();
    let form = |t: &str| {
        [
            ("email", "mallory@example.com".to_owned()),
            ("name", "Mallory".to_owned()),
            ("password", "a long password".to_owned()),
            ("org", "Evil".to_owned()),
            ("token", t.to_owned()),
        ]
    };
    for wrong in ["", "0000000000000000000000000", &token[..token.len() - 1]] {
        let res = app
            .client
            .post(app.url("/api/setup"))
            .header("origin", "http://127.0.0.1:3000")
            .header("accept", "application/json")
            .form(&form(wrong))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{wrong}");
        let body = res.text().await.unwrap();
        assert!(body.contains("\"field\":\"token\""), "{body}");
        assert!(!app.services.store.is_initialized().await.unwrap());
    }
    // The page's link fills it in; with it, setup works (any case, spaces around).
    let page = app
        .client
        .get(app.url(&format!("/setup?token={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("value=\"{token}\"")),
        "token not prefilled"
    );
    let res = app
        .client
        .post(app.url("/api/setup"))
        .header("origin", "http://127.0.0.1:3000")
        .header("accept", "application/json")
        .form(&form(&format!(" {} ", token.to_uppercase())))
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    assert!(app.services.store.is_initialized().await.unwrap());
}
