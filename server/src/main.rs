//! `antix`: the server binary. Parses the command line (definitions in `server::cli`), loads
//! settings, and hands over to the library; maps failures to exit codes (2: configuration,
//! 1: anything else).

use std::process::ExitCode;

use antix::config::Settings;
use clap::Parser;
use server::cli::{self, AdminCommand, Cli, Command};
use server::telemetry::Reader;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
        let command = cli.command.unwrap_or(Command::Serve);
        match command {
            Command::Config => {}
            Command::Serve => server::telemetry::init(&settings, Reader::Machine),
            _ => server::telemetry::init(&settings, Reader::Person),
        }
        match command {
            Command::Serve => serve(settings).await,
            Command::Admin {
                command: AdminCommand::Create { email, org, name },
            } => cli::admin_create(settings, &email, &org, &name).await,
            Command::Admin {
                command: AdminCommand::RotateMasterKey,
            } => cli::rotate_master_key(settings).await,
            Command::Admin {
                command: AdminCommand::SetupToken,
            } => cli::setup_token(settings).await,
            Command::Admin {
                command: AdminCommand::ForgetRetiredKeys,
            } => cli::forget_retired_keys(settings).await,
            Command::Endpoint { command } => cli::endpoint(settings, command).await,
            Command::Key { command } => cli::key(settings, command).await,
            Command::Token { command } => cli::token(settings, command).await,
            Command::Credential { command } => cli::credential(settings, command).await,
            Command::Traces { command } => cli::traces(settings, command).await,
            Command::Config => {
                cli::print_config(&settings);
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

#[expect(
    clippy::print_stderr,
    reason = "the CLI reports fatal errors on stderr"
)]
fn report(msg: &str) {
    eprintln!("{msg}");
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let leptos_options = server::leptos_options(&settings);
    let services = cli::start(settings).await?;
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
    if let Some(proxy) = app.proxy_addr() {
        tracing::info!(address = %proxy, "the proxy also listens on its own address");
    }
    if !initialized {
        let token = app.services().keys.setup_token();
        tracing::warn!(
            url = %format!("{}/setup?token={token}", app.services().settings.public_base()),
            setup_token = %token,
            "no administrator yet: open this link to create one (the token proves you run this server; `antix admin setup-token` prints it again)"
        );
    }
    app.run_until_stopped(server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
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
