//! The `antix` command line: scripted first admin, and configuration errors that name the
//! variable.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{TEST_MASTER_KEY, test_env};

fn antix(
    env: &std::collections::BTreeMap<String, String>,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_antix"));
    cmd.args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_create_from_stdin_then_refuses_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let env = test_env(dir.path());
    let (code, out, err) = antix(
        &env,
        &[
            "admin",
            "create",
            "--email",
            "Ops@Example.com",
            "--org",
            "Ops",
            "--name",
            "Ops",
        ],
        Some("a long enough password\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Created administrator ops@example.com"),
        "{out}"
    );
    assert!(!out.contains("a long enough password"));

    let settings = antix::config::Settings::from_sources(&env).unwrap();
    let (services, _) = antix::Services::start(settings).await.unwrap();
    let (user, _) = antix::accounts::login(
        &services.store,
        &services.keys,
        &services.logins,
        "ops@example.com",
        "a long enough password",
        "127.0.0.1",
    )
    .await
    .unwrap();
    assert_eq!(user.name, "Ops");

    let (code, _, err) = antix(
        &env,
        &[
            "admin",
            "create",
            "--email",
            "two@example.com",
            "--org",
            "Two",
        ],
        Some("another long password\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("already has an administrator"), "{err}");
}

#[test]
fn admin_create_generates_and_prints_a_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let env = test_env(dir.path());
    let (code, out, err) = antix(
        &env,
        &["admin", "create", "--email", "a@example.com", "--org", "A"],
        Some(""),
    );
    assert_eq!(code, 0, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("Password (shown once"))
        .unwrap();
    let password = line.rsplit(' ').next().unwrap();
    assert_eq!(password.len(), 20);
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.insert("ANTIX_LISTEN".into(), "not-an-address".into());
    let (code, _, err) = antix(&env, &["config"], None);
    assert_eq!(code, 2);
    assert!(err.contains("ANTIX_LISTEN"), "{err}");

    let mut env = test_env(dir.path());
    env.insert("DATABASE_URL".into(), "mysql://nope".into());
    let (code, _, err) = antix(&env, &["config"], None);
    assert_eq!(code, 2);
    assert!(
        err.contains("DATABASE_URL") && err.contains("sqlite://"),
        "{err}"
    );
}

#[test]
fn config_prints_settings_but_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.insert(
        "ANTIX_METRICS_TOKEN".into(),
        "scrape-token-0123456789".into(),
    );
    env.insert("ANTIX_OTEL_ENDPOINT".into(), "http://collector:4318".into());
    env.insert(
        "ANTIX_OTEL_HEADERS".into(),
        "x-api-key=vendor-secret-42".into(),
    );
    let (code, out, err) = antix(&env, &["config"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("http://collector:4318"), "{out}");
    for secret in [
        "scrape-token-0123456789",
        "vendor-secret-42",
        TEST_MASTER_KEY,
    ] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{secret} printed"
        );
    }
    let headers = out
        .lines()
        .find(|l| l.starts_with("ANTIX_OTEL_HEADERS"))
        .unwrap();
    assert!(headers.ends_with("<set>"), "{headers}");
}

#[test]
fn unreachable_database_fails_at_start_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.insert(
        "DATABASE_URL".into(),
        "postgres://nobody@127.0.0.1:1/none".into(),
    );
    let (code, _, err) = antix(
        &env,
        &["admin", "create", "--email", "a@example.com", "--org", "A"],
        Some("x\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("DATABASE_URL"), "{err}");
}

#[test]
fn master_key_is_generated_once_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.remove("ANTIX_MASTER_KEY");
    let (code, _, err) = antix(
        &env,
        &["admin", "create", "--email", "a@example.com", "--org", "A"],
        Some("long password here\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("generated one into the data folder"), "{err}");
    assert!(dir.path().join("master.key").exists());
}

/// A person at a terminal reads the CLI: logs in text on stderr (no JSON lines), the answer alone
/// on stdout, and the generated master key announced once, when it is created.
#[test]
fn commands_talk_to_a_person_and_warn_about_the_master_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.remove("ANTIX_MASTER_KEY");
    let (code, out, err) = antix(
        &env,
        &["admin", "create", "--email", "a@example.com", "--org", "A"],
        Some("long password here\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("generated one into the data folder").count(), 1);
    assert!(
        !err.lines().any(|l| l.trim_start().starts_with('{')),
        "{err}"
    );
    assert!(out.contains("Created administrator"), "{out}");

    let (code, out, err) = antix(
        &env,
        &[
            "endpoint",
            "create",
            "--as",
            "a@example.com",
            "--name",
            "e",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(v["id"].is_string(), "{out}");
    assert!(!err.contains("master"), "warned again: {err}");
    assert!(
        !err.lines().any(|l| l.trim_start().starts_with('{')),
        "{err}"
    );

    // Asked for JSON, it speaks JSON.
    env.insert("ANTIX_LOG_FORMAT".into(), "json".into());
    env.insert("ANTIX_LOG".into(), "debug".into());
    let (code, _, err) = antix(
        &env,
        &["key", "create", "--as", "a@example.com", "--name", "k"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.lines().any(|l| l.starts_with('{')), "{err}");
}

/// `antix admin rotate-master-key` with the key in the data folder: every credential moves to a
/// new key, the files are swapped, and a server started afterwards reads the credentials and
/// still knows every virtual key; a second rotation works the same.
#[tokio::test]
async fn the_master_key_rotates_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.remove("ANTIX_MASTER_KEY");
    let (code, _, err) = antix(
        &env,
        &["admin", "create", "--email", "a@example.com", "--org", "A"],
        Some("long password here\n"),
    );
    assert_eq!(code, 0, "{err}");
    for p in ["openai", "anthropic"] {
        let (code, _, err) = antix(
            &env,
            &[
                "credential",
                "set",
                "--as",
                "a@example.com",
                "--provider",
                p,
            ],
            Some(&format!("sk-{p}-canary-secret\n")),
        );
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = antix(
        &env,
        &[
            "key",
            "create",
            "--as",
            "a@example.com",
            "--name",
            "k",
            "--json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let vk = serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_file = dir.path().join("master.key");
    for round in 0..2 {
        let before = std::fs::read_to_string(&key_file).unwrap();
        let (code, out, err) = antix(&env, &["admin", "rotate-master-key"], None);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("2 credentials re-encrypted"), "{out}");
        let after = std::fs::read_to_string(&key_file).unwrap();
        assert_ne!(before, after, "round {round}");
        assert!(!dir.path().join("master.key.next").exists());
        let settings = antix::config::Settings::from_sources(&env).unwrap();
        let (services, _) = antix::Services::start(settings).await.unwrap();
        let org = services
            .store
            .memberships(
                services
                    .store
                    .user_for_login("a@example.com")
                    .await
                    .unwrap()
                    .unwrap()
                    .0
                    .id,
            )
            .await
            .unwrap()[0]
            .org
            .id;
        for p in [
            antix::domain::Provider::OpenAi,
            antix::domain::Provider::Anthropic,
        ] {
            let c = antix::credentials::get(&services.store, &services.keys, org, p)
                .await
                .unwrap()
                .unwrap();
            use secrecy::ExposeSecret;
            assert_eq!(
                c.secret.expose_secret(),
                &format!("sk-{}-canary-secret", p.as_str())
            );
        }
        assert!(
            services
                .store
                .virtual_key_by_hash(&services.keys.token_hash(&vk))
                .await
                .unwrap()
                .is_some(),
            "the virtual key survives round {round}"
        );
        services.store.close().await;
    }
    let retired = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".retired")
        })
        .count();
    assert_eq!(retired, 2);
}

/// The management commands a script uses, end to end on one database: JSON out, errors that
/// name the flag, exit code 1 when refused.
#[test]
fn endpoints_keys_and_credentials_are_managed_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    let mock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mock_addr = mock.local_addr().unwrap();
    drop(mock);
    env.insert(
        "ANTIX_UPSTREAM_OPENAI".into(),
        format!("http://{mock_addr}"),
    );
    let json = |args: &[&str], stdin: Option<&str>| -> serde_json::Value {
        let (code, out, err) = antix(&env, args, stdin);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    };
    let (code, _, err) = antix(
        &env,
        &[
            "admin",
            "create",
            "--email",
            "ada@example.com",
            "--org",
            "Acme",
        ],
        Some("a long enough password\n"),
    );
    assert_eq!(code, 0, "{err}");
    let ada = ["--as", "ada@example.com"];
    let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(&ada)
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        json(&refs, None)
    };

    // Endpoints: create, list, rename, duplicate a personal one as an org endpoint.
    let created = run(with(&["endpoint", "create"], &["--name", "mine", "--json"]));
    let id = created["id"].as_str().unwrap().to_owned();
    let renamed = run(with(
        &["endpoint", "rename"],
        &["--id", &id, "--name", "Agents", "--json"],
    ));
    assert_eq!(renamed["name"], "Agents");
    let copy = run(with(&["endpoint", "duplicate"], &["--id", &id, "--json"]));
    assert_eq!(copy["scope"], "org_shared");
    assert_eq!(copy["name"], "Agents");
    assert!(
        copy["urls"]["openai"]
            .as_str()
            .unwrap()
            .ends_with("/openai")
    );
    let list = run(with(&["endpoint", "list"], &["--json"]));
    assert_eq!(list.as_array().unwrap().len(), 2);
    // An org endpoint cannot be duplicated again; the error says why, exit code 1.
    let (code, _, err) = antix(
        &env,
        &with(
            &["endpoint", "duplicate"],
            &["--id", copy["id"].as_str().unwrap()],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("only an active personal one"), "{err}");

    // Keys: create, limit, list, revoke.
    let key = run(with(&["key", "create"], &["--name", "ci", "--json"]));
    let key_id = key["id"].as_str().unwrap().to_owned();
    let updated = run(with(
        &["key", "update"],
        &[
            "--id",
            &key_id,
            "--budget-daily",
            "2.50",
            "--rpm",
            "60",
            "--models",
            "gpt-4o*",
            "--json",
        ],
    ));
    assert_eq!(updated["limits"]["budget_daily_usd"], "2.500000000");
    assert_eq!(updated["limits"]["rpm"], 60);
    assert_eq!(
        updated["limits"]["allowed_models"],
        serde_json::json!(["gpt-4o*"])
    );
    let cleared = run(with(
        &["key", "update"],
        &["--id", &key_id, "--rpm", "none", "--json"],
    ));
    assert_eq!(cleared["limits"]["rpm"], serde_json::Value::Null);
    assert_eq!(
        cleared["limits"]["budget_daily_usd"], "2.500000000",
        "others unchanged"
    );
    let (code, _, err) = antix(
        &env,
        &with(&["key", "update"], &["--id", &key_id, "--rpm", "lots"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("--rpm"), "{err}");
    let keys = run(with(&["key", "list"], &["--json"]));
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert!(
        !keys.to_string().contains(key["key"].as_str().unwrap()),
        "never the secret"
    );
    let revoked = run(with(&["key", "revoke"], &["--id", &key_id, "--json"]));
    assert!(revoked["revoked_at"].is_string());

    // Credentials: set, list without the secret, test (nothing listens there: it fails, exit 1).
    let (code, _, err) = antix(
        &env,
        &with(&["credential", "set"], &["--provider", "openai"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        Some("sk-proj-cli-secret-000042\n"),
    );
    assert_eq!(code, 0, "{err}");
    let creds = run(with(&["credential", "list"], &["--json"]));
    assert_eq!(creds[0]["last4"], "0042");
    assert!(!creds.to_string().contains("cli-secret"));
    let (code, out, _) = antix(
        &env,
        &with(&["credential", "test"], &["--provider", "openai", "--json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        None,
    );
    assert_eq!(code, 1);
    let result: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["ok"], false);
}
