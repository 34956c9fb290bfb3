//! Verifying the VAU's signing certificate and the ES256 signature over its public keys
//! (gemSpec_Krypt A_24624-01; protocol digest §2.6), and a small test PKI for the simulator.
//!
//! The client receives in M2 `signed_pub_keys`, `signature-ES256` (raw r‖s), `cert_hash`,
//! `cdv` and `ocsp_response`; it fetches [`CertData`] from [`cert_data_path`] and calls
//! [`verify_signing_certificate`], then [`verify_es256_raw`] with the returned key.
//!
//! Strict mode checks, in this order: SHA-256(cert) = cert_hash; the certificate's key is
//! P-256; validity of cert and CA at `now_unix`; key usage allows digitalSignature; the chain
//! cert → ca → (rca_chain cross certificates) → a trusted root (ECDSA-with-SHA-256 on P-256 or
//! brainpoolP256r1, the curve of the TI roots and CAs); the Admission extension names
//! `oid_epa_vau`; the OCSP response is signed by the CA (or a responder certificate it issued
//! with id-kp-OCSPSigning), says *good* for this certificate, and was produced at most 24 h
//! ago and not more than 5 min in the future.

mod asn1;
mod cert_data;
mod ocsp;
mod test_pki;
mod x509;

use der::asn1::ObjectIdentifier;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

pub use cert_data::{CertData, cert_data_path};
pub use ocsp::{CLOCK_SKEW_S, OCSP_MAX_AGE_S};
pub use test_pki::{TestPki, VauSigner};

/// Role OID of an ePA VAU certificate (`oid_epa_vau`).
pub const OID_EPA_VAU: &str = "1.2.276.0.76.4.209";
pub(crate) const EPA_VAU_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap(OID_EPA_VAU);

/// How strictly the client checks the VAU's signing certificate. Explicit in every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerification {
    /// Production: chain to one of `trusted_roots` (DER), role OID, OCSP, validity at `now_unix`.
    Strict {
        trusted_roots: Vec<Vec<u8>>,
        now_unix: u64,
    },
    /// Test environments only: skips chain, role, validity and OCSP, still checks the hash and
    /// returns the certificate's key (so the signature is still checked).
    Lenient,
}

/// Why the VAU's signing certificate or signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("SHA-256 of the fetched certificate does not match cert_hash")]
    CertHashMismatch,
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("certificate does not chain to a trusted root")]
    UntrustedChain,
    #[error(
        "certificate lacks the role oid_epa_vau (1.2.276.0.76.4.209) in its Admission extension"
    )]
    MissingRole,
    #[error("certificate key usage does not allow digital signatures")]
    KeyUsage,
    #[error("a certificate of the chain has expired")]
    Expired,
    #[error("a certificate of the chain is not yet valid")]
    NotYetValid,
    #[error("OCSP response is malformed")]
    OcspMalformed,
    #[error("OCSP responder answered with status {0} (not successful)")]
    OcspUnsuccessful(u32),
    #[error("OCSP response does not cover this certificate")]
    OcspCertMismatch,
    #[error("OCSP status of the certificate is not good (revoked or unknown)")]
    OcspNotGood,
    #[error("OCSP response is older than 24 hours or past its nextUpdate")]
    OcspStale,
    #[error("OCSP response is dated in the future")]
    OcspInFuture,
    #[error("OCSP response is not signed by the issuing CA or a responder it authorised")]
    OcspSignature,
    #[error("DER-encoded ES256 signature; ePA 3 requires raw r||s (64 bytes)")]
    SignatureDer,
    #[error("ES256 signature is invalid")]
    SignatureInvalid,
}

/// Checks cert_hash, chain, role OID, OCSP (per mode) and returns the key that must have
/// signed signed_pub_keys.
pub fn verify_signing_certificate(
    data: &CertData,
    cert_hash: &[u8; 32],
    ocsp_response: &[u8],
    mode: &CertVerification,
) -> Result<VerifyingKey, PkiError> {
    if test_pki::sha256(&data.cert) != *cert_hash {
        return Err(PkiError::CertHashMismatch);
    }
    let leaf = x509::parse_cert(&data.cert, "cert")?;
    let key = x509::signing_key(&leaf.cert)?;
    let CertVerification::Strict {
        trusted_roots,
        now_unix,
    } = mode
    else {
        return Ok(key);
    };
    let now = *now_unix;
    let ca = x509::parse_cert(&data.ca, "ca")?;
    let rca_chain = data
        .rca_chain
        .iter()
        .map(|c| x509::parse_cert(c, "rca_chain entry"))
        .collect::<Result<Vec<_>, _>>()?;
    let roots = trusted_roots
        .iter()
        .map(|c| x509::parse_cert(c, "trusted root"))
        .collect::<Result<Vec<_>, _>>()?;

    x509::check_validity(&leaf.cert, now)?;
    x509::check_validity(&ca.cert, now)?;
    if !x509::allows_digital_signature(&leaf.cert)? {
        return Err(PkiError::KeyUsage);
    }
    x509::check_chain(&leaf, &ca, &rca_chain, &roots, now)?;
    x509::check_role(&leaf.cert, EPA_VAU_OID)?;
    ocsp::check_ocsp(ocsp_response, &leaf, &ca, now)?;
    Ok(key)
}

/// Raw r‖s ES256 check; a DER-encoded signature (old lib-vau) is rejected with its own error
/// variant.
pub fn verify_es256_raw(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    if signature.len() != 64 {
        return Err(if p256::ecdsa::DerSignature::try_from(signature).is_ok() {
            PkiError::SignatureDer
        } else {
            PkiError::SignatureInvalid
        });
    }
    let sig = Signature::from_slice(signature).map_err(|_| PkiError::SignatureInvalid)?;
    key.verify(message, &sig)
        .map_err(|_| PkiError::SignatureInvalid)
}

/// ES256 (ECDSA P-256 / SHA-256, RFC 6979 deterministic nonce) as raw r‖s.
pub fn sign_es256_raw(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let sig: Signature = key.sign(message);
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    out
}

#[cfg(test)]
mod tests;
