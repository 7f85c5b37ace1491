//! # Antix server
//!
//! The composition root: builds the axum application (proxy, portal, health) from the core's
//! services, and serves it until told to stop. `main.rs` only parses the command line; tests
//! build the same [`Application`] on port 0.

#![recursion_limit = "256"]

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

use antix::Services;
use antix::config::Settings;
use antix::gateway::Gateway;
use antix::recorder::{Recorder, RecorderConfig, RecorderTask};
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod cli;
pub mod csrf;
pub mod export;
pub mod health;
pub mod metrics;
pub mod mock_provider;
pub mod output;
pub mod proxy;
pub mod router;
pub mod serve;
pub mod state;
pub mod telemetry;
pub mod tracegen;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    /// The proxy's own address and routes (`ANTIX_PROXY_LISTEN`).
    proxy: Option<(TcpListener, axum::Router)>,
    /// Prometheus' own address (`ANTIX_METRICS_LISTEN`).
    metrics: Option<(TcpListener, axum::Router)>,
    services: Services,
    gateway: Arc<Gateway>,
    recorder: RecorderTask,
    lifecycle: Lifecycle,
}

/// The two moments of a graceful stop: `stopping` when the signal arrives (readiness fails,
/// new proxy requests are refused), `cut` when the grace period is over (open streams end with
/// an error event and are recorded as aborted).
#[derive(Clone, Default)]
pub struct Lifecycle {
    pub stopping: CancellationToken,
    pub cut: CancellationToken,
}

impl Application {
    /// Binds the listener and builds the router, the gateway and the trace recorder. The
    /// listener address comes from `ANTIX_LISTEN` (port 0 picks a free port, which tests use).
    pub async fn build(services: Services, leptos_options: LeptosOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(services.settings.listen).await?;
        // What a previous run of this instance held when it died (a crash, a kill -9) is given
        // back now rather than when the sweep finds it: its calls will never settle. (Their
        // spooled traces still charge what they cost when the spool is replayed.)
        match services
            .store
            .release_reservations_of(&services.instance, antix::domain::now_ms())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                released = n,
                "released budget reservations of the previous run"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the previous run's reservations")
            }
        }
        let mut recorder_config = RecorderConfig::new(&services.settings.data_dir);
        recorder_config.max_spool_bytes = services.settings.limits.max_spool_bytes;
        recorder_config.session_gap = services.settings.session_gap;
        if let Some(otel) = &services.settings.otel {
            let exporter = antix::otel::Exporter::start(otel).map_err(|e| {
                std::io::Error::other(format!("OpenTelemetry export ({}): {e}", otel.traces_url))
            })?;
            tracing::info!(collector = %otel.traces_url, "exporting traces to OpenTelemetry");
            recorder_config.otel = Some(std::sync::Arc::new(exporter));
        }
        // Bodies waiting to be written get at most half of the memory budget; past it they are
        // dropped (usage kept) before requests are refused.
        recorder_config.max_queued_bytes =
            usize::try_from(services.settings.limits.memory_budget_bytes / 2).unwrap_or(usize::MAX);
        if services.store.kind() == antix::store::BackendKind::Sqlite {
            // Larger SQLite transactions cost resident memory: under the neutral benchmark's
            // whole run, peak RSS was 60 MiB with batches of 100 and 70 MiB with 500 (over the
            // 64 MiB the gateway aims for); 250 is in between (README, Benchmark).
            recorder_config.batch_size = 250;
        }
        let (recorder, recorder_task) = Recorder::start(services.store.clone(), recorder_config);
        let lifecycle = Lifecycle::default();
        let gateway = Gateway::new(
            services.clone(),
            recorder,
            lifecycle.stopping.clone(),
            lifecycle.cut.clone(),
        )
        .map_err(std::io::Error::other)?;
        let router = router::build(
            services.clone(),
            leptos_options,
            gateway.clone(),
            lifecycle.clone(),
        );
        let proxy = match services.settings.proxy_listen {
            Some(addr) => Some((
                TcpListener::bind(addr).await?,
                router::build_proxy_only(services.clone(), gateway.clone(), &lifecycle),
            )),
            None => None,
        };
        let metrics = match services.settings.metrics.listen {
            Some(addr) => Some((
                TcpListener::bind(addr).await?,
                router::build_metrics_only(services.clone(), gateway.clone(), &lifecycle),
            )),
            None => None,
        };
        tokio::spawn(antix::housekeeping::run(
            services.clone(),
            lifecycle.stopping.clone(),
        ));
        tokio::spawn(antix::alerts::run(
            services.clone(),
            lifecycle.stopping.clone(),
        ));
        Ok(Application {
            listener,
            router,
            proxy,
            metrics,
            services,
            gateway,
            recorder: recorder_task,
            lifecycle,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics listener's address, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The proxy's own address, when it has one.
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.proxy.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Serves until `shutdown` resolves. Then: readiness fails and new proxy requests get 503;
    /// in-flight requests have the configured grace period to finish; streams still open after
    /// it end with an error event (recorded as aborted); finally the trace queue is written to
    /// the database (or the spool). A hung connection never keeps the process alive.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.services.settings.timeouts.shutdown;
        let lifecycle = self.lifecycle.clone();
        let signal = {
            let stopping = lifecycle.stopping.clone();
            async move {
                shutdown.await;
                stopping.cancel();
            }
        };
        let header_timeout = self.services.settings.timeouts.header;
        let write_timeout = self.services.settings.timeouts.write;
        let proxy_serve = self.proxy.map(|(listener, router)| {
            let stopping = lifecycle.stopping.clone();
            tokio::spawn(serve::serve(
                listener,
                router,
                header_timeout,
                write_timeout,
                async move { stopping.cancelled().await },
            ))
        });
        if let Some((listener, router)) = self.metrics {
            // Scrapes go on while requests drain; the task ends with the process.
            let cut = lifecycle.cut.clone();
            tokio::spawn(serve::serve(
                listener,
                router,
                header_timeout,
                write_timeout,
                async move { cut.cancelled().await },
            ));
        }
        let serve = serve::serve(self.listener, self.router, header_timeout, write_timeout, {
            let stopping = lifecycle.stopping.clone();
            async move {
                tokio::select! {
                    () = signal => {},
                    () = stopping.cancelled() => {},
                }
            }
        });
        let mut serve = std::pin::pin!(serve);
        let result = tokio::select! {
            r = &mut serve => r,
            () = async {
                lifecycle.stopping.cancelled().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; cutting open streams");
                lifecycle.cut.cancel();
                // Cut streams finish at once; give their connections a moment to close.
                match tokio::time::timeout(Duration::from_secs(5), &mut serve).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!("connections still open after the cut; exiting anyway");
                        Ok(())
                    }
                }
            }
        };
        lifecycle.cut.cancel();
        if let Some(task) = proxy_serve {
            // Its streams were cut with the rest; give its connections the same moment.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let queued = self.gateway.recorder().in_queue();
        tracing::info!(queued, "writing queued traces");
        self.recorder.shutdown(RECORDER_DRAIN).await;
        let stats = self.gateway.recorder().stats();
        tracing::info!(
            written = stats.written.load(std::sync::atomic::Ordering::Relaxed),
            spooled = stats.spooled.load(std::sync::atomic::Ordering::Relaxed),
            "trace recorder stopped"
        );
        result
    }
}

/// How long the trace queue may take to reach the database at shutdown before what is left
/// goes to the spool.
const RECORDER_DRAIN: Duration = Duration::from_secs(10);

/// Leptos' rendering options. cargo-leptos sets `LEPTOS_*` variables when it runs the server;
/// when the binary runs on its own (release deployments, tests) the same defaults are built
/// here. The listen address always comes from our own settings, so there is one source of truth.
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    // Without cargo-leptos' variables, get_configuration prints a warning and fails: skip it.
    let from_cargo_leptos = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some()
        || option_env!("LEPTOS_OUTPUT_NAME").is_some();
    let configured = if from_cargo_leptos {
        leptos::config::get_configuration(None).ok()
    } else {
        None
    };
    let mut options = configured.map(|c| c.leptos_options).unwrap_or_else(|| {
        LeptosOptions::builder()
            .output_name("antix")
            .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
            .site_pkg_dir("pkg")
            .build()
    });
    options.site_addr = settings.listen;
    use_hashed_assets(&mut options);
    options
}

/// Content-hashed asset names (`antix.<hash>.wasm`, `.js`, `.css`) when the site was built with
/// them: the build lists the hashes in `hash.txt` in the site folder (Cargo.toml, `hash-files`),
/// and leptos reads that file to name the scripts it puts in each page. Decided here, from the
/// site folder found at start-up, rather than by how the binary was compiled: a binary and its
/// site folder move together, and a server built with plain `cargo build` serves a site built
/// by cargo-leptos. A hash file whose WASM is missing (a stale one) is ignored.
fn use_hashed_assets(options: &mut LeptosOptions) {
    let site = std::path::absolute(options.site_root.as_ref())
        .unwrap_or_else(|_| std::path::PathBuf::from(options.site_root.as_ref()));
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("hash.txt")));
    let found = std::iter::once(site.join("hash.txt"))
        .chain(beside_exe)
        .find(|file| {
            let wasm = std::fs::read_to_string(file).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.trim().strip_prefix("wasm:").map(|h| h.trim().to_owned()))
            });
            wasm.is_some_and(|h| {
                site.join(options.site_pkg_dir.as_ref())
                    .join(format!("{}.{h}.wasm", options.output_name))
                    .is_file()
            })
        });
    match found {
        // Absolute: leptos joins the name to the executable's folder.
        Some(file) => {
            options.hash_files = true;
            options.hash_file = file.to_string_lossy().as_ref().into();
        }
        None => options.hash_files = false,
    }
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
