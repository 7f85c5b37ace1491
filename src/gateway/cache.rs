//! A small time-to-live cache with single-flight loading, for the lookups on the proxy's hot
//! path (endpoints, virtual keys, credentials). Concurrent misses for one key share one load,
//! so a cold cache under load costs one database query per key, not one per request. Failed
//! loads are not cached. Entries expire after the TTL, which bounds how long another replica's
//! revocation or archival can go unseen here.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

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
