//! `epad` — runs in the foreground (systemd/launchd style) and logs to stderr.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use epa_daemon::store::crypto::KdfParams;
use epa_daemon::{Config, DEFAULT_IDLE_TIMEOUT, DEMO_ENVIRONMENT, DaemonError};
use epa_ipc::autostart::EXIT_ALREADY_RUNNING;
use epa_ipc::transport::{Endpoint, TransportError};

/// The epa-desktop daemon: owns local users, ePA sessions, keys and the document cache.
#[derive(Debug, Parser)]
#[command(name = "epad", version)]
struct Args {
    /// Socket to listen on [default: $XDG_RUNTIME_DIR/epa-desktop/epad.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where local users and their vaults live [default: ~/.local/share/epa-desktop].
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug` or `epa_daemon=trace`.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    log_level: String,
    /// Lock a local user after this many seconds without a call.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Cheap key derivation for test suites. Never use it for real data.
    #[arg(long, hide = true)]
    insecure_test_kdf: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Whatever the daemon or its libraries (sled) create is for this user only.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("epad: invalid --log-level {:?}: {e}", args.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let endpoint = match args.socket {
        Some(p) => Endpoint::at(p),
        None => match Endpoint::default_for_user() {
            Ok(e) => e,
            Err(e) => return fail(&DaemonError::from(e)),
        },
    };
    let Some(data_dir) = args.data_dir.or_else(Config::default_data_dir) else {
        return fail(&DaemonError::NoDataDir);
    };
    let config = Config {
        endpoint,
        data_dir,
        environment: DEMO_ENVIRONMENT.to_owned(),
        kdf: if args.insecure_test_kdf {
            KdfParams::TEST_ONLY
        } else {
            KdfParams::DEFAULT
        },
        idle_timeout: Duration::from_secs(args.idle_timeout),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("epad: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(epa_daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &DaemonError) -> ExitCode {
    tracing::error!("{e}");
    match e {
        DaemonError::Transport(TransportError::AlreadyRunning { .. }) => {
            ExitCode::from(EXIT_ALREADY_RUNNING as u8)
        }
        _ => ExitCode::FAILURE,
    }
}
