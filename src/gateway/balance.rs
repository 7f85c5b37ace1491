//! Load balancing across an organization's credentials for a provider, with a circuit breaker.
//!
//! A call goes to one of the provider's enabled credentials, picked at random by weight among
//! those not resting and not past their own requests- or tokens-per-minute limits (tokens
//! counted as each call's estimate when it is sent: its prompt at four bytes a token plus the
//! output it allows; what a call really used is known only after the credential was chosen). A credential that
//! answers 429 rests for the `Retry-After` it was given (else a few seconds, longer each time);
//! one that answers 5xx or cannot be reached rests 1, 2, 4… seconds (at most a minute). When its
//! rest is over it gets one call (half-open): success clears its record, failure rests it
//! longer. Rests are written to the database, so every replica on one Postgres skips a resting
//! credential (each replica reads them at most once a second per provider); within a replica
//! they take effect at once.
//!
//! A provider with one credential has nothing to choose: it costs nothing here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::credentials::UpstreamCredential;
use crate::domain::{CredentialId, Millis, OrgId, Provider, now_ms};
use crate::store::Store;

/// The longest rest.
const MAX_REST_MS: Millis = 60_000;
/// How often a replica reads the rests other replicas wrote, per organization and provider.
const REFRESH_MS: Millis = 1_000;

#[derive(Debug, Clone, Copy, Default)]
struct Health {
    rest_until: Millis,
    failures: i64,
}

#[derive(Debug, Default)]
struct Minute {
    start: Millis,
    requests: i64,
    tokens: i64,
}

#[derive(Default)]
pub struct Balancer {
    health: Mutex<HashMap<CredentialId, Health>>,
    /// When each organization's provider was last refreshed from the database.
    refreshed: Mutex<HashMap<(OrgId, Provider), Millis>>,
    minutes: Mutex<HashMap<CredentialId, Minute>>,
}

/// Why a credential failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429, with the provider's `Retry-After` when it sent one.
    RateLimited(Option<Duration>),
    /// 5xx, overloaded, or no connection.
    Unavailable,
    /// 408 or 409: worth another try, but says nothing about the credential.
    Transient,
}

/// How long a credential whose rest is over gets to answer its one probe call before others
/// may be sent to it too.
const PROBE_MS: Millis = 10_000;

impl Balancer {
    /// Reads the rests other replicas recorded, when this replica's copy is over a second old
    /// (only when there is a choice to make).
    pub async fn refresh(
        &self,
        store: &Store,
        org: OrgId,
        provider: Provider,
        creds: &[UpstreamCredential],
    ) {
        if creds.len() < 2 {
            return;
        }
        let now = now_ms();
        {
            let mut r = self
                .refreshed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let last = r.entry((org, provider)).or_insert(0);
            if now - *last < REFRESH_MS {
                return;
            }
            *last = now;
        }
        let ids: Vec<CredentialId> = creds.iter().map(|c| c.id).collect();
        let read = tokio::time::timeout(Duration::from_millis(500), store.cooldowns(&ids)).await;
        if let Ok(Ok(rows)) = read {
            let mut h = self
                .health
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in &ids {
                match rows.iter().find(|(r, _, _)| r == id) {
                    Some((_, until, failures)) => {
                        let e = h.entry(*id).or_default();
                        e.rest_until = e.rest_until.max(*until);
                        e.failures = e.failures.max(*failures);
                    }
                    // Cleared elsewhere (a success on another replica).
                    None => {
                        h.remove(id);
                    }
                }
            }
        }
    }

    /// Picks a credential for the next attempt: among those not tried yet when any is left,
    /// by weight among those awake and under their rpm; if every one rests, the one whose rest
    /// ends first (better to try than to fail without trying). `None` only for an empty list.
    pub fn pick<'a>(
        &self,
        creds: &'a [UpstreamCredential],
        tried: &[CredentialId],
        random: u64,
    ) -> Option<&'a UpstreamCredential> {
        if creds.len() == 1 {
            return creds.first();
        }
        let now = now_ms();
        let mut health = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let minutes = self
            .minutes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh: Vec<&UpstreamCredential> =
            creds.iter().filter(|c| !tried.contains(&c.id)).collect();
        let pool: Vec<&UpstreamCredential> = if fresh.is_empty() {
            creds.iter().collect()
        } else {
            fresh
        };
        let resting =
            |c: &UpstreamCredential| health.get(&c.id).is_some_and(|h| h.rest_until > now);
        let over_rpm = |c: &UpstreamCredential| {
            minutes.get(&c.id).is_some_and(|m| {
                now - m.start < 60_000
                    && (c.rpm.is_some_and(|l| m.requests >= l)
                        || c.tpm.is_some_and(|l| m.tokens >= l))
            })
        };
        let awake: Vec<&UpstreamCredential> = pool
            .iter()
            .copied()
            .filter(|c| c.weight > 0 && !resting(c) && !over_rpm(c))
            .collect();
        if awake.is_empty() {
            return pool
                .iter()
                .copied()
                .min_by_key(|c| health.get(&c.id).map_or(0, |h| h.rest_until));
        }
        let total: u64 = awake.iter().map(|c| u64::from(c.weight)).sum();
        let mut point = random % total.max(1);
        let mut chosen = awake.last().copied();
        for c in &awake {
            let w = u64::from(c.weight);
            if point < w {
                chosen = Some(c);
                break;
            }
            point -= w;
        }
        // Half-open: a credential back from a rest gets this one call; the others wait for
        // its answer (a success clears the record, a failure rests it longer).
        if let Some(c) = chosen
            && let Some(h) = health.get_mut(&c.id)
            && h.failures > 0
        {
            h.rest_until = now + PROBE_MS;
        }
        chosen
    }

    /// Counts a call, of about `tokens`, against the credential's requests and tokens per
    /// minute (this replica's count).
    pub fn count(&self, c: &UpstreamCredential, tokens: u64) {
        if c.rpm.is_none() && c.tpm.is_none() {
            return;
        }
        let now = now_ms();
        let mut m = self
            .minutes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let e = m.entry(c.id).or_default();
        if now - e.start >= 60_000 {
            e.start = now;
            e.requests = 0;
            e.tokens = 0;
        }
        e.requests += 1;
        e.tokens = e
            .tokens
            .saturating_add(i64::try_from(tokens).unwrap_or(i64::MAX));
    }

    /// A credential failed: it rests, here at once and, through the database, on every replica.
    pub fn failed(&self, store: &Store, c: &UpstreamCredential, why: Failure) {
        if why == Failure::Transient {
            return;
        }
        let now = now_ms();
        let (until, failures) = {
            let mut h = self
                .health
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let e = h.entry(c.id).or_default();
            e.failures += 1;
            let rest = match why {
                Failure::RateLimited(Some(after)) => {
                    i64::try_from(after.as_millis()).unwrap_or(MAX_REST_MS)
                }
                Failure::RateLimited(None) => 5_000 * e.failures,
                Failure::Unavailable => 1_000 << (e.failures - 1).clamp(0, 6),
                Failure::Transient => 0,
            }
            .clamp(500, MAX_REST_MS);
            e.rest_until = now + rest;
            (e.rest_until, e.failures)
        };
        let store = store.clone();
        let id = c.id;
        tokio::spawn(async move {
            let _ = store.set_cooldown(id, until, failures, now).await;
        });
    }

    /// A credential answered: a resting record, if any, is cleared (here and in the database).
    pub fn succeeded(&self, store: &Store, c: &UpstreamCredential) {
        let had = self
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&c.id)
            .is_some_and(|h| h.failures > 0);
        if had {
            let store = store.clone();
            let id = c.id;
            tokio::spawn(async move {
                let _ = store.clear_cooldown(id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(name: &str, weight: u32) -> UpstreamCredential {
        UpstreamCredential {
            id: CredentialId(uuid::Uuid::new_v4()),
            name: name.into(),
            secret: secrecy::SecretString::from("sk-x".to_owned()),
            base_url: None,
            weight,
            rpm: None,
            tpm: None,
            enabled: true,
        }
    }

    #[test]
    fn weights_hold_over_many_picks() {
        let b = Balancer::default();
        let creds = vec![cred("a", 3), cred("b", 1), cred("off", 0)];
        let mut counts = HashMap::new();
        let mut x: u64 = 7;
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = b.pick(&creds, &[], x >> 11).unwrap();
            *counts.entry(c.name.clone()).or_insert(0) += 1;
        }
        let a = counts["a"] as f64 / 10_000.0;
        assert!((a - 0.75).abs() < 0.03, "{counts:?}");
        assert!(!counts.contains_key("off"));
    }

    #[tokio::test]
    async fn a_failed_credential_rests_and_the_others_serve() {
        let db = crate::store::testing::TestDb::sqlite().await.unwrap();
        let b = Balancer::default();
        let creds = vec![cred("a", 1), cred("b", 1)];
        b.failed(
            &db.store,
            &creds[0],
            Failure::RateLimited(Some(Duration::from_secs(30))),
        );
        for r in 0..50 {
            assert_eq!(b.pick(&creds, &[], r).unwrap().name, "b");
        }
        // Not the one just tried, when another is left.
        assert_eq!(b.pick(&creds, &[creds[1].id], 0).unwrap().name, "a");
        // Everyone resting: the one that wakes first.
        b.failed(
            &db.store,
            &creds[1],
            Failure::RateLimited(Some(Duration::from_secs(60))),
        );
        assert_eq!(b.pick(&creds, &[], 0).unwrap().name, "a");
        // A success clears the rest.
        b.succeeded(&db.store, &creds[0]);
        b.succeeded(&db.store, &creds[1]);
        let picked: std::collections::HashSet<String> = (0..50)
            .map(|r| b.pick(&creds, &[], r).unwrap().name.clone())
            .collect();
        assert_eq!(picked.len(), 2);
    }

    #[test]
    fn a_credential_at_its_rpm_is_skipped() {
        let b = Balancer::default();
        let mut limited = cred("limited", 1);
        limited.rpm = Some(2);
        let creds = vec![limited, cred("other", 1)];
        b.count(&creds[0], 10);
        b.count(&creds[0], 10);
        for r in 0..20 {
            assert_eq!(b.pick(&creds, &[], r).unwrap().name, "other");
        }
    }

    #[test]
    fn a_credential_at_its_tpm_is_skipped() {
        let b = Balancer::default();
        let mut limited = cred("limited", 1);
        limited.tpm = Some(1_000);
        let creds = vec![limited, cred("other", 1)];
        b.count(&creds[0], 600);
        let picked: std::collections::HashSet<String> = (0..50)
            .map(|r| b.pick(&creds, &[], r).unwrap().name.clone())
            .collect();
        assert_eq!(picked.len(), 2, "under its limit it still serves");
        b.count(&creds[0], 600);
        for r in 0..20 {
            assert_eq!(b.pick(&creds, &[], r).unwrap().name, "other");
        }
    }
}
