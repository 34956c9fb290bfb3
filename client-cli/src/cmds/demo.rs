//! `epa demo`: the seed guide's whole journey against the embedded sandbox, narrated step by
//! step — a local user, the ePA connection, the login with the (virtual) ident app, the device
//! code from the (sandbox) mailbox, the documents, one PDF of two of them, logout.
//!
//! It runs its own daemon in a directory of its own (a new temporary one, or `--data-dir`), so
//! the user's real daemon and data are never touched. The sandbox's test helpers
//! (`epa-sandbox ident approve`, `epa-sandbox mail latest`) play the insurant's phone and
//! mailbox; everything else goes through the daemon's API like any client.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use epa_ipc::autostart::{self, Autostart, DAEMON_BIN};
use epa_ipc::i18n::Lang;
use epa_ipc::types::{
    DemoInsurant, DocumentList, DocumentQuery, EnvironmentInfo, EpaPhase, EpaState, NewDocument,
    SortColumn, UploadStatus,
};
use epa_ipc::{ClientError, DaemonClient, Endpoint, Password, Reason};
use serde_json::json;

use crate::output::{CliError, Output, clean};
use crate::render;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Vor jedem Schritt auf die Eingabetaste warten / pause before each step.
    #[arg(long)]
    interactive: bool,
    /// Den Demo-Dienst am Ende weiterlaufen lassen / leave the demo daemon running at the end.
    #[arg(long)]
    keep_running: bool,
}

/// The local user the demo creates; a throwaway account in the demo's own directory.
const DEMO_USER: &str = "Demo";
const DEMO_PASSWORD: &str = "Demo-Kennwort-2026";
const SANDBOX_BIN: &str = if cfg!(windows) {
    "epa-sandbox.exe"
} else {
    "epa-sandbox"
};
const STEPS: usize = 14;

struct Demo<'a> {
    out: &'a Output,
    interactive: bool,
    step: usize,
    title: String,
}

impl Demo<'_> {
    fn t<'s>(&self, de: &'s str, en: &'s str) -> &'s str {
        self.out.t(de, en)
    }

    /// Announces the next step (and pauses with `--interactive`).
    fn step(&mut self, de: &str, en: &str) -> Result<(), CliError> {
        self.step += 1;
        self.title = self.t(de, en).to_owned();
        if !self.out.json {
            println!(
                "\n── {} {}/{STEPS}: {} ──",
                self.t("Schritt", "Step"),
                self.step,
                self.title
            );
        }
        if self.interactive {
            eprint!(
                "{}",
                self.t("[Eingabetaste: weiter] ", "[Enter: continue] ")
            );
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            // At the end of the input the demo goes on without pausing.
            let read = std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                self.out.input_error(
                    "DEMO_STDIN",
                    &format!("Eingabe nicht lesbar: {e}"),
                    &format!("cannot read the input: {e}"),
                    "Ohne --interactive läuft die Demo ohne Pausen durch.",
                    "Without --interactive the demo runs straight through.",
                )
            })?;
            if read == 0 {
                self.interactive = false;
            }
        }
        Ok(())
    }

    /// What the step did: a JSON line with `--json`, else the narration.
    fn done(&self, id: &str, detail: serde_json::Value, text: &str) {
        self.out.line(
            &json!({
                "step": self.step, "of": STEPS, "id": id, "title": self.title, "ok": true,
                "detail": detail,
            }),
            || text.to_owned(),
        );
    }
}

fn demo_error(out: &Output, de: String, en: String, hint_de: &str, hint_en: &str) -> CliError {
    let (hint_de, hint_en) = if hint_de.is_empty() {
        (
            "Starten Sie die Demo erneut; bleibt der Fehler, zeigt das Protokoll des Dienstes (run/epad.sock.log im Demo-Verzeichnis) die Ursache.",
            "Run the demo again; if the error stays, the service's log (run/epad.sock.log in the demo directory) shows the cause.",
        )
    } else {
        (hint_de, hint_en)
    };
    out.input_error("DEMO_FAILED", &de, &en, hint_de, hint_en)
}

/// `epad` and `epa-sandbox` next to this `epa`. Run from a source tree (`cargo run`) they are
/// built first when missing, with the same profile into the same target directory.
fn binaries(out: &Output) -> Result<(PathBuf, PathBuf), CliError> {
    let me = std::env::current_exe().map_err(|e| {
        demo_error(
            out,
            format!("Eigener Programmpfad unbekannt: {e}"),
            format!("cannot find this program's path: {e}"),
            "",
            "",
        )
    })?;
    let daemon = me.with_file_name(DAEMON_BIN);
    let sandbox = me.with_file_name(SANDBOX_BIN);
    if daemon.is_file() && sandbox.is_file() {
        return Ok((daemon, sandbox));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let profile_dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    let target_dir = profile_dir.parent().map(Path::to_path_buf);
    let profile = profile_dir.file_name().and_then(|n| n.to_str());
    let missing = || {
        demo_error(
            out,
            format!(
                "{} und {} fehlen neben {}.",
                DAEMON_BIN,
                SANDBOX_BIN,
                me.display()
            ),
            format!(
                "{DAEMON_BIN} and {SANDBOX_BIN} are missing next to {}.",
                me.display()
            ),
            "Bauen Sie sie mit `cargo build --release -p epa-daemon -p epa-sandbox` oder installieren Sie das Paket vollständig.",
            "Build them with `cargo build --release -p epa-daemon -p epa-sandbox` or install the complete package.",
        )
    };
    let (Some(target_dir), Some(profile)) = (target_dir, profile) else {
        return Err(missing());
    };
    if !workspace.join("Cargo.toml").is_file() || !matches!(profile, "release" | "debug") {
        return Err(missing());
    }
    out.note(out.t(
        "Baue einmalig den Hintergrunddienst (epad) und die Sandbox … (das dauert einige Minuten)",
        "Building the background service (epad) and the sandbox once … (this takes a few minutes)",
    ));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .args(["-p", "epa-daemon", "-p", "epa-sandbox", "--bins"])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Cargo's progress goes to our stderr; stdout stays for --json.
        .stdout(Stdio::null());
    if profile == "release" {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| {
        demo_error(
            out,
            format!("cargo nicht ausführbar: {e}"),
            format!("cannot run cargo: {e}"),
            "",
            "",
        )
    })?;
    if !status.success() || !daemon.is_file() || !sandbox.is_file() {
        return Err(missing());
    }
    Ok((daemon, sandbox))
}

/// A new private directory under the system's temp dir, kept after the demo (the PDF is there).
fn fresh_root(out: &Output) -> Result<PathBuf, CliError> {
    tempfile::Builder::new()
        .prefix("epa-demo-")
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| {
            demo_error(
                out,
                format!("Kein temporäres Verzeichnis: {e}"),
                format!("cannot create a temporary directory: {e}"),
                "Geben Sie mit --data-dir ein Verzeichnis an.",
                "Name a directory with --data-dir.",
            )
        })
}

/// Waits until the daemon's demo environment is up (the sandbox started by the daemon).
async fn environment(out: &Output, client: &DaemonClient) -> Result<EnvironmentInfo, CliError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = client.get_info().await?;
        match info.environment_info {
            Some(env) if env.problem.is_some() => {
                let p = env.problem.unwrap_or_default();
                return Err(demo_error(
                    out,
                    format!("Die Demo-Umgebung ist nicht gestartet: {p}"),
                    format!("the demo environment did not start: {p}"),
                    "Das Protokoll des Dienstes: run/epad.sock.log im Demo-Verzeichnis.",
                    "The service's log: run/epad.sock.log in the demo directory.",
                ));
            }
            Some(env) if env.kind == "demo" && !env.demo_insurants.is_empty() => return Ok(env),
            Some(env) if env.kind != "demo" => {
                return Err(demo_error(
                    out,
                    format!(
                        "Der Dienst nutzt die Umgebung „{}“, nicht „demo“.",
                        env.kind
                    ),
                    format!("the service uses the {} environment, not demo", env.kind),
                    "",
                    "",
                ));
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(demo_error(
                out,
                "Die Demo-Umgebung antwortet nicht (60 s).".into(),
                "the demo environment did not answer within 60 s".into(),
                "Das Protokoll des Dienstes: run/epad.sock.log im Demo-Verzeichnis.",
                "The service's log: run/epad.sock.log in the demo directory.",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The phone: the sandbox's virtual ident app approves the login for `who`; the redirect it
/// answers with is what the browser would hand to the OS URL handler.
fn approve(
    out: &Output,
    sandbox: &Path,
    env: &EnvironmentInfo,
    who: &DemoInsurant,
    authorization_url: &str,
) -> Result<String, CliError> {
    let mut cmd = Command::new(sandbox);
    cmd.args(["ident", "approve", authorization_url, "--kvnr", &who.kvnr])
        .arg("--code-stdin")
        .arg("--ca")
        .arg(env.ca_cert.as_deref().unwrap_or_default());
    if let Some(app) = &env.ident_app {
        cmd.args(["--ident-app", app]);
    }
    let output = run_with_stdin(out, cmd, &format!("{}\n", who.gesundheitsid_code))?;
    let redirect = String::from_utf8_lossy(&output).trim().to_owned();
    if redirect.is_empty() {
        return Err(demo_error(
            out,
            "Die Ident-App der Sandbox hat die Anmeldung nicht bestätigt.".into(),
            "the sandbox's ident app did not approve the login".into(),
            "",
            "",
        ));
    }
    Ok(redirect)
}

fn run_with_stdin(out: &Output, mut cmd: Command, input: &str) -> Result<Vec<u8>, CliError> {
    let failed = |e: String| {
        demo_error(
            out,
            format!("epa-sandbox: {e}"),
            format!("epa-sandbox: {e}"),
            "",
            "",
        )
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let o = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !o.status.success() {
        return Err(failed(clean(String::from_utf8_lossy(&o.stderr).trim())));
    }
    Ok(o.stdout)
}

/// The 6-digit code of the newest confirmation mail to `who` in the sandbox's outbox.
async fn mailed_code(
    out: &Output,
    sandbox: &Path,
    env: &EnvironmentInfo,
    who: &DemoInsurant,
) -> Result<String, CliError> {
    const MARK: &str = "Bestätigungscode: ";
    let outbox = env.mail_outbox.clone().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = Command::new(sandbox)
            .args(["mail", "latest", "--to", &who.email, "--outbox", &outbox])
            .stderr(Stdio::null())
            .output();
        if let Ok(o) = o
            && o.status.success()
        {
            let mail: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let text = mail["text"].as_str().unwrap_or_default();
            if let Some(code) = text
                .find(MARK)
                .and_then(|at| text.get(at + MARK.len()..at + MARK.len() + 6))
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            {
                return Ok(code.to_owned());
            }
        }
        if Instant::now() > deadline {
            return Err(demo_error(
                out,
                format!("Keine Bestätigungs-E-Mail an {} angekommen.", who.email),
                format!("no confirmation mail reached {}", who.email),
                "",
                "",
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn docs_table(out: &Output, list: &DocumentList) -> String {
    super::docs::table(out, list, SortColumn::Created, true)
}

fn summaries(list: &DocumentList) -> serde_json::Value {
    json!(list
        .documents
        .iter()
        .map(|d| json!({ "id": d.id, "title": d.title, "author": d.author, "mime_type": d.mime_type }))
        .collect::<Vec<_>>())
}

/// A new file in `dir` named `stem.ext`, or `stem-2.ext`, … (never overwriting).
fn create_new(dir: &Path, stem: &str, ext: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(bytes)?;
                f.sync_all()?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free file name"))
}

/// The ident-app login (QR code, phone, deep link) until the daemon leaves the waiting phase.
async fn ident_login(
    demo: &Demo<'_>,
    client: &DaemonClient,
    sandbox: &Path,
    env: &EnvironmentInfo,
    who: &DemoInsurant,
) -> Result<EpaState, CliError> {
    let out = demo.out;
    let mut state = client.epa_state().await?;
    if state.phase != EpaPhase::AwaitingIdentApp {
        state = client.start_login().await?;
    }
    let Some(login) = state.login.clone() else {
        return Err(demo_error(
            out,
            "Der Dienst hat keinen Anmelde-Link geliefert.".into(),
            "the service gave no login link".into(),
            "",
            "",
        ));
    };
    if !out.json {
        println!("{}", render::login_block(out, &login));
        println!(
            "{}",
            demo.t(
                "→ Die Demo spielt das Smartphone: die Ident-App der Sandbox bestätigt mit der GesundheitsID, der Browser gibt per epa-desktop://-Link an den Dienst zurück.",
                "→ The demo plays the phone: the sandbox's ident app confirms with the GesundheitsID, the browser hands back to the service through an epa-desktop:// link.",
            )
        );
    }
    let redirect = approve(out, sandbox, env, who, &login.authorization_url)?;
    Ok(client.complete_login(&redirect).await?)
}

pub async fn run(out: &Output, args: DemoArgs, data_dir: Option<PathBuf>) -> Result<(), CliError> {
    let mut demo = Demo {
        out,
        interactive: args.interactive,
        step: 0,
        title: String::new(),
    };
    if !out.json {
        println!(
            "{}",
            demo.t(
                "epa-desktop — Demo: der Weg aus der Anleitung, Schritt für Schritt, gegen die eingebaute Test-Umgebung (Sandbox). Alle Personen und Dokumente sind erfunden.",
                "epa-desktop — demo: the guide's journey step by step against the built-in test environment (sandbox). All people and documents are made up.",
            )
        );
    }

    // 1. The background service, in the demo's own directory.
    demo.step("Hintergrunddienst starten", "Start the background service")?;
    let (daemon_bin, sandbox) = binaries(out)?;
    let root = match data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d).map_err(|e| {
                demo_error(
                    out,
                    format!("{} nicht anlegbar: {e}", d.display()),
                    format!("cannot create {}: {e}", d.display()),
                    "",
                    "",
                )
            })?;
            d
        }
        None => fresh_root(out)?,
    };
    let endpoint = Endpoint::at(root.join("run").join("epad.sock"));
    let start = Autostart {
        daemon_exe: Some(daemon_bin),
        data_dir: Some(root.join("data")),
        timeout: Duration::from_secs(30),
    };
    let client = autostart::connect_or_start(&endpoint, "epa demo", Some(&start)).await?;
    let env = environment(out, &client).await?;
    let Some(who) = env.demo_insurants.iter().find(|i| i.has_record).cloned() else {
        return Err(demo_error(
            out,
            "Die Sandbox kennt keine Versicherte mit Akte.".into(),
            "the sandbox knows no insurant with a record".into(),
            "",
            "",
        ));
    };
    let info = client.info().clone();
    demo.done(
        "start",
        json!({ "dir": root, "socket": endpoint.path(), "daemon_version": info.daemon_version, "environment": env.kind }),
        &format!(
            "{} {} ({}: {})\n{}: {}",
            demo.t("Dienst läuft: epad", "Service running: epad"),
            info.daemon_version,
            demo.t("Umgebung", "environment"),
            env.kind,
            demo.t("Verzeichnis der Demo", "Demo directory"),
            root.display()
        ),
    );

    // 2. + 3. + 4. The local user: create (or reuse in a kept --data-dir), log in, terms.
    demo.step("Neuen lokalen Benutzer anlegen", "Create a local user")?;
    let password = Password::new(DEMO_PASSWORD.to_owned());
    let created = match client.create_user(DEMO_USER, &password).await {
        Ok(_) => true,
        Err(ClientError::Rpc {
            reason: Reason::UsernameTaken,
            ..
        }) => false,
        Err(e) => return Err(e.into()),
    };
    demo.done(
        "create_user",
        json!({ "user": DEMO_USER, "created": created }),
        &format!(
            "{} „{DEMO_USER}“ ({}: {DEMO_PASSWORD}){}",
            demo.t("Lokaler Benutzer", "Local user"),
            demo.t("Kennwort", "password"),
            if created {
                ""
            } else {
                demo.t(" — gab es schon", " — already there")
            }
        ),
    );
    demo.step("Anmelden am PC", "Log in on this PC")?;
    let (token, unlocked) = client.unlock(DEMO_USER, &password).await?;
    let user = client.with_session(token);
    demo.done(
        "login_user",
        json!({ "user": unlocked.user.username }),
        demo.t(
            "Angemeldet. Tipp aus der Anleitung: Sperren Sie den Bildschirm, wenn Sie den PC verlassen.",
            "Logged in. Tip from the guide: lock the screen when you leave the PC.",
        ),
    );
    demo.step("Nutzungsbedingungen annehmen", "Accept the terms of use")?;
    let terms = user.accept_terms(&unlocked.terms.current_version).await?;
    demo.done(
        "accept_terms",
        json!({ "version": terms.current_version }),
        &format!(
            "{} {}",
            demo.t("Angenommen: Fassung", "Accepted: version"),
            terms.current_version
        ),
    );

    // 5. The overview.
    demo.step("Übersicht", "Overview")?;
    demo.done(
        "overview",
        json!({ "tiles": ["epa", "representation", "health_knowledge"], "version": info.daemon_version }),
        &format!(
            "{}\n  • Elektronische Patientenakte (ePA)\n  • Vertretung für Angehörige\n  • Gesundheitswissen\n{} {}",
            demo.t(
                "Die Übersicht bietet drei Bereiche; die Demo geht in die ePA:",
                "The overview offers three areas; the demo enters the ePA:",
            ),
            demo.t("Profil: Softwareversion", "Profile: software version"),
            info.daemon_version
        ),
    );

    // 6. Insurer + KVNR ("ePA verbinden", first time only).
    demo.step("ePA verbinden", "Connect the ePA")?;
    let mut state = user.epa_state().await?;
    if state.profile.is_none() {
        state = user.set_record_profile(&who.insurer, &who.kvnr).await?;
    }
    demo.done(
        "connect",
        json!({ "insurer": who.insurer, "kvnr": who.kvnr }),
        &format!(
            "{}: {} · {}: {}",
            demo.t("Krankenkasse", "Insurer"),
            who.insurer,
            demo.t("Versichertennummer", "Insurance number"),
            who.kvnr
        ),
    );

    // 7. Login with the ident app.
    demo.step("Anmelden mit der Ident-App", "Log in with the ident app")?;
    if state.phase != EpaPhase::LoggedIn {
        state = ident_login(&demo, &user, &sandbox, &env, &who).await?;
    }
    demo.done(
        "ident_login",
        json!({ "phase": state.phase }),
        &render::state_text(out, &state),
    );

    // 8. + 9. Activate this PC with the mailed code, then log in again (led by the daemon).
    demo.step("Gerät freischalten", "Activate this PC")?;
    let mut code_used = None;
    if state.phase == EpaPhase::DeviceCodeSent {
        let code = mailed_code(out, &sandbox, &env, &who).await?;
        if !out.json {
            println!(
                "{} {}: {code}",
                demo.t("Code aus der E-Mail an", "Code from the mail to"),
                who.email
            );
        }
        state = user.confirm_device(&code).await?;
        code_used = Some(code);
    }
    demo.done(
        "device_code",
        json!({ "phase": state.phase, "confirmed": code_used.is_some() }),
        &if code_used.is_some() {
            render::state_text(out, &state)
        } else {
            demo.t(
                "Dieser PC ist bereits als Gerät freigeschaltet.",
                "This PC is already an activated device.",
            )
            .to_owned()
        },
    );
    demo.step("Erneut anmelden", "Log in again")?;
    if matches!(
        state.phase,
        EpaPhase::ReloginRequired | EpaPhase::AwaitingIdentApp
    ) {
        state = ident_login(&demo, &user, &sandbox, &env, &who).await?;
    }
    if state.phase != EpaPhase::LoggedIn {
        return Err(demo_error(
            out,
            format!("Die Anmeldung endete in der Phase {:?}.", state.phase),
            format!("the login ended in phase {:?}", state.phase),
            "",
            "",
        ));
    }
    demo.done(
        "relogin",
        json!({ "phase": state.phase }),
        &render::state_text(out, &state),
    );

    // 10. + 11. The documents, and a search.
    demo.step("Dokumente", "Documents")?;
    let all = user
        .list_documents(&DocumentQuery {
            refresh: true,
            ..DocumentQuery::default()
        })
        .await?;
    demo.done(
        "documents",
        json!({ "total": all.total_matching, "documents": summaries(&all) }),
        &docs_table(out, &all),
    );
    demo.step("Suche nach Titel oder Autor", "Search by title or author")?;
    // A word of a title, then an author: the one search field finds both.
    // The guide's X-ray image is found by a part of its title.
    let by_title = "röntgen".to_owned();
    let by_author = all
        .documents
        .iter()
        .find(|d| !d.by_me)
        .map(|d| d.author.clone())
        .unwrap_or_else(|| "Demo".into());
    let mut found = Vec::new();
    let mut text = Vec::new();
    for term in [by_title, by_author] {
        let list = user
            .list_documents(&DocumentQuery {
                query: term.clone(),
                ..DocumentQuery::default()
            })
            .await?;
        text.push(format!(
            "{} „{}“:\n{}",
            demo.t("Suche", "Search"),
            clean(&term),
            docs_table(out, &list)
        ));
        found.push(
            json!({ "query": term, "total": list.total_matching, "documents": summaries(&list) }),
        );
    }
    demo.done("search", json!({ "searches": found }), &text.join("\n\n"));

    // 12. Add a document.
    demo.step("Dokument hinzufügen", "Add a document")?;
    let content = match out.lang {
        Lang::De => {
            "Blutdruck-Tagebuch (Demo)\n\nMo 118/76, Puls 64\nDi 121/79, Puls 66\nMi 117/75, Puls 62\n"
        }
        Lang::En => {
            "Blood pressure diary (demo)\n\nMon 118/76, pulse 64\nTue 121/79, pulse 66\nWed 117/75, pulse 62\n"
        }
    };
    let title = demo.t("Blutdruck-Tagebuch (Demo)", "Blood pressure diary (demo)");
    let added = user
        .add_document(
            &NewDocument {
                title: title.to_owned(),
                comment: String::new(),
                created_unix: None,
                file_name: "blutdruck.txt".into(),
            },
            content.as_bytes().to_vec(),
            |_, _| {},
        )
        .await?;
    if added.document.is_none() {
        wait_for_upload(out, &user, &added.upload_id).await?;
    }
    let after = user
        .list_documents(&DocumentQuery {
            refresh: true,
            ..DocumentQuery::default()
        })
        .await?;
    demo.done(
        "add",
        json!({ "id": added.upload_id, "mime_type": added.detected_mime_type, "total": after.total_matching }),
        &format!(
            "{} „{title}“ ({}).\n{}",
            demo.t("Hochgeladen:", "Uploaded:"),
            added.detected_mime_type,
            docs_table(out, &after)
        ),
    );

    // 13. Two documents as one PDF.
    demo.step("Als PDF speichern", "Save as PDF")?;
    let ids: Vec<String> = after
        .documents
        .iter()
        .take(2)
        .map(|d| d.id.clone())
        .collect();
    let pdf = user.export_pdf(&ids).await?.collect(|_, _| {}).await?;
    let pdf_path = create_new(&root, "ePA-Auswahl", "pdf", &pdf).map_err(|e| {
        demo_error(
            out,
            format!("PDF nicht speicherbar in {}: {e}", root.display()),
            format!("cannot save the PDF in {}: {e}", root.display()),
            "",
            "",
        )
    })?;
    demo.done(
        "export_pdf",
        json!({ "ids": ids, "path": pdf_path, "bytes": pdf.len() }),
        &format!(
            "{} {} ({} {})",
            demo.t("Gespeichert:", "Saved:"),
            pdf_path.display(),
            pdf.len(),
            demo.t("Bytes", "bytes")
        ),
    );

    // 14. Log out of the ePA, lock the local user.
    demo.step("Abmelden", "Log out")?;
    let state = user.epa_logout().await?;
    user.lock().await?;
    demo.done(
        "logout",
        json!({ "phase": state.phase }),
        demo.t(
            "Von der ePA abgemeldet, lokaler Benutzer gesperrt.",
            "Logged out of the ePA, local user locked.",
        ),
    );

    if !args.keep_running {
        // The daemon logs its sandbox out and lets it save its state.
        client.shutdown().await?;
    }
    let socket = endpoint.path().display().to_string();
    out.line(
        &json!({
            "done": true,
            "summary": {
                "dir": root, "user": DEMO_USER, "kvnr": who.kvnr, "insurer": who.insurer,
                "documents": after.total_matching, "pdf": pdf_path,
                "daemon_running": args.keep_running, "socket": socket,
            }
        }),
        || {
            let mut s = format!(
                "\n{}\n  {}: {} ({})\n  {}: {}\n  PDF: {}\n  {}: {}",
                demo.t("Fertig. Zusammenfassung:", "Done. Summary:"),
                demo.t("Versicherte", "Insurant"),
                who.kvnr,
                who.insurer,
                demo.t("Dokumente in der Akte", "Documents in the record"),
                after.total_matching,
                pdf_path.display(),
                demo.t("Demo-Verzeichnis", "Demo directory"),
                root.display(),
            );
            if args.keep_running {
                s.push_str(&format!(
                    "\n{} epa --socket {socket} user login {DEMO_USER}",
                    demo.t("Weiter ausprobieren:", "Explore further:")
                ));
            }
            s
        },
    );
    Ok(())
}

/// Waits for the upload queue to finish `id` (it retries by itself while the record is away).
async fn wait_for_upload(out: &Output, user: &DaemonClient, id: &str) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let uploads = user.list_uploads().await?;
        match uploads.iter().find(|u| u.upload_id == id) {
            Some(u) if u.status == UploadStatus::Done => return Ok(()),
            Some(u) if u.status == UploadStatus::Failed => {
                let why = u.error_reason.clone().unwrap_or_default();
                return Err(demo_error(
                    out,
                    format!("Das Hochladen ist gescheitert: {why}"),
                    format!("the upload failed: {why}"),
                    "",
                    "",
                ));
            }
            None => return Ok(()),
            Some(_) => {}
        }
        if Instant::now() > deadline {
            return Err(demo_error(
                out,
                "Das Hochladen dauert zu lange (120 s).".into(),
                "the upload takes too long (120 s)".into(),
                "`epa docs uploads` zeigt den Stand.",
                "`epa docs uploads` shows where it stands.",
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
