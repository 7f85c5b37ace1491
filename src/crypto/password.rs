//! Password hashing: argon2id at OWASP's minimum, with the memory blocks reused per thread.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

use super::CryptoError;

/// argon2id at OWASP's recommended minimum (m = 19 MiB, t = 2, p = 1).
fn argon2() -> Argon2<'static> {
    // These constants are within argon2's documented bounds; Params::new cannot fail for them.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

thread_local! {
    /// argon2's working memory (19 MiB), allocated once by each thread that hashes (the few
    /// password-hashing threads) and reused. Allocated per run, every freed block stayed in
    /// the C allocator's arenas: a burst of logins left the process hundreds of MiB larger.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The most working memory kept for reuse, in 1 KiB blocks: a stored hash with larger
/// parameters (an older, costlier setting) gets an allocation of its own.
const REUSED_BLOCKS: usize = 64 * 1024;

/// The raw argon2 output for `password` and `salt`, in the thread's reused memory.
fn argon2_into(
    a: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let need = a.params().block_count();
    if need > REUSED_BLOCKS {
        return a.hash_password_into(password, salt, out);
    }
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < need {
            blocks.resize(need, argon2::Block::default());
        }
        a.hash_password_into_with_memory(password, salt, out, &mut blocks[..need])
    })
}

/// Hashes a password to a PHC string. CPU-heavy (tens of ms): call from the hashing threads.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    let err = |e: &dyn std::fmt::Display| CryptoError::Hash(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let a = argon2();
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| err(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&a, password.as_bytes(), salt_bytes, &mut out).map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(a.params()).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches a PHC string (any argon2 variant and parameters it names),
/// compared in constant time.
fn matches(password: &[u8], phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&h) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let Ok(version) = h.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    argon2_into(
        &Argon2::new(algorithm, version, params),
        password,
        salt,
        &mut out,
    )
    .is_ok()
        && Output::new(&out).is_ok_and(|o| o == expected)
}

/// Verifies a password against a PHC string. With `None` (unknown user) it still runs a full
/// argon2 verification against a fixed hash, so the response time does not reveal whether the
/// account exists. CPU-heavy: call from the hashing threads.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("antix-dummy-password").unwrap_or_default());
    let (phc, real) = match phc {
        Some(p) => (p, true),
        None => (dummy.as_str(), false),
    };
    matches(password.as_bytes(), phc) && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_at_owasp_minimum() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", Some(&phc)));
        assert!(!verify_password("wrong", Some(&phc)));
        assert!(!verify_password("antix-dummy-password", None));
        assert!(!verify_password(
            "correct horse",
            Some("$argon2id$v=19$m=19456")
        ));
    }

    #[test]
    fn password_hashes_stay_compatible_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Hashes stored before the working memory was reused (and with other parameters).
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2()
            .hash_password(b"old password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("old password", Some(&theirs)));
        assert!(!verify_password("old passwore", Some(&theirs)));
        let light = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(1024, 1, 1, Some(16)).unwrap(),
        )
        .hash_password(b"legacy", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("legacy", Some(&light)));
        // And the crate reads ours.
        let ours = hash_password("new password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2().verify_password(b"new password", &parsed).is_ok());
    }
}
