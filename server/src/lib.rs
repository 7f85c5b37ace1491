//! # Antix server
//!
//! The composition root: builds the axum application (proxy, portal, health) from the core's
//! services, and serves it until told to stop. `main.rs` only parses the command line; tests
//! build the same [`Application`] on port 0.

#![recursion_limit = "256"]

use std::net::SocketAddr;

use antix::Services;
use antix::config::Settings;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;

pub mod csrf;
pub mod health;
pub mod router;
pub mod state;
pub mod telemetry;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    services: Services,
}

impl Application {
    /// Binds the listener and builds the router. The listener address comes from
    /// `ANTIX_LISTEN` (port 0 picks a free port, which tests use).
    pub async fn build(services: Services, leptos_options: LeptosOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(services.settings.listen).await?;
        let router = router::build(services.clone(), leptos_options);
        Ok(Application {
            listener,
            router,
            services,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish for at most the
    /// configured shutdown timeout (a hung connection must not keep the process alive).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.services.settings.timeouts.shutdown;
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        };
        let serve = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        let deadline = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    "shutdown deadline reached; closing remaining connections"
                );
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = serve => r,
            () = deadline => Ok(()),
        }
    }
}

/// Leptos' rendering options. cargo-leptos sets `LEPTOS_*` variables when it runs the server;
/// when the binary runs on its own (release deployments, tests) the same defaults are built
/// here. The listen address always comes from our own settings, so there is one source of truth.
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    let mut options = leptos::config::get_configuration(None)
        .map(|c| c.leptos_options)
        .unwrap_or_else(|_| {
            LeptosOptions::builder()
                .output_name("antix")
                .site_root(
                    std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()),
                )
                .site_pkg_dir("pkg")
                .build()
        });
    options.site_addr = settings.listen;
    options
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
