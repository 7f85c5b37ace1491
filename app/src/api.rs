//! Server functions, one module per resource. Each one authenticates and authorizes on the
//! server before doing anything, and delegates the work to the `antix` core.

pub mod auth;
pub mod error;
#[cfg(feature = "ssr")]
pub mod ssr;

pub use error::{ApiError, FieldMessage};
