//! Documents costs.
//!
//! a. `List` with a search on a 10,000-document cache: the daemon's in-memory index
//!    (`documents::cache::Index::query` plus the summaries List sends), p50 target < 10 ms, next to
//!    a plain filter of the same entries (lowercasing on every call). Also, for information, the
//!    cold load of the sealed index from a vault (first List after unlocking).
//! b. A 25 MiB document retrieved with ITI-43 through the VAU channel (`epa_daemon::backend::
//!    VauClient` against the in-process sandbox) vs a raw loopback transfer of the same bytes
//!    (plain HTTP, std::net server, reqwest client) in the same run. Target: VAU ≥ 50 % of raw.
//!
//! No assertions on timing: the numbers are printed with "ok" or "OVER TARGET".
//!
//! `cargo bench -p epa-tests --bench documents`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use epa_daemon::backend::{VauClient, VauTarget, tls};
use epa_daemon::documents::cache::{self, CachedEntry, Index, StoredIndex};
use epa_daemon::store::Store;
use epa_daemon::store::crypto::SecretKey;
use epa_ipc::types::DocumentQuery;
use epa_protocol::http::Request;
use epa_protocol::vau::Environment;
use epa_protocol::xds::query::{self, ReturnType, StoredQuery};
use epa_protocol::xds::retrieve::{self, DocumentRequest};
use epa_protocol::xds::rim::{self, InsurantDocument};
use epa_protocol::xds::soap;
use epa_protocol::xds::submit::{self, DocumentContent};
use epa_protocol::xds::{status, uuid_oid};
use epa_sandbox::devices::Device;

const DOCS: usize = 10_000;
const LIST_ROUNDS: usize = 200;
const LIST_TARGET: Duration = Duration::from_millis(10);
const BIG: usize = 25 * 1024 * 1024;
const BIG_ROUNDS: usize = 16;
const THROUGHPUT_TARGET: f64 = 0.5;
const KVNR: &str = "X110411675";
const XDS_PATH: &str = "/epa/xds-document/api/I_Document_Management_Insurant";

fn p50_max(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    (v[v.len() / 2], v[v.len() - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "OVER TARGET" }
}

fn main() {
    list_bench();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(download_bench());
}

// ---- a. List on 10,000 entries ------------------------------------------------------------------

fn entries() -> Vec<CachedEntry> {
    const KINDS: [&str; 8] = [
        "Arztbrief",
        "Laborbefund",
        "Röntgenaufnahme",
        "Entlassbrief",
        "Medikationsplan",
        "Impfpass",
        "MRT-Befund",
        "Überweisung",
    ];
    const TOPICS: [&str; 6] = ["Knie", "Thorax", "Blutbild", "Schulter", "Herz", "Rücken"];
    const AUTHORS: [&str; 5] = [
        "Dr. Anna Sommer",
        "Dr. Tom Weber",
        "Dr. Jörg Müller",
        "Praxis Lindenhof",
        "",
    ];
    const MIME: [&str; 4] = ["application/pdf", "image/jpeg", "image/png", "text/plain"];
    (0..DOCS)
        .map(|i| {
            let author = AUTHORS[i % AUTHORS.len()];
            CachedEntry {
                id: format!("2.25.{}", 1_000_000 + i),
                entry_uuid: format!("urn:uuid:00000000-0000-4000-8000-{i:012x}"),
                repository_unique_id: Some("1.2.276.0.76.3.1.999.1".into()),
                home_community_id: None,
                title: format!(
                    "{} {} {}",
                    KINDS[i % KINDS.len()],
                    TOPICS[(i / 7) % TOPICS.len()],
                    i
                ),
                author: author.into(),
                by_me: author.is_empty(),
                mime_type: MIME[i % MIME.len()].into(),
                category: if author.is_empty() {
                    "patient"
                } else {
                    "reports"
                }
                .into(),
                class_code: "BEF".into(),
                class_display: "Befundbericht".into(),
                created_unix: 1_600_000_000 + (i as u64 * 7919) % 150_000_000,
                size: Some(10_000 + i as u64),
                hash: Some(format!("{:040x}", i)),
                comment: String::new(),
                root_id: None,
                accesses: (i % 5) as u32,
                hidden_by: None,
            }
        })
        .collect()
}

/// What a List without the index would do: lowercase and compare every entry on every call.
fn plain_filter<'a>(
    all: &'a [CachedEntry],
    needle: &str,
    limit: usize,
) -> (Vec<&'a CachedEntry>, usize) {
    let needle = needle.trim().to_lowercase();
    let mut hits: Vec<&CachedEntry> = all
        .iter()
        .filter(|e| {
            e.title.to_lowercase().contains(&needle) || e.author.to_lowercase().contains(&needle)
        })
        .collect();
    hits.sort_by(|a, b| {
        b.created_unix
            .cmp(&a.created_unix)
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = hits.len();
    hits.truncate(limit);
    (hits, total)
}

fn list_bench() {
    let all = entries();
    let index = Index::from_stored(StoredIndex {
        entries: all.clone(),
        synced_unix: 1_700_000_000,
    });
    // What a search box sends while typing, plus a miss; one page of 50 as the GUI asks.
    let needles = [
        "b",
        "be",
        "bef",
        "befund",
        "röntgen",
        "müller",
        "knie 12",
        "gibt-es-nicht",
    ];
    let query = |n: &str| DocumentQuery {
        query: n.into(),
        limit: Some(50),
        ..Default::default()
    };
    // Same answer both ways (sanity, untimed).
    for n in needles {
        let (a, ta) = index.query(&query(n));
        let (b, tb) = plain_filter(&all, n, 50);
        assert_eq!(ta, tb, "{n}");
        assert_eq!(
            a.iter().map(|e| &e.id).collect::<Vec<_>>(),
            b.iter().map(|e| &e.id).collect::<Vec<_>>(),
            "{n}"
        );
    }

    let mut indexed = Vec::new();
    let mut plain = Vec::new();
    for r in 0..LIST_ROUNDS {
        let n = needles[r % needles.len()];
        let q = query(n);
        let t = Instant::now();
        let (page, total) = index.query(&q);
        let summaries: Vec<_> = page.into_iter().map(|e| cache::summary(e, false)).collect();
        std::hint::black_box((summaries, total));
        indexed.push(t.elapsed());
        let t = Instant::now();
        let (page, total) = plain_filter(&all, n, 50);
        let summaries: Vec<_> = page.into_iter().map(|e| cache::summary(e, false)).collect();
        std::hint::black_box((summaries, total));
        plain.push(t.elapsed());
    }

    // The cold path: the sealed index out of a vault keyspace, parsed and indexed.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ks = store
        .keyspace("u/bench", &SecretKey::random().unwrap())
        .unwrap();
    let stored = index.to_stored();
    ks.put_json("doc/index/X110411675", &stored, true).unwrap();
    let sealed_len = serde_json::to_vec(&stored).unwrap().len();
    let loads: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            let s: StoredIndex = ks.get_json("doc/index/X110411675").unwrap().unwrap();
            std::hint::black_box(Index::from_stored(s));
            t.elapsed()
        })
        .collect();

    let (ip50, imax) = p50_max(indexed);
    let (pp50, pmax) = p50_max(plain);
    let (lp50, lmax) = p50_max(loads);
    println!(
        "a. List with a search on a {DOCS}-document cache ({LIST_ROUNDS} queries, page of 50):"
    );
    println!(
        "  index (Index::query + summaries): p50 {:.3} ms, max {:.3} ms (target p50 < {} ms): {}",
        ms(ip50),
        ms(imax),
        LIST_TARGET.as_millis(),
        verdict(ip50 < LIST_TARGET)
    );
    println!(
        "  plain in-memory filter, same data: p50 {:.3} ms, max {:.3} ms",
        ms(pp50),
        ms(pmax)
    );
    println!(
        "  index / plain (p50): {:.2} (index is {:.1}× as fast)",
        ip50.as_secs_f64() / pp50.as_secs_f64(),
        pp50.as_secs_f64() / ip50.as_secs_f64()
    );
    println!(
        "  for information: cold load of the sealed index from the vault ({:.1} MiB JSON): p50 {:.1} ms, max {:.1} ms",
        sealed_len as f64 / (1024.0 * 1024.0),
        ms(lp50),
        ms(lmax)
    );
}

// ---- b. 25 MiB through VAU vs raw loopback -------------------------------------------------------

/// A loopback plain-HTTP server answering every GET with `body`.
fn raw_server(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let body = body.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    if head.windows(4).any(|w| w == b"\r\n\r\n") {
                        head.clear();
                        let h = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        if s.write_all(h.as_bytes()).is_err() || s.write_all(&body).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}/document")
}

async fn download_bench() {
    let sandbox = epa_tests::start_sandbox().await;
    let ready = &sandbox.ready;
    let ca = std::fs::read(&ready.ca_cert).unwrap();
    let system = sandbox
        .aktensysteme
        .iter()
        .find(|a| a.record(KVNR).is_some())
        .unwrap();
    let base_url = ready
        .aktensysteme
        .iter()
        .find(|a| a.id == system.id)
        .unwrap()
        .base_url
        .clone();
    let insurer = &ready
        .insurants
        .iter()
        .find(|i| i.kvnr == KVNR)
        .unwrap()
        .insurer;
    let issuer = ready
        .idps
        .iter()
        .find(|i| &i.insurer == insurer)
        .unwrap()
        .issuer
        .clone();
    let code = ready
        .insurants
        .iter()
        .find(|i| i.kvnr == KVNR)
        .unwrap()
        .gesundheitsid_code
        .clone();
    let ua = format!("{}/0.1.0", epa_daemon::session::CLIENT_ID);

    // A confirmed device put into the registry directly (Device Management is not measured).
    let (device_id, device_token) = ("0badcafe-0000-4000-8000-000000000007", "5a".repeat(32));
    system.services.devices.insert(
        KVNR,
        Device::confirmed(
            device_id,
            &device_token,
            "bench device",
            sandbox.clock.now_unix(),
        ),
    );

    // Login on one VAU channel: authorization request, ident app, auth code with the device.
    let http = tls::http_client(&ca).unwrap();
    let vau = VauClient::new(
        http.clone(),
        VauTarget {
            base_url,
            trusted_roots: vec![std::fs::read(&ready.vau_trust_anchor).unwrap()],
            environment: Environment::Test,
            user_agent: ua.clone(),
        },
    );
    let r = vau
        .send(
            &Request::get("/epa/authz/v1/send_authorization_request_fdv")
                .header("x-useragent", ua.as_str())
                .header("x-idp-iss", issuer.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let location = r.header("location").unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_slice(
        &http
            .post(format!("{}/approve", ready.ident_app))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"authorization_url": location, "kvnr": KVNR, "gesundheitsid_code": code})
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let redirect = v["redirect_uri"].as_str().unwrap();
    let auth_code = redirect
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix("code="))
        .unwrap();
    let r = vau
        .send(
            &Request::post(
                "/epa/authz/v1/send_authcode_fdv",
                "application/json",
                serde_json::to_vec(&serde_json::json!({ "authorizationCode": auth_code })).unwrap(),
            )
            .header("x-useragent", ua.as_str())
            .header("x-device-identifier", device_id)
            .header("x-device-token", device_token.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let xds = |e: soap::Encoded| {
        let vau = &vau;
        let ua = ua.clone();
        async move {
            let r = vau
                .send(
                    &Request::post(XDS_PATH, &e.content_type, e.body)
                        .header("x-useragent", ua.as_str())
                        .header("x-insurantid", KVNR),
                )
                .await
                .unwrap();
            let ct = r.header("content-type").unwrap_or("").to_owned();
            // As the daemon does: documents are slices of the answer, not copies.
            (r.status, soap::decode_shared(&ct, r.body.clone()).unwrap())
        }
    };

    // Upload 25 MiB once (ITI-41), untimed.
    let bytes: Vec<u8> = "Blutdruck 120/80, Puls 62 — Messreihe der Woche\n"
        .bytes()
        .cycle()
        .take(BIG)
        .collect();
    let uid = uuid_oid("11111111-2222-4333-8444-000000000025").unwrap();
    let ss_uid = uuid_oid("11111111-2222-4333-9444-000000000025").unwrap();
    let d = InsurantDocument {
        kvnr: KVNR,
        given_name: "Maria",
        family_name: "Muster",
        title: "Messreihe 25 MiB",
        comments: None,
        mime_type: "text/plain",
        creation_time: "20250401120000",
        id: "Document01",
        unique_id: &uid,
    };
    let objects = d.submission(d.entry(), &ss_uid, "1.2.276.0.76.3.1.999", "20250401120500");
    let docs = vec![DocumentContent {
        id: "Document01".into(),
        mime_type: "text/plain".into(),
        bytes: bytes.clone().into(),
    }];
    let t = Instant::now();
    let (st, m) = xds(submit::build_provide_and_register(
        &objects,
        &docs,
        "00000000-0000-4000-8000-000000000001",
        true,
    ))
    .await;
    let upload = t.elapsed();
    let rr = submit::parse_registry_response(&m).unwrap();
    assert!(st == 200 && rr.is_success(), "{st} {:?}", rr.errors);
    drop(docs);

    // Its repositoryUniqueId (ITI-18).
    let (_, m) = xds(query::build_request(
        &StoredQuery::find_documents(&rim::patient_id(KVNR), ReturnType::LeafClass),
        "00000000-0000-4000-8000-000000000002",
    ))
    .await;
    let found = query::parse_response(&m).unwrap();
    let repo = found
        .documents()
        .find(|e| e.unique_id == uid)
        .and_then(|e| e.repository_unique_id.clone())
        .unwrap();

    // Timed rounds, VAU and raw taking turns so that both see the same machine (a build
    // starting on the other core must not land on one side only). The raw side: the same
    // bytes over plain loopback HTTP.
    let url = raw_server(bytes.clone());
    let plain = reqwest::Client::new();
    let mut via_vau = Vec::new();
    let mut raw = Vec::new();
    for i in 0..BIG_ROUNDS {
        let req = DocumentRequest {
            home_community_id: None,
            repository_unique_id: repo.clone(),
            document_unique_id: uid.clone(),
        };
        let t = Instant::now();
        let (st, m) = xds(retrieve::build_request(
            &[req],
            &format!("00000000-0000-4000-8000-{:012x}", 100 + i),
            true,
        ))
        .await;
        let r = retrieve::parse_response(&m).unwrap();
        let got = r.documents.into_iter().next().unwrap().bytes;
        via_vau.push(t.elapsed());
        assert!(
            st == 200 && r.response.status == status::SUCCESS,
            "{:?}",
            r.response.errors
        );
        assert!(got == bytes, "ITI-43 bytes differ");
        drop((m, got));

        let t = Instant::now();
        let got = plain.get(&url).send().await.unwrap().bytes().await.unwrap();
        raw.push(t.elapsed());
        assert!(got.len() == bytes.len() && got[..] == bytes[..]);
    }

    let (vp50, vmax) = p50_max(via_vau);
    let (rp50, rmax) = p50_max(raw);
    let ratio = rp50.as_secs_f64() / vp50.as_secs_f64();
    println!(
        "b. 25 MiB document ({BIG} bytes), {BIG_ROUNDS} rounds each (upload ITI-41 once, untimed: {:.0} ms):",
        ms(upload)
    );
    println!(
        "  ITI-43 via VAU (HTTPS + VAU channel + MTOM/SOAP decode): p50 {:.1} ms ({:.0} MiB/s), max {:.1} ms",
        ms(vp50),
        mib_s(BIG, vp50),
        ms(vmax)
    );
    println!(
        "  raw loopback transfer, same bytes (plain HTTP, no TLS): p50 {:.1} ms ({:.0} MiB/s), max {:.1} ms",
        ms(rp50),
        mib_s(BIG, rp50),
        ms(rmax)
    );
    println!(
        "  VAU / raw throughput (p50): {:.0} % (target ≥ {:.0} %): {}",
        ratio * 100.0,
        THROUGHPUT_TARGET * 100.0,
        verdict(ratio >= THROUGHPUT_TARGET)
    );
    sandbox.shutdown().await;
}
