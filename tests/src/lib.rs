//! Test harness: real `epad` processes on private temp directories, the real `epa` CLI, real
//! sockets. Test support fails loudly (panics with context), hence the lint exception.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use epa_ipc::{ClientError, DaemonClient, Endpoint};

/// Where the workspace's binaries are: `EPA_BIN_DIR`, else the target dir this test runs from
/// (`target/<profile>/deps/<test>` → `target/<profile>`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("EPA_BIN_DIR") {
        return d.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("test exe has a parent");
    if dir.ends_with("deps") {
        dir.parent().expect("deps has a parent").to_owned()
    } else {
        dir.to_owned()
    }
}

/// A workspace binary; run `cargo test --workspace` (which builds them) or set `EPA_BIN_DIR`.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run the tests with `cargo test --workspace` (it builds every binary) \
         or `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// A private playground: `<tmp>/run/epad.sock` and `<tmp>/data`.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    pub endpoint: Endpoint,
    pub data_dir: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("epa-t")
            .tempdir()
            .expect("tempdir");
        let endpoint = Endpoint::at(root.path().join("run").join("epad.sock"));
        let data_dir = root.path().join("data");
        Self {
            root,
            endpoint,
            data_dir,
        }
    }

    pub fn socket(&self) -> &Path {
        self.endpoint.path()
    }

    pub fn run_dir(&self) -> &Path {
        self.endpoint.dir()
    }

    /// An `epa` command aimed at this environment (arguments appended by the caller).
    pub fn epa(&self) -> Command {
        let mut cmd = Command::new(bin("epa"));
        cmd.arg("--socket")
            .arg(self.socket())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `epa ARGS` and returns its output.
    pub fn run_epa(&self, args: &[&str]) -> Output {
        self.epa().args(args).output().expect("run epa")
    }

    /// A raw `epad` command for this environment.
    pub fn epad(&self) -> Command {
        let mut cmd = Command::new(bin("epad"));
        cmd.arg("--socket")
            .arg(self.socket())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--log-level")
            .arg("info,epa_daemon=debug,epa_ipc=debug")
            .stdin(Stdio::null());
        cmd
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `epad`, killed on drop.
pub struct TestDaemon {
    child: Child,
    log: PathBuf,
}

impl TestDaemon {
    /// Starts `epad` (with the cheap test KDF) and returns once `GetInfo` answers.
    pub async fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &["--insecure-test-kdf"]).await
    }

    /// Starts `epad` without its demo backend (the sandbox binary is pointed nowhere, so the
    /// daemon reports that as its environment's problem): for suites that never reach the ePA
    /// and start many daemons, where a sandbox per start only costs time.
    pub async fn start_without_backend(env: &TestEnv) -> Self {
        let nowhere = env.root.path().join("no-epa-sandbox");
        Self::start_with(
            env,
            &[
                "--insecure-test-kdf",
                "--sandbox-bin",
                nowhere.to_str().expect("utf-8 temp path"),
            ],
        )
        .await
    }

    /// Starts `epad` with extra arguments.
    pub async fn start_with(env: &TestEnv, args: &[&str]) -> Self {
        let log = env.root.path().join(format!("epad-{}.log", unique()));
        let child = env
            .epad()
            .args(args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn epad");
        let mut d = Self { child, log };
        d.wait_ready(&env.endpoint).await;
        d
    }

    async fn wait_ready(&mut self, endpoint: &Endpoint) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match DaemonClient::connect(endpoint).await {
                Ok(_) => return,
                Err(ClientError::NotRunning { .. }) => {}
                Err(e) => panic!("epad answered badly: {e}\n{}", self.log()),
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("epad exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "epad did not answer:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no cleanup of any kind happens.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then waits (bounded) for the exit.
    #[cfg(unix)]
    pub fn terminate(&mut self) -> ExitStatus {
        use rustix::process::{Pid, Signal, kill_process};
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("pid")).expect("pid > 0");
        kill_process(pid, Signal::TERM).expect("SIGTERM");
        self.wait_exit(Duration::from_secs(10))
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "epad did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A password for the typed client.
pub fn pw(s: &str) -> epa_ipc::Password {
    epa_ipc::Password::new(s.to_owned())
}

/// Runs `epa ARGS` with `stdin` piped in.
pub fn run_epa_stdin(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = env
        .epa()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn epa");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("epa output")
}

/// Parses stdout of a `--json` command.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout={} stderr={}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The sorted keys of a JSON object.
pub fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Creates (if needed) and unlocks `name` with `password`; a client acting for that user.
pub async fn user_client(env: &TestEnv, name: &str, password: &str) -> DaemonClient {
    let c = DaemonClient::connect(&env.endpoint).await.expect("connect");
    let exists = c
        .list_users()
        .await
        .expect("list users")
        .users
        .iter()
        .any(|u| u.username == name);
    if !exists {
        c.create_user(name, &pw(password))
            .await
            .expect("create user");
    }
    let (token, _) = c.unlock(name, &pw(password)).await.expect("unlock");
    c.with_session(token)
}

/// The demo backend of a running daemon, as `GetInfo` describes it: tests play the phone with
/// the ident app, read the confirmation code from the mail API and steer clock and faults.
pub struct Demo {
    http: reqwest::Client,
    pub ident_app: String,
    pub mail_api: String,
    pub control_api: String,
}

/// The seed's Maria: ACTIVATED record at AOK PLUS.
pub const MARIA: (&str, &str, &str, &str) = (
    "X110411675",
    "AOK PLUS",
    "428193",
    "maria.muster@example.invalid",
);

impl Demo {
    /// Waits (bounded) until the daemon's demo backend is up.
    pub async fn of(client: &DaemonClient) -> Self {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = client.get_info().await.expect("GetInfo");
            let env = info.environment_info.expect("environment_info");
            assert!(
                env.problem.is_none(),
                "demo backend failed: {:?}",
                env.problem
            );
            if let (Some(ident_app), Some(mail_api), Some(control_api), Some(ca)) =
                (env.ident_app, env.mail_api, env.control_api, env.ca_cert)
            {
                let pem = fs::read(&ca).expect("demo CA");
                let http = epa_daemon::backend::tls::http_client(&pem).expect("http client");
                return Self {
                    http,
                    ident_app,
                    mail_api,
                    control_api,
                };
            }
            assert!(
                Instant::now() < deadline,
                "the demo backend did not come up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let r = req.send().await.expect("request to the sandbox");
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    async fn post_json(&self, url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(
            self.http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Plays the phone: the ident app approves the login; returns the deep link.
    pub async fn approve(&self, authorization_url: &str, kvnr: &str, code: &str) -> String {
        let (status, body) = self
            .post_json(
                &format!("{}/approve", self.ident_app),
                serde_json::json!({
                    "authorization_url": authorization_url,
                    "kvnr": kvnr,
                    "gesundheitsid_code": code,
                }),
            )
            .await;
        assert_eq!(status, 200, "ident app: {body}");
        body["redirect_uri"]
            .as_str()
            .expect("redirect_uri")
            .to_owned()
    }

    /// The mails to `to`, newest first.
    pub async fn mails(&self, to: &str) -> Vec<serde_json::Value> {
        let (status, body) = self
            .send(
                // (Test addresses need no escaping.)
                self.http.get(format!("{}/messages?to={to}", self.mail_api)),
            )
            .await;
        assert_eq!(status, 200, "mail api: {body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// The newest confirmation code mailed to `to`.
    pub async fn confirmation_code(&self, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for m in self.mails(to).await {
                let text = m["text"].as_str().unwrap_or_default();
                if let Some(code) = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Bestätigungscode:"))
                {
                    return code.trim().to_owned();
                }
            }
            assert!(Instant::now() < deadline, "no confirmation mail to {to}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn advance_clock(&self, seconds: u64) {
        let (s, b) = self
            .post_json(
                &format!("{}/clock/advance", self.control_api),
                serde_json::json!({ "seconds": seconds }),
            )
            .await;
        assert!(s < 300, "clock/advance: {s} {b}");
    }

    /// `PATCH {control_api}/faults` with the members given.
    pub async fn faults(&self, patch: serde_json::Value) {
        let (s, b) = self
            .send(
                self.http
                    .patch(format!("{}/faults", self.control_api))
                    .header("content-type", "application/json")
                    .body(patch.to_string()),
            )
            .await;
        assert!(s < 300, "faults: {s} {b}");
    }

    /// Ends every user session at the Aktensysteme.
    pub async fn drop_sessions(&self) {
        let (s, b) = self
            .post_json(
                &format!("{}/sessions/drop", self.control_api),
                serde_json::json!({}),
            )
            .await;
        assert!(s < 300, "sessions/drop: {s} {b}");
    }
}

/// `state` of an authorization URL (to forge callbacks in tests).
pub fn url_state(url: &str) -> String {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("state="))
        .expect("state in the authorization URL")
        .to_owned()
}

/// An in-process sandbox for suites that run the backend themselves (random keys, temp state).
pub async fn start_sandbox() -> epa_sandbox::server::Sandbox {
    epa_sandbox::server::Sandbox::start(epa_sandbox::server::Options {
        state_dir: None,
        seed: epa_sandbox::seed::Seed::default_seed().expect("shipped seed"),
        bind: std::net::IpAddr::from([127, 0, 0, 1]),
        rng_seed: None,
    })
    .await
    .expect("sandbox start")
}

// ---- the ePA login through the real `epa` CLI (shared by the CLI suites) ----

/// `epa --json ARGS`, which must succeed; its JSON.
pub fn cli_ok_json(env: &TestEnv, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = env.run_epa(&all);
    assert!(
        out.status.success(),
        "epa {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

/// The demo environment's info from `epa --json status` (waits for the sandbox).
pub fn cli_environment(env: &TestEnv, d: &TestDaemon) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = cli_ok_json(env, &["status"]);
        let info = &v["daemon"]["environment_info"];
        if let Some(p) = info["problem"].as_str() {
            panic!("the demo environment did not start: {p}\n{}", d.log());
        }
        if info["ident_app"].is_string() {
            return info.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no environment_info: {v}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A demo insurant of the environment info, by KVNR.
pub fn cli_insurant<'a>(info: &'a serde_json::Value, kvnr: &str) -> &'a serde_json::Value {
    info["demo_insurants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kvnr"] == kvnr)
        .unwrap_or_else(|| panic!("{kvnr} is no demo insurant: {info}"))
}

/// One HTTPS request to a sandbox API, trusting the sandbox CA of `info`.
pub async fn cli_sandbox_https(
    info: &serde_json::Value,
    url: &str,
    request: epa_protocol::http::Request,
) -> epa_protocol::http::Response {
    let ca = fs::read_to_string(info["ca_cert"].as_str().unwrap()).unwrap();
    epa_sandbox::control::https_request(url, request, &ca)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Plays the phone: approves `authorization_url` for `kvnr`; the deep link.
pub async fn cli_approve(info: &serde_json::Value, authorization_url: &str, kvnr: &str) -> String {
    let person = cli_insurant(info, kvnr);
    let body = serde_json::json!({
        "authorization_url": authorization_url,
        "kvnr": kvnr,
        "gesundheitsid_code": person["gesundheitsid_code"],
    });
    let url = format!(
        "{}/approve",
        info["ident_app"].as_str().unwrap().trim_end_matches('/')
    );
    let r = cli_sandbox_https(
        info,
        &url,
        epa_protocol::http::Request::post("/", "application/json", body.to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    v["redirect_uri"].as_str().unwrap().to_owned()
}

/// The newest confirmation code mailed to `kvnr` other than `not` (waits for the mail a little).
pub async fn cli_mailed_code(info: &serde_json::Value, kvnr: &str, not: Option<&str>) -> String {
    let to = cli_insurant(info, kvnr)["email"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!(
        "{}/messages?to={}",
        info["mail_api"].as_str().unwrap().trim_end_matches('/'),
        to.replace('@', "%40")
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = cli_sandbox_https(info, &url, epa_protocol::http::Request::get("/")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let mails: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let code = mails.as_array().and_then(|m| m.first()).and_then(|m| {
            let text = m["text"].as_str()?;
            let at = text.find("Bestätigungscode: ")? + "Bestätigungscode: ".len();
            text.get(at..at + 6).map(str::to_owned)
        });
        if let Some(c) = code.filter(|c| Some(c.as_str()) != not) {
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{c}");
            return c;
        }
        assert!(Instant::now() < deadline, "no code mailed to {to}: {mails}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A local user `name` (created, logged in, terms accepted) whose ePA session for `kvnr` at
/// `insurer` is LOGGED_IN — all through the CLI. Returns the environment info.
pub async fn cli_logged_in(
    env: &TestEnv,
    d: &TestDaemon,
    name: &str,
    password: &str,
    insurer: &str,
    kvnr: &str,
) -> serde_json::Value {
    let info = cli_environment(env, d);
    for cmd in ["create", "login"] {
        let out = run_epa_stdin(
            env,
            &["user", cmd, name, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    cli_ok_json(env, &["user", "terms", "--accept"]);
    cli_ok_json(
        env,
        &["epa", "connect", "--insurer", insurer, "--kvnr", kvnr],
    );
    let s = cli_ok_json(env, &["login", "--no-wait"]);
    let url = s["login"]["authorization_url"].as_str().unwrap().to_owned();
    let redirect = cli_approve(&info, &url, kvnr).await;
    let mut s = cli_ok_json(env, &["open-url", &redirect]);
    if s["phase"] == "DEVICE_CODE_SENT" {
        let code = cli_mailed_code(&info, kvnr, None).await;
        let out = run_epa_stdin(
            env,
            &["--json", "device", "confirm", "--code-stdin"],
            &format!("{code}\n"),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        s = json(&out);
    }
    if s["phase"] == "RELOGIN_REQUIRED" {
        let relogin_url = s["login"]["authorization_url"].as_str().unwrap().to_owned();
        let mut login = env
            .epa()
            .args(["--json", "login", "--timeout", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let redirect = cli_approve(&info, &relogin_url, kvnr).await;
        if s["login"]["completes_without_browser"] != true {
            let _ = env.run_epa(&["--json", "open-url", &redirect]);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while login.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "epa login did not finish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let s = cli_ok_json(env, &["state"]);
    assert_eq!(s["phase"], "LOGGED_IN", "{s}\n{}", d.log());
    info
}
