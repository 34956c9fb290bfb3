//! The key schedule (epa-protocol.md §2.4), the handshake AEAD framing (IV ‖ ct ‖ tag) and the
//! ECDH-KEM on P-256 (shared secret = x-coordinate). Shared by client and server.

use std::ops::Range;

use p256::elliptic_curve::Generate;
use p256::{PublicKey, SecretKey};
use rand_core::CryptoRng;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::VauError;

pub const IV_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// A 256-bit AES key, wiped on drop.
pub struct SymKey(Zeroizing<[u8; 32]>);

impl SymKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(Zeroizing::new(b))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// ring's AES-GCM (the assembly TLS uses too: several times the throughput of a portable
    /// implementation, which matters for 25 MB documents). ring does not wipe the expanded key
    /// schedule; it lives only as long as one seal or open, the raw key stays in `Zeroizing`.
    fn cipher(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, &self.0[..])
            .ok()
            .map(LessSafeKey::new)
    }
}

fn split<const N: usize>(okm: &[u8], i: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&okm[i * N..(i + 1) * N]);
    out
}

/// HKDF-SHA256 without salt and with empty info.
fn hkdf(ikm: &[u8], okm: &mut [u8]) {
    let hk = hkdf::Hkdf::<Sha256>::new(None, ikm);
    // 64 and 160 bytes are far below HKDF-SHA256's limit of 8160.
    let _ = hk.expand(&[], okm);
}

/// K1: protects M2 and M3.
pub struct K1 {
    pub c2s: SymKey,
    pub s2c: SymKey,
}

/// K2: key confirmation, application data, KeyID.
pub struct K2 {
    pub c2s_key_confirmation: SymKey,
    pub c2s_app_data: SymKey,
    pub s2c_key_confirmation: SymKey,
    pub s2c_app_data: SymKey,
    pub key_id: [u8; 32],
}

pub fn k1(ss_e_ecdh: &[u8; 32], ss_e_kyber: &[u8; 32]) -> K1 {
    let ikm = Zeroizing::new([&ss_e_ecdh[..], &ss_e_kyber[..]].concat());
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf(&ikm, &mut okm[..]);
    K1 {
        c2s: SymKey::from_bytes(split(&okm[..], 0)),
        s2c: SymKey::from_bytes(split(&okm[..], 1)),
    }
}

/// Order: ECDH before Kyber, the ephemeral pair (M2) before the static pair (M3).
pub fn k2(
    ss_e_ecdh: &[u8; 32],
    ss_e_kyber: &[u8; 32],
    ss_s_ecdh: &[u8; 32],
    ss_s_kyber: &[u8; 32],
) -> K2 {
    let ikm = Zeroizing::new([&ss_e_ecdh[..], ss_e_kyber, ss_s_ecdh, ss_s_kyber].concat());
    let mut okm = Zeroizing::new([0u8; 160]);
    hkdf(&ikm, &mut okm[..]);
    K2 {
        c2s_key_confirmation: SymKey::from_bytes(split(&okm[..], 0)),
        c2s_app_data: SymKey::from_bytes(split(&okm[..], 1)),
        s2c_key_confirmation: SymKey::from_bytes(split(&okm[..], 2)),
        s2c_app_data: SymKey::from_bytes(split(&okm[..], 3)),
        key_id: split(&okm[..], 4),
    }
}

/// `prefix ‖ IV ‖ AES-256-GCM(plaintext) ‖ tag` with `aad`; the prefix is not encrypted (the
/// data-message header goes there and is also the AAD).
pub fn seal_into(
    key: &SymKey,
    prefix: &[u8],
    iv: [u8; IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    seal_parts(key, prefix, iv, aad, &[plaintext])
}

/// [`seal_into`] for a plaintext given in pieces (e.g. an HTTP head and a large body): each
/// piece is copied once, straight into the message, and encrypted there.
pub fn seal_parts(
    key: &SymKey,
    prefix: &[u8],
    iv: [u8; IV_LEN],
    aad: &[u8],
    plaintext: &[&[u8]],
) -> Vec<u8> {
    let len: usize = plaintext.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(prefix.len() + IV_LEN + len + TAG_LEN);
    out.extend_from_slice(prefix);
    out.extend_from_slice(&iv);
    let start = out.len();
    for p in plaintext {
        out.extend_from_slice(p);
    }
    // Sealing fails only for plaintexts beyond GCM's 64 GiB limit, which never fit in memory
    // here; the all-zero tag then makes the receiver refuse the message.
    let tag = key.cipher().and_then(|c| {
        c.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad),
            &mut out[start..],
        )
        .ok()
    });
    match tag {
        Some(t) => out.extend_from_slice(t.as_ref()),
        None => out.extend_from_slice(&[0; TAG_LEN]),
    }
    out
}

/// [`seal_into`] in place: `buf` holds `prefix.len() + IV_LEN` bytes of room, then the
/// plaintext; the prefix and IV are written into the room, the plaintext is encrypted where it
/// is and the tag appended. No copy of a large plaintext is made.
pub fn seal_in_place(
    key: &SymKey,
    buf: &mut Vec<u8>,
    prefix: &[u8],
    iv: [u8; IV_LEN],
    aad: &[u8],
) -> Result<(), VauError> {
    let start = prefix.len() + IV_LEN;
    if buf.len() < start {
        return Err(VauError::TooShort(buf.len()));
    }
    buf[..prefix.len()].copy_from_slice(prefix);
    buf[prefix.len()..start].copy_from_slice(&iv);
    let tag = key
        .cipher()
        .and_then(|c| {
            c.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(aad),
                &mut buf[start..],
            )
            .ok()
        })
        .ok_or(VauError::Aead("request"))?;
    buf.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Opens `IV ‖ ct ‖ tag` (no prefix) with `aad`.
pub fn open(
    key: &SymKey,
    data: &[u8],
    aad: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, VauError> {
    let mut buf = data.to_vec();
    let plain = open_in_place(key, &mut buf, 0, aad, what)?;
    buf.truncate(plain.end);
    buf.drain(..plain.start);
    Ok(buf)
}

/// Opens `IV ‖ ct ‖ tag` at `buf[start..]` in place (no copy of the message); returns where
/// in `buf` the plaintext now is. After a failure the bytes there are unspecified.
pub fn open_in_place(
    key: &SymKey,
    buf: &mut [u8],
    start: usize,
    aad: &[u8],
    what: &'static str,
) -> Result<Range<usize>, VauError> {
    let fail = || VauError::Aead(what);
    let data = buf.get_mut(start..).ok_or_else(fail)?;
    if data.len() < IV_LEN + TAG_LEN {
        return Err(fail());
    }
    let (iv, rest) = data.split_at_mut(IV_LEN);
    let ct_len = rest.len() - TAG_LEN;
    let (ct, tag) = rest.split_at_mut(ct_len);
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| fail())?;
    let tag = Tag::try_from(&tag[..]).map_err(|_| fail())?;
    let cipher = key.cipher().ok_or_else(fail)?;
    cipher
        .open_in_place_separate_tag(nonce, Aad::from(aad), tag, ct, 0..)
        .map_err(|_| fail())?;
    let begin = start + IV_LEN;
    Ok(begin..begin + ct_len)
}

/// Handshake framing: `IV(12, random) ‖ ct ‖ tag`, no AAD.
pub fn seal_handshake(key: &SymKey, plaintext: &[u8], rng: &mut impl CryptoRng) -> Vec<u8> {
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    seal_into(key, &[], iv, &[], plaintext)
}

/// ECDH "encapsulation": a fresh key pair; its public key is the ciphertext.
pub fn ecdh_encaps(peer: &PublicKey, rng: &mut impl CryptoRng) -> (PublicKey, Zeroizing<[u8; 32]>) {
    let eph = SecretKey::generate_from_rng(rng);
    let ss = ecdh_decaps(&eph, peer);
    (eph.public_key(), ss)
}

/// The shared secret: the 32-byte big-endian x-coordinate of `secret · peer`.
pub fn ecdh_decaps(secret: &SecretKey, peer: &PublicKey) -> Zeroizing<[u8; 32]> {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn ecdh_kem_agrees_and_handshake_aead_round_trips() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let server = SecretKey::generate_from_rng(&mut rng);
        let (ct, ss) = ecdh_encaps(&server.public_key(), &mut rng);
        assert_eq!(*ss, *ecdh_decaps(&server, &ct));
        let k = SymKey::from_bytes(*ss);
        let sealed = seal_handshake(&k, b"M3 inner", &mut rng);
        assert_eq!(open(&k, &sealed, &[], "t").unwrap(), b"M3 inner");
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(matches!(open(&k, &bad, &[], "t"), Err(VauError::Aead("t"))));
        assert!(open(&k, &sealed[..27], &[], "t").is_err());
    }

    #[test]
    fn sealing_in_place_gives_the_same_message_and_opens_in_place() {
        let k = SymKey::from_bytes([9; 32]);
        let (prefix, iv, plain) = ([7u8; 43], [3u8; IV_LEN], b"GET / HTTP/1.1\r\n\r\n");
        let copied = seal_into(&k, &prefix, iv, &prefix, plain);
        let mut buf = vec![0u8; 43 + IV_LEN];
        buf.extend_from_slice(plain);
        seal_in_place(&k, &mut buf, &prefix, iv, &prefix).unwrap();
        assert_eq!(buf, copied);
        let range = open_in_place(&k, &mut buf, 43, &prefix, "t").unwrap();
        assert_eq!(&buf[range], plain);
        let mut short = vec![0u8; 43 + IV_LEN - 1];
        assert!(seal_in_place(&k, &mut short, &prefix, iv, &prefix).is_err());
    }

    #[test]
    fn the_split_order_is_fixed() {
        // Same inputs, same outputs; every part distinct.
        let (a, b, c, d) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
        let k = k2(&a, &b, &c, &d);
        let parts = [
            *k.c2s_key_confirmation.as_bytes(),
            *k.c2s_app_data.as_bytes(),
            *k.s2c_key_confirmation.as_bytes(),
            *k.s2c_app_data.as_bytes(),
            k.key_id,
        ];
        for i in 0..parts.len() {
            for j in i + 1..parts.len() {
                assert_ne!(parts[i], parts[j]);
            }
        }
        let again = k2(&a, &b, &c, &d);
        assert_eq!(again.key_id, k.key_id);
        assert_ne!(k1(&a, &b).c2s.as_bytes(), k1(&b, &a).c2s.as_bytes());
    }
}
