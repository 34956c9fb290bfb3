//! The ePA login journey through the real `epa` binary against the real daemon and its demo
//! sandbox: connect, log in with the ident app (the phone played by the sandbox's ident-app
//! API), the deep link, the e-mailed device code (read from the sandbox's mail API), the
//! re-login, devices, logout — and the failure paths a person sees in the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use epa_tests::{
    TestDaemon, TestEnv, cli_approve, cli_environment, cli_insurant, cli_mailed_code, cli_ok_json,
    json, keys, run_epa_stdin,
};
use serde_json::Value;

const PASSWORD: &str = "Kastanienbaum im Mai";
const MARIA: &str = "X110411675";
const OLGA_NO_RECORD: &str = "E082462818";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// `epa --json ARGS`, which must fail with `exit` and `code`; the error object.
fn err_json(env: &TestEnv, args: &[&str], stdin: &str, exit: i32, code: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_epa_stdin(env, &all, stdin);
    assert_eq!(
        out.status.code(),
        Some(exit),
        "epa {args:?}: {}",
        show(&out)
    );
    let v = json(&out);
    assert_eq!(v["error"]["code"], code, "{v}");
    assert_eq!(v["error"]["exit_code"], exit, "{v}");
    v["error"].clone()
}

/// NDJSON: one object per line.
fn lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A local user, logged in, terms accepted (the CLI's own commands).
fn local_user(env: &TestEnv, name: &str) {
    let out = run_epa_stdin(
        env,
        &["user", "create", name, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = run_epa_stdin(
        env,
        &["user", "login", name, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", show(&out));
    cli_ok_json(env, &["user", "terms", "--accept"]);
}

/// A code that is certainly not `code`.
fn wrong(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

/// `epa --json state --watch` in the background, collecting its lines.
struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    fn start(env: &TestEnv) -> Self {
        let mut child = env
            .epa()
            .args(["--json", "state", "--watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Self { child, lines }
    }

    fn phases(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                v["phase"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// Waits until the last line shows `phase`.
    fn wait_for(&self, phase: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.phases();
            if p.last().map(String::as_str) == Some(phase) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "watch never showed {phase}: {p:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) for a background `epa` and returns its output.
fn finish(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("epa (pid {pid}) did not finish within {limit:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_journey_through_the_cli() {
    let env = TestEnv::new();
    let d = TestDaemon::start(&env).await;
    let info = cli_environment(&env, &d);
    assert_eq!(info["kind"], "demo");
    // `environment_info` is added to the pinned fields of `daemon`.
    let v = cli_ok_json(&env, &["status"]);
    assert_eq!(keys(&v), ["client", "daemon", "socket"]);
    assert_eq!(
        keys(&v["daemon"]),
        [
            "daemon_version",
            "environment",
            "environment_info",
            "pid",
            "protocol_version",
            "uptime_ms"
        ]
    );
    assert!(
        info["mail_api"].is_string() && info["ca_cert"].is_string(),
        "{info}"
    );
    assert_eq!(cli_insurant(&info, MARIA)["insurer"], "AOK PLUS");
    // The person trying the demo sees the test persons in `epa status`.
    let out = env.run_epa(&["status"]);
    assert!(
        stdout(&out).contains(MARIA) && stdout(&out).contains("Testpersonen"),
        "{}",
        show(&out)
    );

    local_user(&env, "Maria");
    assert_eq!(cli_ok_json(&env, &["state"])["phase"], "NO_PROFILE");
    let insurers = cli_ok_json(&env, &["epa", "insurers"]);
    assert!(
        insurers["insurers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "AOK PLUS" && i["available"] == true),
        "{insurers}"
    );

    let s = cli_ok_json(
        &env,
        &["epa", "connect", "--insurer", "AOK PLUS", "--kvnr", MARIA],
    );
    assert_eq!(s["phase"], "LOGGED_OUT", "{s}");
    assert_eq!(s["profile"]["kvnr"], MARIA);
    let watch = Watcher::start(&env);
    watch.wait_for("LOGGED_OUT");

    // Log in: one NDJSON line with the QR code and the URL.
    let out = env.run_epa(&["--json", "login", "--no-wait"]);
    assert!(out.status.success(), "{}", show(&out));
    let l = lines(&out);
    assert_eq!(l.len(), 1, "{}", stdout(&out));
    let s = &l[0];
    assert_eq!(s["phase"], "AWAITING_IDENT_APP", "{s}");
    let url = s["login"]["authorization_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://"), "{url}");
    assert!(!s["login"]["qr_text"].as_str().unwrap().is_empty());
    assert!(s["login"].get("qr_png").is_none(), "{s}");

    // The phone approves; the OS hands the deep link to `epa open-url`.
    let redirect = cli_approve(&info, &url, MARIA).await;
    assert!(
        redirect.starts_with("epa-desktop://auth/callback?"),
        "{redirect}"
    );
    let out = env.run_epa(&["--json", "open-url", &redirect]);
    assert!(out.status.success(), "{}", show(&out));
    let code_part = redirect
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        !stdout(&out).contains(code_part) && !stderr(&out).contains(code_part),
        "the one-time code was printed"
    );
    let s = json(&out);
    assert_eq!(s["phase"], "DEVICE_CODE_SENT", "{s}");
    let tries = s["device"]["tries_left"].as_u64().unwrap();
    assert!(tries > 1, "{s}");
    // Addresses are named only when the daemon can read them (not in a device-only session);
    // named ones are masked.
    let masked = s["device"]["masked_addresses"].as_array().unwrap();
    assert!(
        masked.iter().all(|a| a.as_str().unwrap().contains('*')),
        "{s}"
    );
    let out = env.run_epa(&["state"]);
    assert!(
        stdout(&out).contains("Code aus der E-Mail eingeben: `epa device confirm`"),
        "{}",
        show(&out)
    );

    // The code from the mailbox; first a malformed and a wrong one.
    let code = cli_mailed_code(&info, MARIA, None).await;
    let e = err_json(
        &env,
        &["device", "confirm", "--code-stdin"],
        "12ab\n",
        1,
        "DEVICE_CODE_MALFORMED",
    );
    assert!(
        e["message"].as_str().unwrap().contains("sechs Ziffern"),
        "{e}"
    );
    assert_eq!(cli_ok_json(&env, &["state"])["device"]["tries_left"], tries);
    let e = err_json(
        &env,
        &["device", "confirm", "--code-stdin"],
        &format!("{}\n", wrong(&code)),
        1,
        "DEVICE_CODE_WRONG",
    );
    let left = format!("Noch {} Versuch(e)", tries - 1);
    assert!(e["hint"].as_str().unwrap().contains(&left), "{e}");
    let out = run_epa_stdin(
        &env,
        &["--lang", "en", "device", "confirm", "--code-stdin"],
        &format!("{}\n", wrong(&code)),
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("The confirmation code is wrong")
            && stderr(&out).contains(&format!("{} attempt(s) left", tries - 2)),
        "{}",
        show(&out)
    );

    // The right code, and the re-login led by the daemon, waited for by `epa login`.
    let out = run_epa_stdin(
        &env,
        &["--json", "device", "confirm", "--code-stdin"],
        &format!("{code}\n"),
    );
    assert!(out.status.success(), "{}", show(&out));
    let s = json(&out);
    if s["phase"] == "LOGGED_IN" {
        assert_eq!(s["relogin_skipped"], true, "{s}");
    } else {
        assert_eq!(s["phase"], "RELOGIN_REQUIRED", "{s}");
        let relogin_url = s["login"]["authorization_url"].as_str().unwrap().to_owned();
        let login = env
            .epa()
            .args(["--json", "login", "--timeout", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let redirect = cli_approve(&info, &relogin_url, MARIA).await;
        let out = if s["login"]["completes_without_browser"] == true {
            // The daemon notices the approval by itself; the browser's link comes too late and
            // is no failure.
            let out = finish(login, Duration::from_secs(60));
            let late = env.run_epa(&["--json", "open-url", &redirect]);
            assert!(late.status.success(), "{}", show(&late));
            assert_eq!(json(&late)["phase"], "LOGGED_IN");
            assert!(
                stderr(&late).contains("bereits abgeschlossen"),
                "{}",
                show(&late)
            );
            out
        } else {
            let s = cli_ok_json(&env, &["open-url", &redirect]);
            assert_eq!(s["phase"], "LOGGED_IN", "{s}");
            finish(login, Duration::from_secs(60))
        };
        assert!(out.status.success(), "{}", show(&out));
        let l = lines(&out);
        // It showed the pending re-login (the same URL, not a new login) and then the result.
        assert_eq!(
            l[0]["login"]["authorization_url"],
            relogin_url.as_str(),
            "{l:?}"
        );
        assert_eq!(l.last().unwrap()["phase"], "LOGGED_IN", "{l:?}");
    }
    let s = cli_ok_json(&env, &["state"]);
    assert_eq!(s["phase"], "LOGGED_IN", "{s}");
    // The name only where the Aktensystem reports it (3.0.1 does not).
    assert!(
        s["display_name"].is_null() || s["display_name"].is_string(),
        "{s}"
    );
    let out = env.run_epa(&["state"]);
    assert!(
        stdout(&out).contains("Bei der ePA angemeldet"),
        "{}",
        show(&out)
    );
    let out = env.run_epa(&["--lang", "en", "state"]);
    assert!(
        stdout(&out).contains("Logged in to the ePA"),
        "{}",
        show(&out)
    );
    // `epa login` when logged in: says so, starts nothing.
    let l = lines(&env.run_epa(&["--json", "login", "--no-wait"]));
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["phase"], "LOGGED_IN");

    // This PC is among the devices, confirmed.
    let devices = cli_ok_json(&env, &["device", "list"]);
    let this: Vec<&Value> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["this_device"] == true)
        .collect();
    assert_eq!(this.len(), 1, "{devices}");
    assert_eq!(this[0]["status"], "confirmed", "{devices}");
    let id = this[0]["identifier"].as_str().unwrap().to_owned();
    let renamed = cli_ok_json(&env, &["device", "rename", &id, "Küchen-PC"]);
    assert_eq!(renamed["display_name"], "Küchen-PC", "{renamed}");
    // Removing this PC needs the explicit flag.
    let e = err_json(
        &env,
        &["device", "rm", &id],
        "",
        2,
        "THIS_DEVICE_CONFIRMATION_REQUIRED",
    );
    assert!(e["hint"].as_str().unwrap().contains("--this-device"), "{e}");

    // The watcher followed every step, one JSON object per line.
    let phases = watch.wait_for("LOGGED_IN");
    let pos = |p: &str| phases.iter().position(|x| x == p);
    assert!(
        pos("AWAITING_IDENT_APP") < pos("DEVICE_CODE_SENT")
            && pos("DEVICE_CODE_SENT") < pos("LOGGED_IN")
            && pos("AWAITING_IDENT_APP").is_some(),
        "{phases:?}"
    );

    // Logout ends the ePA session only; a second logout is fine.
    let s = cli_ok_json(&env, &["logout"]);
    assert_eq!(s["phase"], "LOGGED_OUT", "{s}");
    assert_eq!(cli_ok_json(&env, &["logout"])["phase"], "LOGGED_OUT");
    watch.wait_for("LOGGED_OUT");
    let users = cli_ok_json(&env, &["user", "list"]);
    assert_eq!(users["users"][0]["unlocked"], true, "{users}");
    let e = err_json(&env, &["device", "list"], "", 4, "EPA_NOT_LOGGED_IN");
    assert!(e["hint"].as_str().unwrap().contains("epa login"), "{e}");
    drop(watch);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_gets_the_german_hint_and_english_on_request() {
    let env = TestEnv::new();
    let d = TestDaemon::start(&env).await;
    let info = cli_environment(&env, &d);
    let olga = cli_insurant(&info, OLGA_NO_RECORD);
    assert_eq!(olga["has_record"], false);
    let insurer = olga["insurer"].as_str().unwrap().to_owned();
    local_user(&env, "Olga");

    // The record is looked up when connecting or at the latest when logging in.
    let connect = [
        "epa",
        "connect",
        "--insurer",
        insurer.as_str(),
        "--kvnr",
        OLGA_NO_RECORD,
    ];
    let out = env.run_epa(&connect);
    let failing: Vec<&str> = if out.status.success() {
        vec!["login", "--no-wait"]
    } else {
        connect.to_vec()
    };
    let e = err_json(&env, &failing, "", 1, "NO_RECORD");
    assert!(
        e["hint"]
            .as_str()
            .unwrap()
            .contains("Noch keine ePA vorhanden?"),
        "{e}"
    );
    let out = env.run_epa(&failing);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        stderr(&out).contains("Fehler: Für diese Versichertennummer gibt es noch keine ePA.")
            && stderr(&out).contains("Hinweis: Noch keine ePA vorhanden?"),
        "{}",
        show(&out)
    );
    let mut en = vec!["--lang", "en"];
    en.extend(&failing);
    let out = env.run_epa(&en);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Hint: No ePA yet?"), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_exit_code_2() {
    // Checked before any daemon is asked: no daemon here, and still exit code 2, not 3.
    let env = TestEnv::new();
    let offline = |args: &[&str]| {
        let mut all = vec!["--no-autostart", "--json"];
        all.extend_from_slice(args);
        env.run_epa(&all)
    };
    let secret = "S3CR3TONETIMECODE";
    for url in [
        format!("https://evil.example/auth/callback?code={secret}&state=abc"),
        format!("epa-desktop://auth/callback?code={secret}&state=abc&next=https://evil.example"),
        format!("epa-desktop://settings/callback?code={secret}&state=abc"),
        format!("epa-desktop://auth/callback?code={secret}"),
    ] {
        let out = offline(&["open-url", &url]);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", show(&out));
        let v = json(&out);
        assert_eq!(v["error"]["code"], "CALLBACK_INVALID", "{v}");
        assert_eq!(v["error"]["exit_code"], 2);
        assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    }
    let out = env.run_epa(&[
        "--no-autostart",
        "open-url",
        "epa-desktop://auth/callback?code=x&state=y&foo=1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("kein Anmelde-Link von epa-desktop")
            && stderr(&out).contains("„foo“"),
        "{}",
        show(&out)
    );
    let out = env.run_epa(&[
        "--no-autostart",
        "--lang",
        "en",
        "open-url",
        "https://example.org/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not an epa-desktop login link"),
        "{}",
        show(&out)
    );
    let out = offline(&["epa", "connect", "--insurer", "AOK PLUS", "--kvnr", "12345"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(json(&out)["error"]["code"], "KVNR_INVALID");

    // With a daemon: a well-formed link that belongs to no login in progress, a KVNR with a
    // wrong check digit, an unknown insurer.
    let d = TestDaemon::start(&env).await;
    let _info = cli_environment(&env, &d);
    local_user(&env, "Maria");
    cli_ok_json(
        &env,
        &["epa", "connect", "--insurer", "AOK PLUS", "--kvnr", MARIA],
    );
    let before = lines(&env.run_epa(&["--json", "login", "--no-wait"]));
    let forged = format!("epa-desktop://auth/callback?code={secret}&state=forgedstate123");
    let out = env.run_epa(&["--json", "open-url", &forged]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(json(&out)["error"]["code"], "CALLBACK_INVALID");
    assert!(!stdout(&out).contains(secret) && !stderr(&out).contains(secret));
    // The login in progress is untouched.
    let after = cli_ok_json(&env, &["state"]);
    assert_eq!(after["phase"], "AWAITING_IDENT_APP", "{after}");
    assert_eq!(
        after["login"]["authorization_url"],
        before[0]["login"]["authorization_url"]
    );
    // Waiting in vain: the pending login is shown again (not replaced), then the timeout —
    // still NDJSON, one object per line, the error last.
    let out = env.run_epa(&["--json", "login", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{}", stdout(&out));
    assert_eq!(
        l[0]["login"]["authorization_url"],
        before[0]["login"]["authorization_url"]
    );
    assert_eq!(
        l[1]["error"]["code"],
        "LOGIN_WAIT_TIMEOUT",
        "{}",
        stdout(&out)
    );
    err_json(
        &env,
        &[
            "epa",
            "connect",
            "--insurer",
            "AOK PLUS",
            "--kvnr",
            "X110411676",
        ],
        "",
        2,
        "KVNR_INVALID",
    );
    let e = err_json(
        &env,
        &[
            "epa",
            "connect",
            "--insurer",
            "Keine Kasse",
            "--kvnr",
            MARIA,
        ],
        "",
        2,
        "INSURER_UNKNOWN",
    );
    assert!(
        e["message"].as_str().unwrap().contains("Keine Kasse"),
        "{e}"
    );
    // Not a terminal and no --code-stdin: a usage error, nothing sent.
    err_json(&env, &["device", "confirm"], "", 2, "NO_TERMINAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epa_commands_need_the_local_login() {
    let env = TestEnv::new();
    let _d = TestDaemon::start(&env).await;
    for args in [
        vec!["state"],
        vec!["login", "--no-wait"],
        vec!["device", "list"],
        vec!["logout"],
        vec!["epa", "insurers"],
    ] {
        let e = err_json(&env, &args, "", 4, "LOCKED");
        assert!(
            e["hint"].as_str().unwrap().contains("epa user login"),
            "{e}"
        );
    }
}
