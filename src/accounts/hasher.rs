//! Password hashing and verification on a few threads of their own, one per core.
//!
//! argon2 takes 19 MiB per run. On tokio's blocking pool each run may land on a new thread,
//! and the C allocator keeps a freed 19 MiB block in that thread's arena: a burst of logins
//! over hundreds of threads left the process hundreds of MiB larger for good. On a fixed set
//! of threads, each reusing its working memory (see `crypto::argon2_into`), the memory argon2
//! ever holds is 19 MiB per thread, whatever the burst.
//! (The login guard already bounds how many runs wait here.)

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock, Mutex, mpsc};

use super::AccountError;

type Job = Box<dyn FnOnce() + Send>;

static HASHERS: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..super::guard::verify_slots() {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking job fails its own caller (its result is never sent), not
                    // the thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password hashing thread");
        }
    }
    tx
});

/// Runs `f` (an argon2 hash or verification) on the hashing threads.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AccountError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    HASHERS
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| AccountError::Internal("the password hashing threads stopped".into()))?;
    rx.await
        .map_err(|_| AccountError::Internal("password hashing failed".into()))
}
