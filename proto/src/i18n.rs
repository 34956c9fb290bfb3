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
            reason,
            message,
            metadata,
            ..
        } => {
            let (de, en, hde, hen) = reason_text(reason, metadata);
            let text = match lang {
                Lang::De => de,
                Lang::En => en,
            };
            UserMessage {
                // The daemon's own words only where our text is generic.
                text: if matches!(
                    reason,
                    Reason::Other(_) | Reason::Internal | Reason::StorageFailed
                ) {
                    format!("{text} ({message})")
                } else {
                    text
                },
                hint: match lang {
                    Lang::De => hde,
                    Lang::En => hen,
                },
            }
        }
        ClientError::Malformed(detail) => m(
            format!("Unverständliche Antwort des ePA-Dienstes: {detail}"),
            format!("Unintelligible answer from the ePA service: {detail}"),
            "Client und Dienst passen vermutlich nicht zusammen; installieren Sie beide neu.",
            "Client and service probably do not match; reinstall both.",
        ),
    }
}

fn reason_text(
    reason: &Reason,
    meta: &std::collections::BTreeMap<String, String>,
) -> (String, String, String, String) {
    let get = |k: &str| meta.get(k).map(String::as_str).unwrap_or("?");
    let t = |de: &str, en: &str, hde: &str, hen: &str| {
        (de.to_owned(), en.to_owned(), hde.to_owned(), hen.to_owned())
    };
    match reason {
        Reason::ProtocolMismatch => t(
            "Dienst und Programm sprechen verschiedene Protokollversionen.",
            "Service and program speak different protocol versions.",
            "Starten Sie den Dienst neu: `epa daemon stop`.",
            "Restart the service: `epa daemon stop`.",
        ),
        Reason::ShuttingDown => t(
            "Der ePA-Dienst wird gerade beendet.",
            "The ePA service is shutting down.",
            "Versuchen Sie es gleich noch einmal.",
            "Try again in a moment.",
        ),
        Reason::Internal => t(
            "Interner Fehler im ePA-Dienst.",
            "Internal error in the ePA service.",
            "Details stehen im Protokoll des Dienstes.",
            "Details are in the service's log.",
        ),
        Reason::StorageFailed => t(
            "Der lokale Speicher konnte nicht gelesen oder geschrieben werden.",
            "The local store could not be read or written.",
            "Prüfen Sie freien Speicherplatz und Rechte des Datenverzeichnisses; es ging nichts verloren, was bestätigt wurde.",
            "Check free disk space and the data directory's permissions; nothing acknowledged was lost.",
        ),
        Reason::UsernameInvalid => t(
            "Dieser Benutzername ist nicht zulässig.",
            "This user name is not allowed.",
            "Verwenden Sie 1 bis 64 Zeichen ohne Steuerzeichen und ohne Leerzeichen am Anfang oder Ende.",
            "Use 1 to 64 characters, no control characters, no spaces at the start or end.",
        ),
        Reason::UsernameTaken => t(
            "Diesen Benutzernamen gibt es auf diesem PC schon (Groß-/Kleinschreibung zählt nicht).",
            "This user name already exists on this PC (case does not matter).",
            "Wählen Sie einen anderen Namen oder melden Sie sich mit dem vorhandenen an.",
            "Choose another name, or log in with the existing one.",
        ),
        Reason::PasswordTooShort => t(
            "Das Passwort ist zu kurz.",
            "The password is too short.",
            "Verwenden Sie mindestens 10 Zeichen.",
            "Use at least 10 characters.",
        ),
        Reason::PasswordTooLong => t(
            "Das Passwort ist zu lang.",
            "The password is too long.",
            "Verwenden Sie höchstens 1024 Bytes.",
            "Use at most 1024 bytes.",
        ),
        Reason::PasswordEqualsUsername => t(
            "Das Passwort darf nicht der Benutzername sein.",
            "The password must not be the user name.",
            "Wählen Sie ein Passwort, das niemand erraten kann.",
            "Choose a password nobody can guess.",
        ),
        Reason::PasswordTooCommon => t(
            "Dieses Passwort ist zu verbreitet.",
            "This password is too common.",
            "Wählen Sie ein Passwort, das nicht auf Listen häufiger Passwörter steht, z. B. einen Satz aus mehreren Wörtern.",
            "Choose a password that is not on lists of common passwords, e.g. a sentence of several words.",
        ),
        Reason::UserNotFound => t(
            "Diesen lokalen Benutzer gibt es nicht.",
            "No such local user.",
            "`epa user list` zeigt die Benutzer dieses PCs; `epa user create` legt einen an.",
            "`epa user list` shows this PC's users; `epa user create` creates one.",
        ),
        Reason::WrongPassword => (
            "Das Passwort ist falsch.".to_owned(),
            "Wrong password.".to_owned(),
            format!(
                "Noch {} Versuch(e), danach müssen Sie jeweils länger warten.",
                get("failures_before_backoff")
            ),
            format!(
                "{} attempt(s) left before each retry means a growing wait.",
                get("failures_before_backoff")
            ),
        ),
        Reason::UnlockBackoff => (
            "Zu viele falsche Passwörter.".to_owned(),
            "Too many wrong passwords.".to_owned(),
            format!(
                "Versuchen Sie es in {} Sekunden erneut.",
                get("retry_after_s")
            ),
            format!("Try again in {} seconds.", get("retry_after_s")),
        ),
        Reason::Locked => t(
            "Sie sind nicht angemeldet (oder wurden wegen Inaktivität abgemeldet).",
            "You are not logged in (or were logged out after inactivity).",
            "Melden Sie sich an: `epa user login NAME`.",
            "Log in: `epa user login NAME`.",
        ),
        Reason::TermsNotAccepted => t(
            "Sie haben die aktuellen Nutzungsbedingungen noch nicht angenommen.",
            "You have not accepted the current terms of use yet.",
            "Lesen und akzeptieren Sie sie: `epa user terms --accept`.",
            "Read and accept them: `epa user terms --accept`.",
        ),
        Reason::TermsVersionUnknown => t(
            "Diese Version der Nutzungsbedingungen gibt es nicht.",
            "There is no such version of the terms of use.",
            "Akzeptieren Sie die aktuelle Version (`epa user terms`).",
            "Accept the current version (`epa user terms`).",
        ),
        Reason::VaultDamaged => t(
            "Ein Eintrag im verschlüsselten Speicher ist beschädigt.",
            "An entry in the encrypted store is damaged.",
            "Die übrigen Daten sind lesbar. Stellen Sie das Datenverzeichnis aus einer Sicherung wieder her, falls Sie eine haben.",
            "The other data is readable. Restore the data directory from a backup if you have one.",
        ),
        Reason::PreferenceInvalid => t(
            "Diese Einstellung ist nicht zulässig.",
            "This setting is not valid.",
            "Namen: 1–64 Zeichen aus a–z, 0–9, '.', '_', '-'; Werte höchstens 64 KiB.",
            "Names: 1–64 characters from a–z, 0–9, '.', '_', '-'; values at most 64 KiB.",
        ),
        Reason::EpaProfileMissing => t(
            "Für diesen Benutzer ist noch keine ePA verbunden.",
            "No ePA is connected for this user yet.",
            "Wählen Sie Ihre Krankenkasse und geben Sie Ihre Versichertennummer ein: `epa epa connect --insurer \"AOK PLUS\" --kvnr X123456789`.",
            "Choose your insurer and enter your insurance number: `epa epa connect --insurer \"AOK PLUS\" --kvnr X123456789`.",
        ),
        Reason::KvnrInvalid => t(
            "Diese Versichertennummer ist ungültig.",
            "This insurance number is not valid.",
            "Die Versichertennummer steht auf Ihrer Gesundheitskarte: ein Großbuchstabe und neun Ziffern, die letzte ist eine Prüfziffer.",
            "The insurance number is on your health card: one capital letter and nine digits, the last one a check digit.",
        ),
        Reason::InsurerUnknown => (
            format!("Die Krankenkasse „{}“ kennt dieses Programm nicht.", get("insurer")),
            format!("This program does not know the insurer \"{}\".", get("insurer")),
            "`epa epa insurers` zeigt die Liste; schreiben Sie den Namen genau so.".to_owned(),
            "`epa epa insurers` shows the list; write the name exactly like that.".to_owned(),
        ),
        Reason::InsurerUnavailable => (
            format!("Für „{}“ ist in dieser Umgebung keine Anmeldung möglich.", get("insurer")),
            format!("This environment offers no login for \"{}\".", get("insurer")),
            "In der Demo-Umgebung sind die AOKs, die TK und die BARMER eingerichtet.".to_owned(),
            "The demo environment has the AOKs, TK and BARMER.".to_owned(),
        ),
        Reason::NoRecord => t(
            "Für diese Versichertennummer gibt es noch keine ePA.",
            "There is no ePA for this insurance number yet.",
            "Noch keine ePA vorhanden? Ihre Krankenkasse legt sie an; haben Sie widersprochen, können Sie den Widerspruch bei ihr zurücknehmen. Prüfen Sie auch Kasse und Versichertennummer.",
            "No ePA yet? Your insurer creates it; if you objected, you can withdraw the objection with them. Also check insurer and insurance number.",
        ),
        Reason::RecordNotActivated => t(
            "Ihre ePA ist derzeit nicht nutzbar (z. B. gesperrt oder im Umzug).",
            "Your ePA cannot be used at the moment (e.g. suspended or being moved).",
            "Versuchen Sie es später erneut oder fragen Sie Ihre Krankenkasse.",
            "Try again later or ask your insurer.",
        ),
        Reason::EpaWrongPhase => (
            "Dieser Schritt passt gerade nicht.".to_owned(),
            "This step does not fit right now.".to_owned(),
            format!("Aktueller Stand: {}. `epa state` zeigt, was als Nächstes zu tun ist.", get("phase")),
            format!("Current state: {}. `epa state` shows what to do next.", get("phase")),
        ),
        Reason::CallbackInvalid => (
            "Dieser Link gehört zu keiner laufenden Anmeldung.".to_owned(),
            "This link does not belong to a login in progress.".to_owned(),
            "Starten Sie die Anmeldung neu (`epa login`) und öffnen Sie nur den Link, den Ihre Krankenkasse zurückgibt.".to_owned(),
            "Start the login again (`epa login`) and only open the link your insurer hands back.".to_owned(),
        ),
        Reason::LoginCancelled => t(
            "Die Anmeldung wurde in der Ident-App abgebrochen.",
            "The login was cancelled in the ident app.",
            "Starten Sie sie erneut: `epa login`.",
            "Start it again: `epa login`.",
        ),
        Reason::LoginExpired => t(
            "Die Anmeldung hat zu lange gedauert.",
            "The login took too long.",
            "Starten Sie sie erneut und bestätigen Sie zügig in der Ident-App: `epa login`.",
            "Start it again and confirm promptly in the ident app: `epa login`.",
        ),
        Reason::LoginRefused => (
            "Die ePA hat die Anmeldung abgelehnt.".to_owned(),
            "The ePA refused the login.".to_owned(),
            format!("Starten Sie die Anmeldung erneut (`epa login`); Fehlercode der ePA: {}.", get("error_code")),
            format!("Start the login again (`epa login`); the ePA's error code: {}.", get("error_code")),
        ),
        Reason::DeviceCodeWrong => (
            "Der Bestätigungscode ist falsch.".to_owned(),
            "The confirmation code is wrong.".to_owned(),
            format!("Noch {} Versuch(e). Der Code steht in der E-Mail „Ihr Bestätigungscode für die ePA“.", get("tries_left")),
            format!("{} attempt(s) left. The code is in the e-mail \"Ihr Bestätigungscode für die ePA\".", get("tries_left")),
        ),
        Reason::DeviceCodeExpired => t(
            "Der Bestätigungscode ist abgelaufen oder wurde zu oft falsch eingegeben.",
            "The confirmation code expired or was entered wrongly too often.",
            "Melden Sie sich erneut an; dieser PC wird dann neu registriert und Sie erhalten einen neuen Code.",
            "Log in again; this PC is then registered anew and you get a new code.",
        ),
        Reason::DeviceRegistrationLocked => (
            "Zu viele fehlgeschlagene Geräteregistrierungen.".to_owned(),
            "Too many failed device registrations.".to_owned(),
            format!("Eine neue Registrierung ist ab {} wieder möglich.", get("until")),
            format!("A new registration is possible again from {}.", get("until")),
        ),
        Reason::NoEmailAddress => t(
            "Für Ihre ePA ist keine E-Mail-Adresse hinterlegt, an die der Bestätigungscode gehen kann.",
            "Your ePA has no e-mail address for the confirmation code.",
            "Hinterlegen Sie bei Ihrer Krankenkasse eine E-Mail-Adresse und melden Sie sich dann erneut an.",
            "Give your insurer an e-mail address, then log in again.",
        ),
        Reason::DeviceNotFound => t(
            "Dieses Gerät gibt es in Ihrer ePA nicht (mehr).",
            "This device does not exist (any more) in your ePA.",
            "`epa device list` zeigt die registrierten Geräte.",
            "`epa device list` shows the registered devices.",
        ),
        Reason::DeviceNameInvalid => t(
            "Dieser Gerätename ist nicht zulässig.",
            "This device name is not allowed.",
            "Verwenden Sie 1 bis 80 Zeichen ohne Steuerzeichen.",
            "Use 1 to 80 characters without control characters.",
        ),
        Reason::ThisDeviceConfirmationRequired => t(
            "Das ist dieser PC: Nach dem Entfernen hat er keinen vollen Zugriff mehr auf die ePA.",
            "This is this PC: after removing it, it no longer has full access to the ePA.",
            "Bestätigen Sie ausdrücklich (`epa device rm ID --this-device`); danach müssen Sie den PC neu freischalten.",
            "Confirm explicitly (`epa device rm ID --this-device`); afterwards the PC must be activated again.",
        ),
        Reason::EpaNotLoggedIn => t(
            "Sie sind nicht bei Ihrer ePA angemeldet.",
            "You are not logged in to your ePA.",
            "Melden Sie sich mit der Ident-App Ihrer Krankenkasse an: `epa login`.",
            "Log in with your insurer's ident app: `epa login`.",
        ),
        Reason::BackendUnreachable => t(
            "Die ePA ist gerade nicht erreichbar.",
            "The ePA cannot be reached right now.",
            "Prüfen Sie die Internetverbindung und versuchen Sie es in einigen Minuten erneut.",
            "Check the internet connection and try again in a few minutes.",
        ),
        Reason::BackendError => (
            "Die ePA hat mit einem Fehler geantwortet.".to_owned(),
            "The ePA answered with an error.".to_owned(),
            format!("Versuchen Sie es später erneut; Fehlercode: {}.", get("error_code")),
            format!("Try again later; error code: {}.", get("error_code")),
        ),
        Reason::DocumentNotFound => t(
            "Dieses Dokument gibt es in Ihrer ePA nicht (mehr).",
            "This document is not (or no longer) in your ePA.",
            "Laden Sie die Liste neu: `epa docs ls`.",
            "Reload the list: `epa docs ls`.",
        ),
        Reason::DocumentTooLarge => (
            "Das Dokument ist zu groß.".to_owned(),
            "The document is too large.".to_owned(),
            format!("Erlaubt sind höchstens {} Bytes (25 MB).", get("max_bytes")),
            format!("At most {} bytes (25 MB) are allowed.", get("max_bytes")),
        ),
        Reason::DocumentTypeUnsupported => t(
            "Dieser Dateityp kann nicht in die ePA geladen werden.",
            "This file type cannot be added to the ePA.",
            "Erlaubt sind PDF, JPEG, PNG, TIFF und reiner Text.",
            "Allowed are PDF, JPEG, PNG, TIFF and plain text.",
        ),
        Reason::DocumentTitleInvalid => t(
            "Der Titel ist ungültig.",
            "The title is invalid.",
            "Verwenden Sie 1 bis 128 Zeichen ohne Steuerzeichen.",
            "Use 1 to 128 characters without control characters.",
        ),
        Reason::DeleteNotConfirmed => t(
            "Löschen muss ausdrücklich bestätigt werden.",
            "Deleting must be confirmed explicitly.",
            "Gelöschte Dokumente lassen sich nicht wiederherstellen; bestätigen Sie mit --yes.",
            "Deleted documents cannot be restored; confirm with --yes.",
        ),
        Reason::DocumentRejected => (
            "Die ePA hat das Dokument abgelehnt.".to_owned(),
            "The ePA refused the document.".to_owned(),
            format!("Fehlercode der ePA: {}.", get("error_code")),
            format!("The ePA's error code: {}.", get("error_code")),
        ),
        Reason::DocumentOffline => t(
            "Das Dokument ist nicht auf diesem PC gespeichert und die ePA ist nicht erreichbar.",
            "The document is not stored on this PC and the ePA cannot be reached.",
            "Versuchen Sie es erneut, sobald die Verbindung wieder besteht.",
            "Try again once the connection is back.",
        ),
        Reason::DocumentCorrupt => t(
            "Das heruntergeladene Dokument ist beschädigt (Größe oder Prüfsumme stimmt nicht).",
            "The downloaded document is damaged (size or checksum mismatch).",
            "Versuchen Sie es erneut; bleibt der Fehler, wenden Sie sich an Ihre Krankenkasse.",
            "Try again; if it persists, contact your insurer.",
        ),
        Reason::UploadNotFound => t(
            "Diesen Upload gibt es nicht.",
            "No such upload.",
            "`epa docs uploads` zeigt die wartenden Uploads.",
            "`epa docs uploads` shows the pending uploads.",
        ),
        Reason::PdfExportFailed => (
            "Das PDF konnte nicht erstellt werden.".to_owned(),
            "The PDF could not be created.".to_owned(),
            format!("Ursache: {}.", get("problem")),
            format!("Cause: {}.", get("problem")),
        ),
        Reason::Other(_) => t(
            "Der ePA-Dienst hat die Anfrage abgelehnt.",
            "The ePA service refused the request.",
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
    fn every_reason_has_its_own_text_in_both_languages() {
        let meta = std::collections::BTreeMap::new();
        for r in Reason::KNOWN {
            let (de, en, hde, hen) = reason_text(r, &meta);
            assert!(!de.is_empty() && !en.is_empty() && !hde.is_empty() && !hen.is_empty());
            assert_ne!(de, en, "{r:?}");
            if *r != Reason::Internal {
                assert_ne!(de, reason_text(&Reason::Internal, &meta).0, "{r:?}");
            }
        }
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
