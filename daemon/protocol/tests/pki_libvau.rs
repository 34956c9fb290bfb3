//! gematik lib-vau test resources (read from shared/specs, never copied): the signing
//! certificate parses, and the old-format DER signature in `vau_server_signed_pub_keys.cbor`
//! verifies with its key once converted to raw r‖s — while the DER form itself is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ciborium::Value;
use epa_protocol::pki::{
    CertData, CertVerification, PkiError, verify_es256_raw, verify_signing_certificate,
};
use p256::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/specs/gematik-lib-vau-testdata"
);

fn read(name: &str) -> Option<Vec<u8>> {
    let path = format!("{DIR}/{name}");
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            println!("SKIPPED: {path}: {e}");
            None
        }
    }
}

fn lib_vau_key(cert: &[u8]) -> p256::ecdsa::VerifyingKey {
    let data = CertData {
        cert: cert.to_vec(),
        ca: vec![],
        rca_chain: vec![],
    };
    let hash: [u8; 32] = Sha256::digest(cert).into();
    verify_signing_certificate(
        &data,
        &hash,
        b"xxx dummy data xxx\n",
        &CertVerification::Lenient,
    )
    .unwrap()
}

fn map_get<'a>(map: &'a [(Value, Value)], key: &str) -> &'a Value {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn the_lib_vau_signing_certificate_parses_and_matches_its_private_key() {
    let (Some(cert), Some(key)) = (read("vau_sig_cert.der"), read("vau-sig-key.der")) else {
        return;
    };
    let public = lib_vau_key(&cert);
    let private = p256::ecdsa::SigningKey::from_pkcs8_der(&key).unwrap();
    assert_eq!(&public, private.verifying_key());
}

#[test]
fn the_old_der_signature_verifies_only_after_conversion_to_raw() {
    let (Some(cert), Some(file)) = (
        read("vau_sig_cert.der"),
        read("vau_server_signed_pub_keys.cbor"),
    ) else {
        return;
    };
    let value: Value = ciborium::from_reader(file.as_slice()).unwrap();
    let map = value.as_map().unwrap();
    let signed = map_get(map, "signed_pub_keys").as_bytes().unwrap();
    let der_sig = map_get(map, "signature-ES256").as_bytes().unwrap();
    // The old format carries the certificate itself.
    assert_eq!(map_get(map, "cert").as_bytes().unwrap(), &cert);
    assert!(
        der_sig.len() > 64 && der_sig[0] == 0x30,
        "DER expected, {} bytes",
        der_sig.len()
    );

    let key = lib_vau_key(&cert);
    let e = verify_es256_raw(&key, signed, der_sig).unwrap_err();
    assert!(matches!(e, PkiError::SignatureDer), "{e:?}");

    let raw = p256::ecdsa::Signature::from_der(der_sig)
        .unwrap()
        .to_bytes();
    verify_es256_raw(&key, signed, &raw).unwrap();
    let mut tampered = signed.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let e = verify_es256_raw(&key, &tampered, &raw).unwrap_err();
    assert!(matches!(e, PkiError::SignatureInvalid), "{e:?}");
}

#[test]
fn the_lib_vau_certificate_fails_strict_verification() {
    let Some(cert) = read("vau_sig_cert.der") else {
        return;
    };
    let hash: [u8; 32] = Sha256::digest(&cert).into();
    // The self-made "Komponenten-PKI-CA" is not available; with the certificate as its own
    // "CA" and root, the v1 certificate (no extensions) fails the chain's CA check, and after
    // Nov 2024 it is simply expired.
    let data = CertData {
        cert: cert.clone(),
        ca: cert.clone(),
        rca_chain: vec![],
    };
    let during = CertVerification::Strict {
        trusted_roots: vec![cert.clone()],
        now_unix: 1_711_493_774, // iat of the signed keys, March 2024
    };
    let e = verify_signing_certificate(&data, &hash, b"", &during).unwrap_err();
    assert!(matches!(e, PkiError::UntrustedChain), "{e:?}");
    let after = CertVerification::Strict {
        trusted_roots: vec![cert],
        now_unix: 1_795_000_000,
    };
    let e = verify_signing_certificate(&data, &hash, b"", &after).unwrap_err();
    assert!(matches!(e, PkiError::Expired), "{e:?}");
}

#[test]
fn the_lib_vau_dummy_ocsp_response_is_not_an_ocsp_response() {
    let Some(dummy) = read("ocsp-response-vau-sig.der") else {
        return;
    };
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([40; 32]);
    let now = 1_795_000_000;
    let pki = epa_protocol::pki::TestPki::generate(&mut rng, now);
    let signer = pki.issue_vau_signer(&mut rng, now, true);
    let data = CertData {
        cert: signer.cert_der.clone(),
        ca: pki.ca_der().to_vec(),
        rca_chain: vec![],
    };
    let mode = CertVerification::Strict {
        trusted_roots: vec![pki.root_der().to_vec()],
        now_unix: now,
    };
    let e = verify_signing_certificate(&data, &signer.cert_hash(), &dummy, &mode).unwrap_err();
    assert!(matches!(e, PkiError::OcspMalformed), "{e:?}");
    // Lenient mode ignores it.
    verify_signing_certificate(
        &data,
        &signer.cert_hash(),
        &dummy,
        &CertVerification::Lenient,
    )
    .unwrap();
}
