//! `epad`'s command line. (Having an integration test also makes `cargo test` build `epad`,
//! which the end-to-end suites in tests/ run.)

use std::process::Command;

fn epad() -> Command {
    Command::new(env!("CARGO_BIN_EXE_epad"))
}

#[test]
fn usage_errors_exit_2_and_help_names_the_options() {
    let out = epad()
        .arg("--no-such-flag")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let help = epad()
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&help.stdout);
    for opt in ["--socket", "--data-dir", "--log-level"] {
        assert!(text.contains(opt), "{text}");
    }
}

#[test]
fn an_invalid_log_filter_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = epad()
        .args(["--log-level", "=[bad"])
        .arg("--socket")
        .arg(tmp.path().join("r/epad.sock"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-level"));
}
