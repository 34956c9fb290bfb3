//! `/CertData.<hash>-<cdv>`: path and CBOR body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use epa_protocol::pki::{CertData, PkiError, cert_data_path};
use proptest::prelude::*;

fn sample() -> CertData {
    CertData {
        cert: vec![0x30, 0x01, 0xaa],
        ca: vec![0x30, 0x00],
        rca_chain: vec![vec![1, 2], vec![]],
    }
}

#[test]
fn path_is_lowercase_hex_and_decimal_cdv() {
    let mut hash = [0u8; 32];
    for (i, b) in hash.iter_mut().enumerate() {
        *b = i as u8 | 0xa0;
    }
    assert_eq!(
        cert_data_path(&hash, 1),
        "/CertData.a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf-1"
    );
    assert_eq!(
        cert_data_path(&[0xff; 32], u64::MAX),
        format!("/CertData.{}-18446744073709551615", "ff".repeat(32))
    );
}

#[test]
fn encoding_is_a_definite_map_with_the_three_keys() {
    let expected = hex::decode(concat!(
        "a3",
        "64",
        "63657274",
        "43",
        "3001aa",
        "62",
        "6361",
        "42",
        "3000",
        "69",
        "7263615f636861696e",
        "82",
        "42",
        "0102",
        "40",
    ))
    .unwrap();
    assert_eq!(sample().to_cbor(), expected);
    assert_eq!(CertData::from_cbor(&expected).unwrap(), sample());
}

#[test]
fn round_trip_with_long_certificates() {
    let d = CertData {
        cert: vec![7; 70_000],
        ca: vec![8; 300],
        rca_chain: (0..5).map(|i| vec![i; 24]).collect(),
    };
    assert_eq!(CertData::from_cbor(&d.to_cbor()).unwrap(), d);
}

#[test]
fn indefinite_length_map_array_and_byte_strings_are_accepted() {
    // As Java/Jackson writes it: 0xBF map … 0xFF, 0x9F array … 0xFF, 0x5F chunked bytes … 0xFF,
    // with the keys in another order and an unknown key.
    let bytes = hex::decode(concat!(
        "bf",
        "69",
        "7263615f636861696e",
        "9f",
        "420102",
        "5f",
        "4101",
        "4102",
        "ff",
        "ff",
        "62",
        "6361",
        "423000",
        "67",
        "636f6d6d656e74",
        "f6",
        "64",
        "63657274",
        "5f",
        "423001",
        "41aa",
        "ff",
        "ff"
    ))
    .unwrap();
    let d = CertData::from_cbor(&bytes).unwrap();
    assert_eq!(
        d,
        CertData {
            cert: vec![0x30, 0x01, 0xaa],
            ca: vec![0x30, 0x00],
            rca_chain: vec![vec![1, 2], vec![1, 2]],
        }
    );
}

#[test]
fn missing_rca_chain_is_empty() {
    // {"cert": h'01', "ca": h'02'}
    let d = CertData::from_cbor(
        &hex::decode("a2 64 63657274 41 01 62 6361 41 02".replace(' ', "")).unwrap(),
    )
    .unwrap();
    assert_eq!(d.rca_chain, Vec::<Vec<u8>>::new());
    assert_eq!((d.cert, d.ca), (vec![1], vec![2]));
}

#[test]
fn malformed_bodies_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("a1 62 6361 41 02", "missing cert"),
        ("a1 64 63657274 41 01", "missing ca"),
        ("a2 64 63657274 63 616263 62 6361 41 02", "cert is text"),
        (
            "a3 64 63657274 41 01 62 6361 41 02 69 7263615f636861696e 41 00",
            "rca_chain not an array",
        ),
        (
            "a3 64 63657274 41 01 62 6361 41 02 69 7263615f636861696e 81 01",
            "rca_chain entry not bytes",
        ),
        (
            "a3 64 63657274 41 01 62 6361 41 02 64 63657274 41 01",
            "duplicate cert",
        ),
        ("a2 01 4101 626361 4102", "integer key"),
        ("82 4101 4102", "array, not map"),
        ("a2 64 63657274 41 01 62 6361 41 02 00", "trailing byte"),
        ("bf 64 63657274 41 01", "unterminated indefinite map"),
    ];
    for (hex_str, what) in cases {
        let bytes = hex::decode(hex_str.replace(' ', "")).unwrap();
        let r = CertData::from_cbor(&bytes);
        assert!(matches!(r, Err(PkiError::Malformed(_))), "{what}: {r:?}");
    }
}

#[test]
fn too_long_rca_chain_is_refused() {
    let d = CertData {
        rca_chain: vec![vec![0]; 9],
        ..sample()
    };
    assert!(matches!(
        CertData::from_cbor(&d.to_cbor()),
        Err(PkiError::Malformed(_))
    ));
}

proptest! {
    #[test]
    fn cbor_round_trip(
        cert in proptest::collection::vec(any::<u8>(), 0..600),
        ca in proptest::collection::vec(any::<u8>(), 0..300),
        rca_chain in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
    ) {
        let d = CertData { cert, ca, rca_chain };
        prop_assert_eq!(CertData::from_cbor(&d.to_cbor()).unwrap(), d);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = CertData::from_cbor(&bytes);
    }
}
