//! The long-lived handles every adapter needs (store, derived keys, settings), built once at
//! start and shared by the proxy, the portal's server functions and the CLI.

use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::crypto::{CryptoError, Keys, MasterKey};
use crate::store::{Store, StoreError};

#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub keys: Arc<Keys>,
    pub settings: Arc<Settings>,
    /// This gateway process's id, kept in the data folder across restarts (budget
    /// reservations are tagged with it, so a restart releases what a crash left held).
    pub instance: Arc<str>,
    /// The bound on body bytes held in memory.
    pub memory: Arc<crate::memory::MemoryBudget>,
    /// Login attempts: argon2 concurrency and throttling.
    pub logins: Arc<crate::accounts::guard::LoginGuard>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("store", &self.store.kind())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("ANTIX_MASTER_KEY: {0}")]
    MasterKey(String),
    #[error(transparent)]
    KeyFile(#[from] CryptoError),
    #[error("master key: {0}")]
    Keyring(crate::keyring::KeyringError),
    #[error("DATABASE_URL ({url}): {source}")]
    Store {
        url: String,
        #[source]
        source: StoreError,
    },
}

/// Facts about start-up the caller should tell the operator about.
#[derive(Debug, Clone, Copy)]
pub struct StartNotes {
    /// No master key was configured and a new one was written into the data folder.
    pub generated_master_key: bool,
}

impl Services {
    /// Loads (or generates) the master key, opens the database and applies migrations.
    pub async fn start(settings: Settings) -> Result<(Self, StartNotes), StartError> {
        let (master, generated) = match &settings.master_key {
            Some(text) => (
                MasterKey::parse(text.expose_secret()).map_err(StartError::MasterKey)?,
                false,
            ),
            None => MasterKey::load_or_generate(&settings.data_dir)?,
        };
        let store = Store::open(&settings.database_url)
            .await
            .map_err(|source| StartError::Store {
                url: settings.database_url.redacted(),
                source,
            })?;
        let keys = crate::keyring::load(&store, &master)
            .await
            .map_err(StartError::Keyring)?;
        let instance = instance_id(&settings.data_dir);
        let memory = crate::memory::MemoryBudget::new(
            usize::try_from(settings.limits.memory_budget_bytes).unwrap_or(usize::MAX),
        );
        let logins = Arc::new(crate::accounts::guard::LoginGuard::new(
            crate::accounts::guard::verify_slots(),
        ));
        Ok((
            Services {
                store,
                keys: Arc::new(keys),
                settings: Arc::new(settings),
                instance,
                memory,
                logins,
            },
            StartNotes {
                generated_master_key: generated,
            },
        ))
    }
}

/// The instance id in `<data_dir>/instance-id`, created on first start. Unreadable or
/// unwritable (a read-only folder): a fresh id for this run, which only means a crash's
/// reservations wait for the sweep instead of being released at restart.
fn instance_id(data_dir: &std::path::Path) -> Arc<str> {
    let path = data_dir.join("instance-id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(id) = uuid::Uuid::parse_str(text.trim())
    {
        return Arc::from(id.to_string());
    }
    let id = uuid::Uuid::new_v4().to_string();
    let _ = std::fs::create_dir_all(data_dir);
    if let Err(e) = std::fs::write(&path, format!("{id}\n")) {
        tracing::warn!(error = %e, path = %path.display(), "cannot record the instance id");
    }
    Arc::from(id)
}
