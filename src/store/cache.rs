//! The store's read-through cache for the lookups on the proxy's hot path (endpoints, virtual
//! keys, credentials), so a proxied call costs no database round trip that a cache can answer.
//!
//! Concurrent misses for one entry share one load (single flight), so a cold cache under load
//! costs one query per entry, not one per request. Failed loads are not cached. Entries expire
//! after [`CACHE_TTL`], which bounds how long a change made on another replica goes unseen here;
//! a change made through this store drops its entries at once, in the write operation itself,
//! so no caller can forget to.
//!
//! An expired entry is loaded again, and the caller that found it expired waits for the fresh
//! value for at most [`REFRESH_WAIT`]: with a healthy database it gets the fresh value (a
//! revocation on another replica still takes effect within the TTL). Past that wait, callers
//! get the value the entry had (for at most [`STALE_MAX`] past its TTL) while the load finishes
//! in the background: a slow or briefly unreachable database then costs the proxy at most that
//! wait once per entry and TTL, not a slow lookup per request. A refresh that fails leaves the
//! old value in place until the next caller tries again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::OnceCell;

use super::credentials::StoredCredential;
use crate::crypto::TokenHash;
use crate::domain::{Endpoint, EndpointId, OrgId, Provider, VirtualKey, VirtualKeyId};

/// How long cached endpoints, keys and credentials are trusted. Bounds how long a revocation
/// or archival made on another replica takes to be seen here.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// How long past its TTL an entry may still be served while its refresh is under way.
pub const STALE_MAX: Duration = Duration::from_secs(30);

/// How long the caller that finds an entry expired waits for its refresh.
pub const REFRESH_WAIT: Duration = Duration::from_millis(10);

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
    /// A background refresh of this expired entry is under way.
    refreshing: bool,
}

type Map<K, V> = Arc<Mutex<HashMap<K, Entry<V>>>>;

pub struct TtlCache<K, V> {
    map: Map<K, V>,
    ttl: Duration,
    max_entries: usize,
}

impl<K, V> TtlCache<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlCache {
            map: Arc::new(Mutex::new(HashMap::new())),
            ttl,
            max_entries,
        }
    }

    /// The cached value, loading it with `load` when there is none. An expired value is
    /// returned as it is while `load` runs in the background (see the module's notes).
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        enum Found<V> {
            Cell(Arc<OnceCell<V>>),
            Stale(V),
            Refresh(V),
        }
        let found = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            match map.get_mut(key) {
                Some(e) if e.created.elapsed() < self.ttl => Found::Cell(e.cell.clone()),
                Some(e)
                    if e.created.elapsed() < self.ttl + STALE_MAX
                        && let Some(stale) = e.cell.get().cloned() =>
                {
                    if e.refreshing {
                        Found::Stale(stale)
                    } else {
                        e.refreshing = true;
                        Found::Refresh(stale)
                    }
                }
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
                            refreshing: false,
                        },
                    );
                    Found::Cell(cell)
                }
            }
        };
        let cell = match found {
            Found::Cell(cell) => cell,
            Found::Stale(v) => return Ok(v),
            Found::Refresh(stale) => {
                let fresh = self.refresh(key.clone(), load());
                return Ok(match tokio::time::timeout(REFRESH_WAIT, fresh).await {
                    Ok(Ok(v)) => v,
                    _ => stale,
                });
            }
        };
        cell.get_or_try_init(load).await.cloned()
    }

    /// Loads `key` again off the caller's path; the fresh value replaces the stale one unless
    /// the entry was dropped meanwhile (a write here invalidated it: the next caller loads).
    /// Resolves with the fresh value when the load succeeds.
    fn refresh<E>(
        &self,
        key: K,
        load: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<V> {
        let map = self.map.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let loaded = load.await;
            let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
            let Some(e) = map.get_mut(&key) else { return };
            if !e.refreshing {
                return;
            }
            e.refreshing = false;
            if let Ok(v) = loaded {
                e.cell = Arc::new(OnceCell::new_with(Some(v.clone())));
                e.created = Instant::now();
                let _ = tx.send(v);
            }
        });
        rx
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
                    c.get_or_load(&1, || async move {
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

    // On the test clock (paused, advanced only when every task waits), so the timeline is
    // exact however loaded the machine is.
    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_served_while_they_refresh() {
        let ms = Duration::from_millis;
        let cache = TtlCache::<u32, u32>::new(ms(50), 10);
        let _: Result<u32, ()> = cache.get_or_load(&1, || async { Ok(1) }).await;
        tokio::time::sleep(ms(60)).await;
        // Expired, and the database is slow: the old value after a short wait, the new one
        // loading behind it.
        let r: Result<u32, ()> = cache
            .get_or_load(&1, || async {
                tokio::time::sleep(Duration::from_millis(80)).await;
                Ok(2)
            })
            .await;
        assert_eq!(r, Ok(1));
        // Another caller meanwhile does not start a second refresh.
        let r: Result<u32, ()> = cache.get_or_load(&1, || async { Ok(99) }).await;
        assert_eq!(r, Ok(1));
        tokio::time::sleep(ms(100)).await;
        let r: Result<u32, ()> = cache.get_or_load(&1, || async { Ok(3) }).await;
        assert_eq!(r, Ok(2));
        // A failed refresh keeps the old value for the next caller to try again.
        tokio::time::sleep(ms(60)).await;
        let r: Result<u32, &str> = cache.get_or_load(&1, || async { Err("down") }).await;
        assert_eq!(r, Ok(2));
        // With a healthy database the caller gets the fresh value (a revocation elsewhere is
        // seen within the TTL).
        let r: Result<u32, &str> = cache.get_or_load(&1, || async { Ok(4) }).await;
        assert_eq!(r, Ok(4));
    }
}
