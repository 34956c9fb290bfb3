//! Pure conversions from daemon facts to what the window shows: the connection banner,
//! problems before any connection, refused deep links, the QR code image.

use epa_ipc::ClientError;
use epa_ipc::deeplink::DeepLinkError;
use epa_ipc::i18n::{Lang, UserMessage, describe};
use epa_ipc::transport::TransportError;

use crate::connection::Status;

/// (connected, banner text, hint). A healthy connection shows no banner.
pub fn banner(status: &Status, lang: Lang) -> (bool, String, String) {
    match status {
        Status::Connecting => (
            false,
            lang.pick(
                "Verbindung zum Hintergrunddienst wird hergestellt …",
                "Connecting to the background service …",
            )
            .to_owned(),
            String::new(),
        ),
        Status::Connected { state, .. } if state.shutting_down => (
            false,
            lang.pick(
                "Der Hintergrunddienst wird beendet …",
                "The background service is shutting down …",
            )
            .to_owned(),
            String::new(),
        ),
        Status::Connected { .. } => (true, String::new(), String::new()),
        Status::Disconnected {
            message,
            retry_in_secs,
        } => {
            let head = match (retry_in_secs, lang) {
                (Some(n), Lang::De) => {
                    format!("Keine Verbindung zum Hintergrunddienst – neuer Versuch in {n} s.")
                }
                (Some(n), Lang::En) => {
                    format!("No connection to the background service – retrying in {n} s.")
                }
                (None, _) => lang
                    .pick(
                        "Keine Verbindung zum Hintergrunddienst.",
                        "No connection to the background service.",
                    )
                    .to_owned(),
            };
            (
                false,
                head,
                format!("{} {}", message.text, message.hint)
                    .trim()
                    .to_owned(),
            )
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

/// Why a link handed to us is refused (never repeating the link: it may carry a code).
pub fn deeplink_refused(e: &DeepLinkError, lang: Lang) -> UserMessage {
    let problem = e.describe(lang);
    UserMessage {
        text: match lang {
            Lang::De => format!("Dieser Link wurde abgewiesen: {problem}."),
            Lang::En => format!("This link was refused: {problem}."),
        },
        hint: lang
            .pick(
                "Öffnen Sie nur den Link, den Ihre Krankenkasse nach der Anmeldung zurückgibt.",
                "Only open the link your insurer hands back after the login.",
            )
            .to_owned(),
    }
}

/// Decodes the daemon's QR code PNG into pixels for the window.
pub fn qr_image(png: &[u8]) -> Option<slint::Image> {
    if png.is_empty() {
        return None;
    }
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .ok()?
        .to_rgba8();
    let buffer = slint::SharedPixelBuffer::<slint::Rgba8Pixel>::clone_from_slice(
        img.as_raw(),
        img.width(),
        img.height(),
    );
    Some(slint::Image::from_rgba8(buffer))
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
                shutting_down,
                ..DaemonState::default()
            },
        }
    }

    #[test]
    fn banner_follows_the_connection() {
        assert_eq!(
            banner(&connected(false), Lang::De),
            (true, String::new(), String::new())
        );
        let (ok, text, _) = banner(&connected(true), Lang::En);
        assert!(!ok && text.contains("shutting down"));
        let (ok, text, _) = banner(&Status::Connecting, Lang::De);
        assert!(!ok && text.starts_with("Verbindung zum Hintergrunddienst"));
        let status = Status::Disconnected {
            message: UserMessage {
                text: "kaputt".into(),
                hint: "neu starten".into(),
            },
            retry_in_secs: Some(3),
        };
        let (ok, text, hint) = banner(&status, Lang::De);
        assert!(!ok);
        assert!(text.contains("neuer Versuch in 3 s"), "{text}");
        assert_eq!(hint, "kaputt neu starten");
    }

    #[test]
    fn endpoint_problems_explain_and_hint() {
        let m = endpoint_problem(TransportError::NoRuntimeDir, Lang::De);
        assert!(m.text.starts_with("Der ePA-Dienst ist nicht auffindbar"));
        assert!(m.hint.contains("--socket"));
    }

    #[test]
    fn refused_links_never_echo_the_link() {
        let e = epa_ipc::deeplink::parse_auth_callback(
            "epa-desktop://auth/callback?code=SECRET&state=s&evil=1",
        )
        .err();
        let Some(e) = e else {
            panic!("an unknown parameter must be refused");
        };
        let m = deeplink_refused(&e, Lang::De);
        assert!(
            m.text.starts_with("Dieser Link wurde abgewiesen"),
            "{}",
            m.text
        );
        assert!(!m.text.contains("SECRET"));
    }

    #[test]
    fn qr_png_decodes() {
        assert!(qr_image(&[]).is_none());
        assert!(qr_image(b"not a png").is_none());
    }
}
