//! The shapes of the secrets Antix issues: virtual keys and API tokens (random base62 with a
//! checksum, so a typo is told apart from a wrong key without a lookup) and how they are shown.

use rand::RngCore;
use rand::rngs::OsRng;

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
