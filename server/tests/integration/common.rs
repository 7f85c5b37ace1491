//! Spawns the application on port 0 with a fresh SQLite database and data folder.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use antix::Services;
use antix::config::Settings;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The proxy's own address, when `ANTIX_PROXY_LISTEN` is set.
    pub proxy_addr: Option<SocketAddr>,
    /// The metrics listener's address, when `ANTIX_METRICS_LISTEN` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub services: Services,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// A fixed key so tests can compare derived values; real deployments generate or configure one.
pub const TEST_MASTER_KEY: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub fn test_env(dir: &std::path::Path) -> BTreeMap<String, String> {
    [
        ("ANTIX_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("antix.db").display()),
        ),
        ("ANTIX_DATA_DIR", dir.display().to_string()),
        ("ANTIX_MASTER_KEY", TEST_MASTER_KEY.to_owned()),
        ("ANTIX_CONFIG", String::new()),
        ("ANTIX_PUBLIC_URL", "http://127.0.0.1:3000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The mock provider, in-process on a free port.
pub struct Mock {
    pub addr: SocketAddr,
    pub state: server::mock_provider::MockState,
}

impl Mock {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests the mock received, whatever their route.
    pub fn seen_count(&self) -> usize {
        let seen = self.state.seen();
        if seen.is_empty() {
            0
        } else {
            seen.lines().count()
        }
    }

    pub fn stat(&self, name: &str) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.state.stats;
        match name {
            "requests" => s.requests.load(Relaxed),
            "open" => s.streams_open.load(Relaxed),
            "finished" => s.streams_finished.load(Relaxed),
            "cancelled" => s.streams_cancelled.load(Relaxed),
            _ => panic!("unknown stat {name}"),
        }
    }
}

pub async fn spawn_mock() -> Mock {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = server::mock_provider::MockState::default();
    let router = server::mock_provider::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Mock { addr, state }
}

pub async fn spawn_app_with(customize: impl FnOnce(&mut BTreeMap<String, String>)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    customize(&mut env);
    let settings = Settings::from_sources(&env).unwrap();
    let options = server::leptos_options(&settings);
    let (services, _) = Services::start(settings).await.unwrap();
    let app = server::Application::build(services.clone(), options)
        .await
        .unwrap();
    let addr = app.local_addr().unwrap();
    let proxy_addr = app.proxy_addr();
    let metrics_addr = app.metrics_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        addr,
        proxy_addr,
        metrics_addr,
        services,
        client,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Triggers the stop signal without waiting.
    pub fn begin_shutdown(&mut self) -> Option<tokio::task::JoinHandle<std::io::Result<()>>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An app wired to a mock provider, with an organization, its admin, an org-shared endpoint,
/// a virtual key and provider credentials for all three providers.
pub struct Fixture {
    pub app: TestApp,
    pub mock: Mock,
    pub admin: antix::domain::User,
    pub org: antix::domain::Organization,
    pub endpoint: antix::domain::Endpoint,
    pub vk: String,
}

/// The credential the organization has on file; tests check it reaches the provider and
/// never the store.
pub const ORG_SECRET: &str = "sk-org-canary-5d1f0e7b9c";

pub async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

pub async fn fixture_with(customize: impl FnOnce(&mut BTreeMap<String, String>)) -> Fixture {
    use secrecy::{ExposeSecret, SecretString};
    let mock = spawn_mock().await;
    let url = mock.url();
    let app = spawn_app_with(|env| {
        for var in [
            "ANTIX_UPSTREAM_OPENAI",
            "ANTIX_UPSTREAM_ANTHROPIC",
            "ANTIX_UPSTREAM_GEMINI",
        ] {
            env.insert(var.into(), url.clone());
        }
        customize(env);
    })
    .await;
    let s = &app.services;
    let (admin, org, endpoint) = org_with_endpoint(s, "test").await;
    let issued = antix::virtual_keys::issue(
        &s.store,
        &s.keys,
        org.id,
        admin.id,
        "ci",
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    for p in antix::domain::Provider::ALL {
        antix::credentials::set(
            &s.store,
            &s.keys,
            &antix::credentials::CredentialInput::single(
                org.id,
                *p,
                &SecretString::from(ORG_SECRET),
                None,
                admin.id,
                0,
            ),
        )
        .await
        .unwrap();
    }
    Fixture {
        vk: issued.secret.expose_secret().to_owned(),
        app,
        mock,
        admin,
        org,
        endpoint,
    }
}

impl Fixture {
    /// The endpoint's base URL for a provider segment.
    pub fn base(&self, provider: &str) -> String {
        self.app
            .url(&format!("/v1/{}/{provider}", self.endpoint.id))
    }

    /// Waits until `n` traces are stored (the recorder writes off the request path).
    pub async fn traces(&self, n: usize) -> Vec<antix::store::traces::TraceRow> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let rows = self
                .app
                .services
                .store
                .recent_traces(self.endpoint.id, 10_000)
                .await
                .unwrap();
            if rows.len() >= n || std::time::Instant::now() > deadline {
                assert_eq!(rows.len(), n, "trace count");
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    pub async fn trace(&self) -> antix::store::traces::TraceRow {
        self.traces(1).await.remove(0)
    }

    /// Every stored byte of a trace (row, headers, decompressed bodies), for canary checks.
    pub async fn stored_text(&self, id: antix::domain::TraceId) -> String {
        let s = &self.app.services.store;
        let row = s.trace(id).await.unwrap().unwrap();
        let b = s.trace_bodies(id).await.unwrap().unwrap();
        let un = |v: &Option<Vec<u8>>| {
            v.as_ref()
                .map(|c| {
                    String::from_utf8_lossy(
                        &antix::store::compression::decompress(c, 64 << 20).unwrap(),
                    )
                    .into_owned()
                })
                .unwrap_or_default()
        };
        format!(
            "{row:?}\n{}\n{}\n{}\n{}\n{}",
            b.request_headers,
            b.response_headers,
            un(&b.request_body),
            un(&b.response_body),
            un(&b.response_assembled)
        )
    }
}

/// A test database's Postgres URL, its connections confined to the test's own schema.
pub fn postgres_url(db: &antix::store::testing::TestDb) -> String {
    let schema = db.schema.clone().unwrap();
    let sep = if db.url.contains('?') { '&' } else { '?' };
    format!(
        "{}{sep}options=-c%20search_path%3D{schema}%2Cpublic",
        db.url
    )
}

/// Points a gateway's environment at `database` and every provider at `mock`.
pub fn gateway_env(env: &mut BTreeMap<String, String>, database: &str, mock: &str) {
    env.insert("DATABASE_URL".into(), database.to_owned());
    for var in [
        "ANTIX_UPSTREAM_OPENAI",
        "ANTIX_UPSTREAM_ANTHROPIC",
        "ANTIX_UPSTREAM_GEMINI",
    ] {
        env.insert(var.into(), mock.to_owned());
    }
}

/// The first administrator, their organization, and an org-shared endpoint called `name`.
pub async fn org_with_endpoint(
    s: &Services,
    name: &str,
) -> (
    antix::domain::User,
    antix::domain::Organization,
    antix::domain::Endpoint,
) {
    let (admin, org) = s
        .store
        .create_first_admin(&antix::store::accounts::NewAdmin {
            email: "ada@example.com",
            name: "Ada",
            password_hash: "x",
            org_name: "Acme",
        })
        .await
        .unwrap();
    let endpoint = s
        .store
        .create_endpoint(&antix::store::endpoints::NewEndpoint {
            org: org.id,
            owner: admin.id,
            scope: antix::domain::Scope::OrgShared,
            name,
        })
        .await
        .unwrap();
    (admin, org, endpoint)
}

/// The password of every user [`two_orgs`] creates.
pub const PASSWORD: &str = "a long enough password";

/// Two organizations for permission tests: Acme (Ada, its first admin, and Bob in `bob_role`)
/// and Evil (Eve's), with an org-shared endpoint in each and a personal endpoint of Ada's.
pub struct TwoOrgs {
    pub app: TestApp,
    pub ada: antix::domain::User,
    pub bob: antix::domain::User,
    pub eve: antix::domain::User,
    pub acme: antix::domain::Organization,
    pub evil: antix::domain::Organization,
    pub acme_shared: uuid::Uuid,
    pub ada_personal: uuid::Uuid,
    pub evil_shared: uuid::Uuid,
}

pub async fn two_orgs(bob_role: antix::domain::Role) -> TwoOrgs {
    use antix::domain::Scope;
    use antix::store::endpoints::NewEndpoint;
    let app = spawn_app().await;
    let s = &app.services;
    let hash = antix::crypto::hash_password(PASSWORD).unwrap();
    let (ada, acme) = s
        .store
        .create_first_admin(&antix::store::accounts::NewAdmin {
            email: "ada@example.com",
            name: "Ada",
            password_hash: &hash,
            org_name: "Acme",
        })
        .await
        .unwrap();
    let bob = s
        .store
        .create_user("bob@example.com", "Bob", &hash)
        .await
        .unwrap();
    s.store
        .add_membership(acme.id, bob.id, bob_role)
        .await
        .unwrap();
    let eve = s
        .store
        .create_user("eve@example.com", "Eve", &hash)
        .await
        .unwrap();
    let evil = s.store.create_organization("Evil", eve.id).await.unwrap();
    let ep = |org, owner, scope, name: &'static str| {
        let store = s.store.clone();
        async move {
            store
                .create_endpoint(&NewEndpoint {
                    org,
                    owner,
                    scope,
                    name,
                })
                .await
                .unwrap()
                .id
                .0
        }
    };
    let acme_shared = ep(acme.id, ada.id, Scope::OrgShared, "acme shared").await;
    let ada_personal = ep(acme.id, ada.id, Scope::Personal, "ada personal").await;
    let evil_shared = ep(evil.id, eve.id, Scope::OrgShared, "evil shared").await;
    TwoOrgs {
        app,
        ada,
        bob,
        eve,
        acme,
        evil,
        acme_shared,
        ada_personal,
        evil_shared,
    }
}
