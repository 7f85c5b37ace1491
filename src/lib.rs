//! # Antix core
//!
//! The framework-free heart of the Antix LLM gateway: the proxy, trace recording, the store
//! (SQLite or Postgres) and the rules of the product. The axum server and the Leptos portal are
//! thin adapters around this crate; nothing here depends on either.
//!
//! A proxied call flows one way: [`gateway`] → [`recorder`] → [`store`], never back. Module
//! map, from the top down:
//! - [`gateway`]: the proxy, as named phases (route, caller, inspect, target, admit, upstream,
//!   relay) over one `Call` value.
//! - [`recorder`]: traces off the request path: batching, finalizing (usage, cost, sessions,
//!   redaction), spooling, quarantine; [`otel`] exports them as OpenTelemetry spans.
//! - Rules of the product, for every adapter: [`access`] (who may see and manage what),
//!   [`accounts`] (first run, login, portal sessions), [`virtual_keys`], [`credentials`],
//!   [`limits`] (budgets and rate limits), [`overview`] (the 30-day window), [`housekeeping`]
//!   (retention and sweeps), [`sessions`] (agent sessions), [`alerts`] (budget alerts),
//!   [`manage`] (the management operations every adapter shares).
//! - [`store`]: the one store API over SQLite and Postgres, with migrations and the hot-path
//!   cache (its own writes invalidate it).
//! - Vocabulary and low-level pieces: [`providers`] (wire formats), [`translate`] (between
//!   the three chat APIs), [`pricing`], [`usage`],
//!   [`capture`] (capped body copies), [`redact`], [`egress`] (outbound HTTP), [`crypto`],
//!   [`config`], [`domain`].
//! - [`services`]: the shared handles (store, keys, settings) built once at start.

pub mod access;
pub mod accounts;
pub mod alerts;
pub mod capture;
pub mod client_ip;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod domain;
pub mod egress;
pub mod export;
pub mod gateway;
pub mod housekeeping;
pub mod keyring;
pub mod limits;
pub mod manage;
pub mod memory;
pub mod metering;
pub mod metrics;
pub mod otel;
pub mod overview;
pub mod pricing;
pub mod providers;
pub mod recorder;
pub mod redact;
pub mod services;
pub mod sessions;
pub mod store;
pub mod translate;
pub mod usage;
pub mod virtual_keys;

pub use services::Services;

/// The version reported by `/healthz` and `antix --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
