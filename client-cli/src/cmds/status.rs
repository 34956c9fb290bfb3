//! `epa status`

use epa_ipc::DaemonClient;
use epa_ipc::types::{ClientInfo, DaemonInfo};
use serde::Serialize;

use crate::Ctx;
use crate::output::{CliError, Output};

/// The `--json` shape of `epa status` and `epa daemon status|start` (pinned by tests).
#[derive(Serialize)]
pub struct StatusView {
    pub daemon: DaemonInfo,
    pub client: ClientInfo,
    pub socket: String,
}

impl StatusView {
    pub fn of(client: &DaemonClient, info: DaemonInfo) -> Self {
        Self {
            daemon: info,
            client: ClientInfo::current(),
            socket: client.endpoint().path().display().to_string(),
        }
    }

    pub fn human(&self, out: &Output) -> String {
        let d = &self.daemon;
        format!(
            "{} {} ({} {}, {} „{}“)\n{} {}, PID {}, {} {}",
            out.t("ePA-Dienst (epad)", "ePA service (epad)"),
            d.daemon_version,
            out.t("Protokoll", "protocol"),
            d.protocol_version,
            out.t("Umgebung", "environment"),
            d.environment,
            out.t("läuft seit", "up for"),
            format_uptime(d.uptime_ms),
            d.pid,
            out.t("Socket", "socket"),
            self.socket,
        )
    }
}

pub fn format_uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

pub async fn run(ctx: &Ctx) -> Result<(), CliError> {
    let client = ctx.connect().await?;
    let info = client.get_info().await?;
    let view = StatusView::of(&client, info);
    ctx.out.print(&view, || view.human(&ctx.out));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_is_readable() {
        assert_eq!(super::format_uptime(999), "0 s");
        assert_eq!(super::format_uptime(61_000), "1 min 1 s");
        assert_eq!(super::format_uptime(7_380_000), "2 h 3 min");
    }
}
