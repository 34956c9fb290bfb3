//! VAU costs: a full handshake (client + server CPU, certificate check included) and app-data
//! seal/open throughput for 1 MiB and 25 MiB bodies (the client's in-place paths) vs raw
//! AES-256-GCM (ring) on the same buffers.
//! Target: ≥ 80 % of raw for 25 MiB. `cargo bench -p epa-protocol --bench vau`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use epa_protocol::pki::{CertData, CertVerification, TestPki};
use epa_protocol::vau::channel::{HEADROOM, OVERHEAD};
use epa_protocol::vau::{ClientHandshake, Environment, VauServerKeys};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

const NOW: u64 = 1_795_000_000;
const TARGET: f64 = 0.8;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let signer = pki.issue_vau_signer(&mut rng, NOW, true);
    let ocsp = pki.ocsp_response(&signer.cert_der, true, NOW - 60);
    let keys =
        VauServerKeys::generate(&mut rng, &signer, 1, ocsp, NOW, NOW + 86_400, "bench").unwrap();
    let cert = CertData {
        cert: signer.cert_der.clone(),
        ca: pki.ca_der().to_vec(),
        rca_chain: vec![],
    };
    let mode = CertVerification::Strict {
        trusted_roots: vec![pki.root_der().to_vec()],
        now_unix: NOW,
    };

    let mut channels = None;
    let times: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let client = ClientHandshake::start(&mut rng);
            let (server, m2) = keys.receive_m1(client.m1(), &mut rng).unwrap();
            let (awaiting, m3) = client
                .receive_m2(&m2)
                .unwrap()
                .finish(&cert, &mode, NOW, &mut rng)
                .unwrap();
            let (srv, m4) = server
                .receive_m3(&keys, &m3, Environment::Test, &mut rng)
                .unwrap();
            let c = awaiting.receive_m4(&m4, Environment::Test).unwrap();
            let d = t.elapsed();
            channels = Some((c, srv));
            d
        })
        .collect();
    println!(
        "handshake (client + server, strict certificate check): median {:.2} ms",
        median(times).as_secs_f64() * 1e3
    );

    let (mut c, mut srv) = channels.unwrap();
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let nonce = || Nonce::assume_unique_for_key([1u8; 12]);
    let mut all_ok = true;
    for (label, size) in [("1 MiB", 1usize << 20), ("25 MiB", 25usize << 20)] {
        let body = vec![0x5au8; size];
        let mut buf = body.clone();
        let runs = if size > 1 << 20 { 5 } else { 20 };
        let raw_seal = best(runs, || {
            buf.copy_from_slice(&body);
            let _ = std::hint::black_box(
                raw.seal_in_place_separate_tag(nonce(), Aad::from([0u8; 43]), &mut buf)
                    .unwrap(),
            );
        });
        let tag = raw
            .seal_in_place_separate_tag(nonce(), Aad::from([0u8; 43]), &mut buf)
            .unwrap();
        let sealed_raw = buf.clone();
        let raw_open = best(runs, || {
            buf.copy_from_slice(&sealed_raw);
            raw.open_in_place_separate_tag(nonce(), Aad::from([0u8; 43]), tag, &mut buf, 0..)
                .unwrap();
        });
        // As the daemon does it: the inner request is written after room for the header and
        // sealed where it is; an answer is decrypted where it arrived. Like the raw rounds, each
        // round copies the data into a buffer first.
        let mut msg = Vec::with_capacity(OVERHEAD + size);
        let seal = best(runs, || {
            msg.clear();
            msg.resize(HEADROOM, 0);
            msg.extend_from_slice(&body);
            c.seal_request_in_place(&mut msg, &mut rng).unwrap();
        });
        let (counter, _) = srv.open_request(&msg).unwrap();
        let answer = srv.seal_response(counter, &body, &mut rng);
        let mut got = answer.clone();
        let open = best(runs, || {
            got.copy_from_slice(&answer);
            let plain = c
                .open_response_in_place(Some("application/octet-stream"), &mut got)
                .unwrap();
            std::hint::black_box(plain);
        });
        let mib = |d: Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();
        let (rs, ro) = (
            raw_seal.as_secs_f64() / seal.as_secs_f64(),
            raw_open.as_secs_f64() / open.as_secs_f64(),
        );
        println!(
            "{label:>6}: raw AES-GCM seal {:6.0} / open {:6.0} MiB/s; VAU seal {:6.0} / open {:6.0} MiB/s ({:.0} % / {:.0} %)",
            mib(raw_seal),
            mib(raw_open),
            mib(seal),
            mib(open),
            rs * 100.0,
            ro * 100.0
        );
        if size > 1 << 20 {
            all_ok = rs >= TARGET && ro >= TARGET;
        }
    }
    println!(
        "25 MiB target ≥ {:.0} % of raw: {}",
        TARGET * 100.0,
        if all_ok { "PASS" } else { "FAIL" }
    );
    std::process::exit(if all_ok { 0 } else { 1 });
}
