//! What `/CertData.<hash>-<cdv>` returns and the OCSP blob from M2 come from the network:
//! decoding and strict verification must fail cleanly on any bytes.
#![no_main]

use epa_protocol::pki::{CertData, CertVerification, verify_signing_certificate};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let _ = CertData::from_cbor(data);
    // Treat the input as a certificate (with a matching hash, to get past the first check), as a
    // CA and as an OCSP response.
    let (cert, rest) = data.split_at(data.len() / 2);
    let hash: [u8; 32] = Sha256::digest(cert).into();
    let cert_data = CertData {
        cert: cert.to_vec(),
        ca: rest.to_vec(),
        rca_chain: vec![rest.to_vec()],
    };
    let strict = CertVerification::Strict {
        trusted_roots: vec![rest.to_vec()],
        now_unix: 1_795_000_000,
    };
    let _ = verify_signing_certificate(&cert_data, &hash, rest, &strict);
    let _ = verify_signing_certificate(&cert_data, &hash, rest, &CertVerification::Lenient);
});
