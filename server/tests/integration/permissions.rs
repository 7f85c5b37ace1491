//! Every server function that takes an id or does admin work, called by the wrong person:
//! another user's personal endpoint, another organization's endpoint, key or credential, a
//! member doing admin work, a removed member's old session. All refused, and "not yours" looks
//! exactly like "does not exist".

use antix::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{PASSWORD, TestApp, two_orgs};

const ORIGIN: &str = "http://127.0.0.1:3000";

struct Session<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
}

impl<'a> Session<'a> {
    async fn login(app: &'a TestApp, email: &str) -> Session<'a> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = client
            .post(app.url("/api/login"))
            .header("origin", ORIGIN)
            .header("accept", "application/json")
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success() || res.status().is_redirection(),
            "login {email}: {}",
            res.status()
        );
        Session { app, client }
    }

    async fn post(&self, fn_name: &str, form: &[(&str, String)]) -> (StatusCode, String) {
        let res = self
            .client
            .post(self.app.url(&format!("/api/{fn_name}")))
            .header("origin", ORIGIN)
            .header("accept", "application/json")
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    async fn json(&self, fn_name: &str, body: Value) -> (StatusCode, String) {
        let res = self
            .client
            .post(self.app.url(&format!("/api/{fn_name}")))
            .header("origin", ORIGIN)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    async fn get(&self, fn_name: &str, query: &[(&str, String)]) -> (StatusCode, String) {
        let res = self
            .client
            .get(self.app.url(&format!("/api/{fn_name}")))
            .header("accept", "application/json")
            .query(query)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

struct World {
    app: TestApp,
    acme_shared: uuid::Uuid,
    ada_personal: uuid::Uuid,
    evil_shared: uuid::Uuid,
    ada_key: uuid::Uuid,
    evil_key: uuid::Uuid,
    eve_id: uuid::Uuid,
    bob_id: uuid::Uuid,
}

async fn world() -> World {
    let t = two_orgs(Role::Member).await;
    let s = &t.app.services;
    let key = |org, by| {
        let (store, keys) = (s.store.clone(), s.keys.clone());
        async move {
            antix::virtual_keys::issue(&store, &keys, org, by, "k", None, &Default::default())
                .await
                .unwrap()
                .key
                .id
                .0
        }
    };
    let ada_key = key(t.acme.id, t.ada.id).await;
    let evil_key = key(t.evil.id, t.eve.id).await;
    World {
        acme_shared: t.acme_shared,
        ada_personal: t.ada_personal,
        evil_shared: t.evil_shared,
        ada_key,
        evil_key,
        eve_id: t.eve.id.0,
        bob_id: t.bob.id.0,
        app: t.app,
    }
}

#[tokio::test]
async fn endpoints_of_others_are_not_found_and_member_actions_are_refused() {
    let w = world().await;
    let bob = Session::login(&w.app, "bob@example.com").await;
    let eve = Session::login(&w.app, "eve@example.com").await;
    let ghost = uuid::Uuid::new_v4().to_string();

    // Reading: another user's personal endpoint, another org's endpoint, and nothing at all
    // answer identically.
    let missing = bob.get("endpoint", &[("id", ghost.clone())]).await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    for (who, id) in [
        (&bob, w.ada_personal),
        (&bob, w.evil_shared),
        (&eve, w.acme_shared),
        (&eve, w.ada_personal),
    ] {
        let got = who.get("endpoint", &[("id", id.to_string())]).await;
        assert_eq!(got, missing, "{id}");
    }
    // Bob can read the shared one, but not rename or archive it (member), nor touch the
    // personal one or the other organization's.
    assert_eq!(
        bob.get("endpoint", &[("id", w.acme_shared.to_string())])
            .await
            .0,
        StatusCode::OK
    );
    let (st, body) = bob
        .post(
            "rename_endpoint",
            &[("id", w.acme_shared.to_string()), ("name", "x".into())],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, _) = bob
        .post(
            "archive_endpoint",
            &[
                ("id", w.acme_shared.to_string()),
                ("confirm", "acme shared".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = bob
        .post("endpoint_auth", &[("id", w.acme_shared.to_string())])
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a member turned passthrough off");
    for id in [w.ada_personal, w.evil_shared] {
        for (f, extra) in [
            ("rename_endpoint", ("name", "x")),
            ("archive_endpoint", ("confirm", "x")),
            ("endpoint_auth", ("passthrough", "on")),
        ] {
            let (st, _) = bob
                .post(f, &[("id", id.to_string()), (extra.0, extra.1.into())])
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{f} {id}");
        }
        assert_eq!(
            bob.post("duplicate_endpoint", &[("id", id.to_string())])
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
    // Creating: not in an organization one is not a member of; no org-shared as a member.
    let evil_org = w
        .app
        .services
        .store
        .memberships(antix::domain::UserId(w.eve_id))
        .await
        .unwrap()[0]
        .org
        .id
        .0;
    let (st, _) = bob
        .post(
            "create_endpoint",
            &[
                ("org", evil_org.to_string()),
                ("scope", "personal".into()),
                ("name", "x".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let acme_org = w
        .app
        .services
        .store
        .memberships(antix::domain::UserId(w.bob_id))
        .await
        .unwrap()[0]
        .org
        .id
        .0;
    let (st, body) = bob
        .post(
            "create_endpoint",
            &[
                ("org", acme_org.to_string()),
                ("scope", "org_shared".into()),
                ("name", "x".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Only organization admins"), "{body}");
    // Switching into someone else's organization.
    assert_eq!(
        bob.post("switch_org", &[("org", evil_org.to_string())])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // The list shows Bob the shared endpoint only.
    let (_, list) = bob.get("endpoints", &[]).await;
    assert!(list.contains(&w.acme_shared.to_string()));
    assert!(
        !list.contains(&w.ada_personal.to_string()) && !list.contains(&w.evil_shared.to_string())
    );
}

#[tokio::test]
async fn keys_credentials_and_members_are_admin_work_within_one_org() {
    let w = world().await;
    let bob = Session::login(&w.app, "bob@example.com").await;
    let eve = Session::login(&w.app, "eve@example.com").await;
    let ada = Session::login(&w.app, "ada@example.com").await;

    // Keys: members see only their own; nobody reaches another organization's.
    let (_, keys) = bob.get("keys", &[]).await;
    assert!(!keys.contains(&w.ada_key.to_string()));
    for (who, id) in [(&bob, w.ada_key), (&eve, w.ada_key), (&ada, w.evil_key)] {
        assert_eq!(
            who.post("revoke_key", &[("id", id.to_string())]).await.0,
            StatusCode::NOT_FOUND
        );
        let (st, _) = who.json("update_key", json!({"id": id, "form": {"name": "x", "expires": "", "budget_daily": "",
            "budget_monthly": "", "budget_total": "1000000", "rpm": "", "tpm": "", "allowed_models": "", "allowed_endpoints": []}})).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    let form = |endpoints: Vec<uuid::Uuid>| {
        json!({"form": {"name": "mine", "expires": "", "budget_daily": "", "budget_monthly": "", "budget_total": "",
            "rpm": "", "tpm": "", "allowed_models": "", "allowed_endpoints": endpoints}})
    };
    // Members may not issue keys unless the organization allows it…
    assert_eq!(
        bob.json("create_key", form(vec![w.acme_shared])).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, _) = ada
        .post(
            "org_settings",
            &[
                ("max_personal_endpoints", "10".into()),
                ("members_can_create_keys", "on".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // …and then only scoped to endpoints they can see: not unscoped, not someone's personal
    // endpoint, not another organization's.
    for eps in [vec![], vec![w.ada_personal], vec![w.evil_shared]] {
        let (st, body) = bob.json("create_key", form(eps.clone())).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{eps:?}: {body}");
        assert!(body.contains("allowed_endpoints"), "{body}");
    }
    // Nor may they issue a key that calls APIs the gateway cannot meter.
    let mut unmetered = form(vec![w.acme_shared]);
    unmetered["form"]["allow_unmetered"] = json!(true);
    let (st, body) = bob.json("create_key", unmetered).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, body) = bob.json("create_key", form(vec![w.acme_shared])).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("sk-vk-"));

    // Limits are admin work: an admin sets them on bob's key; bob may rename it, not lift them.
    let bob_key: uuid::Uuid = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let limited = |name: &str, budget: &str, unmetered: bool| {
        json!({"id": bob_key, "form": {"name": name, "expires": "", "budget_daily": "", "budget_monthly": "",
            "budget_total": budget, "rpm": "", "tpm": "", "allowed_models": "gpt-4o-mini",
            "allowed_endpoints": [w.acme_shared], "allow_unmetered": unmetered}})
    };
    let (st, b) = ada.json("update_key", limited("mine", "1.25", false)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    for attempt in [
        limited("mine", "1000", false),
        limited("mine", "", false),
        limited("mine", "1.25", true),
        json!({"id": bob_key, "form": {"name": "mine", "expires": "", "budget_daily": "", "budget_monthly": "",
            "budget_total": "1.25", "rpm": "", "tpm": "", "allowed_models": "", "allowed_endpoints": [w.acme_shared]}}),
    ] {
        let (st, b) = bob.json("update_key", attempt).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    }
    let (st, b) = bob
        .json("update_key", limited("renamed", "1.25", false))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (_, keys) = bob.get("keys", &[]).await;
    assert!(
        keys.contains("renamed") && keys.contains("1250000000"),
        "{keys}"
    );

    // Credentials, invitations, roles, removal, settings: admins only.
    let admin_only: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "set_credential",
            vec![
                ("provider", "openai".into()),
                ("name", String::new()),
                ("api_key", "sk-stolen-1234".into()),
                ("base_url", String::new()),
                ("weight", String::new()),
                ("rpm", String::new()),
                ("tpm", String::new()),
            ],
        ),
        (
            "delete_credential",
            vec![("id", uuid::Uuid::new_v4().to_string())],
        ),
        (
            "set_credential_enabled",
            vec![
                ("id", uuid::Uuid::new_v4().to_string()),
                ("enabled", "false".into()),
            ],
        ),
        (
            "test_credential",
            vec![("id", uuid::Uuid::new_v4().to_string())],
        ),
        (
            "invite_member",
            vec![
                ("email", "mallory@example.com".into()),
                ("role", "admin".into()),
            ],
        ),
        (
            "set_role",
            vec![("user_id", w.bob_id.to_string()), ("role", "admin".into())],
        ),
        ("remove_member", vec![("user_id", w.bob_id.to_string())]),
        (
            "org_settings",
            vec![("max_personal_endpoints", "1000".into())],
        ),
    ];
    for (f, args) in &admin_only {
        let (st, body) = bob.post(f, args).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{f}: {body}");
    }
    assert!(
        w.app
            .services
            .store
            .list_credentials(
                w.app
                    .services
                    .store
                    .memberships(antix::domain::UserId(w.bob_id))
                    .await
                    .unwrap()[0]
                    .org
                    .id
            )
            .await
            .unwrap()
            .is_empty()
    );
    // An admin cannot reach into another organization's members.
    assert_eq!(
        ada.post(
            "set_role",
            &[("user_id", w.eve_id.to_string()), ("role", "member".into())]
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ada.post("remove_member", &[("user_id", w.eve_id.to_string())])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // The last admin stays an admin.
    let ada_id = w
        .app
        .services
        .store
        .user_for_login("ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .0
        .id
        .0;
    let (st, body) = ada
        .post(
            "set_role",
            &[("user_id", ada_id.to_string()), ("role", "member".into())],
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");

    // A removed member's session dies, and the keys they issued stop working.
    assert_eq!(
        ada.post("remove_member", &[("user_id", w.bob_id.to_string())])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(bob.get("endpoints", &[]).await.0, StatusCode::UNAUTHORIZED);
    let bob_keys = w
        .app
        .services
        .store
        .list_virtual_keys(
            w.app
                .services
                .store
                .memberships(antix::domain::UserId(ada_id))
                .await
                .unwrap()[0]
                .org
                .id,
        )
        .await
        .unwrap();
    assert!(
        bob_keys
            .iter()
            .filter(|k| k.created_by.0 == w.bob_id)
            .all(|k| k.revoked_at.is_some())
    );
}

#[tokio::test]
async fn nothing_secret_leaves_in_responses() {
    let w = world().await;
    let ada = Session::login(&w.app, "ada@example.com").await;
    let (st, _) = ada
        .post(
            "set_credential",
            &[
                ("provider", "anthropic".into()),
                ("name", String::new()),
                ("api_key", "sk-ant-canary-secret-9876".into()),
                ("base_url", String::new()),
                ("weight", String::new()),
                ("rpm", String::new()),
                ("tpm", String::new()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut all = String::new();
    for f in ["credentials", "keys", "members", "endpoints", "session"] {
        let (st, body) = ada.get(f, &[]).await;
        assert_eq!(st, StatusCode::OK, "{f}");
        all.push_str(&body);
    }
    assert!(all.contains("9876"), "the last four are shown");
    for canary in [
        "sk-ant-canary-secret",
        "argon2",
        "key_hash",
        "ciphertext",
        "password",
    ] {
        assert!(!all.contains(canary), "{canary} leaked");
    }
}

/// Writes a few realistic traces to an endpoint (with a session and searchable text).
async fn traces_for(
    app: &TestApp,
    org: antix::domain::OrgId,
    endpoint: uuid::Uuid,
    word: &str,
) -> Vec<uuid::Uuid> {
    let ep = antix::domain::EndpointId(endpoint);
    let now = antix::domain::now_ms();
    let records: Vec<_> = (0..3)
        .map(|i| {
            let mut r = antix::store::testing::sample_record(org, ep, now - 1000 + i);
            r.search_text = format!("a prompt about {word}");
            r.session_key = Some(format!("fp:{word}"));
            r.session_preview = Some(format!("Plan {word}"));
            r
        })
        .collect();
    app.services.store.insert_traces(&records).await.unwrap();
    records.iter().map(|r| r.id.0).collect()
}

#[tokio::test]
async fn traces_sessions_and_totals_of_others_are_not_found() {
    let w = world().await;
    let org_of = |id: uuid::Uuid| {
        let store = w.app.services.store.clone();
        async move {
            store
                .endpoint(antix::domain::EndpointId(id))
                .await
                .unwrap()
                .unwrap()
                .org_id
        }
    };
    let acme = org_of(w.acme_shared).await;
    let evil = org_of(w.evil_shared).await;
    let shared = traces_for(&w.app, acme, w.acme_shared, "teamwork").await;
    let personal = traces_for(&w.app, acme, w.ada_personal, "diary").await;
    let evil_traces = traces_for(&w.app, evil, w.evil_shared, "heist").await;
    let bob = Session::login(&w.app, "bob@example.com").await;

    // Bob sees the shared endpoint's traces, searchable, with their session.
    let (st, body) = bob
        .get(
            "list_traces",
            &[
                ("endpoint", w.acme_shared.to_string()),
                ("query[q]", "teamwork".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["rows"].as_array().unwrap().len(), 3, "{body}");
    let (st, _) = bob
        .get(
            "get_trace",
            &[
                ("endpoint", w.acme_shared.to_string()),
                ("trace", shared[0].to_string()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    // Another user's personal endpoint and another organization's: not found, for every read.
    for id in [w.ada_personal, w.evil_shared] {
        let e = ("endpoint", id.to_string());
        for (f, extra) in [
            ("endpoint_overview", vec![]),
            ("list_traces", vec![("query[q]", "diary".to_string())]),
            ("list_sessions", vec![("search", String::new())]),
            (
                "get_session",
                vec![("key", String::new()), ("search", String::new())],
            ),
            ("get_trace", vec![("trace", evil_traces[0].to_string())]),
        ] {
            let mut q = vec![e.clone()];
            q.extend(extra);
            let (st, body) = bob.get(f, &q).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{f} {id}: {body}");
        }
    }
    // Ids and searches do not reach across through an endpoint Bob may see.
    for t in [personal[0], evil_traces[0]] {
        let (st, _) = bob
            .get(
                "get_trace",
                &[
                    ("endpoint", w.acme_shared.to_string()),
                    ("trace", t.to_string()),
                ],
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{t}");
    }
    for word in ["heist", "diary"] {
        let (_, body) = bob
            .get(
                "list_traces",
                &[
                    ("endpoint", w.acme_shared.to_string()),
                    ("query[q]", word.into()),
                ],
            )
            .await;
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["rows"].as_array().unwrap().len(), 0, "{word}: {body}");
    }
    let (st, _) = bob
        .get(
            "get_session",
            &[
                ("endpoint", w.acme_shared.to_string()),
                ("key", "fp:heist".into()),
                ("search", String::new()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Bad filter values are field errors, not 500s; a flood of wildcards is plain text.
    let (st, body) = bob
        .get(
            "list_traces",
            &[
                ("endpoint", w.acme_shared.to_string()),
                ("query[key]", "nope".into()),
                ("query[range]", "forever".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("\"key\"") && body.contains("\"range\""),
        "{body}"
    );
    let (st, body) = bob
        .get(
            "list_traces",
            &[
                ("endpoint", w.acme_shared.to_string()),
                ("query[q]", "%%%___***".into()),
            ],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unreadable_arguments_are_a_400() {
    let w = world().await;
    let bob = Session::login(&w.app, "bob@example.com").await;
    let (st, body) = bob
        .get("get_trace", &[("endpoint", "not-a-uuid".into())])
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("Request"), "{body}");
}

#[tokio::test]
async fn exports_follow_the_trace_lists_rules() {
    let w = world().await;
    let acme = w
        .app
        .services
        .store
        .endpoint(antix::domain::EndpointId(w.acme_shared))
        .await
        .unwrap()
        .unwrap()
        .org_id;
    let shared = traces_for(&w.app, acme, w.acme_shared, "teamwork").await;
    traces_for(&w.app, acme, w.ada_personal, "diary").await;
    let bob = Session::login(&w.app, "bob@example.com").await;
    let export = |id: uuid::Uuid, query: &'static str| {
        let client = bob.client.clone();
        let url = w.app.url(&format!("/endpoints/{id}/export?{query}"));
        async move { client.get(url).send().await.unwrap() }
    };

    let res = export(w.acme_shared, "format=csv&q=teamwork").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"antix-traces-"),
        "{disposition}"
    );
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{text}");
    for id in &shared {
        assert!(text.contains(&id.to_string()));
    }
    let res = export(w.acme_shared, "format=jsonl&status=error").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "", "no failed calls");

    // Someone else's personal endpoint, another organization's: the same 404 as an unknown one.
    for id in [w.ada_personal, w.evil_shared, uuid::Uuid::new_v4()] {
        let res = export(id, "format=csv").await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{id}");
    }
    // Bad input is a 422 that names the field; no session is a 401.
    let res = export(w.acme_shared, "format=xlsx").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.text().await.unwrap(), "format: Choose csv or jsonl.\n");
    let res = export(w.acme_shared, "format=csv&q=ab").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().starts_with("q: "));
    let res = w
        .app
        .client
        .get(
            w.app
                .url(&format!("/endpoints/{}/export?format=csv", w.acme_shared)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}
