//! Spawns the application on port 0 with a fresh SQLite database and data folder.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use antix::Services;
use antix::config::Settings;

pub struct TestApp {
    pub addr: SocketAddr,
    pub services: Services,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
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
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        addr,
        services,
        client,
        stop: Some(stop),
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
