//! The login guard. Two things make a login endpoint an easy target: each attempt costs an
//! argon2 verification (19 MiB of memory and tens of milliseconds of a core), and throttles that
//! check a counter, verify, then count let a burst of concurrent guesses all pass the check.
//!
//! So verifications run in a fixed number of slots (one per core): a burst waits briefly for a
//! slot or gets 429 with `Retry-After`, and memory stays bounded whatever arrives. And each
//! attempt is counted *before* its verification, in the same critical section as the check
//! (attempts in flight count like failures until they end), so concurrency cannot get more
//! guesses through than the limits allow. The counts of one process are exact; the database
//! keeps them across replicas and restarts (see [`super::login`]).
//!
//! The limits, per 15-minute window:
//! - an account from one client address: 5 failures (a person mistyping, then a pause);
//! - an account from anywhere: 20 (a distributed guesser);
//! - a client address: 50 failures across accounts (password spraying) — but this one only
//!   stops attempts on accounts that already failed in the window, so when a whole office
//!   shares one address (a NAT, a reverse proxy not listed as trusted), a colleague's typos or an
//!   attacker on the same network cannot lock everyone else out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::Millis;

/// Failed logins are counted over this window.
pub const WINDOW_MS: Millis = 15 * 60 * 1000;
pub const MAX_FAILURES_PER_PAIR: u32 = 5;
pub const MAX_FAILURES_PER_ACCOUNT: u32 = 20;
pub const MAX_FAILURES_PER_ADDRESS: u32 = 50;
/// How long an attempt may wait for a verification slot.
const SLOT_WAIT: Duration = Duration::from_secs(2);
/// Attempts allowed to wait per slot; beyond, 429 at once (no queue growth).
const WAITERS_PER_SLOT: usize = 8;
/// Subjects remembered at most (beyond, the oldest windows are forgotten first).
const MAX_SUBJECTS: usize = 200_000;

/// One verification slot per core: argon2 is CPU-bound, more at once only queues inside the
/// hashing threads while holding memory.
pub fn verify_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every verification slot is busy: try again in a second.
    Busy,
    /// Too many failures: try again when the window has passed.
    Throttled { retry_after_secs: u64 },
}

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    window_start: Millis,
    failures: u32,
    in_flight: u32,
}

impl Count {
    fn current(&mut self, now: Millis) -> &mut Self {
        if now - self.window_start >= WINDOW_MS {
            self.window_start = now;
            self.failures = 0;
        }
        self
    }

    fn load(&self) -> u32 {
        self.failures + self.in_flight
    }
}

pub struct LoginGuard {
    slots: std::sync::Arc<Semaphore>,
    max_waiters: usize,
    waiting: AtomicUsize,
    counts: Mutex<HashMap<String, Count>>,
}

/// An attempt under way: holds its slot and its place in the counts until it ends.
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    keys: [String; 3],
    _slot: OwnedSemaphorePermit,
    ended: bool,
}

impl LoginGuard {
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        LoginGuard {
            slots: std::sync::Arc::new(Semaphore::new(slots)),
            max_waiters: slots * WAITERS_PER_SLOT,
            waiting: AtomicUsize::new(0),
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: &str) -> [String; 3] {
        [
            format!("pair:{account}|{address}"),
            format!("acct:{account}"),
            format!("ip:{address}"),
        ]
    }

    /// Checks the limits and counts the attempt, atomically; then waits for a verification
    /// slot. `stored` are the failures the database knows of (other replicas' included):
    /// `(pair, account, address)`.
    pub async fn begin(
        &self,
        account: &str,
        address: &str,
        stored: (u32, u32, u32),
        now: Millis,
    ) -> Result<Attempt<'_>, Refusal> {
        let keys = Self::keys(account, address);
        {
            let mut counts = self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if counts.len() > MAX_SUBJECTS {
                counts.retain(|_, c| now - c.window_start < WINDOW_MS || c.in_flight > 0);
            }
            let mut load = |k: &str, stored: u32| {
                let c = counts.entry(k.to_owned()).or_default().current(now);
                (c.load().max(stored + c.in_flight), c.window_start)
            };
            let (pair, pair_start) = load(&keys[0], stored.0);
            let (acct, acct_start) = load(&keys[1], stored.1);
            let (addr, addr_start) = load(&keys[2], stored.2);
            let retry = |start: Millis| Refusal::Throttled {
                retry_after_secs: u64::try_from((start + WINDOW_MS - now).max(1000) / 1000)
                    .unwrap_or(1),
            };
            if pair >= MAX_FAILURES_PER_PAIR {
                return Err(retry(pair_start));
            }
            if acct >= MAX_FAILURES_PER_ACCOUNT {
                return Err(retry(acct_start));
            }
            // The address limit spares accounts with no failure in the window.
            if addr >= MAX_FAILURES_PER_ADDRESS && acct > 0 {
                return Err(retry(addr_start));
            }
            for k in &keys {
                counts.entry(k.clone()).or_default().in_flight += 1;
            }
        }
        match self.slot().await {
            Ok(slot) => Ok(Attempt {
                guard: self,
                keys,
                _slot: slot,
                ended: false,
            }),
            Err(r) => {
                self.end(&keys, Ended::Withdrawn, now);
                Err(r)
            }
        }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiters {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        let got = tokio::time::timeout(SLOT_WAIT, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Refusal::Busy),
        }
    }

    fn end(&self, keys: &[String; 3], how: Ended, now: Millis) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, k) in keys.iter().enumerate() {
            let c = counts.entry(k.clone()).or_default();
            c.in_flight = c.in_flight.saturating_sub(1);
            let c = c.current(now);
            match how {
                Ended::Failed => c.failures += 1,
                // A success clears the account's failures (not the address's: a sprayer who
                // guesses one account right is still a sprayer).
                Ended::Succeeded if i < 2 => c.failures = 0,
                Ended::Succeeded | Ended::Withdrawn => {}
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Ended {
    Failed,
    Succeeded,
    /// Never verified (no slot): counts for nothing.
    Withdrawn,
}

impl Attempt<'_> {
    pub fn failed(mut self, now: Millis) {
        self.ended = true;
        self.guard.end(&self.keys, Ended::Failed, now);
    }

    pub fn succeeded(mut self, now: Millis) {
        self.ended = true;
        self.guard.end(&self.keys, Ended::Succeeded, now);
    }
}

impl Drop for Attempt<'_> {
    /// An attempt abandoned midway (its request was dropped) counts as a failure: otherwise
    /// hanging up right after sending would be a free guess.
    fn drop(&mut self) {
        if !self.ended {
            self.guard
                .end(&self.keys, Ended::Failed, crate::domain::now_ms());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_attempts_count_before_they_are_verified() {
        let g = LoginGuard::new(64);
        let now = 1_000_000;
        // Twenty at once on one account from one address: five get a slot, the rest are
        // refused while those are still being verified.
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..20 {
            match g.begin("ada@example.com", "1.1.1.1", (0, 0, 0), now).await {
                Ok(a) => held.push(a),
                Err(Refusal::Throttled { .. }) => refused += 1,
                Err(Refusal::Busy) => panic!("slots are plenty"),
            }
        }
        assert_eq!((held.len(), refused), (5, 15));
        for a in held {
            a.failed(now);
        }
        assert!(
            g.begin("ada@example.com", "1.1.1.1", (0, 0, 0), now)
                .await
                .is_err()
        );
        // Another address may still try the account; after the window, so may this one.
        assert!(
            g.begin("ada@example.com", "2.2.2.2", (0, 0, 0), now)
                .await
                .is_ok()
        );
        assert!(
            g.begin("ada@example.com", "1.1.1.1", (0, 0, 0), now + WINDOW_MS)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_sprayed_address_still_lets_colleagues_in() {
        let g = LoginGuard::new(64);
        let now = 1_000_000;
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            g.begin(
                &format!("victim{i}@example.com"),
                "10.0.0.1",
                (0, 0, 0),
                now,
            )
            .await
            .unwrap()
            .failed(now);
        }
        // Accounts that failed here are refused from this address; one that did not is not.
        assert!(
            g.begin("victim0@example.com", "10.0.0.1", (0, 0, 0), now)
                .await
                .is_err()
        );
        let fresh = g
            .begin("grace@example.com", "10.0.0.1", (0, 0, 0), now)
            .await;
        assert!(fresh.is_ok());
    }

    #[tokio::test]
    async fn past_the_slots_and_their_queue_a_burst_gets_busy() {
        let g = LoginGuard::new(1);
        let now = 1_000_000;
        let first = g.begin("a@x.io", "1.1.1.1", (0, 0, 0), now).await.unwrap();
        // One slot, eight waiters: the ninth waiter is refused at once.
        let waiters: Vec<_> = (0..WAITERS_PER_SLOT)
            .map(|i| {
                let g = &g;
                async move {
                    g.begin(&format!("w{i}@x.io"), "2.2.2.2", (0, 0, 0), now)
                        .await
                        .map(|a| a.succeeded(now))
                }
            })
            .collect();
        let overflow = async {
            tokio::task::yield_now().await;
            g.begin("late@x.io", "3.3.3.3", (0, 0, 0), now)
                .await
                .map(|_| ())
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            first.succeeded(now);
        };
        let (results, late, ()) =
            tokio::join!(futures_util::future::join_all(waiters), overflow, release);
        assert_eq!(late, Err(Refusal::Busy));
        assert!(results.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn the_database_count_of_other_replicas_applies() {
        let g = LoginGuard::new(4);
        assert!(matches!(
            g.begin("ada@example.com", "1.1.1.1", (5, 5, 5), 0).await,
            Err(Refusal::Throttled { .. })
        ));
        assert!(
            g.begin("ada@example.com", "1.1.1.1", (4, 4, 4), 0)
                .await
                .is_ok()
        );
    }
}
