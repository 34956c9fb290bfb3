//! The vault's primitives: 256-bit secret keys that zeroize themselves, XChaCha20-Poly1305
//! sealing (192-bit random nonces, so random nonces never collide in practice), HMAC-SHA256
//! keyed hashes for record names, HKDF-SHA256 for sub-keys, Argon2id for passwords.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// First byte of every sealed value: the format, so that a future format can coexist.
const FORMAT_V1: u8 = 1;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the system random generator failed: {0}")]
    Random(String),
    /// Wrong key, wrong associated data, or changed bytes: indistinguishable on purpose.
    #[error("authentication failed")]
    Authentication,
    #[error("invalid key-derivation parameters: {0}")]
    KdfParams(String),
}

/// A 256-bit secret. No Debug, no Clone, no Serialize; zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Box<[u8; KEY_LEN]>);

impl SecretKey {
    pub fn random() -> Result<Self, CryptoError> {
        let mut k = Box::new([0u8; KEY_LEN]);
        fill_random(&mut k[..])?;
        Ok(Self(k))
    }

    /// Takes the bytes out of `bytes` (which is wiped).
    pub fn from_bytes(bytes: &mut [u8; KEY_LEN]) -> Self {
        let k = Box::new(*bytes);
        bytes.zeroize();
        Self(k)
    }

    /// Reads a key from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut k = Box::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        k.copy_from_slice(bytes);
        Some(Self(k))
    }

    /// A sub-key for one purpose (HKDF-SHA256, info = `label`).
    pub fn derive(&self, label: &[u8]) -> Self {
        let mut out = Box::new([0u8; KEY_LEN]);
        let hk = hkdf::Hkdf::<Sha256>::new(None, &self.0[..]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        if hk.expand(label, &mut out[..]).is_err() {
            unreachable_len();
        }
        Self(out)
    }

    /// The raw bytes, for sealing this key under another one.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

#[cold]
fn unreachable_len() {
    tracing::error!("HKDF rejected a 32-byte output length");
}

pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

fn cipher(key: &SecretKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&Key::from(*key.expose()))
}

/// `FORMAT_V1 ‖ nonce ‖ ciphertext ‖ tag`, authenticated together with `aad`.
pub fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.push(FORMAT_V1);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_inout_detached(
            &XNonce::from(nonce),
            aad,
            out[1 + NONCE_LEN..].as_mut().into(),
        )
        .map_err(|_| CryptoError::Authentication)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Reverses [`seal`]; any change to the value, the key or `aad` is an error.
pub fn open(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < SEAL_OVERHEAD || sealed[0] != FORMAT_V1 {
        return Err(CryptoError::Authentication);
    }
    let (head, rest) = sealed.split_at(1 + NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = XNonce::try_from(&head[1..]).map_err(|_| CryptoError::Authentication)?;
    let tag = Tag::try_from(tag).map_err(|_| CryptoError::Authentication)?;
    let mut plain = Zeroizing::new(body.to_vec());
    cipher(key)
        .decrypt_inout_detached(&nonce, aad, plain.as_mut_slice().into(), &tag)
        .map_err(|_| CryptoError::Authentication)?;
    Ok(plain)
}

/// HMAC-SHA256 over length-prefixed parts (so `("ab","c")` and `("a","bc")` differ).
pub fn keyed_hash(key: &SecretKey, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()) {
        Ok(m) => m,
        // HMAC accepts keys of any length.
        Err(_) => return [0u8; 32],
    };
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Argon2id cost parameters; stored with each user so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl KdfParams {
    /// ≥ 64 MiB, 3 passes (ARCHITECTURE §4; OWASP's Argon2id guidance is lower).
    pub const DEFAULT: Self = Self {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// For test suites only: fast, and worthless against an attacker.
    pub const TEST_ONLY: Self = Self {
        m_kib: 256,
        t: 1,
        p: 1,
    };

    /// The key-encryption key for `password` and `salt`.
    pub fn derive_key(&self, password: &[u8], salt: &[u8]) -> Result<SecretKey, CryptoError> {
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(KEY_LEN))
            .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Box::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(password, salt, &mut out[..])
            .map_err(|e| CryptoError::KdfParams(e.to_string()))?;
        Ok(SecretKey(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn seal_open_round_trip_and_every_change_is_detected() {
        let k = SecretKey::random().unwrap();
        let sealed = seal(&k, b"aad", b"Befund 2026").unwrap();
        assert_eq!(sealed.len(), 11 + SEAL_OVERHEAD);
        assert_eq!(&open(&k, b"aad", &sealed).unwrap()[..], b"Befund 2026");
        assert!(open(&k, b"other aad", &sealed).is_err());
        assert!(open(&SecretKey::random().unwrap(), b"aad", &sealed).is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(open(&k, b"aad", &bad).is_err(), "flip at {i} undetected");
        }
        assert!(open(&k, b"aad", &sealed[..sealed.len() - 1]).is_err());
        assert!(open(&k, b"aad", &[]).is_err());
    }

    #[test]
    fn nonces_differ_between_seals() {
        let k = SecretKey::random().unwrap();
        assert_ne!(seal(&k, b"", b"x").unwrap(), seal(&k, b"", b"x").unwrap());
    }

    #[test]
    fn derived_keys_and_keyed_hashes_separate_purposes() {
        let k = SecretKey::random().unwrap();
        assert_ne!(k.derive(b"a").expose(), k.derive(b"b").expose());
        assert_eq!(k.derive(b"a").expose(), k.derive(b"a").expose());
        assert_ne!(
            keyed_hash(&k, &[b"ab", b"c"]),
            keyed_hash(&k, &[b"a", b"bc"])
        );
    }

    #[test]
    fn argon2id_is_deterministic_per_salt() {
        let p = KdfParams::TEST_ONLY;
        let a = p.derive_key(b"correct horse", b"0123456789abcdef").unwrap();
        let b = p.derive_key(b"correct horse", b"0123456789abcdef").unwrap();
        let c = p.derive_key(b"correct horse", b"fedcba9876543210").unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
        assert!(
            KdfParams {
                m_kib: 1,
                t: 1,
                p: 1
            }
            .derive_key(b"x", b"0123456789abcdef")
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = SecretKey::from_bytes(&mut [7u8; 32]);
            prop_assert!(open(&k, b"aad", &bytes).is_err());
        }
    }
}
