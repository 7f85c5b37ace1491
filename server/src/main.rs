//! `antix`: the server binary and its command line. Parses arguments, loads settings, and hands
//! over to the library; maps failures to exit codes (2: configuration, 1: anything else).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use antix::config::{Settings, VARS};
use antix::{Services, accounts};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(
    name = "antix",
    version,
    about = "Antix: LLM API gateway and observability portal"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Administration for scripted set-ups.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// List every configuration variable with its current value (secrets hidden).
    Config,
    /// Run the mock LLM provider (OpenAI, Anthropic and Gemini APIs) for tests and offline
    /// demos. Point ANTIX_UPSTREAM_* at it.
    MockProvider {
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first administrator and organization (only on an empty database). The
    /// password is read from stdin when it is piped, else generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::MockProvider { listen }) = cli.command {
        return mock_provider(listen);
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            report(&format!("configuration error: {e}"));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            report(&format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await,
            Command::Admin {
                command: AdminCommand::Create { email, org, name },
            } => admin_create(settings, &email, &org, &name).await,
            Command::Config => {
                print_config(&settings);
                Ok(())
            }
            Command::MockProvider { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// The mock provider needs no settings or database: it runs on its own.
fn mock_provider(listen: std::net::SocketAddr) -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            rt.block_on(async move {
                let listener = server::mock_provider::bind(listen).await?;
                server::mock_provider::announce(listener.local_addr()?);
                server::mock_provider::serve(listener).await
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("mock provider: {e}"));
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::print_stderr,
    reason = "the CLI reports fatal errors on stderr"
)]
fn report(msg: &str) {
    eprintln!("{msg}");
}

#[expect(clippy::print_stdout, reason = "the CLI's output")]
fn say(msg: &str) {
    println!("{msg}");
}

async fn start(settings: Settings) -> anyhow::Result<Services> {
    let (services, notes) = Services::start(settings).await?;
    if notes.generated_master_key {
        tracing::warn!(
            path = %services.settings.data_dir.join("master.key").display(),
            "no ANTIX_MASTER_KEY given: generated one into the data folder. Back it up: \
             stored provider credentials cannot be decrypted without it"
        );
    }
    Ok(services)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    server::telemetry::init(&settings);
    let leptos_options = server::leptos_options(&settings);
    let services = start(settings).await?;
    let listen = services.settings.listen;
    let app = server::Application::build(services, leptos_options)
        .await
        .map_err(|e| anyhow::anyhow!("ANTIX_LISTEN: cannot listen on {listen}: {e}"))?;
    let addr = app.local_addr()?;
    let initialized = app.services().store.is_initialized().await.unwrap_or(true);
    tracing::info!(
        address = %addr,
        public_url = %app.services().settings.public_url,
        database = %app.services().settings.database_url.redacted(),
        version = antix::VERSION,
        "Antix is listening"
    );
    if !initialized {
        tracing::info!(
            url = %format!("{}/setup", app.services().settings.public_base()),
            "no administrator yet: open the portal to create one"
        );
    }
    app.run_until_stopped(server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn admin_create(
    settings: Settings,
    email: &str,
    org: &str,
    name: &str,
) -> anyhow::Result<()> {
    server::telemetry::init(&settings);
    let services = start(settings).await?;
    let stdin = std::io::stdin();
    let (password, generated) = if stdin.is_terminal() {
        (antix::crypto::random_base62(20), true)
    } else {
        let mut text = String::new();
        stdin.lock().read_to_string(&mut text)?;
        let line = text.lines().next().unwrap_or("").to_owned();
        if line.is_empty() {
            (antix::crypto::random_base62(20), true)
        } else {
            (line, false)
        }
    };
    let password = secrecy::SecretString::from(password);
    let result = accounts::create_first_admin(
        &services.store,
        accounts::FirstAdmin {
            email,
            name,
            password: password.expose_secret(),
            org_name: org,
        },
    )
    .await;
    let (user, org) = match result {
        Ok(v) => v,
        Err(accounts::AccountError::Invalid(fields)) => {
            let msgs: Vec<String> = fields
                .iter()
                .map(|f| format!("--{}: {}", f.field, f.message))
                .collect();
            anyhow::bail!("invalid input: {}", msgs.join("; "));
        }
        Err(e) => anyhow::bail!("{e}"),
    };
    say(&format!(
        "Created administrator {} in organization \"{}\".",
        user.email, org.name
    ));
    if generated {
        say(&format!(
            "Password (shown once, store it now): {}",
            password.expose_secret()
        ));
    }
    say(&format!(
        "Log in at {}/login",
        services.settings.public_base()
    ));
    services.store.close().await;
    Ok(())
}

fn print_config(settings: &Settings) {
    for var in VARS {
        let value = match var.key {
            "master_key" => settings
                .master_key
                .as_ref()
                .map(|_| "<set>".to_owned())
                .unwrap_or_else(|| "<generated into data_dir/master.key>".into()),
            "database_url" => settings.database_url.redacted(),
            "public_url" => settings.public_base(),
            _ => std::env::var(var.env)
                .ok()
                .or_else(|| var.default.map(str::to_owned))
                .unwrap_or_default(),
        };
        say(&format!("{:<30} {:<22} {}", var.env, var.key, value));
    }
}
