//! Kyber768 **round 3 (v3.0.2)** — the KEM of the ePA 3 VAU handshake — built on the RustCrypto
//! `ml-kem` crate.
//!
//! The VAU does *not* use FIPS 203 ML-KEM. Key, ciphertext and shared-secret sizes and the key
//! encodings are identical (pk 1184 = `t̂ ‖ ρ`, sk 2400 = `ŝ ‖ pk ‖ H(pk) ‖ z`, ct 1088, ss 32);
//! only the hashing around the IND-CPA core differs. With ML-KEM as core, round 3 is:
//!
//! * **Encaps**: `m' = SHA3-256(m)` for 32 random bytes `m`; `(c, K') = ML-KEM.Encaps_internal(pk, m')`
//!   (`encapsulate_deterministic`, `hazmat` feature); `ss = SHAKE-256(K' ‖ SHA3-256(c))[..32]`.
//! * **Decaps**: `K' = ML-KEM.Decaps(sk, c)`; `ss = SHAKE-256(K' ‖ SHA3-256(c))[..32]`.
//!   Bit-exact with round 3 for every valid ciphertext. Only implicit rejection (a ciphertext that
//!   does not re-encrypt) differs: ML-KEM returns `J(z ‖ c)`, round 3 `KDF(z ‖ H(c))` — both are
//!   pseudorandom garbage, and the VAU's AEAD fails on either, so interoperability is unaffected.
//! * **KeyGen**: round 3 expands the seed with `G(d)`, ML-KEM with `G(d ‖ k)`, so ML-KEM cannot
//!   reproduce round-3 keys from a seed; ML-KEM-generated keys are nevertheless valid round-3 keys
//!   (same key space and encoding). [`generate`] therefore uses ML-KEM's key generation.
//!   [`generate_from_seed`] reproduces round-3 key generation bit-exactly (for known-answer tests
//!   and fixed test keys); `ml-kem` does not expose its K-PKE internals, so that seed expansion is
//!   implemented in the private `r3keygen` module below and checked against the 10,000-iteration
//!   reference output in `tests/kyber_kat.rs`.
//!
//! Plain ML-KEM here would silently produce different shared secrets than a round-3 peer and break
//! the handshake (AEAD tag failures in M2/M3); see the unit test
//! `plain_ml_kem_gives_a_different_secret`.

use ml_kem::kem::{Decapsulate, Generate, KeyExport};
use ml_kem::{B32, DecapsulationKey768, EncapsulationKey768};
use rand_core::CryptoRng;
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Encoded public (encapsulation) key: `t̂ ‖ ρ`.
pub const PUBLIC_KEY_LEN: usize = 1184;
/// Encoded secret (decapsulation) key: `ŝ ‖ pk ‖ H(pk) ‖ z`.
pub const SECRET_KEY_LEN: usize = 2400;
/// Ciphertext length.
pub const CIPHERTEXT_LEN: usize = 1088;
/// Shared secret length.
pub const SHARED_SECRET_LEN: usize = 32;

/// Offset of `H(pk)` inside the secret key.
const SK_HPK_OFFSET: usize = SECRET_KEY_LEN - 64;
/// Offset of the embedded public key inside the secret key.
const SK_PK_OFFSET: usize = 1152;

/// Errors from parsing Kyber keys and ciphertexts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KyberError {
    /// An input had the wrong length.
    #[error("Kyber768 {what}: expected {expected} bytes, got {got}")]
    BadLength {
        /// What was being parsed ("public key", "secret key", "ciphertext").
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The public key failed the encapsulation-key check (a coefficient ≥ q).
    #[error("invalid Kyber768 public key (coefficient out of range)")]
    InvalidPublicKey,
    /// The secret key is inconsistent (embedded `H(pk)` mismatch or invalid embedded public key).
    #[error("invalid Kyber768 secret key (embedded public key or H(pk) inconsistent)")]
    InvalidSecretKey,
}

/// A validated Kyber768 public key (1184 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct KyberPublicKey {
    bytes: Box<[u8; PUBLIC_KEY_LEN]>,
    /// The parsed form, so encapsulation needs no second validation.
    ek: EncapsulationKey768,
}

impl KyberPublicKey {
    /// Parses a raw 1184-byte public key and runs ML-KEM's encapsulation-key check
    /// (every 12-bit coefficient of `t̂` must be `< q`), which round 3 did not mandate but which
    /// every honestly generated key passes.
    ///
    /// # Errors
    /// [`KyberError::BadLength`] or [`KyberError::InvalidPublicKey`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, KyberError> {
        let arr: &[u8; PUBLIC_KEY_LEN] = b.try_into().map_err(|_| KyberError::BadLength {
            what: "public key",
            expected: PUBLIC_KEY_LEN,
            got: b.len(),
        })?;
        let ek = EncapsulationKey768::new(arr.into()).map_err(|_| KyberError::InvalidPublicKey)?;
        Ok(Self {
            bytes: Box::new(*arr),
            ek,
        })
    }

    /// The raw 1184-byte encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }
}

impl core::fmt::Debug for KyberPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "KyberPublicKey(")?;
        for b in &self.bytes[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Kyber768 secret key in the 2400-byte round-3 layout `ŝ ‖ pk ‖ H(pk) ‖ z`.
/// Zeroized on drop; deliberately neither `Debug` nor `Clone`.
pub struct KyberSecretKey(Box<[u8; SECRET_KEY_LEN]>);

impl KyberSecretKey {
    /// Parses a raw 2400-byte secret key, checking the embedded public key (coefficients `< q`)
    /// and that the embedded `H(pk)` matches it.
    ///
    /// # Errors
    /// [`KyberError::BadLength`] or [`KyberError::InvalidSecretKey`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, KyberError> {
        let arr: &[u8; SECRET_KEY_LEN] = b.try_into().map_err(|_| KyberError::BadLength {
            what: "secret key",
            expected: SECRET_KEY_LEN,
            got: b.len(),
        })?;
        let mut boxed = Box::new([0u8; SECRET_KEY_LEN]);
        boxed.copy_from_slice(arr);
        let sk = Self(boxed);
        sk.ml_kem()?;
        Ok(sk)
    }

    /// The raw 2400-byte encoding (for key files and tests). Secret material!
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; SECRET_KEY_LEN] {
        &self.0
    }

    /// The public key embedded in the secret key.
    ///
    /// # Errors
    /// Never for a key built by this module; [`KyberError::InvalidPublicKey`] otherwise.
    pub fn public_key(&self) -> Result<KyberPublicKey, KyberError> {
        KyberPublicKey::from_bytes(&self.0[SK_PK_OFFSET..SK_HPK_OFFSET])
    }

    /// Loads the key into `ml-kem` via its (deprecated) expanded-key encoding, which is exactly the
    /// round-3 layout and validates the embedded public key and `H(pk)`.
    ///
    /// NOTE: `ml-kem` is built without its `zeroize` feature in this crate, so the transient
    /// `DecapsulationKey` is not wiped on drop; that is why it is not cached in `self`.
    fn ml_kem(&self) -> Result<DecapsulationKey768, KyberError> {
        // The expanded encoding is deprecated in ml-kem 0.3 in favour of 64-byte seeds, but
        // round-3 secret keys (the lib-vau key files, peers' keys) exist only in this form.
        #[allow(deprecated)]
        let dk = <DecapsulationKey768 as ml_kem::ExpandedKeyEncoding>::from_expanded_bytes(
            (&*self.0).into(),
        );
        dk.map_err(|_| KyberError::InvalidSecretKey)
    }
}

impl Drop for KyberSecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for KyberSecretKey {}

/// A 32-byte shared secret, zeroized on drop.
pub struct SharedSecret([u8; SHARED_SECRET_LEN]);

impl SharedSecret {
    /// The secret bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; SHARED_SECRET_LEN] {
        &self.0
    }
}

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SharedSecret {}

/// A key pair.
pub struct KyberKeyPair {
    /// The public (encapsulation) key.
    pub public: KyberPublicKey,
    /// The secret (decapsulation) key.
    pub secret: KyberSecretKey,
}

/// Generates a fresh key pair (ML-KEM key generation; the keys are valid round-3 keys).
/// Draws 64 bytes (`d ‖ z`) from `rng`.
#[must_use]
pub fn generate(rng: &mut impl CryptoRng) -> KyberKeyPair {
    let dk = DecapsulationKey768::generate_from_rng(rng);
    #[allow(deprecated)] // see `KyberSecretKey::ml_kem`
    let mut expanded = <DecapsulationKey768 as ml_kem::ExpandedKeyEncoding>::to_expanded_bytes(&dk);
    let mut secret = Box::new([0u8; SECRET_KEY_LEN]);
    secret.copy_from_slice(&expanded);
    expanded.as_mut_slice().zeroize();
    let ek = dk.encapsulation_key().clone();
    let mut public = Box::new([0u8; PUBLIC_KEY_LEN]);
    public.copy_from_slice(&ek.to_bytes());
    KyberKeyPair {
        public: KyberPublicKey { bytes: public, ek },
        secret: KyberSecretKey(secret),
    }
}

/// Round-3 key generation from the seeds the reference implementation draws
/// (`d` = first `randombytes(32)` in `indcpa_keypair`, `z` = second one in `crypto_kem_keypair`).
/// Bit-exact with pq-crystals v3.0.2; for known-answer tests and fixed test keys.
#[must_use]
pub fn generate_from_seed(d: &[u8; 32], z: &[u8; 32]) -> KyberKeyPair {
    let mut public = Box::new([0u8; PUBLIC_KEY_LEN]);
    let mut secret = Box::new([0u8; SECRET_KEY_LEN]);
    r3keygen::indcpa_keypair(d, &mut public, &mut secret[..SK_PK_OFFSET]);
    secret[SK_PK_OFFSET..SK_HPK_OFFSET].copy_from_slice(&public[..]);
    secret[SK_HPK_OFFSET..SECRET_KEY_LEN - 32].copy_from_slice(&Sha3_256::digest(&public[..]));
    secret[SECRET_KEY_LEN - 32..].copy_from_slice(z);
    // `r3keygen` only emits canonical coefficients (< q), so this check cannot fail (the KAT and
    // `kpke_core_matches_ml_kem_keygen` cover it); the error arm is a bug trap, not an input error.
    match EncapsulationKey768::new((&*public).into()) {
        Ok(ek) => KyberKeyPair {
            public: KyberPublicKey { bytes: public, ek },
            secret: KyberSecretKey(secret),
        },
        Err(_) => unreachable_invalid_key(),
    }
}

#[cold]
fn unreachable_invalid_key() -> ! {
    panic!("round-3 keygen produced a non-canonical public key (bug)")
}

/// Round-3 encapsulation with 32 random bytes `m` from `rng`.
#[must_use]
pub fn encapsulate(
    pk: &KyberPublicKey,
    rng: &mut impl CryptoRng,
) -> ([u8; CIPHERTEXT_LEN], SharedSecret) {
    let mut m = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut m[..]);
    encapsulate_with_coins(pk, &m)
}

/// Deterministic round-3 encapsulation: `m` is what the reference implementation draws with
/// `randombytes(32)` in `crypto_kem_enc`. For known-answer tests only — reusing `m` is fatal.
#[must_use]
pub fn encapsulate_with_coins(
    pk: &KyberPublicKey,
    m: &[u8; 32],
) -> ([u8; CIPHERTEXT_LEN], SharedSecret) {
    // Round 3: m' = H(m) ("don't release system RNG output"), then the ML-KEM internal encaps.
    let mut mp = B32::default();
    let mut h = Sha3_256::new();
    Digest::update(&mut h, m);
    h.finalize_into(&mut mp);
    let (ct, mut k_bar) = pk.ek.encapsulate_deterministic(&mp);
    mp.as_mut_slice().zeroize();
    let mut out = [0u8; CIPHERTEXT_LEN];
    out.copy_from_slice(&ct);
    let ss = kdf(&k_bar, &out);
    k_bar.as_mut_slice().zeroize();
    (out, ss)
}

/// Round-3 decapsulation.
///
/// # Errors
/// [`KyberError::BadLength`] if `ct` is not 1088 bytes; [`KyberError::InvalidSecretKey`] cannot
/// happen for a key that went through [`KyberSecretKey::from_bytes`] or the generators.
pub fn decapsulate(sk: &KyberSecretKey, ct: &[u8]) -> Result<SharedSecret, KyberError> {
    let ct: &[u8; CIPHERTEXT_LEN] = ct.try_into().map_err(|_| KyberError::BadLength {
        what: "ciphertext",
        expected: CIPHERTEXT_LEN,
        got: ct.len(),
    })?;
    let dk = sk.ml_kem()?;
    let mut k_bar = dk.decapsulate(ct.into());
    let ss = kdf(&k_bar, ct);
    k_bar.as_mut_slice().zeroize();
    Ok(ss)
}

/// Round-3 KDF: `SHAKE-256(K' ‖ SHA3-256(c))[..32]`.
fn kdf(k_bar: &[u8], ct: &[u8; CIPHERTEXT_LEN]) -> SharedSecret {
    let hc = Sha3_256::digest(ct);
    let mut x = Shake256::default();
    Update::update(&mut x, k_bar);
    Update::update(&mut x, &hc);
    let mut ss = SharedSecret([0u8; SHARED_SECRET_LEN]);
    x.finalize_xof().read(&mut ss.0);
    ss
}

/// Round-3 `indcpa_keypair` seed expansion and K-PKE key generation, written from FIPS 203
/// (whose NTT, sampling and encodings are those of round 3) with round 3's `G(d)` in place of
/// ML-KEM's `G(d ‖ k)`. `ml-kem` keeps these pieces crate-private.
///
/// Constant-time with respect to secrets: no secret-dependent branches or table indices; modular
/// reduction by multiply-and-shift (no division by q — cf. KyberSlash). Only the public matrix
/// sampling branches (on bytes derived from the public `ρ`).
mod r3keygen {
    use super::{Digest, ExtendableOutput, Update, XofReader, Zeroize, Zeroizing};
    use sha3::{Sha3_512, Shake128, Shake256};

    const N: usize = 256;
    const K: usize = 3;
    const Q: u32 = 3329;

    type Poly = [u16; N];

    /// `x mod q` for any `x: u32` (Barrett with `m = ⌊2^36 / q⌋`: the quotient estimate is off by
    /// at most one, fixed by one masked conditional subtraction).
    #[inline]
    fn reduce(x: u32) -> u16 {
        const M: u64 = (1u64 << 36) / Q as u64;
        let quot = ((u64::from(x) * M) >> 36) as u32;
        csub(x - quot * Q)
    }

    /// `r mod q` for `r < 2q`, branch-free.
    #[inline]
    fn csub(r: u32) -> u16 {
        let t = r.wrapping_sub(Q);
        let mask = 0u32.wrapping_sub(t >> 31); // all ones iff r < q
        (t.wrapping_add(Q & mask)) as u16
    }

    const fn pow_mod(base: u32, mut exp: u32) -> u32 {
        let mut acc = 1u32;
        let mut b = base % Q;
        while exp > 0 {
            if exp & 1 == 1 {
                acc = acc * b % Q;
            }
            b = b * b % Q;
            exp >>= 1;
        }
        acc
    }

    const fn bitrev7(i: u32) -> u32 {
        let mut r = 0;
        let mut k = 0;
        while k < 7 {
            r |= ((i >> k) & 1) << (6 - k);
            k += 1;
        }
        r
    }

    /// `ζ^BitRev7(i)` with `ζ = 17` (FIPS 203 Appendix A).
    const ZETAS: [u16; 128] = {
        let mut t = [0u16; 128];
        let mut i = 0;
        while i < 128 {
            t[i] = pow_mod(17, bitrev7(i as u32)) as u16;
            i += 1;
        }
        t
    };

    /// `ζ^(2·BitRev7(i)+1)` for the base-case multiplications.
    const GAMMAS: [u16; 128] = {
        let mut t = [0u16; 128];
        let mut i = 0;
        while i < 128 {
            t[i] = pow_mod(17, 2 * bitrev7(i as u32) + 1) as u16;
            i += 1;
        }
        t
    };

    /// FIPS 203 Algorithm 9 (NTT), coefficients in `[0, q)`.
    fn ntt(f: &mut Poly) {
        let mut i = 1;
        let mut len = 128;
        while len >= 2 {
            let mut start = 0;
            while start < N {
                let zeta = u32::from(ZETAS[i]);
                i += 1;
                for j in start..start + len {
                    let t = u32::from(reduce(zeta * u32::from(f[j + len])));
                    let a = u32::from(f[j]);
                    f[j + len] = csub(a + Q - t);
                    f[j] = csub(a + t);
                }
                start += 2 * len;
            }
            len /= 2;
        }
    }

    /// `acc += f ∘ g` in the NTT domain (FIPS 203 Algorithms 11 and 12).
    fn basemul_acc(acc: &mut Poly, f: &Poly, g: &Poly) {
        for i in 0..N / 2 {
            let (a0, a1) = (u32::from(f[2 * i]), u32::from(f[2 * i + 1]));
            let (b0, b1) = (u32::from(g[2 * i]), u32::from(g[2 * i + 1]));
            let a1b1 = u32::from(reduce(a1 * b1));
            let c0 = a0 * b0 + a1b1 * u32::from(GAMMAS[i]);
            let c1 = a0 * b1 + a1 * b0;
            acc[2 * i] = reduce(u32::from(acc[2 * i]) + c0);
            acc[2 * i + 1] = reduce(u32::from(acc[2 * i + 1]) + c1);
        }
    }

    /// FIPS 203 Algorithm 7 (SampleNTT) on `SHAKE-128(ρ ‖ j ‖ i)` — round 3's `gen_matrix`
    /// (`xof_absorb(seed, j, i)`, rejection sampling of 12-bit values; its block-wise buffering
    /// with carried-over bytes is equivalent to reading the stream three bytes at a time).
    fn sample_ntt(rho: &[u8; 32], j: u8, i: u8) -> Poly {
        let mut x = Shake128::default();
        Update::update(&mut x, rho);
        Update::update(&mut x, &[j, i]);
        let mut rd = x.finalize_xof();
        let mut a = [0u16; N];
        let mut ctr = 0;
        let mut buf = [0u8; 168];
        'outer: loop {
            rd.read(&mut buf);
            for c in buf.chunks_exact(3) {
                let d1 = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
                let d2 = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
                if u32::from(d1) < Q {
                    a[ctr] = d1;
                    ctr += 1;
                    if ctr == N {
                        break 'outer;
                    }
                }
                if u32::from(d2) < Q {
                    a[ctr] = d2;
                    ctr += 1;
                    if ctr == N {
                        break 'outer;
                    }
                }
            }
        }
        a
    }

    /// FIPS 203 Algorithm 8 with η = 2 on `PRF(σ, nonce) = SHAKE-256(σ ‖ nonce)[..128]`
    /// (round 3's `poly_getnoise_eta1` for Kyber768).
    fn sample_cbd2(sigma: &[u8; 32], nonce: u8, out: &mut Poly) {
        let mut x = Shake256::default();
        Update::update(&mut x, sigma);
        Update::update(&mut x, &[nonce]);
        let mut buf = Zeroizing::new([0u8; 128]);
        x.finalize_xof().read(&mut buf[..]);
        for (k, &byte) in buf.iter().enumerate() {
            let b = u32::from(byte);
            for half in 0..2 {
                let v = b >> (4 * half);
                let x = (v & 1) + ((v >> 1) & 1);
                let y = ((v >> 2) & 1) + ((v >> 3) & 1);
                out[2 * k + half] = csub(x + Q - y);
            }
        }
    }

    /// ByteEncode₁₂ of one polynomial with coefficients in `[0, q)` (384 bytes).
    fn encode12(f: &Poly, out: &mut [u8]) {
        for (i, o) in out.chunks_exact_mut(3).enumerate() {
            let (a, b) = (f[2 * i], f[2 * i + 1]);
            o[0] = a as u8;
            o[1] = ((a >> 8) | ((b & 0x0f) << 4)) as u8;
            o[2] = (b >> 4) as u8;
        }
    }

    /// Round-3 `indcpa_keypair` after its `randombytes(buf, 32)`: `(ρ, σ) = SHA3-512(d)`;
    /// `pk = Encode₁₂(Â∘ŝ + ê) ‖ ρ` (1184 bytes), `sk_pke = Encode₁₂(ŝ)` (1152 bytes).
    pub(super) fn indcpa_keypair(d: &[u8; 32], pk: &mut [u8; 1184], sk_pke: &mut [u8]) {
        kpke_keygen(&mut Sha3_512::digest(d), pk, sk_pke);
    }

    /// K-PKE key generation from `G(…) = ρ ‖ σ` (wiped afterwards). Round 3 feeds `G(d)`,
    /// ML-KEM `G(d ‖ k)` — the unit tests use the latter to check this code against `ml-kem`.
    fn kpke_keygen(g: &mut [u8], pk: &mut [u8; 1184], sk_pke: &mut [u8]) {
        let mut rho = [0u8; 32];
        let mut sigma = Zeroizing::new([0u8; 32]);
        rho.copy_from_slice(&g[..32]);
        sigma.copy_from_slice(&g[32..64]);
        g.zeroize();

        let mut s = Zeroizing::new([[0u16; N]; K]);
        let mut e = Zeroizing::new([[0u16; N]; K]);
        let mut nonce = 0u8;
        for p in s.iter_mut() {
            sample_cbd2(&sigma, nonce, p);
            nonce += 1;
        }
        for p in e.iter_mut() {
            sample_cbd2(&sigma, nonce, p);
            nonce += 1;
        }
        for p in s.iter_mut().chain(e.iter_mut()) {
            ntt(p);
        }

        for (i, (e_i, out)) in e.iter().zip(pk.chunks_exact_mut(384)).enumerate() {
            let mut t = *e_i; // t̂_i = ê_i + Σ_j Â[i][j] ∘ ŝ_j
            for (j, s_j) in s.iter().enumerate() {
                basemul_acc(&mut t, &sample_ntt(&rho, j as u8, i as u8), s_j);
            }
            encode12(&t, out);
            t.zeroize();
        }
        pk[K * 384..].copy_from_slice(&rho);
        for (s_i, out) in s.iter().zip(sk_pke.chunks_exact_mut(384)) {
            encode12(s_i, out);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reduce_is_exact() {
            for x in (0..=u32::MAX)
                .step_by(7919)
                .chain([u32::MAX, Q, Q - 1, 2 * Q - 1])
            {
                assert_eq!(u32::from(reduce(x)), x % Q, "x = {x}");
            }
        }

        #[test]
        fn zeta_tables() {
            // FIPS 203 Appendix A, first row.
            assert_eq!(&ZETAS[..8], &[1, 1729, 2580, 3289, 2642, 630, 1897, 848]);
            assert_eq!(pow_mod(17, 128), Q - 1); // 17 is a primitive 256th root of unity
            for i in 0..128 {
                let z = u32::from(ZETAS[i]);
                assert_eq!(u32::from(GAMMAS[i]), z * z % Q * 17 % Q);
            }
        }

        /// With ML-KEM's `G(d ‖ 3)` instead of round 3's `G(d)`, the same code must reproduce
        /// `ml-kem`'s key generation byte for byte (so only the seed expansion is round-3 specific).
        #[test]
        fn kpke_core_matches_ml_kem_keygen() {
            use crate::kyber::{DecapsulationKey768, KeyExport};
            for t in 0u8..4 {
                let d = [t.wrapping_mul(37).wrapping_add(1); 32];
                let z = [t ^ 0x5a; 32];
                let mut seed = [0u8; 64];
                seed[..32].copy_from_slice(&d);
                seed[32..].copy_from_slice(&z);
                let dk = DecapsulationKey768::from_seed(seed.into());
                #[allow(deprecated)]
                let expanded =
                    <DecapsulationKey768 as ml_kem::ExpandedKeyEncoding>::to_expanded_bytes(&dk);

                let mut g = Sha3_512::new();
                Digest::update(&mut g, d);
                Digest::update(&mut g, [3u8]);
                let mut pk = [0u8; 1184];
                let mut sk_pke = [0u8; 1152];
                kpke_keygen(&mut g.finalize(), &mut pk, &mut sk_pke);
                assert_eq!(&pk[..], &dk.encapsulation_key().to_bytes()[..]);
                assert_eq!(&sk_pke[..], &expanded[..1152]);
            }
        }

        /// `NTT(f) ∘ NTT(g) = NTT(f·g mod X²⁵⁶+1)` against schoolbook multiplication.
        #[test]
        fn ntt_multiplication_matches_schoolbook() {
            let mut seed = 0x1234_5678u32;
            let mut next = || {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((seed >> 8) % Q) as u16
            };
            for _ in 0..4 {
                let f: Poly = core::array::from_fn(|_| next());
                let g: Poly = core::array::from_fn(|_| next());
                let mut prod = [0u64; N];
                for i in 0..N {
                    for j in 0..N {
                        let v = u64::from(f[i]) * u64::from(g[j]);
                        if i + j < N {
                            prod[i + j] += v;
                        } else {
                            prod[i + j - N] += u64::from(Q) * u64::from(Q) - v;
                        }
                    }
                }
                let mut h: Poly = core::array::from_fn(|k| (prod[k] % u64::from(Q)) as u16);
                let (mut fh, mut gh) = (f, g);
                ntt(&mut fh);
                ntt(&mut gh);
                ntt(&mut h);
                let mut acc = [0u16; N];
                basemul_acc(&mut acc, &fh, &gh);
                assert_eq!(acc, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> ChaCha20Rng {
        ChaCha20Rng::from_seed([seed; 32])
    }

    #[test]
    fn round_trip_generate() {
        let mut r = rng(1);
        for _ in 0..5 {
            let kp = generate(&mut r);
            let (ct, ss) = encapsulate(&kp.public, &mut r);
            let ss2 = decapsulate(&kp.secret, &ct).unwrap();
            assert_eq!(ss.as_bytes(), ss2.as_bytes());
        }
    }

    #[test]
    fn round_trip_seeded_r3_keys_and_serialisation() {
        let kp = generate_from_seed(&[7; 32], &[9; 32]);
        let pk = KyberPublicKey::from_bytes(kp.public.as_bytes()).unwrap();
        assert_eq!(pk, kp.public);
        let sk = KyberSecretKey::from_bytes(kp.secret.as_bytes()).unwrap();
        assert_eq!(sk.public_key().unwrap(), kp.public);
        let (ct, ss) = encapsulate_with_coins(&pk, &[3; 32]);
        assert_eq!(decapsulate(&sk, &ct).unwrap().as_bytes(), ss.as_bytes());
        // Deterministic.
        let (ct2, ss2) = encapsulate_with_coins(&pk, &[3; 32]);
        assert_eq!(ct, ct2);
        assert_eq!(ss.as_bytes(), ss2.as_bytes());
        // Generated keys survive the secret-key checks too.
        let g = generate(&mut rng(2));
        assert!(KyberSecretKey::from_bytes(g.secret.as_bytes()).is_ok());
        assert_eq!(g.secret.public_key().unwrap(), g.public);
    }

    #[test]
    fn wrong_ciphertext_gives_different_secret() {
        let mut r = rng(3);
        let kp = generate(&mut r);
        let (mut ct, ss) = encapsulate(&kp.public, &mut r);
        ct[17] ^= 0x01;
        let bad = decapsulate(&kp.secret, &ct).unwrap();
        assert_ne!(bad.as_bytes(), ss.as_bytes());
        // Implicit rejection is deterministic.
        assert_eq!(
            decapsulate(&kp.secret, &ct).unwrap().as_bytes(),
            bad.as_bytes()
        );
    }

    #[test]
    fn lengths_and_invalid_keys_rejected() {
        let kp = generate(&mut rng(4));
        assert_eq!(
            KyberPublicKey::from_bytes(&kp.public.as_bytes()[..1183]),
            Err(KyberError::BadLength {
                what: "public key",
                expected: 1184,
                got: 1183
            })
        );
        assert!(matches!(
            KyberSecretKey::from_bytes(&[0u8; 2401]),
            Err(KyberError::BadLength {
                what: "secret key",
                expected: 2400,
                got: 2401
            })
        ));
        assert_eq!(
            decapsulate(&kp.secret, &[0u8; 1087]).err(),
            Some(KyberError::BadLength {
                what: "ciphertext",
                expected: 1088,
                got: 1087
            })
        );
        assert_eq!(
            decapsulate(&kp.secret, &[0u8; 1089])
                .err()
                .map(|e| e.to_string()),
            Some("Kyber768 ciphertext: expected 1088 bytes, got 1089".to_owned())
        );
        // Coefficient 0xfff ≥ q.
        let mut bad_pk = *kp.public.as_bytes();
        bad_pk[0] = 0xff;
        bad_pk[1] |= 0x0f;
        assert_eq!(
            KyberPublicKey::from_bytes(&bad_pk),
            Err(KyberError::InvalidPublicKey)
        );
        // Corrupted H(pk), and a corrupted embedded public key.
        let mut bad_sk = *kp.secret.as_bytes();
        bad_sk[SK_HPK_OFFSET] ^= 1;
        assert!(matches!(
            KyberSecretKey::from_bytes(&bad_sk),
            Err(KyberError::InvalidSecretKey)
        ));
        let mut bad_sk = *kp.secret.as_bytes();
        bad_sk[SK_PK_OFFSET + 5] ^= 1;
        assert!(matches!(
            KyberSecretKey::from_bytes(&bad_sk),
            Err(KyberError::InvalidSecretKey)
        ));
    }

    /// So nobody "simplifies the wrapper away": plain ML-KEM with the same key and the same coins
    /// agrees with itself but yields a different ciphertext and a different shared secret than the
    /// round-3 wrapper — a VAU peer (round 3) would derive different keys and the handshake AEAD
    /// would fail.
    #[test]
    fn plain_ml_kem_gives_a_different_secret() {
        let kp = generate(&mut rng(5));
        let coins = [0x42u8; 32];

        let ek = EncapsulationKey768::new(kp.public.as_bytes().into()).unwrap();
        let (ml_ct, ml_ss) = ek.encapsulate_deterministic(&B32::from(coins));
        #[allow(deprecated)]
        let dk = <DecapsulationKey768 as ml_kem::ExpandedKeyEncoding>::from_expanded_bytes(
            kp.secret.as_bytes().into(),
        )
        .unwrap();
        assert_eq!(dk.decapsulate(&ml_ct), ml_ss);

        let (r3_ct, r3_ss) = encapsulate_with_coins(&kp.public, &coins);
        assert_ne!(&r3_ct[..], ml_ct.as_slice());
        assert_ne!(&r3_ss.as_bytes()[..], ml_ss.as_slice());
        // Even decapsulating the *same* ML-KEM ciphertext, the round-3 KDF changes the secret.
        let r3_of_ml_ct = decapsulate(&kp.secret, &ml_ct).unwrap();
        assert_ne!(&r3_of_ml_ct.as_bytes()[..], ml_ss.as_slice());
    }

    /// The ML-KEM core must not be confused with round 3's key generation either: the same seed
    /// yields a different key pair, but both are usable with the round-3 wrapper.
    #[test]
    fn ml_kem_keygen_differs_from_round3_keygen_but_interoperates() {
        let (d, z) = ([11u8; 32], [12u8; 32]);
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(&d);
        seed[32..].copy_from_slice(&z);
        let ml = DecapsulationKey768::from_seed(seed.into());
        let r3 = generate_from_seed(&d, &z);
        assert_ne!(
            &ml.encapsulation_key().to_bytes()[..],
            &r3.public.as_bytes()[..]
        );
        // z ends up in the same place.
        assert_eq!(&r3.secret.as_bytes()[SECRET_KEY_LEN - 32..], &z);
    }
}
