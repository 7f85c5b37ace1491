//! When a call is tried again, and after how long. A try is repeated only before anything
//! reached the client, and only for answers that say "not now": 408, 409, 429, 500, 502, 503,
//! 504 and Anthropic's 529 (overloaded), or a connection that could not be made. Never for other 4xx
//! (the request itself is wrong), never once a 2xx head has been relayed, never for a request
//! body that was streamed through (it cannot be sent twice).
//!
//! With another credential awake, the next try goes to it at once. Otherwise it waits: the
//! provider's `Retry-After` when it gave one, else an exponential backoff with jitter (250 ms,
//! 500 ms, 1 s… at most 4 s). A wait that would pass the deadline is not taken, nor a
//! `Retry-After` longer than [`MAX_WAIT`]: the client gets the 429 with it at once (its SDK
//! knows how to wait, and holding the request that long helps nobody).

use std::time::{Duration, Instant};

use super::balance::Failure;
use crate::config::Retries;
use crate::credentials::UpstreamCredential;
use crate::domain::CredentialId;

/// The longest wait before trying the same credential again.
pub const MAX_WAIT: Duration = Duration::from_secs(4);

/// Why an answer is worth another try, from its status and headers.
pub fn failure(status: u16, headers: &http::HeaderMap) -> Option<Failure> {
    match status {
        429 => Some(Failure::RateLimited(retry_after(headers))),
        500 | 502 | 503 | 504 | 529 => Some(Failure::Unavailable),
        408 | 409 => Some(Failure::Transient),
        _ => None,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from these APIs and ignored).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// How long to wait before attempt `n + 1` (after `n` tries), or `None` when the deadline does
/// not allow it.
pub fn wait(
    why: Failure,
    n: usize,
    credentials: &[UpstreamCredential],
    last: Option<&UpstreamCredential>,
    tried: &[CredentialId],
    retries: &Retries,
    started: Instant,
) -> Option<Duration> {
    let untried = credentials
        .iter()
        .any(|c| Some(c.id) != last.map(|l| l.id) && !tried.contains(&c.id));
    let wait = if untried {
        Duration::ZERO
    } else {
        let backoff = retries
            .backoff
            .saturating_mul(1 << (n - 1).min(4))
            .min(MAX_WAIT);
        let jitter = retries.backoff.mul_f64(rand::random::<f64>());
        match why {
            Failure::RateLimited(Some(after)) if after > MAX_WAIT => return None,
            Failure::RateLimited(Some(after)) => after.max(backoff),
            _ => backoff + jitter,
        }
    };
    (started.elapsed() + wait < retries.deadline).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_answers_are_tried_again() {
        let h = http::HeaderMap::new();
        for s in [429, 500, 502, 503, 504, 529] {
            assert!(failure(s, &h).is_some(), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 422] {
            assert!(failure(s, &h).is_none(), "{s}");
        }
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            failure(429, &h),
            Some(Failure::RateLimited(Some(Duration::from_secs(7))))
        );
    }

    #[test]
    fn waits_grow_and_stop_at_the_deadline() {
        let r = Retries {
            attempts: 5,
            deadline: Duration::from_secs(3),
            backoff: Duration::from_millis(100),
        };
        let now = Instant::now();
        let w1 = wait(Failure::Unavailable, 1, &[], None, &[], &r, now).unwrap();
        let w3 = wait(Failure::Unavailable, 3, &[], None, &[], &r, now).unwrap();
        assert!(w1 >= Duration::from_millis(100) && w1 < Duration::from_millis(200));
        assert!(w3 >= Duration::from_millis(400));
        // A Retry-After past the deadline, or just long: no retry.
        assert!(
            wait(
                Failure::RateLimited(Some(Duration::from_secs(5))),
                1,
                &[],
                None,
                &[],
                &r,
                now
            )
            .is_none()
        );
        assert!(
            wait(
                Failure::RateLimited(Some(Duration::from_secs(10))),
                1,
                &[],
                None,
                &[],
                &r,
                now
            )
            .is_none()
        );
    }
}
