//! `epa status`

use epa_ipc::DaemonClient;
use epa_ipc::types::{ClientInfo, DaemonInfo, EnvironmentInfo};
use serde::Serialize;

use crate::Ctx;
use crate::output::{CliError, Output, clean};

/// The `--json` shape of `epa status` and `epa daemon status|start` (pinned by tests); the
/// environment is `daemon.environment_info` (absent while the backend is still starting).
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
        let head = format!(
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
        );
        match &d.environment_info {
            Some(env) => format!("{head}\n{}", environment_text(out, env)),
            None => head,
        }
    }
}

/// What the environment is; for the demo, what a person needs to play the phone.
pub fn environment_text(out: &Output, env: &EnvironmentInfo) -> String {
    let kind = match env.kind.as_str() {
        "demo" => out
            .t(
                "Demo (eingebaute Test-Umgebung, keine echten Daten)",
                "demo (built-in test environment, no real data)",
            )
            .to_owned(),
        "custom" => out
            .t("eigene Umgebung (Konfiguration)", "custom (configured)")
            .to_owned(),
        other => clean(other),
    };
    let mut lines = vec![format!("{}: {kind}", out.t("Umgebung", "Environment"))];
    if !env.note.trim().is_empty() {
        lines.push(format!("  {}", clean(env.note.trim())));
    }
    if let Some(p) = &env.problem {
        lines.push(format!("  {}: {}", out.t("Problem", "Problem"), clean(p)));
    }
    let url = |label: &str, v: &Option<String>, lines: &mut Vec<String>| {
        if let Some(v) = v {
            lines.push(format!("  {label}: {}", clean(v)));
        }
    };
    url(
        out.t(
            "Ident-App (spielt das Handy)",
            "Ident app (plays the phone)",
        ),
        &env.ident_app,
        &mut lines,
    );
    url(out.t("Postfach", "Mailbox"), &env.mail_api, &mut lines);
    url(out.t("TLS-CA", "TLS CA"), &env.ca_cert, &mut lines);
    if !env.demo_insurants.is_empty() {
        lines.push(format!(
            "  {}",
            out.t(
                "Testpersonen (KVNR, Krankenkasse, GesundheitsID-Code, E-Mail):",
                "Test persons (KVNR, insurer, GesundheitsID code, e-mail):"
            )
        ));
        for i in &env.demo_insurants {
            lines.push(format!(
                "    {}  {}  {}  {}{}",
                clean(&i.kvnr),
                clean(&i.insurer),
                clean(&i.gesundheitsid_code),
                clean(&i.email),
                if i.has_record {
                    ""
                } else {
                    out.t("  (ohne ePA)", "  (no ePA)")
                }
            ));
        }
    }
    lines.join("\n")
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
    fn the_demo_environment_shows_what_playing_the_phone_needs() {
        use epa_ipc::i18n::Lang;
        use epa_ipc::types::DemoInsurant;
        let env = super::EnvironmentInfo {
            kind: "demo".into(),
            note: "Nur Testdaten.".into(),
            ident_app: Some("https://127.0.0.1:4000/ident".into()),
            mail_api: Some("https://127.0.0.1:4000/mail".into()),
            control_api: Some("https://127.0.0.1:4000/control".into()),
            ca_cert: Some("/tmp/ca.pem".into()),
            demo_insurants: vec![DemoInsurant {
                kvnr: "E082462818".into(),
                insurer: "AOK Hessen".into(),
                gesundheitsid_code: "114852".into(),
                email: "olga.ohneakte@example.invalid".into(),
                has_record: false,
            }],
            problem: None,
            mail_outbox: None,
        };
        let de = super::environment_text(&super::Output::new(false, Lang::De), &env);
        assert!(de.starts_with("Umgebung: Demo"), "{de}");
        assert!(de.contains("https://127.0.0.1:4000/ident"), "{de}");
        assert!(de.contains("https://127.0.0.1:4000/mail"), "{de}");
        assert!(
            de.contains(
                "E082462818  AOK Hessen  114852  olga.ohneakte@example.invalid  (ohne ePA)"
            ),
            "{de}"
        );
        let en = super::environment_text(&super::Output::new(false, Lang::En), &env);
        assert!(
            en.contains("Test persons") && en.contains("(no ePA)"),
            "{en}"
        );
    }

    #[test]
    fn uptime_is_readable() {
        assert_eq!(super::format_uptime(999), "0 s");
        assert_eq!(super::format_uptime(61_000), "1 min 1 s");
        assert_eq!(super::format_uptime(7_380_000), "2 h 3 min");
    }
}
