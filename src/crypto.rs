//! Secrets: the master key and the keys derived from it, password hashing, token generation and
//! lookup hashing, and authenticated encryption of stored provider credentials.
//!
//! One master key, many purposes: each purpose gets its own key through HKDF with a distinct
//! label, so a key leaked or misused in one role (say, the token pepper) cannot forge or decrypt
//! in another (RELIABILITY I2).

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

mod password;
mod tokens;

pub use password::{hash_password, verify_password};
pub use tokens::{
    API_TOKEN_PREFIX, VIRTUAL_KEY_RANDOM_LEN, api_token_checksum_ok, api_token_display,
    generate_api_token, generate_virtual_key, key_display, random_base62, virtual_key_checksum_ok,
};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
