//! Vault costs: unlock (with the Argon2id share reported separately) and sealed put/get of
//! 1 MiB values through the store vs raw AEAD on the same buffers. Target: store ≥ 50 % of raw.
//!
//! `cargo bench -p epa-daemon --bench vault`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use epa_daemon::events::EventBus;
use epa_daemon::store::Store;
use epa_daemon::store::crypto::{KdfParams, SecretKey, open, seal};
use epa_daemon::users::{Users, system_clock};
use zeroize::Zeroizing;

const MIB: usize = 1 << 20;
const VALUES: usize = 64;
const TARGET: f64 = 0.5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("u")).unwrap();

    // Unlock, and the Argon2id part of it.
    let kdf = KdfParams::DEFAULT;
    let argon: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            kdf.derive_key(b"Kastanienbaum im Mai", b"0123456789abcdef")
                .unwrap();
            t.elapsed()
        })
        .collect();
    let unlock = rt.block_on(async {
        let bus = Arc::new(EventBus::new(Default::default(), 16));
        let users = Users::open(
            &dir.path().join("u"),
            kdf,
            Duration::from_secs(60),
            system_clock(),
            bus,
        )
        .unwrap();
        users
            .create("Bench", Zeroizing::new("Kastanienbaum im Mai".into()))
            .await
            .unwrap();
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let (token, _, _) = users
                .unlock("Bench", Zeroizing::new("Kastanienbaum im Mai".into()))
                .await
                .unwrap();
            times.push(t.elapsed());
            let s = users.session(&token).unwrap();
            users.lock(&s);
        }
        times
    });
    let (argon, unlock) = (median(argon), median(unlock));
    println!(
        "unlock (Argon2id m={} KiB, t={}, p={}): median {:.1} ms, of which Argon2id {:.1} ms, rest {:.2} ms",
        kdf.m_kib,
        kdf.t,
        kdf.p,
        unlock.as_secs_f64() * 1e3,
        argon.as_secs_f64() * 1e3,
        unlock.saturating_sub(argon).as_secs_f64() * 1e3
    );

    // Throughput on the same buffers.
    let key = SecretKey::random().unwrap();
    let buffers: Vec<Vec<u8>> = (0..VALUES).map(|i| vec![i as u8; MIB]).collect();
    let total = VALUES * MIB;
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap()
    };

    let mut sealed = Vec::new();
    let raw_seal = best(&mut || {
        sealed = buffers
            .iter()
            .map(|b| seal(&key, b"aad", b).unwrap())
            .collect();
    });
    let raw_open = best(&mut || {
        for s in &sealed {
            std::hint::black_box(open(&key, b"aad", s).unwrap());
        }
    });

    let store = Store::open(&dir.path().join("s")).unwrap();
    let ks = store.keyspace("u/bench", &key).unwrap();
    // New records each round (documents are written once), then read back.
    let mut round = 0;
    let put = best(&mut || {
        round += 1;
        for (i, b) in buffers.iter().enumerate() {
            ks.put(&format!("doc/{round}/{i}"), b).unwrap();
        }
    });
    ks.flush().unwrap();
    let get = best(&mut || {
        for i in 0..VALUES {
            std::hint::black_box(ks.get(&format!("doc/1/{i}")).unwrap());
        }
    });
    let (put_r, get_r) = (
        raw_seal.as_secs_f64() / put.as_secs_f64(),
        raw_open.as_secs_f64() / get.as_secs_f64(),
    );
    println!("{VALUES} × 1 MiB, best of 3:");
    println!(
        "  raw AEAD  seal {:7.0} MiB/s   open {:7.0} MiB/s",
        mib_s(total, raw_seal),
        mib_s(total, raw_open)
    );
    println!(
        "  store     put  {:7.0} MiB/s   get  {:7.0} MiB/s",
        mib_s(total, put),
        mib_s(total, get)
    );
    let ok = put_r >= TARGET && get_r >= TARGET;
    println!(
        "  store/raw put {:.0} %, get {:.0} % (target ≥ {:.0} %): {}",
        put_r * 100.0,
        get_r * 100.0,
        TARGET * 100.0,
        if ok { "PASS" } else { "FAIL" }
    );
    std::process::exit(if ok { 0 } else { 1 });
}
