//! Sandbox start-up: in process (`Sandbox::start` until the ready line is known) and as a process
//! (`epa-sandbox serve` until its ready line arrives on stdout). Target: < 1 s each, because every
//! end-to-end suite and `epa demo` start one.
//!
//! `cargo bench -p epa-sandbox --bench startup`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use epa_sandbox::seed::Seed;
use epa_sandbox::server::{Options, Sandbox};

const TARGET: Duration = Duration::from_secs(1);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn report(what: &str, runs: Vec<Duration>) {
    let max = *runs.iter().max().unwrap();
    let p50 = median(runs);
    let verdict = if max < TARGET { "ok" } else { "OVER TARGET" };
    println!("{what:<28} p50 {p50:>10.1?}  max {max:>10.1?}  target < {TARGET:?}: {verdict}");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_process: Vec<Duration> = (0..10)
        .map(|_| {
            rt.block_on(async {
                let t = Instant::now();
                let s = Sandbox::start(Options {
                    state_dir: None,
                    seed: Seed::default_seed().unwrap(),
                    bind: "127.0.0.1".parse().unwrap(),
                    rng_seed: None,
                })
                .await
                .unwrap();
                let d = t.elapsed();
                s.shutdown().await;
                d
            })
        })
        .collect();
    report("in process (Sandbox::start)", in_process);

    let process: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let mut child = Command::new(env!("CARGO_BIN_EXE_epa-sandbox"))
                .args(["serve", "--exit-on-stdin-eof"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let d = t.elapsed();
            assert!(line.contains("\"ready\":true"), "{line}");
            drop(child.stdin.take());
            child.wait().unwrap();
            d
        })
        .collect();
    report("process (serve → ready line)", process);
}
