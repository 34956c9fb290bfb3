//! Unary `GetInfo` round trips over epad's socket vs a bare tonic service (constant answer, no
//! daemon logic) over the same kind of socket, in the same run. Target: daemon p50 ≤ 1.5× bare.
//!
//! `cargo bench -p epa-tests --bench ipc_roundtrip` (calls per round: `EPA_BENCH_CALLS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use epa_daemon::store::crypto::KdfParams;
use epa_daemon::{Config, DEFAULT_IDLE_TIMEOUT, DEMO_ENVIRONMENT};
use epa_ipc::{DaemonClient, Endpoint, PROTOCOL_VERSION, pb};

const TARGET_RATIO: f64 = 1.5;
const ROUNDS: usize = 3;

struct Bare;

#[tonic::async_trait]
impl pb::daemon_server::Daemon for Bare {
    async fn get_info(
        &self,
        _: tonic::Request<pb::GetInfoRequest>,
    ) -> Result<tonic::Response<pb::GetInfoResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::GetInfoResponse {
            daemon_version: "0.0.0".into(),
            protocol_version: PROTOCOL_VERSION,
            environment: "bare".into(),
            uptime_ms: 0,
            pid: 0,
            environment_info: None,
        }))
    }
    async fn shutdown(
        &self,
        _: tonic::Request<pb::ShutdownRequest>,
    ) -> Result<tonic::Response<pb::ShutdownResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::ShutdownResponse {}))
    }
}

async fn sample(client: &DaemonClient, calls: usize, out: &mut Vec<Duration>) {
    for _ in 0..calls {
        let t = Instant::now();
        client.get_info().await.unwrap();
        out.push(t.elapsed());
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let calls: usize = std::env::var("EPA_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let daemon_ep = Endpoint::at(dir.path().join("run/epad.sock"));
        let bound = epa_daemon::bind(Config {
            endpoint: daemon_ep.clone(),
            data_dir: dir.path().join("data"),
            environment: DEMO_ENVIRONMENT.into(),
            kdf: KdfParams::TEST_ONLY,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            environment_file: None,
            sandbox_bin: None,
            epa_keepalive: epa_daemon::session::DEFAULT_KEEPALIVE,
        })
        .unwrap();
        let handle = bound.daemon();
        tokio::spawn(bound.serve());

        let bare_ep = Endpoint::at(dir.path().join("bare/echo.sock"));
        let listener = epa_ipc::transport::bind(&bare_ep).unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::daemon_server::DaemonServer::new(Bare))
                .serve_with_incoming(listener.incoming()),
        );

        let daemon = DaemonClient::connect(&daemon_ep).await.unwrap();
        let bare = DaemonClient::connect(&bare_ep).await.unwrap();
        let (mut d, mut b) = (Vec::new(), Vec::new());
        let mut scratch = Vec::new();
        sample(&daemon, 1_000, &mut scratch).await;
        sample(&bare, 1_000, &mut scratch).await;
        // Interleaved rounds so drift on a shared machine hits both sides alike.
        for _ in 0..ROUNDS {
            sample(&daemon, calls / ROUNDS, &mut d).await;
            sample(&bare, calls / ROUNDS, &mut b).await;
        }
        d.sort_unstable();
        b.sort_unstable();
        let us = |x: Duration| x.as_secs_f64() * 1e6;
        println!(
            "GetInfo round trips, {} calls each, release build:",
            d.len()
        );
        println!(
            "  epad (daemon socket)        p50 {:7.1} µs   p99 {:7.1} µs",
            us(pct(&d, 0.5)),
            us(pct(&d, 0.99))
        );
        println!(
            "  bare tonic, same socket kind p50 {:7.1} µs   p99 {:7.1} µs",
            us(pct(&b, 0.5)),
            us(pct(&b, 0.99))
        );
        let ratio = us(pct(&d, 0.5)) / us(pct(&b, 0.5));
        let ok = ratio <= TARGET_RATIO;
        println!(
            "  ratio p50 epad/bare = {ratio:.2} (target ≤ {TARGET_RATIO}): {}",
            if ok { "PASS" } else { "FAIL" }
        );
        handle.request_shutdown();
        ok
    });
    std::process::exit(if ok { 0 } else { 1 });
}
