//! Server functions, one module per resource. Each one authenticates and authorizes on the
//! server before doing anything, and delegates the work to the `antix` core.

pub mod alerts;
pub mod auth;
pub mod credentials;
pub mod endpoints;
pub mod error;
pub mod keys;
pub mod members;
pub mod sessions;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod tokens;
pub mod traces;

pub use error::{ApiError, FieldMessage};
