//! `epa daemon start|stop|status`

use std::time::{Duration, Instant};

use clap::Subcommand;
use epa_ipc::{ClientError, autostart};
use serde::Serialize;

use super::status::StatusView;
use crate::Ctx;
use crate::output::CliError;

#[derive(Debug, Subcommand)]
pub enum DaemonCmd {
    /// Start the daemon in the background (no-op when it runs).
    Start,
    /// Stop the daemon in order (no-op when it is not running).
    Stop,
    /// Show whether the daemon runs; never starts it (exit code 3 when it does not run).
    Status,
}

/// How long `stop` waits for the socket to go away.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize)]
struct StartView {
    started: bool,
    #[serde(flatten)]
    status: StatusView,
}

#[derive(Serialize)]
struct StopView {
    stopped: bool,
    pid: Option<u32>,
}

pub async fn run(ctx: &Ctx, cmd: DaemonCmd) -> Result<(), CliError> {
    let out = &ctx.out;
    match cmd {
        DaemonCmd::Status => {
            let client = ctx.connect_existing().await?;
            let view = StatusView::of(&client, client.get_info().await?);
            out.print(&view, || view.human(out));
        }
        DaemonCmd::Start => {
            let (client, started) = match ctx.connect_existing().await {
                Ok(c) => (c, false),
                Err(ClientError::NotRunning { .. }) => {
                    let opts = ctx.autostart_options();
                    let c = autostart::start(&ctx.endpoint, "epa daemon start", &opts).await?;
                    (c, true)
                }
                Err(e) => return Err(e.into()),
            };
            let view = StartView {
                started,
                status: StatusView::of(&client, client.get_info().await?),
            };
            out.print(&view, || {
                let head = if started {
                    out.t("Gestartet.", "Started.")
                } else {
                    out.t("Läuft bereits.", "Already running.")
                };
                format!("{head}\n{}", view.status.human(out))
            });
        }
        DaemonCmd::Stop => {
            let client = match ctx.connect_existing().await {
                Ok(c) => c,
                Err(ClientError::NotRunning { .. }) => {
                    let view = StopView {
                        stopped: false,
                        pid: None,
                    };
                    out.print(&view, || {
                        out.t("Der Dienst läuft nicht.", "The service is not running.")
                            .to_owned()
                    });
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let pid = client.info().pid;
            client.shutdown().await?;
            drop(client);
            wait_until_gone(ctx).await?;
            let view = StopView {
                stopped: true,
                pid: Some(pid),
            };
            out.print(&view, || {
                format!(
                    "{} (PID {pid})",
                    out.t("Dienst beendet.", "Service stopped.")
                )
            });
        }
    }
    Ok(())
}

/// Polls until no daemon answers on the socket any more.
async fn wait_until_gone(ctx: &Ctx) -> Result<(), ClientError> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match ctx.connect_existing().await {
            Err(ClientError::NotRunning { .. }) => return Ok(()),
            // Still draining: it answers with SHUTTING_DOWN or drops the connection.
            Ok(_) | Err(ClientError::Transport(_)) | Err(ClientError::Rpc { .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(ClientError::Transport(format!(
                "the daemon did not stop within {} s",
                STOP_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
