//! # Antix core
//!
//! The framework-free heart of the Antix LLM gateway: configuration, domain types, the store
//! (SQLite or Postgres), secrets, account workflows, and (in later modules) the proxy logic,
//! pricing and trace recording. The axum server and the Leptos portal are thin adapters around
//! this crate; nothing here depends on either.
//!
//! Module map:
//! - [`config`]: settings from defaults, TOML and environment, validated at start.
//! - [`domain`]: ids, roles, scopes, providers and plain records.
//! - [`store`]: the one store API over SQLite and Postgres, with migrations.
//! - [`crypto`]: master key, derived keys, passwords, tokens, credential encryption.
//! - [`accounts`]: first-run administrator, login and portal sessions.
//! - [`services`]: the shared handles (store, keys, settings) built once at start.

pub mod accounts;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod domain;
pub mod egress;
pub mod gateway;
pub mod generate;
pub mod limits;
pub mod pricing;
pub mod providers;
pub mod recorder;
pub mod services;
pub mod sessions;
pub mod store;
pub mod usage;
pub mod virtual_keys;

pub use services::Services;

/// The version reported by `/healthz` and `antix --version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
