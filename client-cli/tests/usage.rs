//! `epa`'s command line. (Having an integration test also makes `cargo test` build `epa`,
//! which the end-to-end suites in tests/ run.)

use std::process::Command;

fn epa() -> Command {
    Command::new(env!("CARGO_BIN_EXE_epa"))
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--no-such-flag"][..],
        &["daemon"],
        &["daemon", "restart-all"],
        &[],
    ] {
        let out = epa().args(args).output().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn help_lists_the_commands_and_global_flags() {
    let out = epa()
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["status", "daemon", "--json", "--socket", "--no-autostart"] {
        assert!(text.contains(word), "{word}: {text}");
    }
}
