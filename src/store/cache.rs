//! The store's read-through cache for the lookups on the proxy's hot path (endpoints, virtual
//! keys, credentials), so a proxied call costs no database round trip that a cache can answer.
//!
//! Concurrent misses for one entry share one load (single flight), so a cold cache under load
//! costs one query per entry, not one per request. Failed loads are not cached. Entries expire
//! after [`CACHE_TTL`], which bounds how long a change made on another replica goes unseen here;
//! a change made through this store drops its entries at once, in the write operation itself,
//! so no caller can forget to.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::credentials::StoredCredential;
use crate::crypto::TokenHash;
use crate::domain::{Endpoint, EndpointId, OrgId, Provider, VirtualKey, VirtualKeyId};

/// How long cached endpoints, keys and credentials are trusted. Bounds how long a revocation
/// or archival made on another replica takes to be seen here.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// The hot-path caches of one store handle (shared by its clones).
pub(crate) struct HotCache {
    pub endpoints: TtlCache<EndpointId, Option<Endpoint>>,
    pub keys: TtlCache<TokenHash, Option<VirtualKey>>,
    /// Which hash each loaded key was found by, so a write that knows only the key's id drops
    /// exactly that entry.
    key_hashes: Mutex<HashMap<VirtualKeyId, TokenHash>>,
    pub credentials: TtlCache<(OrgId, Provider), Arc<Vec<StoredCredential>>>,
}

impl Default for HotCache {
    fn default() -> Self {
        HotCache {
            endpoints: TtlCache::new(CACHE_TTL, 100_000),
            keys: TtlCache::new(CACHE_TTL, 100_000),
            key_hashes: Mutex::new(HashMap::new()),
            credentials: TtlCache::new(CACHE_TTL, 10_000),
        }
    }
}

impl HotCache {
    pub fn remember_key(&self, key: &VirtualKey, hash: &TokenHash) {
        let mut map = self.key_hashes.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded like the cache itself; a forgotten mapping only means a later write waits
        // out the TTL instead of dropping the entry at once.
        if map.len() >= 100_000 {
            map.clear();
        }
        map.insert(key.id, *hash);
    }

    pub fn forget_key(&self, id: VirtualKeyId) {
        let hash = self
            .key_hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(h) = hash {
            self.keys.invalidate(&h);
        }
    }
}

struct Entry<V> {
    cell: Arc<OnceCell<V>>,
    created: Instant,
}

pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, Entry<V>>>,
    ttl: Duration,
    max_entries: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlCache {
            map: Mutex::new(HashMap::new()),
            ttl,
            max_entries,
        }
    }

    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let cell = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(key) {
                Some(e) if e.created.elapsed() < self.ttl => e.cell.clone(),
                _ => {
                    if map.len() >= self.max_entries {
                        let ttl = self.ttl;
                        map.retain(|_, e| e.created.elapsed() < ttl);
                        if map.len() >= self.max_entries {
                            map.clear();
                        }
                    }
                    let cell = Arc::new(OnceCell::new());
                    map.insert(
                        key.clone(),
                        Entry {
                            cell: cell.clone(),
                            created: Instant::now(),
                        },
                    );
                    cell
                }
            }
        };
        cell.get_or_try_init(load).await.cloned()
    }

    pub fn invalidate(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_share_one_load_and_errors_are_not_cached() {
        let cache = Arc::new(TtlCache::<u32, u32>::new(Duration::from_secs(60), 100));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (c, l) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    c.get_or_load(&1, || async {
                        l.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok::<_, ()>(7)
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let r: Result<u32, &str> = cache.get_or_load(&2, || async { Err("down") }).await;
        assert_eq!(r, Err("down"));
        let r: Result<u32, &str> = cache.get_or_load(&2, || async { Ok(3) }).await;
        assert_eq!(r, Ok(3));
        cache.invalidate(&1);
        let r: Result<u32, ()> = cache.get_or_load(&1, || async { Ok(8) }).await;
        assert_eq!(r, Ok(8));
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = TtlCache::<u32, u32>::new(Duration::from_millis(10), 10);
        let _: Result<u32, ()> = cache.get_or_load(&1, || async { Ok(1) }).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r: Result<u32, ()> = cache.get_or_load(&1, || async { Ok(2) }).await;
        assert_eq!(r, Ok(2));
    }
}
