//! From connection state to the window's texts, in German or English.

use epa_ipc::ClientError;
use epa_ipc::i18n::{Lang, UserMessage, describe};
use epa_ipc::transport::TransportError;

use crate::connection::Status;
use crate::ui::{ConnectionState, Labels, StatusView};

/// Shown where a value is unknown (not connected).
const UNKNOWN: &str = "–";

/// The texts that depend only on the language.
pub fn labels(lang: Lang) -> Labels {
    Labels {
        heading: lang
            .pick(
                "Elektronische Patientenakte (ePA)",
                "Electronic health record (ePA)",
            )
            .into(),
        daemon_version: lang
            .pick("Version des Dienstes:", "Service version:")
            .into(),
        protocol_version: lang.pick("Protokollversion:", "Protocol version:").into(),
        environment: lang.pick("Umgebung:", "Environment:").into(),
        connected_clients: lang
            .pick("Verbundene Programme:", "Connected clients:")
            .into(),
    }
}

/// What the window shows for `status`.
pub fn render(status: &Status, lang: Lang) -> StatusView {
    let blank = |state, status: &str| StatusView {
        state,
        status: status.into(),
        daemon_version: UNKNOWN.into(),
        protocol_version: UNKNOWN.into(),
        environment: UNKNOWN.into(),
        connected_clients: UNKNOWN.into(),
        detail: "".into(),
        hint: "".into(),
    };
    match status {
        Status::Connecting => blank(
            ConnectionState::Connecting,
            lang.pick(
                "Verbinde mit dem ePA-Dienst …",
                "Connecting to the ePA service …",
            ),
        ),
        Status::Connected { info, state } => {
            // Shutting down is a transition, shown like connecting.
            let (conn, text) = if state.shutting_down {
                (
                    ConnectionState::Connecting,
                    lang.pick(
                        "Der ePA-Dienst wird beendet …",
                        "The ePA service is shutting down …",
                    ),
                )
            } else {
                (
                    ConnectionState::Connected,
                    lang.pick(
                        "Verbunden mit dem ePA-Dienst",
                        "Connected to the ePA service",
                    ),
                )
            };
            let environment = [&state.environment, &info.environment]
                .into_iter()
                .find(|e| !e.is_empty())
                .map_or(UNKNOWN, |e| e.as_str());
            StatusView {
                daemon_version: info.daemon_version.as_str().into(),
                protocol_version: info.protocol_version.to_string().into(),
                environment: environment.into(),
                connected_clients: state.connected_clients.to_string().into(),
                ..blank(conn, text)
            }
        }
        Status::Disconnected {
            message,
            retry_in_secs,
        } => {
            let text = match (retry_in_secs, lang) {
                (Some(n), Lang::De) => format!("Getrennt – neuer Versuch in {n} s"),
                (Some(n), Lang::En) => format!("Disconnected – retrying in {n} s"),
                (None, _) => lang.pick("Getrennt", "Disconnected").to_owned(),
            };
            StatusView {
                detail: message.text.as_str().into(),
                hint: message.hint.as_str().into(),
                ..blank(ConnectionState::Disconnected, &text)
            }
        }
    }
}

/// Why there is no socket to connect to at all (no runtime directory, unsafe location).
pub fn endpoint_problem(err: TransportError, lang: Lang) -> UserMessage {
    match err {
        TransportError::Insecure { .. } => describe(&ClientError::from(err), lang),
        other => UserMessage {
            text: match lang {
                Lang::De => format!("Der ePA-Dienst ist nicht auffindbar: {other}"),
                Lang::En => format!("Cannot locate the ePA service: {other}"),
            },
            hint: lang
                .pick(
                    "Starten Sie epa-desktop mit --socket PFAD (in einem Verzeichnis, auf das nur Sie zugreifen können).",
                    "Start epa-desktop with --socket PATH (in a directory only you can access).",
                )
                .to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use epa_ipc::types::{DaemonInfo, DaemonState};

    fn connected(shutting_down: bool) -> Status {
        Status::Connected {
            info: Box::new(DaemonInfo {
                daemon_version: "0.1.0".into(),
                protocol_version: 1,
                environment: "ru".into(),
                uptime_ms: 5,
                pid: 42,
                environment_info: None,
            }),
            state: DaemonState {
                environment: "demo".into(),
                connected_clients: 3,
                shutting_down,
                ..DaemonState::default()
            },
        }
    }

    #[test]
    fn connected_shows_the_daemon() {
        let v = render(&connected(false), Lang::De);
        assert_eq!(v.state, ConnectionState::Connected);
        assert_eq!(v.status, "Verbunden mit dem ePA-Dienst");
        assert_eq!(v.daemon_version, "0.1.0");
        assert_eq!(v.protocol_version, "1");
        assert_eq!(v.environment, "demo");
        assert_eq!(v.connected_clients, "3");
        assert_eq!(v.hint, "");
        let en = render(&connected(false), Lang::En);
        assert_eq!(en.status, "Connected to the ePA service");
    }

    #[test]
    fn shutting_down_is_a_transition() {
        let v = render(&connected(true), Lang::En);
        assert_eq!(v.state, ConnectionState::Connecting);
        assert_eq!(v.status, "The ePA service is shutting down …");
    }

    #[test]
    fn connecting_hides_stale_values() {
        let v = render(&Status::Connecting, Lang::De);
        assert_eq!(v.state, ConnectionState::Connecting);
        assert_eq!(v.status, "Verbinde mit dem ePA-Dienst …");
        assert_eq!(v.daemon_version, UNKNOWN);
        assert_eq!(v.connected_clients, UNKNOWN);
    }

    #[test]
    fn disconnected_shows_countdown_error_and_hint() {
        let message = UserMessage {
            text: "kaputt".into(),
            hint: "neu starten".into(),
        };
        let status = |retry_in_secs| Status::Disconnected {
            message: message.clone(),
            retry_in_secs,
        };
        let v = render(&status(Some(3)), Lang::De);
        assert_eq!(v.state, ConnectionState::Disconnected);
        assert_eq!(v.status, "Getrennt – neuer Versuch in 3 s");
        assert_eq!(v.detail, "kaputt");
        assert_eq!(v.hint, "neu starten");
        assert_eq!(v.daemon_version, UNKNOWN);
        assert_eq!(
            render(&status(Some(1)), Lang::En).status,
            "Disconnected – retrying in 1 s"
        );
        assert_eq!(render(&status(None), Lang::De).status, "Getrennt");
    }

    #[test]
    fn labels_in_both_languages() {
        let de = labels(Lang::De);
        let en = labels(Lang::En);
        assert_eq!(de.heading, "Elektronische Patientenakte (ePA)");
        assert_ne!(de.daemon_version, en.daemon_version);
        assert_ne!(de.connected_clients, en.connected_clients);
    }

    #[test]
    fn endpoint_problems_explain_and_hint() {
        let m = endpoint_problem(TransportError::NoRuntimeDir, Lang::De);
        assert!(m.text.starts_with("Der ePA-Dienst ist nicht auffindbar"));
        assert!(m.hint.contains("--socket"));
        let insecure = TransportError::Insecure {
            path: "/tmp/x".into(),
            problem: "is world-writable".into(),
        };
        assert!(
            endpoint_problem(insecure, Lang::En)
                .text
                .starts_with("Refused for safety")
        );
    }
}
