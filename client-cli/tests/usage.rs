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
    for word in [
        "status",
        "daemon",
        "--json",
        "--socket",
        "--no-autostart",
        "login",
        "open-url",
        "device",
        "logout",
        "state",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
}

#[test]
fn the_journey_commands_and_their_flags_exist() {
    for (args, words) in [
        (
            &["login", "--help"][..],
            &["--open", "--no-wait", "--timeout"][..],
        ),
        (&["device", "--help"], &["confirm", "list", "rename", "rm"]),
        (&["device", "confirm", "--help"], &["--code-stdin"]),
        (&["device", "rm", "--help"], &["--this-device"]),
        (&["epa", "--help"], &["insurers", "connect"]),
        (&["epa", "connect", "--help"], &["--insurer", "--kvnr"]),
        (&["state", "--help"], &["--watch"]),
    ] {
        let out = epa().args(args).output().unwrap_or_else(|e| panic!("{e}"));
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for w in words {
            assert!(text.contains(w), "{args:?} {w}: {text}");
        }
    }
    // Missing arguments and out-of-range values are usage errors.
    for args in [
        &["open-url"][..],
        &["epa", "connect", "--kvnr", "X110411675"],
        &["login", "--timeout", "0"],
        &["device", "rename", "only-id"],
    ] {
        let out = epa().args(args).output().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
