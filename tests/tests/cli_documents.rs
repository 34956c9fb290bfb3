//! Documents through the real `epa` binary against the real daemon and its demo sandbox: the
//! seeded table, search and filters, add → list → get byte-equal, a hostile title never leaves
//! the chosen directory, no overwriting without --force, delete needs a confirmation, export-pdf.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use epa_tests::{TestDaemon, TestEnv, cli_logged_in, cli_ok_json, json, run_epa_stdin};
use serde_json::Value;

const PASSWORD: &str = "Kastanienbaum im Mai";
const MARIA: &str = "X110411675";

fn show(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn docs(v: &Value) -> Vec<Value> {
    v["documents"].as_array().cloned().unwrap_or_default()
}

/// `epa --json ARGS` that must fail with `exit` and `code`.
fn fails(env: &TestEnv, args: &[&str], exit: i32, code: &str) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_epa_stdin(env, &all, "");
    assert_eq!(
        out.status.code(),
        Some(exit),
        "epa {args:?}: {}",
        show(&out)
    );
    assert_eq!(json(&out)["error"]["code"], code, "{}", show(&out));
}

/// Pages a document takes in an export: a PDF its own pages, an image one page, plain text
/// 54 lines a page (A4, 20 mm margins, 13 pt leading under the page header).
fn expected_pages(mime_type: &str, bytes: &[u8]) -> usize {
    match mime_type {
        "application/pdf" => lopdf::Document::load_mem(bytes).unwrap().get_pages().len(),
        "text/plain" => String::from_utf8_lossy(bytes)
            .lines()
            .count()
            .div_ceil(54)
            .max(1),
        _ => 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_through_the_cli() {
    let env = TestEnv::new();
    let d = TestDaemon::start(&env).await;
    cli_logged_in(&env, &d, "Maria", PASSWORD, "AOK PLUS", MARIA).await;

    // The seeded table, newest first, as a person sees it.
    let list = cli_ok_json(&env, &["docs", "ls", "--refresh"]);
    let seeded = docs(&list);
    assert!(!seeded.is_empty(), "{list}\n{}", d.log());
    let created: Vec<u64> = seeded
        .iter()
        .map(|d| d["created_unix"].as_u64().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    let out = env.run_epa(&["docs", "ls"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("Erstelldatum ▼") && text.contains("Titel"),
        "{text}"
    );
    let out = env.run_epa(&["--lang", "en", "docs", "ls", "--sort", "title"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Title ▲"),
        "{}",
        show(&out)
    );

    // Search and filter.
    let first_title = seeded[0]["title"].as_str().unwrap().to_owned();
    let word = first_title
        .split_whitespace()
        .next()
        .unwrap()
        .to_lowercase();
    let found = cli_ok_json(&env, &["docs", "ls", "--search", &word]);
    assert!(
        docs(&found)
            .iter()
            .any(|d| d["title"] == first_title.as_str()),
        "{found}"
    );
    let none = cli_ok_json(
        &env,
        &["docs", "ls", "--search", "gibt-es-sicher-nicht-4711"],
    );
    assert!(docs(&none).is_empty(), "{none}");
    let pdfs = cli_ok_json(&env, &["docs", "ls", "--type", "pdf"]);
    assert!(
        docs(&pdfs)
            .iter()
            .all(|d| d["mime_type"] == "application/pdf"),
        "{pdfs}"
    );
    let out = env.run_epa(&["docs", "ls", "--from", "gestern"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));

    // Add a text document whose title tries to escape, then get it back byte-equal.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notiz.txt");
    let content = "Blutdruck 120/80 — Grüße, Maria\n".repeat(50);
    std::fs::write(&file, &content).unwrap();
    let added = cli_ok_json(
        &env,
        &[
            "docs",
            "add",
            file.to_str().unwrap(),
            "--title",
            "../../Notiz Blutdruck",
            "--date",
            "2024-03-01",
        ],
    );
    let id = added["upload_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = cli_ok_json(
            &env,
            &["docs", "ls", "--search", "Notiz Blutdruck", "--refresh"],
        );
        if docs(&l).iter().any(|d| d["id"] == id.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upload never showed: {l}\n{}",
            cli_ok_json(&env, &["docs", "uploads"])
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let target = tempfile::tempdir().unwrap();
    let out = env
        .epa()
        .args(["--json", "docs", "get", &id])
        .current_dir(target.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let saved: Vec<_> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0].file_name().unwrap(), "Notiz Blutdruck.txt");
    assert_eq!(std::fs::read_to_string(&saved[0]).unwrap(), content);
    assert!(
        !dir.path()
            .parent()
            .unwrap()
            .join("Notiz Blutdruck.txt")
            .exists()
    );
    // No overwriting without --force.
    let o = target.path().join("x.txt");
    cli_ok_json(&env, &["docs", "get", &id, "-o", o.to_str().unwrap()]);
    fails(
        &env,
        &["docs", "get", &id, "-o", o.to_str().unwrap()],
        2,
        "FILE_EXISTS",
    );
    cli_ok_json(
        &env,
        &["docs", "get", &id, "-o", o.to_str().unwrap(), "--force"],
    );

    // One PDF of a seeded document and the new one.
    let pdf = target.path().join("export.pdf");
    let seeded_id = seeded[0]["id"].as_str().unwrap();
    cli_ok_json(
        &env,
        &[
            "docs",
            "export-pdf",
            seeded_id,
            &id,
            "-o",
            pdf.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    // Cover + the pages of each document, and both titles on the cover.
    let seeded_file = target.path().join("seeded.bin");
    cli_ok_json(
        &env,
        &[
            "docs",
            "get",
            seeded_id,
            "-o",
            seeded_file.to_str().unwrap(),
        ],
    );
    let seeded_pages = expected_pages(
        seeded[0]["mime_type"].as_str().unwrap(),
        &std::fs::read(&seeded_file).unwrap(),
    );
    let text_pages = expected_pages("text/plain", content.as_bytes());
    let exported = lopdf::Document::load_mem(&bytes).unwrap();
    assert_eq!(
        exported.get_pages().len(),
        1 + seeded_pages + text_pages,
        "cover + {seeded_pages} + {text_pages} pages"
    );
    let cover = exported.extract_text(&[1]).unwrap();
    let seeded_title = seeded[0]["title"].as_str().unwrap();
    assert!(
        cover.contains(seeded_title) && cover.contains("Notiz Blutdruck"),
        "titles not on the cover: {cover}"
    );
    fails(
        &env,
        &["docs", "export-pdf", &id, "-o", pdf.to_str().unwrap()],
        2,
        "FILE_EXISTS",
    );

    // Hide and unhide; delete needs a confirmation (no terminal here: refused, exit 2).
    cli_ok_json(&env, &["docs", "hide", &id]);
    cli_ok_json(&env, &["docs", "unhide", &id]);
    fails(&env, &["docs", "rm", &id], 2, "NO_TERMINAL");
    cli_ok_json(&env, &["docs", "rm", &id, "--yes"]);
    let l = cli_ok_json(&env, &["docs", "ls"]);
    assert!(docs(&l).iter().all(|d| d["id"] != id.as_str()), "{l}");
    fails(&env, &["docs", "get", "2.25.4711"], 1, "DOCUMENT_NOT_FOUND");
    cli_ok_json(&env, &["docs", "uploads"]);
}
