//! `epa-sandbox serve`: prints one JSON ready line on stdout, logs to stderr, stops on
//! SIGTERM/SIGINT or (with `--exit-on-stdin-eof`) when stdin closes.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
        /// Persist the TLS CA (and later the state) here; default: a temp dir.
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

fn main() -> ExitCode {
    let (state_dir, seed, bind, exit_on_stdin_eof, log_level) = match Cli::parse().command {
        Command::Mail { what } => return mail(what),
        Command::Serve {
            state_dir,
            seed,
            bind,
            exit_on_stdin_eof,
            log_level,
        } => (state_dir, seed, bind, exit_on_stdin_eof, log_level),
    };
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("epa-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let sandbox = match Sandbox::start(Options {
            state_dir,
            seed,
            bind,
            rng_seed: None,
        })
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
