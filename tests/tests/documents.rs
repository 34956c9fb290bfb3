//! "Dokumente" through the daemon's API against the demo sandbox: the seeded list, search,
//! filter, sort, add → get, delete, hide, the offline cache, the crash-safe upload queue and
//! the encryption of everything under the data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use epa_ipc::types::{
    DocumentQuery, DocumentSummary, EpaPhase, NewDocument, SortColumn, UploadStatus,
};
use epa_ipc::{ClientError, DaemonClient, Reason};
use epa_tests::{Demo, MARIA, TestDaemon, TestEnv, bin, user_client};

const PASSWORD: &str = "korrekt Pferd Batterie";

async fn daemon(env: &TestEnv) -> TestDaemon {
    let sandbox = bin("epa-sandbox");
    TestDaemon::start_with(
        env,
        &[
            "--insecure-test-kdf",
            "--sandbox-bin",
            sandbox.to_str().unwrap(),
        ],
    )
    .await
}

/// Maria up to LoggedIn (first time: register and confirm this PC; later: straight in).
async fn login(c: &DaemonClient, demo: &Demo) {
    let (kvnr, insurer, code, email) = MARIA;
    c.set_record_profile(insurer, kvnr).await.unwrap();
    let s = c.start_login().await.unwrap();
    let link = demo
        .approve(&s.login.unwrap().authorization_url, kvnr, code)
        .await;
    let s = c.complete_login(&link).await.unwrap();
    if s.phase == EpaPhase::LoggedIn {
        return;
    }
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent, "{s:?}");
    let code_mail = demo.confirmation_code(email).await;
    let s = c.confirm_device(&code_mail).await.unwrap();
    assert_eq!(s.phase, EpaPhase::ReloginRequired, "{s:?}");
    let link = demo
        .approve(&s.login.unwrap().authorization_url, kvnr, code)
        .await;
    let s = c.complete_login(&link).await.unwrap();
    assert_eq!(s.phase, EpaPhase::LoggedIn, "{s:?}");
}

fn reason(e: &ClientError) -> Reason {
    match e {
        ClientError::Rpc { reason, .. } => reason.clone(),
        other => panic!("not a daemon error: {other}"),
    }
}

fn titles(d: &[DocumentSummary]) -> Vec<&str> {
    d.iter().map(|d| d.title.as_str()).collect()
}

/// 2025-03-dd 00:00 UTC.
fn march(day: u64) -> u64 {
    1_740_787_200 + (day - 1) * 86_400
}

async fn list(c: &DaemonClient, q: DocumentQuery) -> Vec<DocumentSummary> {
    c.list_documents(&q).await.unwrap().documents
}

/// Waits (bounded) until the upload is done; its list entry.
async fn wait_uploaded(c: &DaemonClient, upload_id: &str) -> DocumentSummary {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ups = c.list_uploads().await.unwrap();
        let u = ups.iter().find(|u| u.upload_id == upload_id);
        match u.map(|u| u.status) {
            Some(UploadStatus::Done) => break,
            Some(UploadStatus::Failed) => panic!("upload failed: {u:?}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "upload not done: {u:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = list(
        c,
        DocumentQuery {
            refresh: true,
            ..Default::default()
        },
    )
    .await;
    all.into_iter()
        .find(|d| d.id == upload_id)
        .expect("uploaded document listed")
}

/// Every file under `dir` (recursively) except the sandbox's own state.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("demo-backend"))
        {
            continue;
        }
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn plaintext_anywhere(dir: &Path, marker: &[u8]) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    files(dir, &mut all);
    all.into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| b.windows(marker.len()).any(|w| w == marker))
                .unwrap_or(false)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marias_documents_list_search_add_get_delete_hide_and_offline() {
    let env = TestEnv::new();
    let d = daemon(&env).await;
    let c = user_client(&env, "maria", PASSWORD).await;
    let demo = Demo::of(&c).await;
    login(&c, &demo).await;

    // The seed: the guide's three own documents, then the practice reports; newest first.
    let l = c.list_documents(&DocumentQuery::default()).await.unwrap();
    assert!(!l.offline);
    assert!(l.synced_unix.is_some());
    assert_eq!(
        titles(&l.documents),
        [
            "image001",
            "röntgenaufnahme",
            "Demo PDF",
            "Arztbrief Bronchitis",
            "Laborbefund Blutbild"
        ],
        "{}",
        d.log()
    );
    let by_title = |t: &str| l.documents.iter().find(|d| d.title == t).unwrap().clone();
    let img = by_title("image001");
    assert!(img.by_me && img.mime_type == "image/jpeg" && img.category == "patient");
    assert!(img.created_unix >= march(19) && img.created_unix < march(20));
    assert_eq!(img.accesses, 1);
    let xray = by_title("röntgenaufnahme");
    assert!(xray.by_me && xray.created_unix >= march(11) && xray.created_unix < march(12));
    assert_eq!(xray.accesses, 0);
    let pdf = by_title("Demo PDF");
    assert!(pdf.by_me && pdf.created_unix >= march(5) && pdf.created_unix < march(6));
    let letter = by_title("Arztbrief Bronchitis");
    assert!(!letter.by_me && !letter.author.is_empty());
    assert_eq!(letter.category, "reports");
    assert_eq!(letter.accesses, 2);
    assert!(l.documents.iter().all(|d| !d.cached));

    // Search (title or author), filters, sort, paging.
    let q = |f: fn(&mut DocumentQuery)| {
        let mut q = DocumentQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        titles(&list(&c, q(|q| q.query = "RÖNTGEN".into())).await),
        ["röntgenaufnahme"]
    );
    let by_author = list(&c, q(|q| q.query = "sommer".into())).await;
    assert!(
        titles(&by_author).contains(&"Arztbrief Bronchitis"),
        "{by_author:?}"
    );
    assert_eq!(
        titles(&list(&c, q(|q| q.mime_types = vec!["application/pdf".into()])).await),
        ["Demo PDF", "Arztbrief Bronchitis", "Laborbefund Blutbild"]
    );
    assert_eq!(
        titles(&list(&c, q(|q| q.categories = vec!["reports".into()])).await),
        ["Arztbrief Bronchitis", "Laborbefund Blutbild"]
    );
    assert_eq!(
        titles(
            &list(
                &c,
                q(|q| {
                    q.created_from_unix = Some(march(1));
                    q.created_to_unix = Some(march(15));
                    q.categories = vec!["patient".into()];
                })
            )
            .await
        ),
        ["röntgenaufnahme", "Demo PDF"]
    );
    assert_eq!(
        titles(
            &list(
                &c,
                q(|q| {
                    q.sort = SortColumn::Title;
                    q.descending = false;
                })
            )
            .await
        ),
        [
            "Arztbrief Bronchitis",
            "Demo PDF",
            "image001",
            "Laborbefund Blutbild",
            "röntgenaufnahme"
        ]
    );
    assert_eq!(
        list(
            &c,
            q(|q| {
                q.sort = SortColumn::Accesses;
                q.descending = true;
            })
        )
        .await[0]
            .title,
        "Arztbrief Bronchitis"
    );
    let page = c
        .list_documents(&q(|q| {
            q.created_from_unix = None;
            q.offset = 1;
            q.limit = Some(2);
        }))
        .await
        .unwrap();
    assert_eq!(page.total_matching, 5);
    assert_eq!(titles(&page.documents), ["röntgenaufnahme", "Demo PDF"]);

    // Get a seeded document: hash-verified, then cached.
    let (meta, dl) = c.get_document(&pdf.id).await.unwrap();
    assert_eq!(meta.id, pdf.id);
    let bytes = dl.collect(|_, _| {}).await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    assert_eq!(bytes.len() as u64, pdf.size);

    // Refusals.
    let e = c
        .add_document(
            &NewDocument {
                title: "x".into(),
                ..Default::default()
            },
            b"PK\x03\x04 a zip".to_vec(),
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&e), Reason::DocumentTypeUnsupported);
    let e = c
        .add_document(
            &NewDocument {
                title: "bad\u{7}".into(),
                ..Default::default()
            },
            b"text".to_vec(),
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&e), Reason::DocumentTitleInvalid);
    let e = c
        .add_document(
            &NewDocument {
                title: "groß".into(),
                ..Default::default()
            },
            vec![b'a'; 25 * 1024 * 1024 + 1],
            |_, _| {},
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&e), Reason::DocumentTooLarge);
    let e = c.delete_document(&pdf.id, false).await.unwrap_err();
    assert_eq!(reason(&e), Reason::DeleteNotConfirmed);
    let e = c.get_document("2.25.1").await.unwrap_err();
    assert_eq!(reason(&e), Reason::DocumentNotFound);

    // Add → list → get byte-equal.
    let marker = "GEHEIMER-BEFUND-7f3a9c";
    let content = format!("Blutdruck 120/80\n{marker}\n")
        .repeat(5000)
        .into_bytes();
    let added = c
        .add_document(
            &NewDocument {
                title: "Mein Blutdrucktagebuch".into(),
                comment: "selbst gemessen".into(),
                created_unix: Some(march(25)),
                file_name: "../../etc/passwd".into(),
            },
            content.clone(),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(added.detected_mime_type, "text/plain");
    assert!(added.upload_id.starts_with("2.25."));
    let mine = wait_uploaded(&c, &added.upload_id).await;
    assert!(mine.by_me && mine.mime_type == "text/plain", "{mine:?}");
    assert_eq!(mine.title, "Mein Blutdrucktagebuch");
    assert_eq!(mine.size, content.len() as u64);
    let (_, dl) = c.get_document(&mine.id).await.unwrap();
    let mut progress = Vec::new();
    let back = dl
        .collect(|n, total| progress.push((n, total)))
        .await
        .unwrap();
    assert!(back == content, "downloaded bytes differ");
    assert!(
        progress.len() > 1
            && progress.last() == Some(&(content.len() as u64, content.len() as u64))
    );
    let non_pdfa = c
        .add_document(
            &NewDocument {
                title: "Scan".into(),
                ..Default::default()
            },
            b"%PDF-1.4\n%%EOF\n".to_vec(),
            |_, _| {},
        )
        .await
        .unwrap();
    assert_eq!(non_pdfa.detected_mime_type, "application/pdf");
    assert!(
        non_pdfa.hints.iter().any(|h| h.contains("PDF/A")),
        "{non_pdfa:?}"
    );
    wait_uploaded(&c, &non_pdfa.upload_id).await;

    // Hide / unhide.
    c.hide_document(&mine.id).await.unwrap();
    let now = list(&c, q(|q| q.refresh = true)).await;
    assert!(now.iter().find(|d| d.id == mine.id).unwrap().hidden);
    c.unhide_document(&mine.id).await.unwrap();
    let now = list(&c, q(|q| q.refresh = true)).await;
    assert!(!now.iter().find(|d| d.id == mine.id).unwrap().hidden);

    // Nothing of the content in plaintext under the data directory.
    let leaks = plaintext_anywhere(&env.data_dir, marker.as_bytes());
    assert!(leaks.is_empty(), "plaintext in {leaks:?}");

    // Offline: the Aktensystem fails; the list and cached contents still come.
    demo.faults(serde_json::json!({ "errors": [{ "prefix": "/epa/xds-document" }] }))
        .await;
    let off = c.list_documents(&q(|q| q.refresh = true)).await.unwrap();
    assert!(off.offline);
    assert!(titles(&off.documents).contains(&"Mein Blutdrucktagebuch"));
    assert!(
        off.documents
            .iter()
            .find(|d| d.id == mine.id)
            .unwrap()
            .cached
    );
    let (_, dl) = c.get_document(&mine.id).await.unwrap();
    assert!(dl.collect(|_, _| {}).await.unwrap() == content);
    let e = c.get_document(&img.id).await.unwrap_err();
    assert_eq!(reason(&e), Reason::DocumentOffline);
    demo.faults(serde_json::json!({ "errors": [] })).await;
    let on = c.list_documents(&q(|q| q.refresh = true)).await.unwrap();
    assert!(!on.offline);

    // Delete: gone from the record and the cache.
    c.delete_document(&mine.id, true).await.unwrap();
    let after = list(&c, q(|q| q.refresh = true)).await;
    assert!(after.iter().all(|d| d.id != mine.id));
    let e = c.get_document(&mine.id).await.unwrap_err();
    assert_eq!(reason(&e), Reason::DocumentNotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_an_upload_leaves_exactly_one_copy() {
    let env = TestEnv::new();
    let mut d = daemon(&env).await;
    let c = user_client(&env, "maria", PASSWORD).await;
    let demo = Demo::of(&c).await;
    login(&c, &demo).await;
    list(&c, DocumentQuery::default()).await;

    // The upload hangs in the Aktensystem; the daemon dies meanwhile.
    demo.faults(serde_json::json!({
        "latency": [{ "prefix": "/epa/xds-document/api/I_Document_Management_Insurant", "ms": 1500 }]
    }))
    .await;
    let added = c
        .add_document(
            &NewDocument {
                title: "Nach dem Absturz".into(),
                ..Default::default()
            },
            b"Notiz vom Abend\n".to_vec(),
            |_, _| {},
        )
        .await
        .unwrap();
    // Let the worker start sending, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ups = c.list_uploads().await.unwrap();
        if ups
            .iter()
            .any(|u| u.upload_id == added.upload_id && u.status == UploadStatus::Uploading)
        {
            break;
        }
        assert!(Instant::now() < deadline, "upload never started: {ups:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.kill9();
    // The sandbox child saves and exits when its stdin closes.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let _d = daemon(&env).await;
    let c = user_client(&env, "maria", PASSWORD).await;
    let demo = Demo::of(&c).await;
    login(&c, &demo).await;
    let ups = c.list_uploads().await.unwrap();
    assert!(
        ups.iter().any(|u| u.upload_id == added.upload_id),
        "the queue survived: {ups:?}"
    );
    wait_uploaded(&c, &added.upload_id).await;
    let all = list(
        &c,
        DocumentQuery {
            query: "Nach dem Absturz".into(),
            refresh: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 1, "{all:?}");
}

/// Blob files (sealed values over 64 KiB) under `dir` whose size fits a sealed `len` bytes.
fn blobs_sealing(dir: &Path, len: usize) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    files(dir, &mut all);
    all.into_iter()
        .filter(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .is_some_and(|n| n == "blobs")
        })
        .filter(|p| {
            let n = std::fs::metadata(p).unwrap().len() as usize;
            n > len && n <= len + 256
        })
        .collect()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_cache_entry_is_dropped_and_fetched_again() {
    let env = TestEnv::new();
    let mut d = daemon(&env).await;
    let c = user_client(&env, "maria", PASSWORD).await;
    let demo = Demo::of(&c).await;
    login(&c, &demo).await;
    let seeded = list(&c, DocumentQuery::default()).await;
    let pdf = seeded
        .iter()
        .find(|d| d.title == "Demo PDF")
        .unwrap()
        .clone();

    // A content over 64 KiB lands in a blob file of its own; a seeded one stays inline.
    let content = "Puls 62, Blutdruck 118/76, Gewicht 71 kg\n"
        .repeat(4000)
        .into_bytes();
    assert!(content.len() > 64 * 1024);
    let added = c
        .add_document(
            &NewDocument {
                title: "Messwerte Februar".into(),
                ..Default::default()
            },
            content.clone(),
            |_, _| {},
        )
        .await
        .unwrap();
    let mine = wait_uploaded(&c, &added.upload_id).await;
    let (_, dl) = c.get_document(&mine.id).await.unwrap();
    assert!(dl.collect(|_, _| {}).await.unwrap() == content);
    let (_, dl) = c.get_document(&pdf.id).await.unwrap();
    let pdf_bytes = dl.collect(|_, _| {}).await.unwrap();
    let before = c.list_documents(&DocumentQuery::default()).await.unwrap();
    assert!(
        before
            .documents
            .iter()
            .filter(|x| x.id == mine.id || x.id == pdf.id)
            .all(|x| x.cached),
        "{before:?}"
    );

    // Stop the daemon, flip one byte of the cached content on disk.
    let status = d.terminate();
    assert!(status.success(), "{status}\n{}", d.log());
    // The sandbox child saves and exits when its stdin closes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let blobs = blobs_sealing(&env.data_dir, content.len());
    assert_eq!(
        blobs.len(),
        1,
        "one blob holds the cached content: {blobs:?}"
    );
    let mut raw = std::fs::read(&blobs[0]).unwrap();
    let mid = raw.len() / 2;
    raw[mid] ^= 0x01;
    std::fs::write(&blobs[0], &raw).unwrap();

    // Restarted and logged in again: the damaged entry is dropped and fetched again.
    let d = daemon(&env).await;
    let c = user_client(&env, "maria", PASSWORD).await;
    let demo = Demo::of(&c).await;
    login(&c, &demo).await;
    let (meta, dl) = c.get_document(&mine.id).await.unwrap_or_else(|e| {
        panic!("get after tampering: {e}\n{}", d.log());
    });
    assert_eq!(meta.id, mine.id);
    assert!(
        dl.collect(|_, _| {}).await.unwrap() == content,
        "refetched bytes differ"
    );
    assert!(
        d.log().contains("integrity check"),
        "the damage was noticed:\n{}",
        d.log()
    );

    // Nothing else is affected: the same list, the other cached content still served, and the
    // refetched content is cached again (served while the Aktensystem is unreachable).
    let after = c.list_documents(&DocumentQuery::default()).await.unwrap();
    assert_eq!(titles(&after.documents), titles(&before.documents));
    assert!(
        after
            .documents
            .iter()
            .filter(|x| x.id == mine.id || x.id == pdf.id)
            .all(|x| x.cached),
        "{after:?}"
    );
    demo.faults(serde_json::json!({ "errors": [{ "prefix": "/epa/xds-document" }] }))
        .await;
    let (_, dl) = c.get_document(&mine.id).await.unwrap();
    assert!(dl.collect(|_, _| {}).await.unwrap() == content);
    let (_, dl) = c.get_document(&pdf.id).await.unwrap();
    assert_eq!(dl.collect(|_, _| {}).await.unwrap(), pdf_bytes);
    demo.faults(serde_json::json!({ "errors": [] })).await;
    assert_eq!(blobs_sealing(&env.data_dir, content.len()).len(), 1);
    assert!(!blobs[0].exists(), "the tampered blob is gone");
}
