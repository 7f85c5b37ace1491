//! Black-box tests of the server: the real router on a real port, a fresh database per test.
//! One test binary (see STYLE.md), one module per area.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly by design"
)]

mod alerts;
mod api;
mod billing;
mod cli;
mod common;
mod fallbacks;
mod hardening;
mod lifecycle;
mod limits;
mod metrics;
mod otel;
mod permissions;
mod portal;
mod proxy;
mod retention;
mod routing;
mod websocket;
