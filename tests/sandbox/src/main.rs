//! `epa-sandbox serve`: prints one JSON ready line on stdout, logs to stderr, stops on
//! SIGTERM/SIGINT or (with `--exit-on-stdin-eof`) when stdin closes.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use epa_sandbox::control::{self, FaultSettings};
use epa_sandbox::mail::{Mail, read_outbox};
use epa_sandbox::seed::Seed;
use epa_sandbox::server::{Options, Sandbox};
use tokio::io::AsyncReadExt;

#[derive(Debug, Parser)]
#[command(
    name = "epa-sandbox",
    version,
    about = "A local ePA 3 environment for epa-desktop's demo and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the Aktensysteme and print the ready line.
    Serve {
        /// Keep the TLS CA, the mail outbox and every record's state here, and pick them up again at the next start; default: a temp dir, state in memory only.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Seed data instead of the shipped fixture.
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
        /// Address to listen on (loopback only makes sense).
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// Stop when standard input closes (so a parent never leaks the sandbox).
        #[arg(long)]
        exit_on_stdin_eof: bool,
        #[arg(long, default_value = "info")]
        log_level: String,
        /// Fault settings in force from the start (the JSON of `PUT {control_api}/faults`;
        /// for tests and demos only).
        #[arg(long, value_name = "FILE")]
        faults: Option<PathBuf>,
        /// User sessions idle longer than this (sandbox clock) end; default 1200 (20 min).
        #[arg(long, value_name = "SECS")]
        session_idle_timeout: Option<u64>,
    },
    /// Play the insurant's phone: approve a login with the virtual ident app.
    Ident {
        #[command(subcommand)]
        what: IdentCmd,
    },
    /// Drive a running sandbox's control API (clock, faults). For tests and demos only: a real
    /// Aktensystem has no such interface.
    Control {
        #[command(subcommand)]
        what: ControlCmd,
    },
    /// Read the mail outbox (the `outbox_dir` of the ready line).
    Mail {
        #[command(subcommand)]
        what: MailCmd,
    },
}

#[derive(Debug, Subcommand)]
enum MailCmd {
    /// All mails to ADDRESS, newest first (JSON lines).
    List(MailArgs),
    /// The mail with this id (JSON).
    Show {
        id: String,
        #[command(flatten)]
        args: MailArgs,
    },
    /// The newest mail to ADDRESS (JSON); exit code 1 when there is none.
    Latest(MailArgs),
}

#[derive(Debug, Subcommand)]
enum IdentCmd {
    /// Approve AUTHORIZATION_URL (the `Location` of sendAuthorizationRequestFdV, or the QR
    /// payload) for KVNR with its GesundheitsID code; prints the redirect URI.
    Approve {
        authorization_url: String,
        #[arg(long)]
        kvnr: String,
        /// The insurant's 6-digit GesundheitsID code (see the seed / ready line).
        #[arg(long, required_unless_present = "code_stdin")]
        code: Option<String>,
        /// Read the code from the first line of stdin instead (keeps it out of argv).
        #[arg(long, conflicts_with = "code")]
        code_stdin: bool,
        /// The ident app (`ident_app` of the ready line); default: the authorization URL's
        /// origin + `/ident`.
        #[arg(long, value_name = "URL")]
        ident_app: Option<String>,
        /// The sandbox's TLS CA (`ca_cert` of the ready line).
        #[arg(long, value_name = "FILE")]
        ca: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ControlCmd {
    /// Move the sandbox clock forward by SECONDS; prints the new clock (JSON).
    AdvanceClock {
        seconds: u64,
        #[command(flatten)]
        api: ControlArgs,
    },
    /// Print the clock (JSON).
    Clock {
        #[command(flatten)]
        api: ControlArgs,
    },
    /// Print the fault settings in force (JSON).
    Faults {
        #[command(flatten)]
        api: ControlArgs,
    },
    /// Replace the fault settings with the JSON in FILE (`-` for stdin).
    SetFaults {
        file: PathBuf,
        #[command(flatten)]
        api: ControlArgs,
    },
    /// End every user session now.
    DropSessions {
        #[command(flatten)]
        api: ControlArgs,
    },
}

#[derive(Debug, clap::Args)]
struct ControlArgs {
    /// `control_api` of the ready line.
    #[arg(long, value_name = "URL")]
    control_api: String,
    /// The sandbox's TLS CA (`ca_cert` of the ready line).
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
}

#[derive(Debug, clap::Args)]
struct MailArgs {
    #[arg(long, value_name = "ADDRESS")]
    to: String,
    #[arg(long, value_name = "DIR")]
    outbox: PathBuf,
}

fn mail(what: MailCmd) -> ExitCode {
    let (args, id, latest) = match &what {
        MailCmd::List(a) => (a, None, false),
        MailCmd::Latest(a) => (a, None, true),
        MailCmd::Show { id, args } => (args, Some(id.as_str()), false),
    };
    let mails = match read_outbox(&args.outbox, &args.to) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("epa-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chosen: Vec<&Mail> = mails
        .iter()
        .filter(|m| id.is_none_or(|i| m.id == i))
        .take(if latest { 1 } else { usize::MAX })
        .collect();
    for m in &chosen {
        println!("{}", serde_json::to_string(m).unwrap_or_default());
    }
    if chosen.is_empty() && !matches!(what, MailCmd::List(_)) {
        eprintln!("epa-sandbox: no such mail to {}", args.to);
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("epa-sandbox: {e}");
            ExitCode::FAILURE
        })
}

/// The CA file of `ident approve` and `control`; exit code 2 when it cannot be read.
fn read_ca(path: &std::path::Path) -> Result<String, ExitCode> {
    control::read_ca(path).map_err(|e| {
        eprintln!("epa-sandbox: {e}");
        ExitCode::from(2)
    })
}

/// One request to a sandbox HTTPS API (`ident approve`, `control`), trusting `ca_pem`.
fn https(
    url: &str,
    request: epa_protocol::http::Request,
    ca_pem: &str,
) -> Result<epa_protocol::http::Response, ExitCode> {
    let rt = runtime()?;
    rt.block_on(control::https_request(url, request, ca_pem))
        .map_err(|e| {
            eprintln!("epa-sandbox: {e}");
            ExitCode::FAILURE
        })
}

/// The JSON body of an answer, or its text.
fn body_text(r: &epa_protocol::http::Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn ident(what: IdentCmd) -> ExitCode {
    let IdentCmd::Approve {
        authorization_url,
        kvnr,
        code,
        code_stdin,
        ident_app,
        ca,
    } = what;
    let code = match (code, code_stdin) {
        (Some(c), _) => c,
        (None, _) => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("epa-sandbox: cannot read the code from stdin: {e}");
                return ExitCode::from(2);
            }
            line.trim().to_owned()
        }
    };
    let ca_pem = match read_ca(&ca) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let ident_app = match ident_app {
        Some(u) => u,
        None => match control::origin(&authorization_url) {
            Ok(o) => format!("{o}/ident"),
            Err(e) => {
                eprintln!("epa-sandbox: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let url = format!("{}/approve", ident_app.trim_end_matches('/'));
    let body = serde_json::json!({
        "authorization_url": authorization_url,
        "kvnr": kvnr,
        "gesundheitsid_code": code,
    });
    let request = epa_protocol::http::Request::post(
        "/",
        "application/json",
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    let answer = match https(&url, request, &ca_pem) {
        Ok(a) => a,
        Err(c) => return c,
    };
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
    match (answer.status, json["redirect_uri"].as_str()) {
        (200, Some(redirect)) => {
            println!("{redirect}");
            ExitCode::SUCCESS
        }
        (403, _) => {
            let why = match json["errorCode"].as_str() {
                Some("wrongCode") => "the GesundheitsID code is wrong",
                Some("unknownInsurant") => "the KVNR is no insurant of this IDP's insurer",
                _ => "the ident app refused",
            };
            eprintln!(
                "epa-sandbox: approval refused (403): {why} ({})",
                json["errorDetail"].as_str().unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        (status, _) => {
            eprintln!(
                "epa-sandbox: the ident app answered {status}: {}",
                body_text(&answer)
            );
            ExitCode::FAILURE
        }
    }
}

fn control_cmd(what: ControlCmd) -> ExitCode {
    use epa_protocol::http::Request;
    let (api, path, request) = match what {
        ControlCmd::AdvanceClock { seconds, api } => (
            api,
            "/clock/advance",
            Request::post(
                "/",
                "application/json",
                serde_json::json!({ "seconds": seconds }).to_string(),
            ),
        ),
        ControlCmd::Clock { api } => (api, "/clock", Request::get("/")),
        ControlCmd::Faults { api } => (api, "/faults", Request::get("/")),
        ControlCmd::DropSessions { api } => (
            api,
            "/sessions/drop",
            Request::post("/", "application/json", "{}"),
        ),
        ControlCmd::SetFaults { file, api } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&file)
            };
            match text {
                Ok(t) => (api, "/faults", Request::put("/", "application/json", t)),
                Err(e) => {
                    eprintln!("epa-sandbox: cannot read {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            }
        }
    };
    let ca_pem = match read_ca(&api.ca) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let url = format!("{}{path}", api.control_api.trim_end_matches('/'));
    match https(&url, request, &ca_pem) {
        Ok(a) if a.status == 200 => {
            println!("{}", body_text(&a));
            ExitCode::SUCCESS
        }
        Ok(a) => {
            eprintln!(
                "epa-sandbox: the control API answered {}: {}",
                a.status,
                body_text(&a)
            );
            ExitCode::FAILURE
        }
        Err(c) => c,
    }
}

fn main() -> ExitCode {
    let (state_dir, seed, bind, exit_on_stdin_eof, log_level, faults, idle) =
        match Cli::parse().command {
            Command::Mail { what } => return mail(what),
            Command::Ident { what } => return ident(what),
            Command::Control { what } => return control_cmd(what),
            Command::Serve {
                state_dir,
                seed,
                bind,
                exit_on_stdin_eof,
                log_level,
                faults,
                session_idle_timeout,
            } => (
                state_dir,
                seed,
                bind,
                exit_on_stdin_eof,
                log_level,
                faults,
                session_idle_timeout,
            ),
        };
    let mut faults = match faults {
        None => FaultSettings::default(),
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<FaultSettings>(&t).map_err(|e| e.to_string()))
        {
            Ok(f) => f,
            Err(e) => {
                eprintln!("epa-sandbox: --faults {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    if let Some(s) = idle {
        faults.session_idle_timeout_seconds = s;
    }
    let filter =
        tracing_subscriber::EnvFilter::try_new(&log_level).unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let seed = match seed {
        None => Seed::default_seed(),
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Seed::parse(&text),
            Err(e) => {
                eprintln!("epa-sandbox: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let seed = match seed {
        Ok(s) => s,
        Err(e) => {
            eprintln!("epa-sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(c) => return c,
    };
    runtime.block_on(async move {
        let sandbox = match Sandbox::start_with(
            Options {
                state_dir,
                seed,
                bind,
                rng_seed: None,
            },
            faults,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("epa-sandbox: {e}");
                return ExitCode::FAILURE;
            }
        };
        match serde_json::to_string(&sandbox.ready) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("epa-sandbox: {e}");
                return ExitCode::FAILURE;
            }
        }
        wait_for_stop(exit_on_stdin_eof).await;
        tracing::info!("stopping");
        sandbox.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_stop(stdin_eof: bool) {
    let stdin_closed = async {
        if stdin_eof {
            let mut buf = [0u8; 256];
            let mut stdin = tokio::io::stdin();
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            () = stdin_closed => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = stdin_closed => {}
    }
}
