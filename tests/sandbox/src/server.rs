//! Starting the sandbox: TLS CA, VAU PKI, one HTTPS listener per Aktensystem on a free
//! loopback port, and the ready line that tells parents where everything is.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use epa_protocol::pki::TestPki;
use serde::Serialize;
use tokio::sync::watch;

use crate::aktensystem::{Aktensystem, rng_for};
use crate::authz::Authz;
use crate::clock::Clock;
use crate::control::{ControlApi, FaultPlan, FaultSettings};
use crate::idp::Idps;
use crate::mail::{MailError, Outbox};
use crate::seed::Seed;
use crate::services::RecordServices;
use crate::tls::{self, SandboxCa};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("random generator: {0}")]
    Random(String),
    #[error("mail outbox: {0}")]
    Mail(#[from] MailError),
    #[error("fault settings: {0}")]
    Faults(String),
    #[error("saved state: {0}")]
    State(#[from] crate::persist::PersistError),
}

/// Writes delayed mails once they are due (sandbox clock), until the sandbox stops.
async fn deliver_delayed_mail(
    outbox: Arc<Outbox>,
    clock: Arc<Clock>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
        if let Err(e) = outbox.deliver_due(clock.now_unix()) {
            tracing::error!(error = %e, "delivering a delayed mail failed");
        }
    }
}

pub struct Options {
    /// Where the TLS CA, the outbox and the record state persist (see `persist`); a temp dir and in-memory state when absent.
    pub state_dir: Option<PathBuf>,
    pub seed: Seed,
    pub bind: IpAddr,
    /// Fixed randomness for reproducible runs.
    pub rng_seed: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadyAktensystem {
    pub id: String,
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadyInsurant {
    pub kvnr: String,
    pub insurer: String,
    pub gesundheitsid_code: String,
    pub email: String,
    pub has_record: bool,
    /// KVNRs this insurant may act for (seed `representations`).
    pub represents: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadyIdp {
    pub insurer: String,
    pub issuer: String,
}

/// The one JSON line printed on stdout when the sandbox is ready.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyLine {
    pub ready: bool,
    pub aktensysteme: Vec<ReadyAktensystem>,
    pub ca_cert: String,
    /// DER root of the sandbox's VAU PKI: the trust anchor for strict VAU certificate checks.
    pub vau_trust_anchor: String,
    pub idps: Vec<ReadyIdp>,
    /// `POST {ident_app}/approve` plays the phone.
    pub ident_app: String,
    /// `GET {mail_api}/messages?to=ADDRESS` lists the mails sent to ADDRESS, newest first.
    pub mail_api: String,
    /// Every mail is also an `.eml` file here.
    pub outbox_dir: String,
    /// Clock and fault injection, for tests and demos only (see `control.rs`).
    pub control_api: String,
    pub insurants: Vec<ReadyInsurant>,
}

/// A listener on a free port of `ip`, and its address.
async fn bind_free_port(ip: IpAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let io = |context: String| move |source| ServeError::Io { context, source };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .map_err(io(format!("binding {ip}")))?;
    let addr = listener.local_addr().map_err(io("local address".into()))?;
    Ok((listener, addr))
}

/// A running sandbox; dropping it does not stop it, [`Sandbox::shutdown`] does.
pub struct Sandbox {
    pub ready: ReadyLine,
    pub aktensysteme: Vec<Arc<Aktensystem>>,
    pub clock: Arc<Clock>,
    pub outbox: Arc<Outbox>,
    pub idps: Arc<Idps>,
    pub control: Arc<ControlApi>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Sandbox {
    pub async fn start(opts: Options) -> Result<Self, ServeError> {
        Self::start_with(opts, FaultSettings::default()).await
    }

    /// Starts with the control API's settings in force from the beginning (`--faults`,
    /// `--session-idle-timeout`).
    pub async fn start_with(opts: Options, faults: FaultSettings) -> Result<Self, ServeError> {
        tls::install_crypto_provider();
        let (tmp, dir) = match &opts.state_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("epa-sandbox")
                    .tempdir()
                    .map_err(|source| ServeError::Io {
                        context: "creating a temp dir".into(),
                        source,
                    })?;
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let ca = SandboxCa::load_or_create(&dir.join("tls"))?;
        let seed_bytes = match opts.rng_seed {
            Some(s) => s,
            None => {
                let mut s = [0u8; 32];
                getrandom::fill(&mut s).map_err(|e| ServeError::Random(e.to_string()))?;
                s
            }
        };
        let clock = Arc::new(Clock::default());
        let pki = Arc::new(TestPki::generate(
            &mut rng_for(seed_bytes, 0),
            clock.now_unix(),
        ));
        let anchor = dir.join("vau-root.der");
        std::fs::write(&anchor, pki.root_der()).map_err(|source| ServeError::Io {
            context: format!("writing {}", anchor.display()),
            source,
        })?;
        let (stop, _) = watch::channel(false);
        // The portal: services that are not an Aktensystem (IDPs, ident app, mail).
        let (portal_listener, portal) = bind_free_port(opts.bind).await?;
        let idps = Idps::new(&format!("https://{portal}"), &opts.seed, Arc::clone(&clock));
        let outbox = Arc::new(Outbox::open(&dir.join("outbox"))?);
        outbox.use_clock(Arc::clone(&clock));
        let plan = Arc::new(FaultPlan::new(&faults));
        let mut systems = Vec::new();
        let mut ready_systems = Vec::new();
        let mut tasks = Vec::new();
        let mut state_files = Vec::new();
        for (i, a) in opts.seed.aktensysteme.iter().enumerate() {
            let services = Arc::new(RecordServices::new(
                &a.id,
                &opts.seed,
                Arc::clone(&clock),
                Arc::clone(&outbox),
                rng_for(seed_bytes, 2000 + i as u64),
            ));
            let authz = Arc::new(Authz {
                idps: Arc::clone(&idps),
                devices: Arc::clone(&services.devices),
                clock: Arc::clone(&clock),
                client_id: format!("https://{}", a.host),
                rng: std::sync::Mutex::new(rng_for(seed_bytes, 1000 + i as u64)),
            });
            let system = Aktensystem::new(
                &a.id,
                &a.host,
                Arc::clone(&services),
                Arc::clone(&pki),
                rng_for(seed_bytes, i as u64 + 1),
                crate::services::router(Arc::clone(&services), authz),
                Arc::clone(&plan),
            );
            // After the routes exist (they write the seed's audit history), before the first
            // request: a saved state replaces the seeded one.
            if let Some(d) = &opts.state_dir {
                let file = crate::persist::StateFile::new(d, Arc::clone(&services));
                if file.load()? {
                    tracing::info!(id = %a.id, "state restored from the state dir");
                }
                state_files.push(file);
            }
            let (listener, addr) = bind_free_port(opts.bind).await?;
            let config = ca.server_config(&[a.host.as_str()])?;
            let mut rx = stop.subscribe();
            tasks.push(tokio::spawn(tls::serve_tls(
                listener,
                config,
                system.router(),
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            )));
            tracing::info!(id = %a.id, %addr, "Aktensystem listening");
            ready_systems.push(ReadyAktensystem {
                id: a.id.clone(),
                base_url: format!("https://{addr}"),
            });
            systems.push(system);
        }
        let control = ControlApi::new(
            Arc::clone(&clock),
            plan,
            systems.clone(),
            Arc::clone(&idps),
            Arc::clone(&outbox),
        );
        control.apply(&faults).map_err(ServeError::Faults)?;
        if !state_files.is_empty() {
            let rx = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                crate::persist::run_writer(state_files, rx).await;
                Ok(())
            }));
        }
        tasks.push(tokio::spawn(deliver_delayed_mail(
            Arc::clone(&outbox),
            Arc::clone(&clock),
            stop.subscribe(),
        )));
        let mut rx = stop.subscribe();
        tasks.push(tokio::spawn(tls::serve_tls(
            portal_listener,
            ca.server_config(&["portal.sandbox.local"])?,
            crate::mail::router(Arc::clone(&outbox))
                .merge(idps.router())
                .merge(control.router()),
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        )));
        let insurants = opts
            .seed
            .insurants
            .iter()
            .map(|p| ReadyInsurant {
                kvnr: p.kvnr.clone(),
                insurer: p.insurer.clone(),
                gesundheitsid_code: p.gesundheitsid_code.clone(),
                email: p.email.clone(),
                has_record: p.record.is_some(),
                represents: opts
                    .seed
                    .representations
                    .iter()
                    .filter(|r| r.representative == p.kvnr)
                    .map(|r| r.insurant.clone())
                    .collect(),
            })
            .collect();
        Ok(Self {
            ready: ReadyLine {
                ready: true,
                aktensysteme: ready_systems,
                ca_cert: ca.ca_cert_path().display().to_string(),
                vau_trust_anchor: anchor.display().to_string(),
                idps: idps
                    .issuers()
                    .into_iter()
                    .map(|(insurer, issuer)| ReadyIdp { insurer, issuer })
                    .collect(),
                ident_app: idps.ident_app_url(),
                mail_api: format!("https://{portal}/mail"),
                outbox_dir: outbox.dir().display().to_string(),
                control_api: format!("https://{portal}/control"),
                insurants,
            },
            aktensysteme: systems,
            clock,
            outbox,
            idps,
            control,
            stop,
            tasks,
            _tmp: tmp,
        })
    }

    pub fn aktensystem(&self, id: &str) -> Option<&Arc<Aktensystem>> {
        self.aktensysteme.iter().find(|a| a.id == id)
    }

    /// Stops every listener and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
