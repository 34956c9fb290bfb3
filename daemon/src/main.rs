//! `epad` — runs in the foreground (systemd/launchd style) and logs to stderr.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use epa_daemon::store::crypto::KdfParams;
use epa_daemon::{CUSTOM_ENVIRONMENT, Config, DEFAULT_IDLE_TIMEOUT, DEMO_ENVIRONMENT, DaemonError};
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
    /// Where the ePA is: `demo` (an embedded sandbox with test persons) or `custom` (from
    /// --environment-file). Real ePA environments need a client id approved by gematik.
    #[arg(long, value_name = "NAME", default_value = DEMO_ENVIRONMENT, value_parser = [DEMO_ENVIRONMENT, CUSTOM_ENVIRONMENT])]
    environment: String,
    /// The custom environment's file (JSON: Aktensysteme, CA, VAU trust anchors, IDPs).
    #[arg(
        long,
        value_name = "PATH",
        required_if_eq("environment", CUSTOM_ENVIRONMENT)
    )]
    environment_file: Option<PathBuf>,
    /// The demo backend binary [default: `epa-sandbox` next to epad, else from PATH].
    #[arg(long, value_name = "PATH")]
    sandbox_bin: Option<PathBuf>,
    /// Keepalive period of logged-in ePA sessions, in milliseconds (tests shorten it).
    #[arg(long, hide = true, value_name = "MS", default_value_t = epa_daemon::session::DEFAULT_KEEPALIVE.as_millis() as u64, value_parser = clap::value_parser!(u64).range(50..=3_600_000))]
    epa_keepalive_ms: u64,
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

    // systemd socket activation; taken while we have one thread (it edits the environment).
    let activated = match epa_ipc::transport::take_activated_socket() {
        Ok(a) => a,
        Err(e) => return fail(&DaemonError::from(e)),
    };
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
        environment: args.environment,
        environment_file: args.environment_file,
        sandbox_bin: args.sandbox_bin,
        epa_keepalive: Duration::from_millis(args.epa_keepalive_ms),
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
    match runtime.block_on(epa_daemon::run_with(config, activated)) {
        Ok(lock) => {
            // Every task (and with it the store) ends with the runtime; only then may the
            // next daemon take over.
            drop(runtime);
            drop(lock);
            ExitCode::SUCCESS
        }
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
