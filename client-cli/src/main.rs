//! `epa` — the command-line client of epad.
//!
//! Exit codes (fixed, documented in README.md): 0 ok, 1 other error, 2 usage,
//! 3 daemon unreachable or incompatible, 4 locked / not logged in, 5 backend unavailable.
#![forbid(unsafe_code)]

mod cmds;
mod output;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use epa_ipc::autostart::{self, Autostart};
use epa_ipc::i18n::Lang;
use epa_ipc::{ClientError, DaemonClient, Endpoint};

use crate::output::{CliError, Output};

#[derive(Debug, Parser)]
#[command(
    name = "epa",
    version,
    about = "Die elektronische Patientenakte (ePA) vom PC aus / your ePA from the command line"
)]
struct Cli {
    /// Machine-readable output (stable JSON; errors as {"error": {...}} on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Socket of the daemon [default: $XDG_RUNTIME_DIR/epa-desktop/epad.sock].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Data directory handed to an autostarted daemon.
    #[arg(long, global = true, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Do not start the daemon when none is running.
    #[arg(long, global = true)]
    no_autostart: bool,
    /// Language of messages: de (default) or en [default: from LANG].
    #[arg(long, global = true, value_name = "LANG")]
    lang: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the daemon's version and state (starts it if needed).
    Status,
    /// Start, stop or inspect the background service.
    #[command(subcommand)]
    Daemon(cmds::daemon::DaemonCmd),
    /// Local users of this PC: create, log in, lock, change password, delete, terms of use.
    #[command(subcommand)]
    User(cmds::user::UserCmd),
    /// Ihre ePA: Krankenkasse und Versichertennummer / your ePA: insurer and insurance number.
    #[command(subcommand)]
    Epa(cmds::epa::EpaCmd),
    /// Bei der ePA anmelden: QR-Code für die Ident-App / log in to the ePA with the ident app.
    Login(cmds::login::LoginArgs),
    /// Anmelde-Link an den Dienst weitergeben (ruft der URL-Handler des Systems auf) /
    /// hand the login link to the service (called by the OS URL handler).
    OpenUrl {
        /// Der Link epa-desktop://auth/callback?… / the epa-desktop://auth/callback?… link.
        #[arg(value_name = "URL")]
        url: String,
    },
    /// Geräte der ePA: diesen PC freischalten, auflisten, umbenennen, entfernen /
    /// devices: activate this PC, list, rename, remove.
    #[command(subcommand)]
    Device(cmds::device::DeviceCmd),
    /// Von der ePA abmelden (`epa user lock` sperrt den lokalen Benutzer) / log out of the ePA.
    Logout,
    /// Stand der ePA-Anmeldung und nächster Schritt / where the ePA login stands, what is next.
    State {
        /// Änderungen laufend anzeigen (mit --json: eine Zeile je Stand) / follow changes.
        #[arg(long)]
        watch: bool,
    },
    /// Dokumente der ePA: auflisten, herunterladen, öffnen, hinzufügen, löschen, verbergen, als
    /// PDF speichern / documents: list, download, open, add, delete, hide, save as PDF.
    #[command(subcommand)]
    Docs(cmds::docs::DocsCmd),
    /// Die ganze Anleitung Schritt für Schritt gegen die eingebaute Test-Umgebung (Sandbox), mit
    /// eigenem Dienst in einem neuen Verzeichnis (oder --data-dir) / the whole guide step by step
    /// against the built-in test environment, with its own service in a new directory (or
    /// --data-dir).
    Demo(cmds::demo::DemoArgs),
    /// Shell-Ergänzungen oder Handbuchseiten ausgeben (für Pakete) / print shell completions or
    /// man pages (for packagers).
    Completions(cmds::completions::CompletionsArgs),
}

/// What every command gets: where the daemon is and how to talk to the user.
pub struct Ctx {
    pub endpoint: Endpoint,
    pub autostart: Option<Autostart>,
    pub out: Output,
}

impl Ctx {
    /// Connects, starting the daemon first unless `--no-autostart`.
    pub async fn connect(&self) -> Result<DaemonClient, ClientError> {
        autostart::connect_or_start(&self.endpoint, &client_name(), self.autostart.as_ref()).await
    }

    /// Connects without ever starting a daemon.
    pub async fn connect_existing(&self) -> Result<DaemonClient, ClientError> {
        DaemonClient::connect_as(&self.endpoint, &client_name()).await
    }

    pub fn autostart_options(&self) -> Autostart {
        self.autostart.clone().unwrap_or_default()
    }
}

fn client_name() -> String {
    format!("epa {}", env!("CARGO_PKG_VERSION"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json, Lang::detect(cli.lang.as_deref()));
    // Needs no daemon and no socket path (runs at package build time, too).
    if let Command::Completions(args) = &cli.command {
        return match cmds::completions::run(args, &out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => out.fail(&e),
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("epa: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The demo runs its own daemon in its own directory: no socket path of the user's needed.
    let command = match cli.command {
        Command::Demo(args) => {
            return match runtime.block_on(cmds::demo::run(&out, args, cli.data_dir)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => out.fail(&e),
            };
        }
        other => other,
    };
    let endpoint = match cli.socket {
        Some(p) => Endpoint::at(p),
        None => match Endpoint::default_for_user() {
            Ok(e) => e,
            Err(e) => return out.fail(&CliError::Client(ClientError::from(e))),
        },
    };
    let autostart = (!cli.no_autostart).then(|| Autostart {
        data_dir: cli.data_dir.clone(),
        ..Autostart::default()
    });
    let ctx = Ctx {
        endpoint,
        autostart,
        out,
    };
    let result = runtime.block_on(async {
        match command {
            Command::Status => cmds::status::run(&ctx).await,
            Command::Daemon(cmd) => cmds::daemon::run(&ctx, cmd).await,
            Command::User(cmd) => cmds::user::run(&ctx, cmd).await,
            Command::Epa(cmd) => cmds::epa::run(&ctx, cmd).await,
            Command::Login(args) => cmds::login::login(&ctx, args).await,
            Command::OpenUrl { url } => cmds::login::open_url(&ctx, url).await,
            Command::Device(cmd) => cmds::device::run(&ctx, cmd).await,
            Command::Logout => cmds::login::logout(&ctx).await,
            Command::State { watch } => cmds::login::state(&ctx, watch).await,
            Command::Docs(cmd) => cmds::docs::run(&ctx, cmd).await,
            Command::Completions(_) | Command::Demo(_) => Ok(()), // answered above
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ctx.out.fail(&e),
    }
}
