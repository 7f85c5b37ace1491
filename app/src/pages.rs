//! One component per page.

mod account;
mod alerts;
mod credentials;
mod endpoint;
mod endpoints;
mod invite;
mod keys;
mod login;
mod members;
mod not_found;
mod setup;

pub use account::AccountPage;
pub use credentials::CredentialsPage;
pub use endpoint::{ActivityTab, EndpointLayout, OverviewTab, SettingsTab, TracesTab};
pub use endpoints::EndpointsPage;
pub use invite::InvitePage;
pub use keys::KeysPage;
pub use login::LoginPage;
pub use members::MembersPage;
pub use not_found::NotFoundPage;
pub use setup::SetupPage;
