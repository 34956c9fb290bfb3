//! Property tests for the VAU codecs: no input makes a decoder panic, and what we encode we
//! decode again.
#![allow(clippy::unwrap_used)]

use epa_protocol::vau::channel::{Direction, Header, classify_response};
use epa_protocol::vau::messages::{
    M1, M2, M3, M3Inner, M4, SignedPublicKeys, VauPublicKeys, decode_control, encode_error,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = M1::decode(&bytes);
        let _ = M2::decode(&bytes);
        let _ = M3::decode(&bytes);
        let _ = M3Inner::decode(&bytes);
        let _ = M4::decode(&bytes);
        let _ = SignedPublicKeys::decode(&bytes);
        let _ = VauPublicKeys::decode(&bytes);
        let _ = decode_control(&bytes);
        let _ = Header::decode(&bytes);
        let _ = classify_response(Some("application/cbor"), &bytes);
    }

    #[test]
    fn headers_round_trip(pu in 0u8..=1, response in any::<bool>(), counter in any::<u64>(), key_id in any::<[u8; 32]>()) {
        let h = Header { pu, direction: if response { Direction::Response } else { Direction::Request }, counter, key_id };
        let mut body = h.encode().to_vec();
        body.extend_from_slice(&[0u8; 28]);
        prop_assert_eq!(Header::decode(&body).unwrap(), h);
    }

    #[test]
    fn signed_public_keys_round_trip(spk in proptest::collection::vec(any::<u8>(), 0..300), sig in proptest::collection::vec(any::<u8>(), 64..=64), hash in any::<[u8; 32]>(), cdv in any::<u64>(), ocsp in proptest::collection::vec(any::<u8>(), 0..100)) {
        let s = SignedPublicKeys { signed_pub_keys: spk, signature: sig, cert_hash: hash, cdv, ocsp_response: ocsp };
        prop_assert_eq!(SignedPublicKeys::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn error_messages_round_trip(code in any::<i64>(), msg in ".{0,40}") {
        let decoded = decode_control(&encode_error(code, &msg)).unwrap();
        prop_assert_eq!(decoded, epa_protocol::vau::messages::ControlMessage::Error { code, message: msg });
    }
}
