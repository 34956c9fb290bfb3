//! Certificate parsing, ECDSA signature checks (P-256 and brainpoolP256r1), validity and
//! path building for the VAU signing certificate.

use der::asn1::{BitStringRef, ObjectIdentifier};
use der::{Decode, Reader, SliceReader, Tagged};
use p256::ecdsa::signature::Verifier;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::PkiError;
use super::asn1::{
    AdmissionSyntax, BRAINPOOL_P256R1, ECDSA_WITH_SHA256, ID_ADMISSION, ID_EC_PUBLIC_KEY, SECP256R1,
};

type Bp256VerifyingKey = ecdsa::VerifyingKey<bp256::BrainpoolP256r1>;
type Bp256DerSignature = ecdsa::der::Signature<bp256::BrainpoolP256r1>;

/// At most this many cross certificates are followed (TI: RCA5 → RCA6 → RCA7 → RCA8 needs 3).
pub(crate) const MAX_RCA_CHAIN: usize = 8;

/// A decoded certificate together with the exact bytes its signature covers.
#[derive(Debug)]
pub(crate) struct ParsedCert<'a> {
    pub der: &'a [u8],
    pub tbs_der: &'a [u8],
    pub signature: &'a [u8],
    pub cert: Certificate,
}

pub(crate) fn parse_cert<'a>(der: &'a [u8], what: &str) -> Result<ParsedCert<'a>, PkiError> {
    let malformed = |e: der::Error| PkiError::Malformed(format!("{what}: {e}"));
    let cert = Certificate::from_der(der).map_err(malformed)?;
    let (tbs_der, signature) = signed_parts(der).map_err(malformed)?;
    if cert.signature_algorithm() != cert.tbs_certificate().signature() {
        return Err(PkiError::Malformed(format!(
            "{what}: signature algorithm differs inside and outside the signed part"
        )));
    }
    Ok(ParsedCert {
        der,
        tbs_der,
        signature,
        cert,
    })
}

/// For `SEQUENCE { toBeSigned, AlgorithmIdentifier, BIT STRING, ... }` (certificate, basic OCSP
/// response): the raw to-be-signed TLV and the signature value.
pub(crate) fn signed_parts(der: &[u8]) -> der::Result<(&[u8], &[u8])> {
    let mut reader = SliceReader::new(der)?;
    let parts = reader.sequence(|r: &mut SliceReader<'_>| {
        let tbs = r.tlv_bytes()?;
        let _algorithm = r.tlv_bytes()?;
        let signature = BitStringRef::decode(r)?;
        while !r.is_finished() {
            r.tlv_bytes()?;
        }
        let signature = signature
            .as_bytes()
            .ok_or_else(|| der::Error::from(der::Tag::BitString.value_error()))?;
        Ok::<_, der::Error>((tbs, signature))
    })?;
    reader.finish()?;
    Ok(parts)
}

/// A public key that can verify certificate / OCSP signatures.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EcKey {
    P256(p256::ecdsa::VerifyingKey),
    /// TI roots and CAs (GEM.RCA*, GEM.KOMP-CA*) are brainpoolP256r1.
    Bp256(Bp256VerifyingKey),
}

impl EcKey {
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, PkiError> {
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(PkiError::UnsupportedKey(format!(
                "public key algorithm {}",
                spki.algorithm.oid
            )));
        }
        let curve: ObjectIdentifier = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| PkiError::UnsupportedKey("EC key without named curve".into()))?
            .decode_as()
            .map_err(|e| PkiError::UnsupportedKey(format!("EC parameters: {e}")))?;
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| PkiError::Malformed("EC public key bit string".into()))?;
        let bad_point = |_| PkiError::Malformed("EC public key is not a valid point".into());
        if curve == SECP256R1 {
            Ok(Self::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_point)?,
            ))
        } else if curve == BRAINPOOL_P256R1 {
            Ok(Self::Bp256(
                Bp256VerifyingKey::from_sec1_bytes(point).map_err(bad_point)?,
            ))
        } else {
            Err(PkiError::UnsupportedKey(format!("EC curve {curve}")))
        }
    }

    /// Verifies a DER ECDSA signature made with SHA-256 (`ecdsa-with-SHA256`, the only algorithm
    /// of the TI ECC PKI).
    pub fn verify(&self, algorithm: &AlgorithmIdentifierOwned, message: &[u8], sig: &[u8]) -> bool {
        let null_or_absent = algorithm
            .parameters
            .as_ref()
            .is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty());
        if algorithm.oid != ECDSA_WITH_SHA256 || !null_or_absent {
            return false;
        }
        match self {
            Self::P256(key) => p256::ecdsa::DerSignature::try_from(sig)
                .is_ok_and(|s| key.verify(message, &s).is_ok()),
            Self::Bp256(key) => {
                Bp256DerSignature::try_from(sig).is_ok_and(|s| key.verify(message, &s).is_ok())
            }
        }
    }
}

/// The signing certificate's key: ES256 needs P-256.
pub(crate) fn signing_key(cert: &Certificate) -> Result<p256::ecdsa::VerifyingKey, PkiError> {
    match EcKey::from_spki(cert.tbs_certificate().subject_public_key_info())? {
        EcKey::P256(key) => Ok(key),
        EcKey::Bp256(_) => Err(PkiError::UnsupportedKey(
            "brainpoolP256r1 signing key; ES256 needs a P-256 key".into(),
        )),
    }
}

/// `true` if `issuer` names and signed `child`.
pub(crate) fn issued_by(child: &ParsedCert<'_>, issuer: &ParsedCert<'_>) -> bool {
    let issuer_tbs = issuer.cert.tbs_certificate();
    if child.cert.tbs_certificate().issuer() != issuer_tbs.subject() {
        return false;
    }
    EcKey::from_spki(issuer_tbs.subject_public_key_info()).is_ok_and(|key| {
        key.verify(
            child.cert.signature_algorithm(),
            child.tbs_der,
            child.signature,
        )
    })
}

pub(crate) fn check_validity(cert: &Certificate, now_unix: u64) -> Result<(), PkiError> {
    let validity = cert.tbs_certificate().validity();
    if now_unix < validity.not_before.to_unix_duration().as_secs() {
        return Err(PkiError::NotYetValid);
    }
    if now_unix > validity.not_after.to_unix_duration().as_secs() {
        return Err(PkiError::Expired);
    }
    Ok(())
}

pub(crate) fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, BasicConstraints { ca: true, .. })))
    )
}

/// A key usage extension, if present, must allow `digitalSignature`.
pub(crate) fn allows_digital_signature(cert: &Certificate) -> Result<bool, PkiError> {
    match cert.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(None) => Ok(true),
        Ok(Some((_, ku))) => Ok(ku.digital_signature()),
        Err(e) => Err(PkiError::Malformed(format!("key usage: {e}"))),
    }
}

pub(crate) fn has_extended_key_usage(cert: &Certificate, purpose: ObjectIdentifier) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<ExtendedKeyUsage>(),
        Ok(Some((_, eku))) if eku.0.contains(&purpose)
    )
}

/// The certificate's Admission extension must name `role`.
pub(crate) fn check_role(cert: &Certificate, role: ObjectIdentifier) -> Result<(), PkiError> {
    let extensions = cert.tbs_certificate().extensions().map_or(&[][..], |e| e);
    let mut found = false;
    for ext in extensions.iter().filter(|e| e.extn_id == ID_ADMISSION) {
        let admission = AdmissionSyntax::from_der(ext.extn_value.as_bytes())
            .map_err(|e| PkiError::Malformed(format!("admission extension: {e}")))?;
        found |= admission.profession_oids().any(|oid| *oid == role);
    }
    if found {
        Ok(())
    } else {
        Err(PkiError::MissingRole)
    }
}

/// cert → ca → (cross certificates from `rca_chain`) → one of `roots`.
pub(crate) fn check_chain(
    leaf: &ParsedCert<'_>,
    ca: &ParsedCert<'_>,
    rca_chain: &[ParsedCert<'_>],
    roots: &[ParsedCert<'_>],
    now_unix: u64,
) -> Result<(), PkiError> {
    if rca_chain.len() > MAX_RCA_CHAIN {
        return Err(PkiError::Malformed(format!(
            "rca_chain has {} certificates (at most {MAX_RCA_CHAIN})",
            rca_chain.len()
        )));
    }
    if !issued_by(leaf, ca) || !is_ca(&ca.cert) {
        return Err(PkiError::UntrustedChain);
    }
    let mut used = vec![false; rca_chain.len()];
    let mut current = ca;
    for _ in 0..=rca_chain.len() {
        if roots
            .iter()
            .any(|root| root.der == current.der || issued_by(current, root))
        {
            return Ok(());
        }
        let next = rca_chain
            .iter()
            .enumerate()
            .find(|(i, cross)| !used[*i] && is_ca(&cross.cert) && issued_by(current, cross));
        let Some((i, cross)) = next else {
            return Err(PkiError::UntrustedChain);
        };
        check_validity(&cross.cert, now_unix)?;
        used[i] = true;
        current = cross;
    }
    Err(PkiError::UntrustedChain)
}
