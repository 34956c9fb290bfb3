//! Where the daemon's ePA lives. `demo` (the default): the daemon starts `epa-sandbox serve` as
//! its child and reads the one ready line it prints; `custom`: base URLs, CA file, VAU trust
//! anchors and IDP issuers from a JSON file. Real ePA environments need a client id approved by
//! gematik, which this open-source build does not have.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use epa_protocol::vau::Environment;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// How long the sandbox may take to print its ready line (it needs well under a second).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_READY_LINE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EnvironmentError {
    #[error("the demo backend (epa-sandbox) could not be started from {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the demo backend did not report ready within {0:?}; see its log")]
    NotReady(Duration),
    #[error("the demo backend's ready line is not what was expected: {0}")]
    ReadyLine(String),
    #[error("the environment file {path} is unusable: {reason}")]
    Config { path: String, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct AktensystemEndpoint {
    pub id: String,
    pub base_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdpEntry {
    pub insurer: String,
    pub issuer: String,
}

/// A demo insurant, shown so that a person trying the demo can play the phone.
#[derive(Debug, Clone, Deserialize)]
pub struct DemoInsurant {
    pub kvnr: String,
    pub insurer: String,
    pub gesundheitsid_code: String,
    pub email: String,
    pub has_record: bool,
}

/// The sandbox's ready line (its documented process interface; unknown fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct ReadyLine {
    pub ready: bool,
    pub aktensysteme: Vec<AktensystemEndpoint>,
    pub ca_cert: PathBuf,
    pub vau_trust_anchor: PathBuf,
    pub idps: Vec<IdpEntry>,
    pub ident_app: String,
    pub mail_api: String,
    pub outbox_dir: PathBuf,
    /// Clock and fault injection (tests and demos only).
    #[serde(default)]
    pub control_api: Option<String>,
    pub insurants: Vec<DemoInsurant>,
}

/// What the daemon talks to.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    pub aktensysteme: Vec<AktensystemEndpoint>,
    /// PEM of the CA the HTTPS servers' certificates chain to.
    pub tls_ca_pem: Vec<u8>,
    /// DER roots for the VAU signing certificates.
    pub vau_roots: Vec<Vec<u8>>,
    pub idps: Vec<IdpEntry>,
    pub vau_environment: Environment,
    /// Only in the demo: the sandbox's ready data (ident app, mailbox, insurants).
    pub demo: Option<ReadyLine>,
}

impl Backend {
    pub fn issuer_of(&self, insurer: &str) -> Option<&str> {
        self.idps
            .iter()
            .find(|i| i.insurer == insurer)
            .map(|i| i.issuer.as_str())
    }
}

/// The running demo sandbox. Dropping it closes the sandbox's stdin, which ends it
/// (`--exit-on-stdin-eof`), and kills it should it linger.
pub struct DemoSandbox {
    stdin: ChildStdin,
    child: Child,
}

/// How long the sandbox may take to write its state and exit once its stdin closed.
const STOP_GRACE: Duration = Duration::from_secs(3);

impl DemoSandbox {
    /// Closes the sandbox's stdin so that it saves its state and exits; kills it when it does
    /// not within a few seconds.
    pub async fn stop(self) {
        let Self { stdin, mut child } = self;
        drop(stdin);
        match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the demo backend did not exit in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, EnvironmentError> {
    std::fs::read(path).map_err(|e| EnvironmentError::ReadyLine(format!("{}: {e}", path.display())))
}

/// Starts `epa-sandbox serve` with its state under `state_dir`, logging to `log`.
pub async fn start_demo(
    sandbox_bin: &Path,
    state_dir: &Path,
    log: std::fs::File,
) -> Result<(DemoSandbox, Backend), EnvironmentError> {
    let spawn_err = |source| EnvironmentError::Spawn {
        path: sandbox_bin.display().to_string(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(spawn_err)?;
    let mut child = Command::new(sandbox_bin)
        .arg("serve")
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(EnvironmentError::ReadyLine("no pipes to the child".into()));
    };
    let mut line = Vec::new();
    let mut reader = BufReader::new(stdout).take(MAX_READY_LINE as u64);
    let n = tokio::time::timeout(READY_TIMEOUT, reader.read_until(b'\n', &mut line))
        .await
        .map_err(|_| EnvironmentError::NotReady(READY_TIMEOUT))?
        .map_err(|e| EnvironmentError::ReadyLine(e.to_string()))?;
    if n == 0 {
        return Err(EnvironmentError::ReadyLine(
            "the sandbox exited before it was ready".into(),
        ));
    }
    let ready: ReadyLine =
        serde_json::from_slice(&line).map_err(|e| EnvironmentError::ReadyLine(e.to_string()))?;
    if !ready.ready || ready.aktensysteme.is_empty() {
        return Err(EnvironmentError::ReadyLine(
            "not ready or no Aktensystem".into(),
        ));
    }
    let backend = Backend {
        name: crate::DEMO_ENVIRONMENT.to_owned(),
        aktensysteme: ready.aktensysteme.clone(),
        tls_ca_pem: read(&ready.ca_cert)?,
        vau_roots: vec![read(&ready.vau_trust_anchor)?],
        idps: ready.idps.clone(),
        vau_environment: Environment::Test,
        demo: Some(ready),
    };
    // The rest of stdout is never read; the sandbox writes nothing more there.
    Ok((DemoSandbox { stdin, child }, backend))
}

/// `custom` environment file (JSON).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFile {
    name: String,
    aktensysteme: Vec<AktensystemEndpoint>,
    /// PEM file of the HTTPS CA (relative paths are relative to the file).
    ca_cert: PathBuf,
    /// DER files of the VAU trust anchors.
    vau_trust_anchors: Vec<PathBuf>,
    idps: Vec<IdpEntry>,
    /// `false` (default): PU flag 0 (test environments). Production needs gematik approval.
    #[serde(default)]
    production: bool,
}

pub fn load_custom(path: &Path) -> Result<Backend, EnvironmentError> {
    let bad = |reason: String| EnvironmentError::Config {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let f: CustomFile = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if f.aktensysteme.is_empty() {
        return Err(bad("no Aktensystem listed".into()));
    }
    if let Some(a) = f
        .aktensysteme
        .iter()
        .find(|a| !a.base_url.starts_with("https://"))
    {
        return Err(bad(format!("{}: base_url must be https://", a.id)));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let load =
        |p: &Path| std::fs::read(dir.join(p)).map_err(|e| bad(format!("{}: {e}", p.display())));
    Ok(Backend {
        name: f.name,
        aktensysteme: f.aktensysteme,
        tls_ca_pem: load(&f.ca_cert)?,
        vau_roots: f
            .vau_trust_anchors
            .iter()
            .map(|p| load(p))
            .collect::<Result<_, _>>()?,
        idps: f.idps,
        vau_environment: if f.production {
            Environment::Production
        } else {
            Environment::Test
        },
        demo: None,
    })
}
