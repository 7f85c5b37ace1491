//! Secrets: the master key and the keys derived from it, password hashing, token generation and
//! lookup hashing, and authenticated encryption of stored provider credentials.
//!
//! One master key, many purposes: each purpose gets its own key through HKDF with a distinct
//! label, so a key leaked or misused in one role (say, the token pepper) cannot forge or decrypt
//! in another (RELIABILITY I2).

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

const KEY_LEN: usize = 32;

/// HKDF labels. Changing one invalidates everything protected by it, so they carry a version.
const LABEL_CREDENTIALS: &[u8] = b"antix/credentials/v1";
const LABEL_TOKEN_PEPPER: &[u8] = b"antix/token-pepper/v1";
const LABEL_SESSION: &[u8] = b"antix/session/v1";
const LABEL_CSRF: &[u8] = b"antix/csrf/v1";
/// Wraps other keys (the next master key during a rotation, the instance's lookup keys).
const LABEL_WRAP: &[u8] = b"antix/wrap/v1";
/// A master key's public name: which key a ciphertext was made with.
const LABEL_KEY_ID: &[u8] = b"antix/key-id/v1";

/// The lookup keys that must outlive a master key: rotating the master must not invalidate every
/// virtual key (stored as hashes under the pepper), portal session or invitation link. They are
/// derived from the first master key an instance had, then kept wrapped under the current one.
pub const INSTANCE_SECRETS: [&str; 3] = ["token_pepper", "session", "csrf"];

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key file {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("decryption failed (wrong key, or the ciphertext was moved or altered)")]
    Decrypt,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(
        "data was encrypted with master key {0}, which this server does not know: finish the master key rotation (`antix admin rotate-master-key`) or start the server with that key"
    )]
    UnknownKey(String),
}

/// The root secret. Never logged, never serialized.
pub struct MasterKey(SecretBox<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Parses 32 bytes given as base64 (standard or URL-safe, padded or not) or as 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| "invalid hex".to_owned())?
        } else {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|e| e.decode(text).ok())
                .ok_or_else(|| {
                    "must be 32 bytes as base64 or 64 hex digits (generate one with \
                     `openssl rand -base64 32`)"
                        .to_owned()
                })?
        };
        let arr: [u8; KEY_LEN] = bytes.try_into().map_err(|v: Vec<u8>| {
            format!(
                "decodes to {} bytes; must be 32 bytes (e.g. `openssl rand -base64 32`)",
                v.len()
            )
        })?;
        Ok(Self(SecretBox::new(Box::new(arr))))
    }

    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut k);
        Self(SecretBox::new(Box::new(k)))
    }

    /// Loads `<dir>/master.key`, creating it (mode 0600) when missing. Returns whether it was
    /// generated, so the caller can warn that losing the file loses every stored credential.
    pub fn load_or_generate(dir: &Path) -> Result<(Self, bool), CryptoError> {
        let path = dir.join("master.key");
        let err = |message: String| CryptoError::KeyFile {
            path: path.clone(),
            message,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::parse(&text).map_err(err)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
                let key = Self::generate();
                let text = base64::engine::general_purpose::STANDARD.encode(key.0.expose_secret());
                write_private(&path, &text).map_err(|e| err(e.to_string()))?;
                Ok((key, true))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    fn derive(&self, label: &[u8]) -> [u8; KEY_LEN] {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"antix"), self.0.expose_secret());
        let mut out = [0u8; KEY_LEN];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        let _ = hk.expand(label, &mut out);
        out
    }

    pub fn keys(&self) -> Keys {
        Keys {
            id: self.id(),
            credentials: SecretBox::new(Box::new(self.derive(LABEL_CREDENTIALS))),
            wrap: SecretBox::new(Box::new(self.derive(LABEL_WRAP))),
            token_pepper: SecretBox::new(Box::new(self.derive(LABEL_TOKEN_PEPPER))),
            session: SecretBox::new(Box::new(self.derive(LABEL_SESSION))),
            csrf: SecretBox::new(Box::new(self.derive(LABEL_CSRF))),
            others: std::sync::Mutex::new(std::collections::HashMap::new()),
            newest: std::sync::Mutex::new(None),
            last_learn_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// The key's public name (16 hex digits of an HMAC of it): safe to store beside what it
    /// encrypted, reveals nothing about it.
    pub fn id(&self) -> String {
        let k = self.derive(LABEL_KEY_ID);
        k[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The key as text (base64), for the one time a new key is shown or written.
    pub fn to_text(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.expose_secret())
    }

    /// Writes the key to `path` (mode 0600), failing if the file exists.
    pub fn write_new(&self, path: &Path) -> std::io::Result<()> {
        write_private(path, &self.to_text())
    }

    /// Reads a key file written by [`MasterKey::write_new`] or by hand.
    pub fn read(path: &Path) -> Result<Self, CryptoError> {
        let err = |message: String| CryptoError::KeyFile {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::parse(&text).map_err(err)
    }

    fn bytes(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

/// Purpose-separated keys derived from the master key.
pub struct Keys {
    /// The master key's id: new ciphertexts are made with it.
    id: String,
    credentials: SecretBox<[u8; KEY_LEN]>,
    wrap: SecretBox<[u8; KEY_LEN]>,
    token_pepper: SecretBox<[u8; KEY_LEN]>,
    session: SecretBox<[u8; KEY_LEN]>,
    csrf: SecretBox<[u8; KEY_LEN]>,
    /// Other master keys learned (the next one, during a rotation), by id.
    others: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<OtherKeys>>>,
    /// The newest master key learned (the end of the rotation chain from this one): credentials
    /// written here are encrypted with it, so servers already on it can read them.
    newest: std::sync::Mutex<Option<String>>,
    /// When the keyring was last read for an unknown key id (ms), so a row no key here can read
    /// does not send every request to the database.
    pub(crate) last_learn_ms: std::sync::atomic::AtomicI64,
}

/// What this server needs of another master key: its credential and wrapping keys.
struct OtherKeys {
    credentials: SecretBox<[u8; KEY_LEN]>,
    wrap: SecretBox<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// A 32-byte lookup hash of a high-entropy token (virtual key, session, invite).
pub type TokenHash = [u8; 32];

impl Keys {
    /// The id of the master key these keys come from.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Encrypts another key under this master's wrapping key (`label` binds it to its purpose).
    pub fn wrap(&self, secret: &[u8; KEY_LEN], label: &str) -> Vec<u8> {
        seal(self.wrap.expose_secret(), secret, label.as_bytes())
    }

    pub fn unwrap(&self, blob: &[u8], label: &str) -> Result<[u8; KEY_LEN], CryptoError> {
        open(self.wrap.expose_secret(), blob, label.as_bytes())?
            .try_into()
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Wraps another master key (the next one, in a rotation) under this one.
    pub fn wrap_master(&self, other: &MasterKey) -> Vec<u8> {
        self.wrap(other.bytes(), &format!("master/{}", other.id()))
    }

    /// Learns another master key wrapped under this one: ciphertexts made with it can then be
    /// read here.
    pub fn learn_master(&self, id: &str, wrapped: &[u8]) -> Result<(), CryptoError> {
        let own = self.id.clone();
        self.learn_master_by(&own, id, wrapped)
    }

    /// Learns master key `id` wrapped under `by` (this one, or one learned before: rotations
    /// chain, A to B then B to C).
    pub fn learn_master_by(&self, by: &str, id: &str, wrapped: &[u8]) -> Result<(), CryptoError> {
        let bytes = self.unwrap_by(by, wrapped, &format!("master/{id}"))?;
        let other = MasterKey(SecretBox::new(Box::new(bytes)));
        if other.id() != id {
            return Err(CryptoError::Decrypt);
        }
        let keys = OtherKeys {
            credentials: SecretBox::new(Box::new(other.derive(LABEL_CREDENTIALS))),
            wrap: SecretBox::new(Box::new(other.derive(LABEL_WRAP))),
        };
        self.others
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), std::sync::Arc::new(keys));
        Ok(())
    }

    fn other(&self, id: &str) -> Result<std::sync::Arc<OtherKeys>, CryptoError> {
        self.others
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))
    }

    /// Unwraps a key wrapped under master key `key_id` (this one, or one it learned).
    pub fn unwrap_by(
        &self,
        key_id: &str,
        blob: &[u8],
        label: &str,
    ) -> Result<[u8; KEY_LEN], CryptoError> {
        if key_id == self.id {
            return self.unwrap(blob, label);
        }
        open(
            self.other(key_id)?.wrap.expose_secret(),
            blob,
            label.as_bytes(),
        )?
        .try_into()
        .map_err(|_| CryptoError::Decrypt)
    }

    /// Whether ciphertexts of master key `id` can be read here.
    pub fn knows(&self, id: &str) -> bool {
        id == self.id
            || self
                .others
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(id)
    }

    /// The instance secrets as they are derived from this master key (used once, when an
    /// instance first records them).
    pub fn derived_instance_secret(&self, purpose: &str) -> Option<[u8; KEY_LEN]> {
        match purpose {
            "token_pepper" => Some(*self.token_pepper.expose_secret()),
            "session" => Some(*self.session.expose_secret()),
            "csrf" => Some(*self.csrf.expose_secret()),
            _ => None,
        }
    }

    /// These keys with the instance's own lookup secrets in place of the derived ones.
    pub fn with_instance_secret(mut self, purpose: &str, secret: [u8; KEY_LEN]) -> Self {
        let slot = match purpose {
            "token_pepper" => &mut self.token_pepper,
            "session" => &mut self.session,
            "csrf" => &mut self.csrf,
            _ => return self,
        };
        *slot = SecretBox::new(Box::new(secret));
        self
    }

    /// HMAC-SHA256 of a token under the pepper. Tokens carry ≥ 190 bits of entropy, so a fast
    /// keyed hash is enough; a slow hash would only add latency to every proxied request.
    pub fn token_hash(&self, token: &str) -> TokenHash {
        self.mac(self.token_pepper.expose_secret(), token.as_bytes())
    }

    /// The one-time token that first-run setup asks for: derived from this instance's own
    /// secret (so the server's log and `antix admin setup-token` agree without storing it), and
    /// worthless once an administrator exists.
    pub fn setup_token(&self) -> String {
        let mac = self.csrf_mac(b"antix first-run setup token");
        mac[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `given` is the setup token (constant time).
    pub fn is_setup_token(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.setup_token();
        let given = given.trim().to_ascii_lowercase();
        given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    }

    /// Hash of a portal session token, under its own key.
    pub fn session_hash(&self, token: &str) -> TokenHash {
        self.mac(self.session.expose_secret(), token.as_bytes())
    }

    /// A CSRF-style MAC over arbitrary data (kept for signed, stateless values such as invite
    /// links, which must not be forgeable with the session key).
    pub fn csrf_mac(&self, data: &[u8]) -> TokenHash {
        self.mac(self.csrf.expose_secret(), data)
    }

    fn mac(&self, key: &[u8; KEY_LEN], data: &[u8]) -> TokenHash {
        // HMAC accepts keys of any length; new_from_slice cannot fail for 32 bytes.
        let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => return [0u8; 32],
        };
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Encrypts a credential with AES-256-GCM. `aad` binds the ciphertext to its row and
    /// tenant, so a ciphertext copied into another row or organization fails to decrypt.
    /// Output: 12-byte random nonce followed by the ciphertext and tag.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal(self.credentials.expose_secret(), plaintext, aad)
    }

    /// Marks `id` (learned) as the newest master key.
    pub fn set_newest(&self, id: Option<String>) {
        *self
            .newest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = id;
    }

    /// Encrypts a credential for storage with the newest master key known here (the next one
    /// while a rotation runs, so a credential saved on a server still on the old key is not
    /// left behind), and that key's id.
    pub fn encrypt_newest(&self, plaintext: &[u8], aad: &[u8]) -> (Vec<u8>, String) {
        let newest = self
            .newest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(id) = newest
            && let Ok(other) = self.other(&id)
        {
            return (seal(other.credentials.expose_secret(), plaintext, aad), id);
        }
        (self.encrypt(plaintext, aad), self.id.clone())
    }

    /// Decrypts a credential made with this master key.
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open(self.credentials.expose_secret(), blob, aad)
    }

    /// Decrypts a credential made with master key `key_id` (this one, or one it learned; `None`:
    /// made before key ids were recorded, so with this one).
    pub fn decrypt_by(
        &self,
        key_id: Option<&str>,
        blob: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match key_id {
            None => self.decrypt(blob, aad),
            Some(id) if id == self.id => self.decrypt(blob, aad),
            Some(id) => open(self.other(id)?.credentials.expose_secret(), blob, aad),
        }
    }
}

/// AES-256-GCM: a 12-byte random nonce, then the ciphertext and tag.
fn seal(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    // Encryption with a valid key and nonce only fails for inputs over 64 GiB.
    if let Ok(ct) = cipher.encrypt(
        Nonce::from_slice(&nonce),
        Payload {
            msg: plaintext,
            aad,
        },
    ) {
        out.extend_from_slice(&ct);
    }
    out
}

fn open(key: &[u8; KEY_LEN], blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < 12 + 16 {
        return Err(CryptoError::Decrypt);
    }
    let (nonce, ct) = blob.split_at(12);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)
}

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

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` random base62 characters (≈ 5.95 bits each), by rejection sampling so every character
/// is uniform.
pub fn random_base62(n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        OsRng.fill_bytes(&mut buf);
        for &b in &buf {
            // 248 = 62 * 4: values at or above it would bias the first characters.
            if b < 248 && out.len() < n {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

fn base62_fixed(mut v: u32, width: usize) -> String {
    let mut chars = vec![b'0'; width];
    for slot in chars.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8_lossy(&chars).into_owned()
}

/// Length of the random part of a virtual key: 43 base62 characters ≈ 256 bits (≥ 32 bytes).
pub const VIRTUAL_KEY_RANDOM_LEN: usize = 43;
/// Length of the CRC32 checksum suffix (base62 of a u32 fits in 6 characters).
const CHECKSUM_LEN: usize = 6;

/// A new virtual key: `sk-vk-` + 43 random base62 characters + a 6-character CRC32 checksum,
/// so secret scanners can recognise real keys and the gateway can reject typos without a
/// database lookup.
pub fn generate_virtual_key() -> String {
    let body = random_base62(VIRTUAL_KEY_RANDOM_LEN);
    let sum = base62_fixed(crc32fast::hash(body.as_bytes()), CHECKSUM_LEN);
    format!("sk-vk-{body}{sum}")
}

/// Whether a string has the shape and checksum of a key this gateway issued. A string with a
/// virtual-key prefix that fails this check is still a (bad) virtual key, never a BYOK key.
pub fn virtual_key_checksum_ok(key: &str) -> bool {
    let Some(rest) = key
        .strip_prefix("sk-vk-")
        .or_else(|| key.strip_prefix("sk-antix-"))
    else {
        return false;
    };
    if rest.len() != VIRTUAL_KEY_RANDOM_LEN + CHECKSUM_LEN || !rest.is_ascii() {
        return false;
    }
    let (body, sum) = rest.split_at(VIRTUAL_KEY_RANDOM_LEN);
    body.bytes().all(|b| b.is_ascii_alphanumeric())
        && subtle::ConstantTimeEq::ct_eq(
            base62_fixed(crc32fast::hash(body.as_bytes()), CHECKSUM_LEN).as_bytes(),
            sum.as_bytes(),
        )
        .into()
}

/// Prefix of organization API tokens (the management REST API's credential).
pub const API_TOKEN_PREFIX: &str = "antix_api_";

/// A new organization API token: `antix_api_` + 43 random base62 characters + a CRC32 checksum,
/// the virtual keys' shape under a prefix of its own (a token is never a proxy key, nor the
/// other way round).
pub fn generate_api_token() -> String {
    let body = random_base62(VIRTUAL_KEY_RANDOM_LEN);
    let sum = base62_fixed(crc32fast::hash(body.as_bytes()), CHECKSUM_LEN);
    format!("{API_TOKEN_PREFIX}{body}{sum}")
}

/// Whether a string has the shape and checksum of an API token: a mistyped one is refused
/// without a database lookup.
pub fn api_token_checksum_ok(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(API_TOKEN_PREFIX) else {
        return false;
    };
    if rest.len() != VIRTUAL_KEY_RANDOM_LEN + CHECKSUM_LEN || !rest.is_ascii() {
        return false;
    }
    let (body, sum) = rest.split_at(VIRTUAL_KEY_RANDOM_LEN);
    body.bytes().all(|b| b.is_ascii_alphanumeric())
        && subtle::ConstantTimeEq::ct_eq(
            base62_fixed(crc32fast::hash(body.as_bytes()), CHECKSUM_LEN).as_bytes(),
            sum.as_bytes(),
        )
        .into()
}

/// An API token as lists show it: prefix, four characters, an ellipsis and the last four.
pub fn api_token_display(token: &str) -> String {
    let rest = token.get(API_TOKEN_PREFIX.len()..).unwrap_or("");
    let head: String = rest.chars().take(4).collect();
    let tail: String = rest
        .chars()
        .skip(rest.chars().count().saturating_sub(4))
        .collect();
    format!("{API_TOKEN_PREFIX}{head}…{tail}")
}

/// What a key looks like in lists once its secret part is gone: prefix, four characters, an
/// ellipsis and the last four.
pub fn key_display(key: &str) -> String {
    let prefix = if key.starts_with("sk-antix-") {
        "sk-antix-"
    } else {
        "sk-vk-"
    };
    let rest = key.get(prefix.len()..).unwrap_or("");
    let head: String = rest.chars().take(4).collect();
    let tail: String = rest
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{prefix}{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_tokens_have_their_own_shape() {
        let t = generate_api_token();
        assert!(t.starts_with("antix_api_") && api_token_checksum_ok(&t));
        assert!(!virtual_key_checksum_ok(&t));
        assert!(!api_token_checksum_ok(&generate_virtual_key()));
        let mut typo = t.clone().into_bytes();
        let i = typo.len() - 10;
        typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
        assert!(!api_token_checksum_ok(&String::from_utf8(typo).unwrap()));
        let shown = api_token_display(&t);
        assert!(shown.starts_with(&t[..14]) && shown.ends_with(&t[t.len() - 4..]));
        assert!(shown.chars().count() < 24);
    }

    #[test]
    fn master_key_formats() {
        let hex = "00".repeat(32);
        assert!(MasterKey::parse(&hex).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(MasterKey::parse(&b64).is_ok());
        assert!(MasterKey::parse("abc").unwrap_err().contains("32 bytes"));
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert!(MasterKey::parse(&short).unwrap_err().contains("16 bytes"));
    }

    #[test]
    fn generated_key_file_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, gen1) = MasterKey::load_or_generate(dir.path()).unwrap();
        let (k2, gen2) = MasterKey::load_or_generate(dir.path()).unwrap();
        assert!(gen1 && !gen2);
        assert_eq!(k1.keys().token_hash("x"), k2.keys().token_hash("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn purposes_use_distinct_keys() {
        let keys = MasterKey::generate().keys();
        let t = "token";
        assert_ne!(keys.token_hash(t), keys.session_hash(t));
        assert_ne!(keys.token_hash(t), keys.csrf_mac(t.as_bytes()));
        let k = [
            *keys.credentials.expose_secret(),
            *keys.token_pepper.expose_secret(),
            *keys.session.expose_secret(),
            *keys.csrf.expose_secret(),
        ];
        for i in 0..k.len() {
            for j in i + 1..k.len() {
                assert_ne!(k[i], k[j]);
            }
        }
    }

    #[test]
    fn aead_binds_ciphertext_to_its_row() {
        let keys = MasterKey::generate().keys();
        let ct = keys.encrypt(b"sk-real-secret", b"cred:org-a:openai");
        assert_eq!(
            keys.decrypt(&ct, b"cred:org-a:openai").unwrap(),
            b"sk-real-secret"
        );
        assert!(keys.decrypt(&ct, b"cred:org-b:openai").is_err());
        let mut tampered = ct.clone();
        tampered[20] ^= 1;
        assert!(keys.decrypt(&tampered, b"cred:org-a:openai").is_err());
        let other = MasterKey::generate().keys();
        assert!(other.decrypt(&ct, b"cred:org-a:openai").is_err());
    }

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

    #[test]
    fn virtual_keys_have_shape_and_checksum() {
        let k = generate_virtual_key();
        assert!(k.starts_with("sk-vk-"));
        assert_eq!(k.len(), 6 + 43 + 6);
        assert!(virtual_key_checksum_ok(&k));
        let mut bad = k.clone().into_bytes();
        let i = 10;
        bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
        assert!(!virtual_key_checksum_ok(&String::from_utf8(bad).unwrap()));
        assert!(!virtual_key_checksum_ok("sk-vk-short"));
        assert!(!virtual_key_checksum_ok("sk-proj-abc"));
        let d = key_display(&k);
        assert!(d.starts_with("sk-vk-") && d.contains('…') && d.len() < 20);
    }

    #[test]
    fn base62_is_uniformish() {
        let s = random_base62(62 * 200);
        let mut counts = [0usize; 62];
        for b in s.bytes() {
            let i = BASE62.iter().position(|&c| c == b).unwrap();
            counts[i] += 1;
        }
        assert!(counts.iter().all(|&c| c > 100 && c < 320), "{counts:?}");
    }
}
