//! Client ↔ server in memory, and each way it must fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use epa_protocol::pki::{CertData, CertVerification, TestPki, VauSigner};
use epa_protocol::vau::handshake::MAX_KEY_LIFETIME_S;
use epa_protocol::vau::messages::{M2, SignedPublicKeys, encode_error, encode_restart};
use epa_protocol::vau::{
    ClientChannel, ClientHandshake, Environment, ServerChannel, VauError, VauServerKeys,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: u64 = 1_795_000_000;

struct Setup {
    pki: TestPki,
    signer: VauSigner,
    keys: VauServerKeys,
    cert: CertData,
    rng: ChaCha20Rng,
}

fn setup(seed: u8) -> Setup {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let signer = pki.issue_vau_signer(&mut rng, NOW, true);
    let ocsp = pki.ocsp_response(&signer.cert_der, true, NOW - 60);
    let keys = VauServerKeys::generate(
        &mut rng,
        &signer,
        1,
        ocsp,
        NOW - 10,
        NOW + 86_400,
        "VAU test",
    )
    .unwrap();
    let cert = CertData {
        cert: signer.cert_der.clone(),
        ca: pki.ca_der().to_vec(),
        rca_chain: vec![],
    };
    Setup {
        pki,
        signer,
        keys,
        cert,
        rng,
    }
}

fn strict(s: &Setup) -> CertVerification {
    CertVerification::Strict {
        trusted_roots: vec![s.pki.root_der().to_vec()],
        now_unix: NOW,
    }
}

fn handshake(
    s: &mut Setup,
    client_env: Environment,
    server_env: Environment,
) -> Result<(ClientChannel, ServerChannel), VauError> {
    let mode = strict(s);
    let client = ClientHandshake::start(&mut s.rng);
    let (server, m2) = s.keys.receive_m1(client.m1(), &mut s.rng)?;
    let awaiting = client.receive_m2(&m2)?;
    assert_eq!(
        awaiting.cert_data_path(),
        epa_protocol::pki::cert_data_path(&s.signer.cert_hash(), 1)
    );
    let (awaiting, m3) = awaiting.finish(&s.cert, &mode, NOW, &mut s.rng)?;
    let (server_ch, m4) = server.receive_m3(&s.keys, &m3, server_env, &mut s.rng)?;
    let client_ch = awaiting.receive_m4(&m4, client_env)?;
    Ok((client_ch, server_ch))
}

#[test]
fn client_and_server_agree_and_exchange_messages() {
    let mut s = setup(1);
    let (mut c, mut srv) = handshake(&mut s, Environment::Test, Environment::Test).unwrap();
    assert_eq!(c.key_id(), srv.key_id());
    for i in 1..=3u64 {
        let body = format!("GET /epa/authz/v1/getNonce HTTP/1.1\r\nHost: x\r\n\r\n{i}");
        let req = c.seal_request(body.as_bytes(), &mut s.rng).unwrap();
        let (counter, inner) = srv.open_request(&req).unwrap();
        assert_eq!((counter, inner.as_slice()), (i, body.as_bytes()));
        let resp = srv.seal_response(counter, b"HTTP/1.1 200 OK\r\n\r\n", &mut s.rng);
        assert_eq!(
            c.open_response(Some("application/octet-stream"), &resp)
                .unwrap(),
            b"HTTP/1.1 200 OK\r\n\r\n"
        );
    }
    assert!(c.nonpu_tracing().is_some());
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let m1 = |seed| {
        ClientHandshake::start(&mut ChaCha20Rng::from_seed([seed; 32]))
            .m1()
            .to_vec()
    };
    assert_eq!(m1(7), m1(7));
    assert_ne!(m1(7), m1(8));
}

#[test]
fn tampered_replayed_or_misrouted_data_is_refused() {
    let mut s = setup(2);
    let (mut c, mut srv) = handshake(&mut s, Environment::Test, Environment::Test).unwrap();
    let req = c.seal_request(b"one", &mut s.rng).unwrap();
    let mut bad = req.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(srv.open_request(&bad), Err(VauError::Aead(_))));
    let mut other_key = req.clone();
    other_key[20] ^= 1;
    let e = srv.open_request(&other_key).unwrap_err();
    assert!(matches!(e, VauError::UnknownKeyId));
    assert_eq!(e.http_status(), 403);
    srv.open_request(&req).unwrap();
    assert!(matches!(
        srv.open_request(&req),
        Err(VauError::Replay { got: 1, highest: 1 })
    ));
    // A response to another request.
    let _ = c.seal_request(b"two", &mut s.rng).unwrap();
    let stale = srv.seal_response(1, b"old", &mut s.rng);
    assert!(matches!(
        c.open_response(None, &stale),
        Err(VauError::CounterMismatch {
            expected: 2,
            got: 1
        })
    ));
    // Control messages instead of data.
    assert!(matches!(
        c.open_response(Some("application/cbor"), &encode_restart(c.key_id())),
        Err(VauError::Restart)
    ));
    assert!(matches!(
        c.open_response(None, &encode_error(403, "GCM")),
        Err(VauError::Server { code: 403, .. })
    ));
}

#[test]
fn production_and_test_traffic_do_not_mix() {
    let mut s = setup(3);
    let (mut c, mut srv) = handshake(&mut s, Environment::Production, Environment::Test).unwrap();
    assert!(c.nonpu_tracing().is_none(), "never in production");
    let req = c.seal_request(b"x", &mut s.rng).unwrap();
    assert!(matches!(
        srv.open_request(&req),
        Err(VauError::PuMismatch {
            expected: 0,
            got: 1
        })
    ));
}

#[test]
fn a_changed_transcript_fails_key_confirmation() {
    let mut s = setup(4);
    let mode = strict(&s);
    let client = ClientHandshake::start(&mut s.rng);
    let (server, m2) = s.keys.receive_m1(client.m1(), &mut s.rng).unwrap();
    // A middlebox re-encodes M2 (same content, other bytes): the client accepts it, but the
    // transcripts now differ and the server refuses M3.
    let reencoded = M2::decode(&m2).unwrap();
    let mut indefinite = reencoded.encode();
    indefinite[0] = 0xbf;
    indefinite.push(0xff);
    assert_ne!(indefinite, m2);
    let awaiting = client.receive_m2(&indefinite).unwrap();
    let (_, m3) = awaiting.finish(&s.cert, &mode, NOW, &mut s.rng).unwrap();
    let e = server
        .receive_m3(&s.keys, &m3, Environment::Test, &mut s.rng)
        .err()
        .unwrap();
    assert!(matches!(e, VauError::KeyConfirmation("M3")), "{e:?}");
    assert_eq!(e.http_status(), 403);
}

#[test]
fn expired_overlong_or_der_signed_server_keys_are_refused() {
    let mut s = setup(5);
    let ocsp = s.pki.ocsp_response(&s.signer.cert_der, true, NOW - 60);
    let expired = VauServerKeys::generate(
        &mut s.rng,
        &s.signer,
        1,
        ocsp.clone(),
        NOW - 100,
        NOW - 1,
        "old",
    )
    .unwrap();
    let client = ClientHandshake::start(&mut s.rng);
    let (_, m2) = expired.receive_m1(client.m1(), &mut s.rng).unwrap();
    let e = client
        .receive_m2(&m2)
        .unwrap()
        .finish(&s.cert, &strict(&s), NOW, &mut s.rng)
        .err()
        .unwrap();
    assert!(matches!(e, VauError::KeysExpired { .. }), "{e:?}");

    assert!(matches!(
        VauServerKeys::generate(
            &mut s.rng,
            &s.signer,
            1,
            ocsp.clone(),
            NOW,
            NOW + MAX_KEY_LIFETIME_S + 1,
            "long"
        ),
        Err(VauError::KeyLifetimeTooLong(_))
    ));

    // The same keys with a DER signature (old lib-vau): refused.
    let fresh =
        VauServerKeys::generate(&mut s.rng, &s.signer, 1, ocsp, NOW, NOW + 3600, "fresh").unwrap();
    let client = ClientHandshake::start(&mut s.rng);
    let (_, m2) = fresh.receive_m1(client.m1(), &mut s.rng).unwrap();
    let awaiting = client.receive_m2(&m2).unwrap();
    let mut signed: SignedPublicKeys = awaiting.signed().clone();
    let sig = p256::ecdsa::Signature::from_slice(&signed.signature).unwrap();
    signed.signature = sig.to_der().as_bytes().to_vec();
    let e = epa_protocol::pki::verify_es256_raw(
        s.signer.key.verifying_key(),
        &signed.signed_pub_keys,
        &signed.signature,
    )
    .unwrap_err();
    assert!(
        matches!(e, epa_protocol::pki::PkiError::SignatureDer),
        "{e:?}"
    );
}

#[test]
fn a_certificate_from_another_pki_is_refused_in_strict_mode_but_lenient_mode_checks_the_signature()
{
    let mut s = setup(6);
    let other = setup(9);
    let client = ClientHandshake::start(&mut s.rng);
    let (_, m2) = s.keys.receive_m1(client.m1(), &mut s.rng).unwrap();
    let awaiting = client.receive_m2(&m2).unwrap();
    let mode = CertVerification::Strict {
        trusted_roots: vec![other.pki.root_der().to_vec()],
        now_unix: NOW,
    };
    assert!(matches!(
        awaiting.finish(&s.cert, &mode, NOW, &mut s.rng),
        Err(VauError::Pki(_))
    ));

    let client = ClientHandshake::start(&mut s.rng);
    let (_, m2) = s.keys.receive_m1(client.m1(), &mut s.rng).unwrap();
    let awaiting = client.receive_m2(&m2).unwrap();
    assert!(
        awaiting
            .finish(&s.cert, &CertVerification::Lenient, NOW, &mut s.rng)
            .is_ok()
    );
    // Lenient still refuses a certificate whose key did not sign.
    let client = ClientHandshake::start(&mut s.rng);
    let (_, m2) = s.keys.receive_m1(client.m1(), &mut s.rng).unwrap();
    let awaiting = client.receive_m2(&m2).unwrap();
    let mut wrong = other.cert.clone();
    wrong.cert = other.signer.cert_der.clone();
    assert!(matches!(
        awaiting.finish(&wrong, &CertVerification::Lenient, NOW, &mut s.rng),
        Err(VauError::Pki(_))
    ));
}
