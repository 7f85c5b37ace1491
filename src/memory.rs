//! The memory budget: one bound on the body bytes the proxy holds at once, in flight (request
//! bodies read whole, responses read whole, captured copies) and queued for recording. Every
//! holder takes a [`Held`] for the bytes it keeps and gives them back when it drops them, so the
//! count follows what is actually in memory. A request that would go past the bound is refused
//! up front (503 with Retry-After) instead of the process growing until the host kills it; the
//! portal, which holds no bodies, stays up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// Times the budget said no (a request refused, a captured copy cut short).
    pub refused: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// Holds `n` bytes, or `None` (counted as refused) when that would pass the bound.
    pub fn hold(self: &Arc<Self>, n: usize) -> Option<Held> {
        if self.take(n) {
            Some(Held {
                budget: Some(self.clone()),
                bytes: n,
            })
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// An empty hold, to grow as bytes arrive.
    pub fn empty(self: &Arc<Self>) -> Held {
        Held {
            budget: Some(self.clone()),
            bytes: 0,
        }
    }
}

/// Bytes held against a [`MemoryBudget`]; given back on drop. A clone holds nothing (a cloned
/// trace draft does not double the count).
#[derive(Debug, Default)]
pub struct Held {
    budget: Option<Arc<MemoryBudget>>,
    bytes: usize,
}

impl Clone for Held {
    fn clone(&self) -> Self {
        Held::default()
    }
}

impl Held {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Holds `n` more bytes; false (nothing changed) when the budget cannot give them.
    pub fn try_grow(&mut self, n: usize) -> bool {
        match &self.budget {
            Some(b) if !b.take(n) => {
                b.refused.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => {
                self.bytes += n;
                true
            }
        }
    }

    /// Holds exactly `n` bytes from now on (gives back the difference, or takes it even past
    /// the bound: used when what is kept is already in memory).
    pub fn set(&mut self, n: usize) {
        if let Some(b) = &self.budget {
            if n < self.bytes {
                b.give(self.bytes - n);
            } else {
                b.used.fetch_add(n - self.bytes, Ordering::AcqRel);
            }
        }
        self.bytes = n;
    }

    /// Moves what `other` holds into this hold.
    pub fn absorb(&mut self, mut other: Held) {
        if self.budget.is_none() {
            self.budget = other.budget.take();
        }
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_are_bounded_and_given_back() {
        let b = MemoryBudget::new(100);
        let a = b.hold(60).unwrap();
        assert!(b.hold(50).is_none());
        assert_eq!(b.refused.load(Ordering::Relaxed), 1);
        let mut c = b.hold(40).unwrap();
        assert!(!c.try_grow(1));
        drop(a);
        assert!(c.try_grow(50));
        assert_eq!(b.used(), 90);
        // A clone holds nothing; dropping it gives nothing back.
        drop(c.clone());
        assert_eq!(b.used(), 90);
        c.set(10);
        assert_eq!(b.used(), 10);
        let mut d = b.empty();
        d.absorb(c);
        assert_eq!((d.bytes(), b.used()), (10, 10));
        drop(d);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn concurrent_holders_never_pass_the_bound() {
        let b = MemoryBudget::new(1000);
        let held = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if let Some(h) = b.hold(7) {
                            assert!(b.used() <= 1000);
                            held.lock().unwrap().push(h);
                        }
                    }
                });
            }
        });
        assert!(b.used() <= 1000);
        drop(held);
        assert_eq!(b.used(), 0);
    }
}
