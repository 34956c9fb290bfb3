//! Checking the OCSP response the VAU staples to its signed keys (RFC 6960, basic response).

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::PkiError;
use super::asn1::{
    BasicOcspResponse, CertStatus, ID_KP_OCSP_SIGNING, ID_PKIX_OCSP_BASIC, ID_SHA1, ID_SHA256,
    OcspResponse, OcspResponseStatus, SingleResponse,
};
use super::x509::{
    EcKey, ParsedCert, allows_digital_signature, check_validity, has_extended_key_usage, issued_by,
    parse_cert, signed_parts,
};

/// An OCSP response older than this is refused (A_24624-01: "nicht älter als 24 Stunden").
pub const OCSP_MAX_AGE_S: u64 = 24 * 3600;
/// Tolerated clock difference for times in the future (producedAt, thisUpdate).
pub const CLOCK_SKEW_S: u64 = 300;

/// `ocsp_der` must be a successful basic OCSP response, signed by `ca` or by a responder
/// certificate `ca` issued for OCSP signing, saying *good* for `leaf`, and fresh.
pub(crate) fn check_ocsp(
    ocsp_der: &[u8],
    leaf: &ParsedCert<'_>,
    ca: &ParsedCert<'_>,
    now_unix: u64,
) -> Result<(), PkiError> {
    let response = OcspResponse::from_der(ocsp_der).map_err(|_| PkiError::OcspMalformed)?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(PkiError::OcspUnsuccessful(response.response_status as u32));
    }
    let bytes = response.response_bytes.ok_or(PkiError::OcspMalformed)?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(PkiError::OcspMalformed);
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der).map_err(|_| PkiError::OcspMalformed)?;
    let (tbs_der, signature) = signed_parts(basic_der).map_err(|_| PkiError::OcspMalformed)?;

    // Who signed it: the CA itself, or a delegated responder the CA issued.
    let ca_key = EcKey::from_spki(ca.cert.tbs_certificate().subject_public_key_info())?;
    let by_ca = ca_key.verify(&basic.signature_algorithm, tbs_der, signature);
    if !by_ca && !signed_by_delegated_responder(&basic, tbs_der, signature, ca, now_unix)? {
        return Err(PkiError::OcspSignature);
    }

    let data = &basic.tbs_response_data;
    let single = data
        .responses
        .iter()
        .find(|r| is_for(r, leaf, ca))
        .ok_or(PkiError::OcspCertMismatch)?;
    if !matches!(single.cert_status, CertStatus::Good(_)) {
        return Err(PkiError::OcspNotGood);
    }

    let produced_at = data.produced_at.0;
    if produced_at > now_unix.saturating_add(CLOCK_SKEW_S)
        || single.this_update.0 > now_unix.saturating_add(CLOCK_SKEW_S)
    {
        return Err(PkiError::OcspInFuture);
    }
    if now_unix.saturating_sub(produced_at) > OCSP_MAX_AGE_S {
        return Err(PkiError::OcspStale);
    }
    if single
        .next_update
        .is_some_and(|next| next.0.saturating_add(CLOCK_SKEW_S) < now_unix)
    {
        return Err(PkiError::OcspStale);
    }
    Ok(())
}

fn signed_by_delegated_responder(
    basic: &BasicOcspResponse,
    tbs_der: &[u8],
    signature: &[u8],
    ca: &ParsedCert<'_>,
    now_unix: u64,
) -> Result<bool, PkiError> {
    for cert in basic.certs.iter().flatten() {
        let der = cert.to_der().map_err(|_| PkiError::OcspMalformed)?;
        let Ok(responder) = parse_cert(&der, "OCSP responder") else {
            continue;
        };
        let authorised = issued_by(&responder, ca)
            && has_extended_key_usage(&responder.cert, ID_KP_OCSP_SIGNING)
            && allows_digital_signature(&responder.cert).unwrap_or(false)
            && check_validity(&responder.cert, now_unix).is_ok();
        if !authorised {
            continue;
        }
        let Ok(key) = EcKey::from_spki(responder.cert.tbs_certificate().subject_public_key_info())
        else {
            continue;
        };
        if key.verify(&basic.signature_algorithm, tbs_der, signature) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Does `single` talk about `leaf` as issued by `ca` (serial, issuer name hash, issuer key hash)?
fn is_for(single: &SingleResponse, leaf: &ParsedCert<'_>, ca: &ParsedCert<'_>) -> bool {
    let id = &single.cert_id;
    if id.serial_number.as_bytes() != leaf.cert.tbs_certificate().serial_number().as_bytes() {
        return false;
    }
    let ca_tbs = ca.cert.tbs_certificate();
    let Ok(ca_name) = ca_tbs.subject().to_der() else {
        return false;
    };
    let ca_key = ca_tbs
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes();
    let (Some(name_hash), Some(key_hash)) = (
        digest(&id.hash_algorithm, &ca_name),
        digest(&id.hash_algorithm, ca_key),
    ) else {
        return false;
    };
    id.issuer_name_hash.as_bytes() == name_hash.as_slice()
        && id.issuer_key_hash.as_bytes() == key_hash.as_slice()
}

/// CertID hash: SHA-1 (RFC 6960 default, most responders) or SHA-256.
fn digest(algorithm: &AlgorithmIdentifierOwned, data: &[u8]) -> Option<Vec<u8>> {
    if algorithm.oid == ID_SHA1 {
        Some(sha1::Sha1::digest(data).to_vec())
    } else if algorithm.oid == ID_SHA256 {
        Some(Sha256::digest(data).to_vec())
    } else {
        None
    }
}
