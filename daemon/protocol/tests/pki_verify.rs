//! Strict and lenient verification of the VAU signing certificate against the test PKI, and
//! each way it must fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use epa_protocol::pki::{
    CertData, CertVerification, OCSP_MAX_AGE_S, PkiError, TestPki, VauSigner, sign_es256_raw,
    verify_es256_raw, verify_signing_certificate,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256};

const NOW: u64 = 1_795_000_000;
const YEAR: u64 = 365 * 86_400;
const MESSAGE: &[u8] = b"\xa5gECDH_PK...signed_pub_keys";

struct Setup {
    pki: TestPki,
    signer: VauSigner,
    data: CertData,
    ocsp: Vec<u8>,
    rng: ChaCha20Rng,
}

fn setup(seed: u8) -> Setup {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let signer = pki.issue_vau_signer(&mut rng, NOW, true);
    let ocsp = pki.ocsp_response(&signer.cert_der, true, NOW - 60);
    let data = CertData {
        cert: signer.cert_der.clone(),
        ca: pki.ca_der().to_vec(),
        rca_chain: vec![],
    };
    Setup {
        pki,
        signer,
        data,
        ocsp,
        rng,
    }
}

fn strict(pki: &TestPki) -> CertVerification {
    strict_at(pki, NOW)
}

fn strict_at(pki: &TestPki, now: u64) -> CertVerification {
    CertVerification::Strict {
        trusted_roots: vec![pki.root_der().to_vec()],
        now_unix: now,
    }
}

fn data_for(pki: &TestPki, signer: &VauSigner) -> CertData {
    CertData {
        cert: signer.cert_der.clone(),
        ca: pki.ca_der().to_vec(),
        rca_chain: vec![],
    }
}

fn verify(
    data: &CertData,
    ocsp: &[u8],
    mode: &CertVerification,
) -> Result<p256::ecdsa::VerifyingKey, PkiError> {
    let hash: [u8; 32] = Sha256::digest(&data.cert).into();
    verify_signing_certificate(data, &hash, ocsp, mode)
}

#[test]
fn strict_verification_of_a_fresh_signer_passes_and_returns_its_key() {
    let s = setup(1);
    let key = verify(&s.data, &s.ocsp, &strict(&s.pki)).unwrap();
    assert_eq!(&key, s.signer.key.verifying_key());
    let sig = sign_es256_raw(&s.signer.key, MESSAGE);
    verify_es256_raw(&key, MESSAGE, &sig).unwrap();
}

#[test]
fn the_test_pki_is_deterministic_for_a_seed() {
    let (a, b) = (setup(3), setup(3));
    assert_eq!(a.pki.root_der(), b.pki.root_der());
    assert_eq!(a.pki.ca_der(), b.pki.ca_der());
    assert_eq!(a.signer.cert_der, b.signer.cert_der);
    assert_eq!(a.ocsp, b.ocsp);
    assert_eq!(
        sign_es256_raw(&a.signer.key, MESSAGE),
        sign_es256_raw(&b.signer.key, MESSAGE)
    );
    assert_ne!(a.pki.root_der(), setup(4).pki.root_der());
}

#[test]
fn cert_hash_mismatch_is_refused_in_both_modes() {
    let s = setup(2);
    let mut wrong = s.signer.cert_hash();
    wrong[0] ^= 1;
    for mode in [strict(&s.pki), CertVerification::Lenient] {
        let e = verify_signing_certificate(&s.data, &wrong, &s.ocsp, &mode).unwrap_err();
        assert!(matches!(e, PkiError::CertHashMismatch), "{e:?}");
    }
}

#[test]
fn a_certificate_without_the_vau_role_is_refused() {
    let mut s = setup(5);
    let signer = s.pki.issue_vau_signer(&mut s.rng, NOW, false);
    let ocsp = s.pki.ocsp_response(&signer.cert_der, true, NOW - 60);
    let e = verify(&data_for(&s.pki, &signer), &ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::MissingRole), "{e:?}");
    // Lenient mode does not look at the role.
    verify(
        &data_for(&s.pki, &signer),
        &ocsp,
        &CertVerification::Lenient,
    )
    .unwrap();
}

#[test]
fn a_certificate_from_another_pki_is_untrusted() {
    let s = setup(6);
    let other = setup(7);
    // Complete CertData of the other PKI, our root trusted.
    let e = verify(&other.data, &other.ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::UntrustedChain), "{e:?}");
    // Their certificate presented with our CA (same names, other keys).
    let mixed = CertData {
        cert: other.signer.cert_der.clone(),
        ca: s.pki.ca_der().to_vec(),
        rca_chain: vec![],
    };
    let e = verify(&mixed, &other.ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::UntrustedChain), "{e:?}");
    // No trusted root at all.
    let none = CertVerification::Strict {
        trusted_roots: vec![],
        now_unix: NOW,
    };
    let e = verify(&s.data, &s.ocsp, &none).unwrap_err();
    assert!(matches!(e, PkiError::UntrustedChain), "{e:?}");
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let mut s = setup(8);
    // Issued two years ago: expired a year ago.
    let old = s.pki.issue_vau_signer(&mut s.rng, NOW - 2 * YEAR, true);
    let ocsp = s.pki.ocsp_response(&old.cert_der, true, NOW - 60);
    let e = verify(&data_for(&s.pki, &old), &ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::Expired), "{e:?}");
    // Issued for tomorrow.
    let future = s.pki.issue_vau_signer(&mut s.rng, NOW + 86_400, true);
    let ocsp = s.pki.ocsp_response(&future.cert_der, true, NOW - 60);
    let e = verify(&data_for(&s.pki, &future), &ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::NotYetValid), "{e:?}");
    // Validity is now − 1 h … now + 1 y.
    verify(
        &s.data,
        &s.pki
            .ocsp_response(&s.signer.cert_der, true, NOW + YEAR - 60),
        &strict_at(&s.pki, NOW + YEAR),
    )
    .unwrap();
    let e = verify(&s.data, &s.ocsp, &strict_at(&s.pki, NOW - 3601)).unwrap_err();
    assert!(matches!(e, PkiError::NotYetValid), "{e:?}");
}

#[test]
fn a_revoked_certificate_is_refused() {
    let s = setup(9);
    let revoked = s.pki.ocsp_response(&s.signer.cert_der, false, NOW - 60);
    let e = verify(&s.data, &revoked, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspNotGood), "{e:?}");
}

#[test]
fn ocsp_older_than_24_hours_or_from_the_future_is_refused() {
    let s = setup(10);
    let at = |produced: u64| {
        verify(
            &s.data,
            &s.pki.ocsp_response(&s.signer.cert_der, true, produced),
            &strict(&s.pki),
        )
    };
    at(NOW - OCSP_MAX_AGE_S).unwrap();
    let e = at(NOW - OCSP_MAX_AGE_S - 1).unwrap_err();
    assert!(matches!(e, PkiError::OcspStale), "{e:?}");
    let e = at(NOW - 3 * 86_400).unwrap_err();
    assert!(matches!(e, PkiError::OcspStale), "{e:?}");
    // Small clock skew is tolerated, more is not.
    at(NOW + 120).unwrap();
    let e = at(NOW + 3600).unwrap_err();
    assert!(matches!(e, PkiError::OcspInFuture), "{e:?}");
}

#[test]
fn ocsp_signed_by_a_wrong_key_is_refused() {
    let s = setup(11);
    let other = setup(12);
    // The other PKI's CA "answers" for our certificate.
    let foreign = other.pki.ocsp_response(&s.signer.cert_der, true, NOW - 60);
    let e = verify(&s.data, &foreign, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspSignature), "{e:?}");
    // A flipped bit in the signed part.
    let mut tampered = s.ocsp.clone();
    let pos = tampered.len() / 2;
    tampered[pos] ^= 0x01;
    let e = verify(&s.data, &tampered, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspSignature), "{e:?}");
}

#[test]
fn ocsp_from_a_delegated_responder_needs_the_ocsp_signing_purpose() {
    let mut s = setup(13);
    let good = s
        .pki
        .ocsp_response_delegated(&mut s.rng, &s.signer.cert_der, true, NOW - 60, true);
    verify(&s.data, &good, &strict(&s.pki)).unwrap();
    let revoked =
        s.pki
            .ocsp_response_delegated(&mut s.rng, &s.signer.cert_der, false, NOW - 60, true);
    let e = verify(&s.data, &revoked, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspNotGood), "{e:?}");
    let no_eku =
        s.pki
            .ocsp_response_delegated(&mut s.rng, &s.signer.cert_der, true, NOW - 60, false);
    let e = verify(&s.data, &no_eku, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspSignature), "{e:?}");
    // A responder of another PKI.
    let mut other = setup(14);
    let foreign =
        other
            .pki
            .ocsp_response_delegated(&mut other.rng, &s.signer.cert_der, true, NOW - 60, true);
    let e = verify(&s.data, &foreign, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspSignature), "{e:?}");
}

#[test]
fn ocsp_for_another_certificate_or_garbage_is_refused() {
    let mut s = setup(15);
    let sibling = s.pki.issue_vau_signer(&mut s.rng, NOW, true);
    let ocsp = s.pki.ocsp_response(&sibling.cert_der, true, NOW - 60);
    let e = verify(&s.data, &ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspCertMismatch), "{e:?}");
    // The lib-vau test resource's "OCSP response" is this text.
    for junk in [&b"xxx dummy data xxx\n"[..], b"", b"\x30\x03\x0a\x01\x00"] {
        let e = verify(&s.data, junk, &strict(&s.pki)).unwrap_err();
        assert!(matches!(e, PkiError::OcspMalformed), "{junk:?}: {e:?}");
    }
    // tryLater (3), no responseBytes.
    let e = verify(&s.data, b"\x30\x03\x0a\x01\x03", &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::OcspUnsuccessful(3)), "{e:?}");
}

#[test]
fn a_cross_certificate_chain_leads_to_the_old_root() {
    let mut s = setup(16);
    // `old` is the root the client ships; `s.pki`'s root is newer and cross-certified by it.
    let mut old_rng = ChaCha20Rng::from_seed([17; 32]);
    let old = TestPki::generate(&mut old_rng, NOW);
    let cross = old.cross_certify(&s.pki, &mut old_rng, NOW);
    let trusts_old = strict(&old);
    let e = verify(&s.data, &s.ocsp, &trusts_old).unwrap_err();
    assert!(matches!(e, PkiError::UntrustedChain), "{e:?}");
    let mut data = s.data.clone();
    data.rca_chain = vec![cross.clone()];
    verify(&data, &s.ocsp, &trusts_old).unwrap();
    // Two hops: old → middle → s.pki.
    let middle = TestPki::generate(&mut s.rng, NOW);
    let hop1 = old.cross_certify(&middle, &mut s.rng, NOW);
    let hop2 = middle.cross_certify(&s.pki, &mut s.rng, NOW);
    data.rca_chain = vec![hop2.clone(), hop1.clone()];
    verify(&data, &s.ocsp, &trusts_old).unwrap();
    data.rca_chain = vec![hop2];
    let e = verify(&data, &s.ocsp, &trusts_old).unwrap_err();
    assert!(matches!(e, PkiError::UntrustedChain), "{e:?}");
    // An expired cross certificate.
    data.rca_chain = vec![old.cross_certify(&s.pki, &mut s.rng, NOW - 11 * YEAR)];
    let e = verify(&data, &s.ocsp, &trusts_old).unwrap_err();
    assert!(matches!(e, PkiError::Expired), "{e:?}");
    // Junk in rca_chain.
    data.rca_chain = vec![b"junk".to_vec()];
    let e = verify(&data, &s.ocsp, &trusts_old).unwrap_err();
    assert!(matches!(e, PkiError::Malformed(_)), "{e:?}");
}

#[test]
fn malformed_certificates_are_reported_as_such() {
    let s = setup(18);
    for mode in [strict(&s.pki), CertVerification::Lenient] {
        let junk = CertData {
            cert: b"not a certificate".to_vec(),
            ..s.data.clone()
        };
        let e = verify(&junk, &s.ocsp, &mode).unwrap_err();
        assert!(matches!(e, PkiError::Malformed(_)), "{e:?}");
    }
    let bad_ca = CertData {
        ca: b"\x30\x00".to_vec(),
        ..s.data.clone()
    };
    let e = verify(&bad_ca, &s.ocsp, &strict(&s.pki)).unwrap_err();
    assert!(matches!(e, PkiError::Malformed(_)), "{e:?}");
    // Lenient mode does not parse the CA.
    verify(&bad_ca, &s.ocsp, &CertVerification::Lenient).unwrap();
    // A truncated certificate.
    let mut cut = s.data.clone();
    cut.cert.truncate(cut.cert.len() - 1);
    let e = verify(&cut, &s.ocsp, &CertVerification::Lenient).unwrap_err();
    assert!(matches!(e, PkiError::Malformed(_)), "{e:?}");
}

#[test]
fn lenient_mode_skips_chain_and_ocsp_but_still_needs_hash_and_signature() {
    let s = setup(19);
    let lenient_data = CertData {
        cert: s.signer.cert_der.clone(),
        ca: vec![],
        rca_chain: vec![],
    };
    let key = verify(
        &lenient_data,
        b"xxx dummy data xxx\n",
        &CertVerification::Lenient,
    )
    .unwrap();
    let sig = sign_es256_raw(&s.signer.key, MESSAGE);
    verify_es256_raw(&key, MESSAGE, &sig).unwrap();
    // Another key's signature.
    let other = setup(20);
    let forged = sign_es256_raw(&other.signer.key, MESSAGE);
    let e = verify_es256_raw(&key, MESSAGE, &forged).unwrap_err();
    assert!(matches!(e, PkiError::SignatureInvalid), "{e:?}");
    // Expired certificates pass lenient mode (the gematik test certificate is expired).
    let mut s2 = setup(21);
    let old = s2.pki.issue_vau_signer(&mut s2.rng, NOW - 2 * YEAR, true);
    verify(&data_for(&s2.pki, &old), b"", &CertVerification::Lenient).unwrap();
}

#[test]
fn es256_raw_signatures_der_signatures_and_tampering() {
    let s = setup(22);
    let key = s.signer.key.verifying_key();
    let sig = sign_es256_raw(&s.signer.key, MESSAGE);
    verify_es256_raw(key, MESSAGE, &sig).unwrap();

    let der = p256::ecdsa::Signature::from_slice(&sig).unwrap().to_der();
    let e = verify_es256_raw(key, MESSAGE, der.as_bytes()).unwrap_err();
    assert!(matches!(e, PkiError::SignatureDer), "{e:?}");
    assert_eq!(
        e.to_string(),
        "DER-encoded ES256 signature; ePA 3 requires raw r||s (64 bytes)"
    );

    let mut tampered = MESSAGE.to_vec();
    tampered[0] ^= 0x80;
    let e = verify_es256_raw(key, &tampered, &sig).unwrap_err();
    assert!(matches!(e, PkiError::SignatureInvalid), "{e:?}");

    let mut flipped = sig;
    flipped[63] ^= 1;
    let e = verify_es256_raw(key, MESSAGE, &flipped).unwrap_err();
    assert!(matches!(e, PkiError::SignatureInvalid), "{e:?}");

    for junk in [
        &[][..],
        &sig[..63],
        &[0u8; 64][..],
        &[0xffu8; 64][..],
        &[0x30u8; 70][..],
    ] {
        let e = verify_es256_raw(key, MESSAGE, junk).unwrap_err();
        assert!(
            matches!(e, PkiError::SignatureInvalid),
            "{}: {e:?}",
            junk.len()
        );
    }
}
