//! Layout and reusable components.

mod form;
pub mod json;
mod layout;
pub mod ui;

pub use form::{FieldError, FormError, PasswordField, TextField};
pub use layout::{AppLayout, Session, use_session};
