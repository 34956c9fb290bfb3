//! User-facing texts: German first, English available. Clients pick the language; the daemon
//! only sends stable reasons.

use crate::{ClientError, Reason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    De,
    En,
}

impl Lang {
    /// From `--lang` or the locale variables (`LC_ALL`, `LC_MESSAGES`, `LANG`, first set wins):
    /// English only when the locale asks for it, German otherwise.
    pub fn detect(explicit: Option<&str>) -> Self {
        if let Some(l) = explicit {
            return Self::parse(l).unwrap_or_default();
        }
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .and_then(|v| Self::parse(&v))
            .unwrap_or_default()
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        if s.starts_with("de") {
            Some(Lang::De)
        } else if s.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// Picks the text for this language.
    pub fn pick<'a>(self, de: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::De => de,
            Lang::En => en,
        }
    }
}

/// A message for a person: what happened, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage {
    pub text: String,
    pub hint: String,
}

/// Explains `err` in `lang`.
pub fn describe(err: &ClientError, lang: Lang) -> UserMessage {
    let m = |de: String, en: String, hde: &str, hen: &str| UserMessage {
        text: match lang {
            Lang::De => de,
            Lang::En => en,
        },
        hint: lang.pick(hde, hen).to_owned(),
    };
    match err {
        ClientError::NotRunning { path } => m(
            format!("Der ePA-Dienst (epad) läuft nicht ({}).", path.display()),
            format!(
                "The ePA service (epad) is not running ({}).",
                path.display()
            ),
            "Starten Sie ihn mit `epa daemon start` oder lassen Sie --no-autostart weg.",
            "Start it with `epa daemon start`, or drop --no-autostart.",
        ),
        ClientError::Incompatible {
            daemon,
            client,
            daemon_version,
            ..
        } => m(
            format!(
                "Der laufende ePA-Dienst (Version {daemon_version}, Protokoll {daemon}) passt nicht zu diesem Programm (Protokoll {client})."
            ),
            format!(
                "The running ePA service (version {daemon_version}, protocol {daemon}) does not match this program (protocol {client})."
            ),
            "Starten Sie den Dienst neu: `epa daemon stop`, dann erneut versuchen.",
            "Restart the service: `epa daemon stop`, then try again.",
        ),
        ClientError::Insecure { path, problem } => m(
            format!(
                "Aus Sicherheitsgründen verweigert: {} {problem}.",
                path.display()
            ),
            format!("Refused for safety: {} {problem}.", path.display()),
            "Nur Sie dürfen Zugriff auf dieses Verzeichnis und den Socket haben. Prüfen Sie Eigentümer und Rechte.",
            "Only you may have access to this directory and socket. Check owner and permissions.",
        ),
        ClientError::StartFailed { detail } => m(
            format!("Der ePA-Dienst konnte nicht gestartet werden: {detail}"),
            format!("The ePA service could not be started: {detail}"),
            "Starten Sie `epad` im Vordergrund, um die Meldungen zu sehen.",
            "Run `epad` in the foreground to see its messages.",
        ),
        ClientError::Transport(detail) => m(
            format!("Die Verbindung zum ePA-Dienst ist abgebrochen: {detail}"),
            format!("The connection to the ePA service broke: {detail}"),
            "Versuchen Sie es erneut; läuft der Dienst noch (`epa daemon status`)?",
            "Try again; is the service still running (`epa daemon status`)?",
        ),
        ClientError::Rpc {
            reason, message, ..
        } => {
            let (de, en, hde, hen) = reason_text(reason);
            m(
                format!("{de} ({message})"),
                format!("{en} ({message})"),
                hde,
                hen,
            )
        }
        ClientError::Malformed(detail) => m(
            format!("Unverständliche Antwort des ePA-Dienstes: {detail}"),
            format!("Unintelligible answer from the ePA service: {detail}"),
            "Client und Dienst passen vermutlich nicht zusammen; installieren Sie beide neu.",
            "Client and service probably do not match; reinstall both.",
        ),
    }
}

fn reason_text(reason: &Reason) -> (&'static str, &'static str, &'static str, &'static str) {
    match reason {
        Reason::ProtocolMismatch => (
            "Dienst und Programm sprechen verschiedene Protokollversionen",
            "Service and program speak different protocol versions",
            "Starten Sie den Dienst neu: `epa daemon stop`.",
            "Restart the service: `epa daemon stop`.",
        ),
        Reason::ShuttingDown => (
            "Der ePA-Dienst wird gerade beendet",
            "The ePA service is shutting down",
            "Versuchen Sie es gleich noch einmal.",
            "Try again in a moment.",
        ),
        Reason::Internal => (
            "Interner Fehler im ePA-Dienst",
            "Internal error in the ePA service",
            "Details stehen im Protokoll des Dienstes.",
            "Details are in the service's log.",
        ),
        Reason::Other(_) => (
            "Der ePA-Dienst hat die Anfrage abgelehnt",
            "The ePA service refused the request",
            "Aktualisieren Sie dieses Programm.",
            "Update this program.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_selection() {
        assert_eq!(Lang::detect(Some("en")), Lang::En);
        assert_eq!(Lang::detect(Some("de_DE.UTF-8")), Lang::De);
        assert_eq!(Lang::detect(Some("fr")), Lang::De);
        assert_eq!(Lang::parse("en_GB.UTF-8"), Some(Lang::En));
        assert_eq!(Lang::parse("C.UTF-8"), None);
    }

    #[test]
    fn every_message_has_a_hint_in_both_languages() {
        let errors = [
            ClientError::NotRunning { path: "/s".into() },
            ClientError::Incompatible {
                path: "/s".into(),
                daemon: 2,
                client: 1,
                daemon_version: "9".into(),
            },
            ClientError::Insecure {
                path: "/s".into(),
                problem: "x".into(),
            },
            ClientError::StartFailed { detail: "x".into() },
            ClientError::Transport("x".into()),
            ClientError::Malformed("x".into()),
            ClientError::Rpc {
                code: tonic::Code::Internal,
                reason: Reason::Internal,
                message: "x".into(),
                metadata: Default::default(),
            },
        ];
        for e in &errors {
            let de = describe(e, Lang::De);
            let en = describe(e, Lang::En);
            assert!(!de.hint.is_empty() && !en.hint.is_empty(), "{e:?}");
            assert_ne!(de.text, en.text, "{e:?}");
        }
    }
}
