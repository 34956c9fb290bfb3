//! Packaging (issue 9): unit, desktop, AppStream and plist files pass their validators, the
//! install script goes into a temp home and back out leaving nothing behind, `epa completions`
//! and the man pages are sane, and `epad` serves on a socket handed over by socket activation.
//! External validators that are missing make their test skip with a printed reason; .ci/run
//! installs them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use epa_ipc::{DaemonClient, Endpoint};
use epa_tests::{TestEnv, bin, bin_dir};

const APP_ID: &str = "de.epa_desktop.EpaDesktop";
const HANDLER: &str = "de.epa_desktop.EpaDesktop.UrlHandler.desktop";

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging")
}

/// A program from PATH, if there is one.
fn tool(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path below `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// A temp home for install.sh: XDG dirs inside it, a private runtime dir, and stub
/// `systemctl`/`xdg-mime`/`update-desktop-database` first on PATH that log their arguments.
struct Home {
    root: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("epa-pkg")
            .tempdir()
            .unwrap();
        let h = Self { root };
        fs::create_dir(h.home()).unwrap();
        fs::create_dir(h.run()).unwrap();
        fs::set_permissions(h.run(), fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(h.stubs()).unwrap();
        for name in ["systemctl", "xdg-mime", "update-desktop-database"] {
            let p = h.stubs().join(name);
            fs::write(
                &p,
                format!("#!/bin/sh\necho \"{name} $*\" >> \"$STUB_LOG\"\n"),
            )
            .unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        h
    }
    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    fn run(&self) -> PathBuf {
        self.root.path().join("run")
    }
    fn stubs(&self) -> PathBuf {
        self.root.path().join("stubs")
    }
    fn log(&self) -> PathBuf {
        self.root.path().join("calls.log")
    }
    fn data(&self) -> PathBuf {
        self.home().join(".local/share")
    }
    fn config(&self) -> PathBuf {
        self.home().join(".config")
    }
    fn prefix(&self) -> PathBuf {
        self.home().join(".local")
    }

    /// `packaging/SCRIPT ARGS` with this home; panics with the output unless it succeeds.
    fn script(&self, script: &str, args: &[&str]) -> String {
        let out = self.script_output(script, args);
        assert!(
            out.status.success(),
            "{script} {args:?} failed:\n{}",
            text(&out)
        );
        text(&out)
    }

    fn script_output(&self, script: &str, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.stubs().display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        Command::new("bash")
            .arg(packaging().join(script))
            .args(args)
            .env("PATH", path)
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.data())
            .env("XDG_CONFIG_HOME", self.config())
            .env("XDG_RUNTIME_DIR", self.run())
            .env("STUB_LOG", self.log())
            .env_remove("XDG_DATA_DIRS")
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The stubs' calls since the last look, one per line.
    fn take_calls(&self) -> Vec<String> {
        let calls = fs::read_to_string(self.log()).unwrap_or_default();
        let _ = fs::remove_file(self.log());
        calls.lines().map(str::to_owned).collect()
    }
}

/// A directory with the real epad/epa/epa-sandbox and, if asked, a stand-in GUI.
fn bin_source(home: &Home, with_gui: bool) -> PathBuf {
    // Never the target directory itself: whether it holds an epa-desktop depends on what was
    // built before (`cargo test --workspace` builds the GUI too).
    let d = home.root.path().join("bins");
    fs::create_dir(&d).unwrap();
    for b in ["epad", "epa", "epa-sandbox"] {
        std::os::unix::fs::symlink(bin(b), d.join(b)).unwrap();
    }
    if !with_gui {
        return d;
    }
    let gui = d.join("epa-desktop");
    fs::write(&gui, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&gui, fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn install_and_uninstall_leave_nothing_behind() {
    let h = Home::new();
    // Something of the user's own in a directory the install also uses: it must survive.
    let mine = h.prefix().join("bin/my-tool");
    fs::create_dir_all(mine.parent().unwrap()).unwrap();
    fs::write(&mine, "mine").unwrap();
    let before = tree(&h.home());

    let bins = bin_source(&h, false);
    h.script(
        "install.sh",
        &["--user", "--bin-dir", bins.to_str().unwrap()],
    );
    let bindir = h.prefix().join("bin");
    let apps = h.data().join("applications");
    assert_eq!(
        h.take_calls(),
        [
            format!("update-desktop-database {}", apps.display()),
            format!("xdg-mime default {HANDLER} x-scheme-handler/epa-desktop"),
            "systemctl --user daemon-reload".into(),
            "systemctl --user stop epad.socket epad.service".into(),
            "systemctl --user disable epad.service".into(),
            "systemctl --user enable --now epad.socket".into(),
        ]
    );
    for b in ["epad", "epa", "epa-sandbox"] {
        assert_eq!(mode(&bindir.join(b)), 0o755, "{b}");
    }
    assert!(!bindir.join("epa-desktop").exists());
    let units = h.config().join("systemd/user");
    let service = fs::read_to_string(units.join("epad.service")).unwrap();
    assert!(
        service
            .lines()
            .any(|l| l == format!("ExecStart={}/epad", bindir.display())),
        "{service}"
    );
    assert_eq!(mode(&units.join("epad.service")), 0o644);
    let socket = fs::read_to_string(units.join("epad.socket")).unwrap();
    assert!(socket.contains("ListenStream=%t/epa-desktop/epad.sock"));
    // Without the GUI the link goes to the CLI's forwarder; the app entry is left out.
    let handler = fs::read_to_string(apps.join(HANDLER)).unwrap();
    assert!(
        handler
            .lines()
            .any(|l| l == format!("Exec={}/epa open-url -- %u", bindir.display())),
        "{handler}"
    );
    assert!(handler.contains("MimeType=x-scheme-handler/epa-desktop;"));
    assert!(!apps.join(format!("{APP_ID}.desktop")).exists());
    let bash = fs::read_to_string(h.data().join("bash-completion/completions/epa")).unwrap();
    assert!(bash.contains("_epa()"), "{bash}");
    assert!(h.data().join("zsh/site-functions/_epa").is_file());
    assert!(
        h.data()
            .join("fish/vendor_completions.d/epa.fish")
            .is_file()
    );
    let man1 = h.prefix().join("share/man/man1");
    assert!(man1.join("epa.1").is_file() && man1.join("epa-docs-ls.1").is_file());
    let manifest = fs::read_to_string(h.prefix().join("lib/epa-desktop/install-manifest")).unwrap();
    assert!(manifest.contains(&format!("f {}", bindir.join("epad").display())));
    assert!(
        !manifest.contains(&format!("d {}\n", bindir.display())),
        "bin/ existed before the install: {manifest}"
    );

    // What xdg-mime would have written.
    fs::write(
        h.config().join("mimeapps.list"),
        format!("[Default Applications]\nx-scheme-handler/epa-desktop={HANDLER}\n"),
    )
    .unwrap();
    h.script("uninstall.sh", &["--user"]);
    assert_eq!(
        h.take_calls(),
        [
            "systemctl --user disable --now epad.socket epad.service",
            "systemctl --user daemon-reload"
        ]
    );
    assert_eq!(tree(&h.home()), before, "left behind or removed too much");
    assert_eq!(fs::read_to_string(&mine).unwrap(), "mine");
    // `epa daemon stop` ran with --no-autostart: no daemon was started on the way.
    assert!(tree(&h.run()).is_empty(), "{:?}", tree(&h.run()));
}

#[test]
fn install_with_gui_and_service_unit_then_uninstall() {
    let h = Home::new();
    let bins = bin_source(&h, true);
    h.script(
        "install.sh",
        &["--user", "--bin-dir", bins.to_str().unwrap(), "--no-socket"],
    );
    let calls = h.take_calls();
    assert_eq!(
        calls[calls.len() - 2..],
        [
            "systemctl --user disable epad.socket",
            "systemctl --user enable --now epad.service"
        ]
    );
    let bindir = h.prefix().join("bin");
    let apps = h.data().join("applications");
    let app = fs::read_to_string(apps.join(format!("{APP_ID}.desktop"))).unwrap();
    assert!(app.contains(&format!("\nExec={}/epa-desktop\n", bindir.display())));
    assert!(app.contains(&format!("\nTryExec={}/epa-desktop\n", bindir.display())));
    let handler = fs::read_to_string(apps.join(HANDLER)).unwrap();
    assert!(
        handler.contains(&format!("\nExec={}/epa-desktop %u\n", bindir.display())),
        "{handler}"
    );
    assert!(
        h.data()
            .join(format!("icons/hicolor/scalable/apps/{APP_ID}.svg"))
            .is_file()
    );
    assert!(
        h.data()
            .join(format!("metainfo/{APP_ID}.metainfo.xml"))
            .is_file()
    );
    validate_desktop_files(&[apps.join(format!("{APP_ID}.desktop")), apps.join(HANDLER)]);

    // A reinstall replaces the files (a running binary included) and keeps one manifest.
    h.script(
        "install.sh",
        &["--user", "--bin-dir", bins.to_str().unwrap(), "--no-enable"],
    );
    assert!(!h.take_calls().iter().any(|c| c.starts_with("systemctl")));

    // Another application's default stays; ours goes.
    fs::write(
        h.config().join("mimeapps.list"),
        format!(
            "[Default Applications]\nx-scheme-handler/epa-desktop={HANDLER}\ntext/plain=other.desktop\n"
        ),
    )
    .unwrap();
    h.script("uninstall.sh", &["--user"]);
    assert_eq!(
        fs::read_to_string(h.config().join("mimeapps.list")).unwrap(),
        "[Default Applications]\ntext/plain=other.desktop\n"
    );
    fs::remove_file(h.config().join("mimeapps.list")).unwrap();
    assert_eq!(tree(&h.home()), [".config"]);
}

#[test]
fn install_refuses_what_it_cannot_do_safely() {
    let h = Home::new();
    let bins = bin_dir();
    let bins = bins.to_str().unwrap();
    let out = h.script_output("install.sh", &["--bin-dir", bins]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--user"), "{}", text(&out));
    let spaced = h.root.path().join("my prefix");
    let out = h.script_output(
        "install.sh",
        &[
            "--user",
            "--prefix",
            spaced.to_str().unwrap(),
            "--bin-dir",
            bins,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("contains a space"), "{}", text(&out));
    let out = h.script_output("uninstall.sh", &["--user"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no install found"), "{}", text(&out));
    assert!(tree(&h.home()).is_empty());
    assert!(h.take_calls().is_empty());
}

#[test]
fn installed_units_pass_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze") else {
        return skip(
            "installed_units_pass_systemd_analyze_verify",
            "systemd-analyze not found (apt: systemd)",
        );
    };
    let h = Home::new();
    let bins = bin_dir();
    h.script(
        "install.sh",
        &["--user", "--bin-dir", bins.to_str().unwrap(), "--no-enable"],
    );
    let units = h.config().join("systemd/user");
    let mut cmd = Command::new(analyze);
    cmd.arg("--user");
    // Documentation=man:epa(1) is checked against the man pages just installed.
    match tool("man") {
        Some(_) => cmd.env("MANPATH", h.prefix().join("share/man")),
        None => cmd.arg("--man=no"),
    };
    let out = cmd
        .arg("verify")
        .arg(units.join("epad.service"))
        .arg(units.join("epad.socket"))
        .env("HOME", h.home())
        .env("XDG_RUNTIME_DIR", h.run())
        .env("XDG_CONFIG_HOME", h.config())
        .env("XDG_DATA_HOME", h.data())
        .output()
        .unwrap();
    // verify exits 0 on unknown keys or bad values ("…, ignoring"): any output is a finding.
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "{}",
        text(&out)
    );
}

fn validate_desktop_files(files: &[PathBuf]) {
    let Some(validate) = tool("desktop-file-validate") else {
        return skip(
            "desktop-file-validate",
            "desktop-file-validate not found (apt: desktop-file-utils)",
        );
    };
    let out = Command::new(validate).args(files).output().unwrap();
    let findings: Vec<_> = text(&out)
        .lines()
        .filter(|l| !l.contains(": hint: "))
        .map(str::to_owned)
        .collect();
    assert!(
        out.status.success() && findings.is_empty(),
        "{files:?}: {findings:?}"
    );
}

#[test]
fn desktop_files_pass_desktop_file_validate() {
    let linux = packaging().join("linux");
    validate_desktop_files(&[linux.join(format!("{APP_ID}.desktop")), linux.join(HANDLER)]);
    let handler = fs::read_to_string(linux.join(HANDLER)).unwrap();
    assert!(handler.contains("\nExec=epa-desktop %u\n"));
    assert!(handler.contains("\nMimeType=x-scheme-handler/epa-desktop;\n"));
}

#[test]
fn metainfo_passes_appstreamcli_validate() {
    let Some(appstreamcli) = tool("appstreamcli") else {
        return skip(
            "metainfo_passes_appstreamcli_validate",
            "appstreamcli not found (apt: appstream)",
        );
    };
    let file = packaging().join(format!("linux/{APP_ID}.metainfo.xml"));
    let out = Command::new(appstreamcli)
        .args(["validate", "--no-net"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let xml = fs::read_to_string(&file).unwrap();
    assert!(xml.contains(&format!(
        "<launchable type=\"desktop-id\">{APP_ID}.desktop</launchable>"
    )));
}

#[test]
fn macos_plists_parse_and_say_what_they_must() {
    let macos = packaging().join("macos");
    let agent = plist::Value::from_file(macos.join("de.epa-desktop.epad.plist")).unwrap();
    let agent = agent.as_dictionary().unwrap();
    let get = |k: &str| agent.get(k).unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(get("Label").as_string(), Some("de.epa-desktop.epad"));
    assert_eq!(get("RunAtLoad").as_boolean(), Some(true));
    let keep = get("KeepAlive").as_dictionary().unwrap();
    assert_eq!(
        keep.get("SuccessfulExit")
            .and_then(plist::Value::as_boolean),
        Some(false)
    );
    assert_eq!(get("Umask").as_signed_integer(), Some(0o077));
    let program = get("ProgramArguments").as_array().unwrap();
    assert!(program[0].as_string().unwrap().ends_with("/epad"));

    let info = plist::Value::from_file(macos.join("Info.plist.url-scheme.plist")).unwrap();
    let types = info
        .as_dictionary()
        .and_then(|d| d.get("CFBundleURLTypes"))
        .and_then(plist::Value::as_array)
        .unwrap();
    let schemes: Vec<_> = types
        .iter()
        .filter_map(|t| t.as_dictionary()?.get("CFBundleURLSchemes")?.as_array())
        .flatten()
        .filter_map(plist::Value::as_string)
        .collect();
    assert_eq!(schemes, ["epa-desktop"]);
}

fn epa_plain(args: &[&str]) -> Output {
    // No HOME, no XDG dirs: completions need no socket path and no daemon.
    Command::new(bin("epa"))
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn completions_and_man_pages_are_sane() {
    let subcommands = ["status", "daemon", "user", "login", "open-url", "docs"];
    for (shell, marker) in [
        ("bash", "complete -F _epa"),
        ("zsh", "#compdef epa"),
        ("fish", "complete -c epa"),
        ("elvish", "edit:completion:arg-completer[epa]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = epa_plain(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for sub in subcommands {
            assert!(script.contains(sub), "{shell}: no {sub}");
        }
        // The shells that are here must accept the syntax.
        let check: Option<(&str, &[&str])> = match shell {
            "bash" => Some(("bash", &["-n"])),
            "zsh" => Some(("zsh", &["-n"])),
            "fish" => Some(("fish", &["--no-execute"])),
            _ => None,
        };
        if let Some((prog, flags)) = check {
            match tool(prog) {
                None => skip("completions syntax", &format!("{prog} not installed")),
                Some(p) => {
                    let dir = tempfile::tempdir().unwrap();
                    let f = dir.path().join("epa-completion");
                    fs::write(&f, &script).unwrap();
                    let out = Command::new(p).args(flags).arg(&f).output().unwrap();
                    assert!(out.status.success(), "{shell}: {}", text(&out));
                }
            }
        }
    }

    let out = epa_plain(&["completions", "--man"]);
    assert!(out.status.success(), "{}", text(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    for needle in [
        ".TH epa 1",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        "epa\\-docs(1)",
        "Exit codes",
    ] {
        assert!(page.contains(needle), "man page lacks {needle:?}:\n{page}");
    }
    if let Some(groff) = tool("groff") {
        let out = Command::new(groff)
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(page.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            text(&out)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let out = epa_plain(&[
        "completions",
        "--man-dir",
        dir.path().join("man1").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let pages = tree(&dir.path().join("man1"));
    for p in ["epa.1", "epa-docs.1", "epa-docs-ls.1", "epa-user-login.1"] {
        assert!(pages.iter().any(|x| x == p), "{p} missing: {pages:?}");
    }

    // Usage errors are usage errors (exit 2).
    assert_eq!(epa_plain(&["completions"]).status.code(), Some(2));
    assert_eq!(epa_plain(&["completions", "tcsh"]).status.code(), Some(2));
    assert_eq!(
        epa_plain(&["completions", "bash", "--man"]).status.code(),
        Some(2)
    );
}

/// The children of `pid` (Linux /proc), waiting up to 20 s for one to appear.
fn wait_for_child(pid: u32) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for t in tasks.flatten() {
            let children = fs::read_to_string(t.path().join("children")).unwrap_or_default();
            if let Some(c) = children.split_whitespace().next() {
                return c.parse().ok();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn assert_no_listen_vars(pid: u32) {
    let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
        return skip("environment check", "/proc/PID/environ unreadable");
    };
    for var in environ.split(|b| *b == 0) {
        let var = String::from_utf8_lossy(var);
        assert!(
            !var.starts_with("LISTEN_FDS=") && !var.starts_with("LISTEN_PID="),
            "the sandbox child inherited {var}"
        );
    }
}

async fn connect_within(endpoint: &Endpoint, limit: Duration, log: &Path) -> DaemonClient {
    let deadline = Instant::now() + limit;
    loop {
        match DaemonClient::connect(endpoint).await {
            Ok(c) => return c,
            // Starting up: not there yet, or the first connection (the one that woke the
            // activator) was lost on the way.
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!(
                "no answer: {e}\n{}",
                fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
}

fn sigterm(pid: u32) {
    use rustix::process::{Pid, Signal, kill_process};
    let pid = Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
}

fn wait_exit(child: &mut std::process::Child, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `systemd-socket-activate -l SOCKET epad …` (it binds, then on the first connection
/// execs epad in its own process with LISTEN_FDS=1 and LISTEN_PID set) under umask 077.
fn socket_activate(tool: &Path, env: &TestEnv, log: &Path) -> std::process::Child {
    fs::create_dir_all(env.run_dir()).unwrap();
    fs::set_permissions(env.run_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    let child = Command::new("sh")
        .args(["-c", "umask 077 && exec \"$@\"", "sh"])
        .arg(tool)
        .arg("-l")
        .arg(env.socket())
        .arg(bin("epad"))
        .arg("--socket")
        .arg(env.socket())
        .arg("--data-dir")
        .arg(&env.data_dir)
        .arg("--insecure-test-kdf")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.socket().exists() {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate did not bind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[tokio::test]
async fn epad_serves_on_a_socket_handed_over_by_socket_activation() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return skip(
            "epad_serves_on_a_socket_handed_over_by_socket_activation",
            "systemd-socket-activate not found (apt: systemd)",
        );
    };
    let env = TestEnv::new();
    let log = env.root.path().join("activate.log");
    let mut child = socket_activate(&activate, &env, &log);
    // What SocketMode=0600 in epad.socket does (systemd-socket-activate has no such option).
    fs::set_permissions(env.socket(), fs::Permissions::from_mode(0o600)).unwrap();

    let client = connect_within(&env.endpoint, Duration::from_secs(20), &log).await;
    assert_eq!(
        client.info().pid,
        child.id(),
        "not served by the activated epad"
    );
    let info = client.get_info().await.unwrap();
    assert_eq!(info.protocol_version, epa_ipc::PROTOCOL_VERSION);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("socket activation: serving"), "{text}");
    // The demo sandbox child must not believe it was socket-activated.
    let sandbox = wait_for_child(child.id()).expect("epad started no sandbox child");
    assert_no_listen_vars(sandbox);

    sigterm(child.id());
    assert!(wait_exit(&mut child, &log).success());
    // The socket belongs to the service manager: epad leaves it in place.
    assert!(env.socket().exists());
}

#[tokio::test]
async fn an_activated_socket_open_to_others_is_refused() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return skip(
            "an_activated_socket_open_to_others_is_refused",
            "systemd-socket-activate not found (apt: systemd)",
        );
    };
    let env = TestEnv::new();
    let log = env.root.path().join("activate.log");
    let mut child = socket_activate(&activate, &env, &log);
    fs::set_permissions(env.socket(), fs::Permissions::from_mode(0o666)).unwrap();
    // The connection wakes systemd-socket-activate, which execs epad; epad refuses.
    let _ = DaemonClient::connect(&env.endpoint).await;
    let status = wait_exit(&mut child, &log);
    assert!(!status.success());
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("SocketMode=0600"), "{text}");
}

#[tokio::test]
async fn listen_fds_meant_for_another_process_are_ignored() {
    let env = TestEnv::new();
    let log = env.root.path().join("epad.log");
    let mut child = env
        .epad()
        .arg("--insecure-test-kdf")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = connect_within(&env.endpoint, Duration::from_secs(20), &log).await;
    assert_eq!(client.info().pid, child.id());
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("LISTEN_PID is not this process"), "{text}");
    let sandbox = wait_for_child(child.id()).expect("epad started no sandbox child");
    assert_no_listen_vars(sandbox);
    sigterm(child.id());
    assert!(wait_exit(&mut child, &log).success());
    // Its own socket is removed on the way out, as always.
    assert!(!env.socket().exists());
}
