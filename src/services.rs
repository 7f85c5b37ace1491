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
        Ok((
            Services {
                store,
                keys: Arc::new(keys),
                settings: Arc::new(settings),
            },
            StartNotes {
                generated_master_key: generated,
            },
        ))
    }
}
