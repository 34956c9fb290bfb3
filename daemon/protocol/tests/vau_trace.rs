//! Known-answer tests against gematik's own recorded VAU handshake (Tiger trace against the VAU
//! mock, keys leaked by its debug headers). Read from ../shared at run time, never copied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use epa_protocol::vau::channel::{Direction, Header, open_message, seal_message};
use epa_protocol::vau::keys::{SymKey, open};
use epa_protocol::vau::messages::{M1, M2, M3, M3Inner, M4, SignedPublicKeys, VauPublicKeys};
use sha2::{Digest, Sha256};

const TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/specs/gematik-vau-trace/vau-trace-vectors.json"
);

fn trace() -> Option<serde_json::Value> {
    match std::fs::read(TRACE) {
        Ok(b) => Some(serde_json::from_slice(&b).unwrap()),
        Err(_) => {
            eprintln!("SKIPPED: {TRACE} not found");
            None
        }
    }
}

fn hex_field(v: &serde_json::Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("{k} missing"))).unwrap()
}

fn key(v: &serde_json::Value, k: &str) -> SymKey {
    SymKey::from_bytes(hex_field(v, k).try_into().unwrap())
}

fn sha(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

#[test]
fn the_recorded_handshake_decodes_and_both_key_confirmations_hold() {
    let Some(t) = trace() else { return };
    let (m1b, m2b, m3b, m4b) = (
        hex_field(&t, "m1"),
        hex_field(&t, "m2"),
        hex_field(&t, "m3"),
        hex_field(&t, "m4"),
    );
    // Java emits indefinite-length maps.
    assert_eq!(m1b[0], 0xbf);
    let m1 = M1::decode(&m1b).unwrap();
    let m2 = M2::decode(&m2b).unwrap();
    let m3 = M3::decode(&m3b).unwrap();
    let m4 = M4::decode(&m4b).unwrap();
    assert_eq!(m1.kyber_pk.as_bytes().len(), 1184);
    assert_eq!(m2.kyber_ct.len(), 1088);

    // M2.AEAD_ct opens with K1_s2c: the server's signed keys.
    let signed =
        SignedPublicKeys::decode(&open(&key(&t, "k1_s2c"), &m2.aead_ct, &[], "M2").unwrap())
            .unwrap();
    // The mock of 2024-09 still signed in DER (lib-vau < 1.0.13); current servers send raw r‖s,
    // which is what our server sends and our client requires (pki::PkiError::SignatureDer).
    assert_eq!(signed.signature[0], 0x30, "DER SEQUENCE");
    assert!(p256::ecdsa::Signature::from_der(&signed.signature).is_ok());
    let keys = VauPublicKeys::decode(&signed.signed_pub_keys).unwrap();
    assert!(keys.exp > keys.iat);

    // M3.AEAD_ct opens with K1_c2s: the client's encapsulations.
    let inner =
        M3Inner::decode(&open(&key(&t, "k1_c2s"), &m3.aead_ct, &[], "M3").unwrap()).unwrap();
    assert_eq!(inner.kyber_ct.len(), 1088);
    assert!(!inner.erp && !inner.eso);

    // Key confirmations over the exact wire bytes.
    let c = open(
        &key(&t, "k2_c2s_key_confirmation"),
        &m3.aead_ct_key_confirmation,
        &[],
        "kc",
    )
    .unwrap();
    assert_eq!(c, sha(&[&m1b, &m2b, &m3.aead_ct]));
    let s = open(
        &key(&t, "k2_s2c_key_confirmation"),
        &m4.aead_ct_key_confirmation,
        &[],
        "kc",
    )
    .unwrap();
    assert_eq!(s, sha(&[&m1b, &m2b, &m3b]));
    // A re-encoded M1 (definite-length) would hash differently: the transcript must use wire bytes.
    assert_ne!(m1.encode(), m1b);
}

#[test]
fn every_recorded_data_message_opens_and_reseals_byte_exactly() {
    let Some(t) = trace() else { return };
    let req = key(&t, "k2_c2s_app_data");
    let resp = key(&t, "k2_s2c_app_data");
    let msgs = t["data_messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 6);
    let mut key_id = None;
    for m in msgs {
        let enc = hex_field(m, "encrypted");
        let plain = hex_field(m, "plaintext");
        let h = Header::decode(&enc).unwrap();
        let (k, dir) = match m["direction"].as_str().unwrap() {
            "request" => (&req, Direction::Request),
            _ => (&resp, Direction::Response),
        };
        assert_eq!(h.direction, dir);
        assert_eq!(h.counter, m["request_counter"].as_u64().unwrap());
        assert_eq!(h.pu, 0, "the mock is a test environment");
        assert_eq!(
            *key_id.get_or_insert(h.key_id),
            h.key_id,
            "one KeyID per channel"
        );
        assert_eq!(open_message(k, &enc, "data").unwrap(), plain);
        let iv: [u8; 12] = enc[43..55].try_into().unwrap();
        assert_eq!(
            seal_message(k, &h, iv, &plain),
            enc,
            "re-sealed bytes differ"
        );
        // The inner messages are plain HTTP/1.1.
        assert!(
            plain.starts_with(b"GET ")
                || plain.starts_with(b"POST ")
                || plain.starts_with(b"HTTP/1.1 ")
        );
    }
}
