//! `epa demo`, the README's main job, end to end: its own daemon and sandbox in a directory of
//! its own, the whole guide step by step (asserted on the `--json` progress lines), the PDF it
//! leaves behind, and a second run in the same directory that reuses what the first one set up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use epa_tests::bin;
use serde_json::Value;

const STEPS: [&str; 14] = [
    "start",
    "create_user",
    "login_user",
    "accept_terms",
    "overview",
    "connect",
    "ident_login",
    "device_code",
    "relogin",
    "documents",
    "search",
    "add",
    "export_pdf",
    "logout",
];

/// Runs `epa ARGS` with `stdin`; its JSON lines (stdout must be nothing else).
fn demo(args: &[&str], stdin: &str) -> Vec<Value> {
    let mut child = Command::new(bin("epa"))
        .args(args)
        // No daemon of the user's may be reached or started by accident.
        .env("XDG_RUNTIME_DIR", "/nonexistent-epa-demo-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "epa {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// Every step once, in order, numbered, titled; then the summary.
fn check_steps(lines: &[Value]) -> &Value {
    assert_eq!(lines.len(), STEPS.len() + 1, "{lines:#?}");
    for (i, (line, id)) in lines.iter().zip(STEPS).enumerate() {
        assert_eq!(line["id"], id, "{line}");
        assert_eq!(line["step"], i + 1, "{line}");
        assert_eq!(line["of"], STEPS.len(), "{line}");
        assert_eq!(line["ok"], true, "{line}");
        assert!(!line["title"].as_str().unwrap().is_empty(), "{line}");
    }
    let last = &lines[STEPS.len()];
    assert_eq!(last["done"], true, "{last}");
    &last["summary"]
}

fn step<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    &lines.iter().find(|l| l["id"] == id).unwrap()["detail"]
}

fn titles(v: &Value) -> Vec<&str> {
    v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect()
}

#[test]
fn the_demo_walks_the_guide_and_a_second_run_reuses_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    let root_s = root.to_str().unwrap();

    // First run, with --interactive: Enter (empty lines) moves on; the end of the input lets
    // it run through.
    let lines = demo(
        &["--json", "demo", "--interactive", "--data-dir", root_s],
        "\n\n\n",
    );
    let summary = check_steps(&lines);
    assert_eq!(step(&lines, "create_user")["created"], true);
    assert_eq!(step(&lines, "connect")["kvnr"], "X110411675");
    assert_eq!(step(&lines, "connect")["insurer"], "AOK PLUS");
    // First time on this PC: the code from the mailbox activates it, then a second login.
    assert_eq!(step(&lines, "ident_login")["phase"], "DEVICE_CODE_SENT");
    assert_eq!(step(&lines, "device_code")["confirmed"], true);
    assert_eq!(step(&lines, "device_code")["phase"], "RELOGIN_REQUIRED");
    assert_eq!(step(&lines, "relogin")["phase"], "LOGGED_IN");
    // The guide's three documents are there.
    let docs = step(&lines, "documents");
    for t in ["image001", "röntgenaufnahme", "Demo PDF"] {
        assert!(titles(docs).contains(&t), "{t}: {docs}");
    }
    let searches = step(&lines, "search")["searches"].as_array().unwrap();
    assert_eq!(titles(&searches[0]), ["röntgenaufnahme"]);
    assert!(!titles(&searches[1]).is_empty());
    let added = step(&lines, "add");
    assert_eq!(added["mime_type"], "text/plain");
    assert_eq!(added["total"], docs["total"].as_u64().unwrap() + 1);
    assert_eq!(step(&lines, "logout")["phase"], "LOGGED_OUT");

    // The PDF: the cover page plus the two documents chosen.
    let pdf = Path::new(summary["pdf"].as_str().unwrap());
    assert!(pdf.starts_with(&root), "{}", pdf.display());
    let exported = step(&lines, "export_pdf");
    assert_eq!(exported["ids"].as_array().unwrap().len(), 2);
    let parsed = lopdf::Document::load(pdf).unwrap();
    assert!(
        parsed.get_pages().len() >= 3,
        "{}",
        parsed.get_pages().len()
    );
    // Its daemon is gone: nobody answers on the demo's socket any more.
    assert_eq!(summary["daemon_running"], false);
    assert!(std::os::unix::net::UnixStream::connect(summary["socket"].as_str().unwrap()).is_err());

    // Second run in the same directory: the user, the ePA connection and this PC's device are
    // kept, so the ident-app login goes straight through; the first PDF is not overwritten.
    let again = demo(
        &["--json", "--lang", "en", "demo", "--data-dir", root_s],
        "",
    );
    let summary2 = check_steps(&again);
    assert_eq!(step(&again, "create_user")["created"], false);
    assert_eq!(step(&again, "ident_login")["phase"], "LOGGED_IN");
    assert_eq!(step(&again, "device_code")["confirmed"], false);
    assert_eq!(step(&again, "documents")["total"], added["total"]);
    assert_ne!(summary2["pdf"], summary["pdf"]);
    assert!(pdf.is_file());
}

#[test]
fn the_demo_narrates_in_german_and_english() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("demo");
    for (lang, words) in [
        (
            "de",
            ["Schritt 1/14", "Neuen lokalen Benutzer anlegen", "Fertig."],
        ),
        ("en", ["Step 1/14", "Create a local user", "Done."]),
    ] {
        let out = Command::new(bin("epa"))
            .args(["--lang", lang, "demo", "--data-dir"])
            .arg(&root)
            .env("XDG_RUNTIME_DIR", "/nonexistent-epa-demo-test")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for w in words {
            assert!(text.contains(w), "{lang}: {w} missing in\n{text}");
        }
    }
}
