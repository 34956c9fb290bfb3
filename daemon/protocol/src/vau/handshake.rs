//! The handshake as typed states for both roles (epa-protocol.md §2.3–§2.6, §2.14). Each state
//! consumes itself, so a step cannot be repeated or skipped; every transcript hash is taken over
//! the exact wire bytes.

use p256::SecretKey;
use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::VauError;
use super::channel::{ClientChannel, Environment, ServerChannel};
use super::keys::{K1, K2, SymKey, ecdh_decaps, ecdh_encaps, k1, k2, open, seal_handshake};
use super::messages::{M1, M2, M3, M3Inner, M4, SignedPublicKeys, VauPublicKeys};
use crate::kyber::{self, KyberKeyPair, KyberSecretKey};
use crate::pki::{self, CertData, CertVerification, VauSigner};

/// Servers regenerate their keys; a longer claimed lifetime is refused (as lib-vau's server does).
pub const MAX_KEY_LIFETIME_S: u64 = 30 * 24 * 3600;

fn transcript(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn check_confirmation(
    key: &SymKey,
    sealed: &[u8],
    expected: &[u8; 32],
    what: &'static str,
) -> Result<(), VauError> {
    let got = open(key, sealed, &[], what)?;
    // Not secret (both sides know the transcript); equality is all that matters.
    if got.as_slice() == expected {
        Ok(())
    } else {
        Err(VauError::KeyConfirmation(what))
    }
}

/// Client, before M2: ephemeral keys and the M1 that carries them.
pub struct ClientHandshake {
    ecdh: SecretKey,
    kyber: KyberSecretKey,
    m1: Vec<u8>,
}

impl ClientHandshake {
    pub fn start(rng: &mut impl CryptoRng) -> Self {
        let ecdh = SecretKey::generate_from_rng(rng);
        let KyberKeyPair { public, secret } = kyber::generate(rng);
        let m1 = M1 {
            ecdh_pk: ecdh.public_key(),
            kyber_pk: public,
        }
        .encode();
        Self {
            ecdh,
            kyber: secret,
            m1,
        }
    }

    /// The body of `POST /VAU`.
    pub fn m1(&self) -> &[u8] {
        &self.m1
    }

    /// Takes M2 as received: derives K1 and opens the server's signed keys.
    pub fn receive_m2(self, m2_bytes: &[u8]) -> Result<ClientAwaitingCert, VauError> {
        let m2 = M2::decode(m2_bytes)?;
        let ss_e_ecdh = ecdh_decaps(&self.ecdh, &m2.ecdh_ct);
        let ss_e_kyber = kyber::decapsulate(&self.kyber, &m2.kyber_ct)?;
        let k1 = k1(&ss_e_ecdh, ss_e_kyber.as_bytes());
        let signed = SignedPublicKeys::decode(&open(&k1.s2c, &m2.aead_ct, &[], "M2")?)?;
        let keys = VauPublicKeys::decode(&signed.signed_pub_keys)?;
        Ok(ClientAwaitingCert {
            m1: self.m1,
            m2: m2_bytes.to_vec(),
            ss_e_ecdh,
            ss_e_kyber: Zeroizing::new(*ss_e_kyber.as_bytes()),
            k1,
            signed,
            keys,
        })
    }
}

/// Client, after M2: needs the signing certificate (`GET` [`Self::cert_data_path`]).
pub struct ClientAwaitingCert {
    m1: Vec<u8>,
    m2: Vec<u8>,
    ss_e_ecdh: Zeroizing<[u8; 32]>,
    ss_e_kyber: Zeroizing<[u8; 32]>,
    k1: K1,
    signed: SignedPublicKeys,
    keys: VauPublicKeys,
}

impl ClientAwaitingCert {
    pub fn signed(&self) -> &SignedPublicKeys {
        &self.signed
    }

    pub fn server_keys(&self) -> &VauPublicKeys {
        &self.keys
    }

    /// Where the signing certificate is: `/CertData.<hex hash>-<cdv>`.
    pub fn cert_data_path(&self) -> String {
        pki::cert_data_path(&self.signed.cert_hash, self.signed.cdv)
    }

    /// Verifies the server's keys (certificate per `mode`, ES256 signature, lifetime) and
    /// builds M3 with encapsulations to them. Returns the next state and M3's bytes.
    pub fn finish(
        self,
        cert: &CertData,
        mode: &CertVerification,
        now_unix: u64,
        rng: &mut impl CryptoRng,
    ) -> Result<(ClientAwaitingM4, Vec<u8>), VauError> {
        let signer = pki::verify_signing_certificate(
            cert,
            &self.signed.cert_hash,
            &self.signed.ocsp_response,
            mode,
        )?;
        pki::verify_es256_raw(
            &signer,
            &self.signed.signed_pub_keys,
            &self.signed.signature,
        )?;
        let keys = &self.keys;
        if keys.exp <= now_unix {
            return Err(VauError::KeysExpired {
                exp: keys.exp,
                now: now_unix,
            });
        }
        let lifetime = keys.exp.saturating_sub(keys.iat);
        if lifetime > MAX_KEY_LIFETIME_S {
            return Err(VauError::KeyLifetimeTooLong(lifetime));
        }
        let (ecdh_ct, ss_s_ecdh) = ecdh_encaps(&keys.ecdh_pk, rng);
        let (kyber_ct, ss_s_kyber) = kyber::encapsulate(&keys.kyber_pk, rng);
        let k2 = k2(
            &self.ss_e_ecdh,
            &self.ss_e_kyber,
            &ss_s_ecdh,
            ss_s_kyber.as_bytes(),
        );
        let inner = M3Inner {
            ecdh_ct,
            kyber_ct: kyber_ct.to_vec(),
            erp: false,
            eso: false,
        };
        let aead_ct = seal_handshake(&self.k1.c2s, &inner.encode(), rng);
        let h_client = transcript(&[&self.m1, &self.m2, &aead_ct]);
        let m3 = M3 {
            aead_ct_key_confirmation: seal_handshake(&k2.c2s_key_confirmation, &h_client, rng),
            aead_ct,
        }
        .encode();
        let expected = transcript(&[&self.m1, &self.m2, &m3]);
        Ok((ClientAwaitingM4 { k2, expected }, m3))
    }
}

/// Client, after M3: waits for the server's key confirmation.
pub struct ClientAwaitingM4 {
    k2: K2,
    expected: [u8; 32],
}

impl ClientAwaitingM4 {
    /// Checks M4 against our own transcript of M1 ‖ M2 ‖ M3; only then is the channel open.
    pub fn receive_m4(self, m4_bytes: &[u8], env: Environment) -> Result<ClientChannel, VauError> {
        let m4 = M4::decode(m4_bytes)?;
        check_confirmation(
            &self.k2.s2c_key_confirmation,
            &m4.aead_ct_key_confirmation,
            &self.expected,
            "M4",
        )?;
        Ok(ClientChannel::new(self.k2, env))
    }
}

/// A VAU instance's long-lived keys and the signed structure it sends in every M2.
pub struct VauServerKeys {
    ecdh: SecretKey,
    kyber: KyberSecretKey,
    public: VauPublicKeys,
    signed_plain: Vec<u8>,
}

impl VauServerKeys {
    /// Fresh keys, signed by `signer` (the VAU certificate's key).
    pub fn generate(
        rng: &mut impl CryptoRng,
        signer: &VauSigner,
        cdv: u64,
        ocsp_response: Vec<u8>,
        iat: u64,
        exp: u64,
        comment: &str,
    ) -> Result<Self, VauError> {
        if exp.saturating_sub(iat) > MAX_KEY_LIFETIME_S {
            return Err(VauError::KeyLifetimeTooLong(exp.saturating_sub(iat)));
        }
        let ecdh = SecretKey::generate_from_rng(rng);
        let KyberKeyPair { public, secret } = kyber::generate(rng);
        let keys = VauPublicKeys {
            ecdh_pk: ecdh.public_key(),
            kyber_pk: public,
            iat,
            exp,
            comment: comment.to_owned(),
        };
        let signed_pub_keys = keys.encode();
        let signed = SignedPublicKeys {
            signature: pki::sign_es256_raw(&signer.key, &signed_pub_keys).to_vec(),
            signed_pub_keys,
            cert_hash: signer.cert_hash(),
            cdv,
            ocsp_response,
        };
        Ok(Self::from_parts(ecdh, secret, keys, &signed))
    }

    /// Keys made elsewhere (e.g. a key file) with their signed structure.
    pub fn from_parts(
        ecdh: SecretKey,
        kyber: KyberSecretKey,
        public: VauPublicKeys,
        signed: &SignedPublicKeys,
    ) -> Self {
        Self {
            ecdh,
            kyber,
            public,
            signed_plain: signed.encode(),
        }
    }

    pub fn public(&self) -> &VauPublicKeys {
        &self.public
    }

    /// Answers M1: encapsulates to the client's ephemeral keys, seals the signed keys under K1.
    pub fn receive_m1(
        &self,
        m1_bytes: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<(ServerAwaitingM3, Vec<u8>), VauError> {
        let m1 = M1::decode(m1_bytes)?;
        let (ecdh_ct, ss_e_ecdh) = ecdh_encaps(&m1.ecdh_pk, rng);
        let (kyber_ct, ss_e_kyber) = kyber::encapsulate(&m1.kyber_pk, rng);
        let k1 = k1(&ss_e_ecdh, ss_e_kyber.as_bytes());
        let m2 = M2 {
            ecdh_ct,
            kyber_ct: kyber_ct.to_vec(),
            aead_ct: seal_handshake(&k1.s2c, &self.signed_plain, rng),
        }
        .encode();
        Ok((
            ServerAwaitingM3 {
                m1: m1_bytes.to_vec(),
                m2: m2.clone(),
                ss_e_ecdh,
                ss_e_kyber: Zeroizing::new(*ss_e_kyber.as_bytes()),
                k1,
            },
            m2,
        ))
    }
}

/// Server, after M2.
pub struct ServerAwaitingM3 {
    m1: Vec<u8>,
    m2: Vec<u8>,
    ss_e_ecdh: Zeroizing<[u8; 32]>,
    ss_e_kyber: Zeroizing<[u8; 32]>,
    k1: K1,
}

impl ServerAwaitingM3 {
    /// Takes M3 as received: decapsulates, checks the client's key confirmation, answers M4.
    pub fn receive_m3(
        self,
        keys: &VauServerKeys,
        m3_bytes: &[u8],
        env: Environment,
        rng: &mut impl CryptoRng,
    ) -> Result<(ServerChannel, Vec<u8>), VauError> {
        let m3 = M3::decode(m3_bytes)?;
        let inner = M3Inner::decode(&open(&self.k1.c2s, &m3.aead_ct, &[], "M3")?)?;
        let ss_s_ecdh = ecdh_decaps(&keys.ecdh, &inner.ecdh_ct);
        let ss_s_kyber = kyber::decapsulate(&keys.kyber, &inner.kyber_ct)?;
        let k2 = k2(
            &self.ss_e_ecdh,
            &self.ss_e_kyber,
            &ss_s_ecdh,
            ss_s_kyber.as_bytes(),
        );
        let h_client = transcript(&[&self.m1, &self.m2, &m3.aead_ct]);
        check_confirmation(
            &k2.c2s_key_confirmation,
            &m3.aead_ct_key_confirmation,
            &h_client,
            "M3",
        )?;
        let h_all = transcript(&[&self.m1, &self.m2, m3_bytes]);
        let m4 = M4 {
            aead_ct_key_confirmation: seal_handshake(&k2.s2c_key_confirmation, &h_all, rng),
        }
        .encode();
        Ok((ServerChannel::new(k2, env), m4))
    }
}
