//! Human texts of the ePA journey: the state, its next step, the login's QR code, times.

use std::time::{SystemTime, UNIX_EPOCH};

use epa_ipc::i18n::Lang;
use epa_ipc::types::{Device, EpaPhase, EpaState, PendingDevice, PendingLogin, RecordProfile};

use crate::output::{Output, clean};

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A point in time for people: `2026-03-01 14:05 UTC` (no time-zone database at hand, so UTC,
/// said plainly).
pub fn format_time(unix: u64) -> String {
    epa_ipc::present::format_time_utc(unix)
}

pub fn profile_text(out: &Output, p: &RecordProfile) -> String {
    format!(
        "{}, {} {}",
        clean(&p.insurer),
        out.t("Versichertennummer", "insurance number"),
        clean(&p.kvnr)
    )
}

/// The QR code, the link, and what to do with them.
pub fn login_block(out: &Output, l: &PendingLogin) -> String {
    let mut lines = Vec::new();
    if !l.qr_text.trim().is_empty() {
        // Our own daemon rendered it for a terminal: printed as it is.
        lines.push(l.qr_text.trim_end().to_owned());
    }
    lines.push(
        out.t(
            "Scannen Sie den QR-Code mit der App Ihrer Krankenkasse (Ident-App) und bestätigen Sie die Anmeldung dort.",
            "Scan the QR code with your health insurer's app (ident app) and confirm the login there.",
        )
        .to_owned(),
    );
    lines.push(
        out.t(
            "Alternativ: Öffnen Sie diesen Link im Browser (oder `epa login --open`):",
            "Alternatively open this link in the browser (or `epa login --open`):",
        )
        .to_owned(),
    );
    lines.push(format!("  {}", clean(&l.authorization_url)));
    if l.expires_unix != 0 {
        lines.push(format!(
            "{} {}.",
            out.t("Gültig bis", "Valid until"),
            format_time(l.expires_unix)
        ));
    }
    lines.join("\n")
}

fn device_block(out: &Output, d: &PendingDevice) -> String {
    let to = if d.masked_addresses.is_empty() {
        out.t(
            "Ihre hinterlegte E-Mail-Adresse",
            "your e-mail address on file",
        )
        .to_owned()
    } else {
        d.masked_addresses
            .iter()
            .map(|a| clean(a))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = clean(&d.device_name);
    let mut lines = vec![match out.lang {
        Lang::De => format!("Dieser PC wird als Gerät „{name}“ registriert."),
        Lang::En => format!("This PC is being registered as device \"{name}\"."),
    }];
    let valid = (d.code_valid_until_unix != 0).then(|| format_time(d.code_valid_until_unix));
    lines.push(match (out.lang, valid) {
        (Lang::De, Some(v)) => {
            format!("Ein Bestätigungscode wurde per E-Mail gesendet an {to} (gültig bis {v}).")
        }
        (Lang::De, None) => format!("Ein Bestätigungscode wurde per E-Mail gesendet an {to}."),
        (Lang::En, Some(v)) => {
            format!("A confirmation code was e-mailed to {to} (valid until {v}).")
        }
        (Lang::En, None) => format!("A confirmation code was e-mailed to {to}."),
    });
    if d.tries_left != 0 {
        lines.push(match out.lang {
            Lang::De => format!("Noch {} Versuch(e).", d.tries_left),
            Lang::En => format!("{} attempt(s) left.", d.tries_left),
        });
    }
    lines.push(
        out.t(
            "Code aus der E-Mail eingeben: `epa device confirm`",
            "Enter the code from the e-mail: `epa device confirm`",
        )
        .to_owned(),
    );
    lines.join("\n")
}

/// Where the journey stands and what to do next.
pub fn state_text(out: &Output, s: &EpaState) -> String {
    let mut lines = Vec::new();
    match s.phase {
        EpaPhase::NoProfile => {
            lines.push(
                out.t(
                    "Für diesen Benutzer ist noch keine ePA verbunden.",
                    "No ePA is connected for this user yet.",
                )
                .to_owned(),
            );
            lines.push(
                out.t(
                    "ePA verbinden: `epa epa connect --insurer \"AOK PLUS\" --kvnr X123456789` (Krankenkassen: `epa epa insurers`)",
                    "Connect your ePA: `epa epa connect --insurer \"AOK PLUS\" --kvnr X123456789` (insurers: `epa epa insurers`)",
                )
                .to_owned(),
            );
        }
        EpaPhase::LoggedOut => {
            lines.push(format!(
                "{} {}",
                out.t("ePA:", "ePA:"),
                s.profile
                    .as_ref()
                    .map(|p| profile_text(out, p))
                    .unwrap_or_default()
            ));
            lines.push(out.t("Nicht angemeldet.", "Not logged in.").to_owned());
            if let Some(r) = &s.login_required_reason {
                lines.push(format!(
                    "{} ({}: {}).",
                    out.t("Die Sitzung wurde beendet", "The session was ended"),
                    out.t("Grund", "reason"),
                    clean(r)
                ));
            }
            lines.push(
                out.t(
                    "Anmelden mit der Ident-App Ihrer Krankenkasse: `epa login`",
                    "Log in with your insurer's ident app: `epa login`",
                )
                .to_owned(),
            );
        }
        EpaPhase::AwaitingIdentApp => {
            lines.push(
                out.t(
                    "Die Anmeldung wartet auf die Ident-App.",
                    "The login is waiting for the ident app.",
                )
                .to_owned(),
            );
            if let Some(l) = &s.login {
                lines.push(login_block(out, l));
            }
        }
        EpaPhase::DeviceCodeSent => {
            lines.push(
                out.t(
                    "Angemeldet, aber dieser PC ist noch nicht als Gerät freigeschaltet.",
                    "Logged in, but this PC is not yet activated as a device.",
                )
                .to_owned(),
            );
            match &s.device {
                Some(d) => lines.push(device_block(out, d)),
                None => lines.push(
                    out.t(
                        "Code aus der E-Mail eingeben: `epa device confirm`",
                        "Enter the code from the e-mail: `epa device confirm`",
                    )
                    .to_owned(),
                ),
            }
        }
        EpaPhase::ReloginRequired => {
            lines.push(
                out.t(
                    "Dieser PC ist bestätigt. Melden Sie sich zum Abschluss noch einmal mit der Ident-App an.",
                    "This PC is confirmed. To finish, log in once more with the ident app.",
                )
                .to_owned(),
            );
            match &s.login {
                Some(l) => {
                    lines.push(login_block(out, l));
                    lines.push(
                        out.t(
                            "`epa login` wartet auf den Abschluss und zeigt das Ergebnis.",
                            "`epa login` waits for it to complete and shows the result.",
                        )
                        .to_owned(),
                    );
                }
                None => lines.push(
                    out.t("Erneut anmelden: `epa login`", "Log in again: `epa login`")
                        .to_owned(),
                ),
            }
        }
        EpaPhase::LoggedIn => {
            lines.push(match &s.display_name {
                Some(who) => format!(
                    "{} {}.",
                    out.t("Bei der ePA angemeldet als", "Logged in to the ePA as"),
                    clean(who)
                ),
                None => out
                    .t("Bei der ePA angemeldet.", "Logged in to the ePA.")
                    .to_owned(),
            });
            if let Some(p) = &s.profile {
                let mut line = profile_text(out, p);
                if let Some(a) = &s.aktensystem {
                    line.push_str(&format!(
                        ", {} {}",
                        out.t("Aktensystem", "record system"),
                        clean(a)
                    ));
                }
                lines.push(line);
            }
            if s.relogin_skipped {
                lines.push(
                    out.t(
                        "Eine erneute Anmeldung nach der Gerätebestätigung war nicht nötig: die ePA hat sofort vollen Zugriff gewährt.",
                        "No second login was needed after confirming the device: the ePA granted full access right away.",
                    )
                    .to_owned(),
                );
            }
        }
    }
    lines.join("\n")
}

pub fn device_line(out: &Output, d: &Device) -> String {
    let status = match d.status.as_str() {
        "confirmed" => out.t("bestätigt", "confirmed").to_owned(),
        "pending" => out.t("wartet auf Code", "waiting for code").to_owned(),
        other => clean(other),
    };
    let mut line = format!(
        "{}  „{}“  {status}, {} {}",
        clean(&d.identifier),
        clean(&d.display_name),
        out.t("angelegt", "created"),
        format_time(d.created_unix)
    );
    if let Some(t) = d.last_used_unix {
        line.push_str(&format!(
            ", {} {}",
            out.t("zuletzt genutzt", "last used"),
            format_time(t)
        ));
    }
    if d.this_device {
        line.push_str(out.t("  [dieser PC]", "  [this PC]"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(lang: Lang) -> Output {
        Output::new(false, lang)
    }

    fn state(phase: EpaPhase) -> EpaState {
        EpaState {
            phase,
            profile: Some(RecordProfile {
                insurer: "AOK PLUS".into(),
                kvnr: "X110411675".into(),
            }),
            aktensystem: None,
            login: None,
            device: None,
            display_name: None,
            login_required_reason: None,
            relogin_skipped: false,
        }
    }

    fn login() -> PendingLogin {
        PendingLogin {
            authorization_url: "https://idp.example/auth?request_uri=urn:x".into(),
            qr_png: vec![1, 2, 3],
            qr_text: "██ ██\n█ █ █\n".into(),
            expires_unix: 1_767_225_600,
            completes_without_browser: true,
        }
    }

    #[test]
    fn times_are_utc_and_say_so() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_767_225_599), "2025-12-31 23:59 UTC");
        assert_eq!(format_time(1_772_374_020), "2026-03-01 14:07 UTC");
    }

    #[test]
    fn every_phase_names_its_next_step_in_german_and_english() {
        let next = [
            (EpaPhase::NoProfile, "epa epa connect"),
            (EpaPhase::LoggedOut, "epa login"),
            (EpaPhase::AwaitingIdentApp, "QR"),
            (EpaPhase::DeviceCodeSent, "epa device confirm"),
            (EpaPhase::ReloginRequired, "epa login"),
            (EpaPhase::LoggedIn, "X110411675"),
        ];
        for (phase, step) in next {
            let mut s = state(phase);
            if matches!(
                phase,
                EpaPhase::AwaitingIdentApp | EpaPhase::ReloginRequired
            ) {
                s.login = Some(login());
            }
            let de = state_text(&out(Lang::De), &s);
            let en = state_text(&out(Lang::En), &s);
            assert!(de.contains(step), "{phase:?}: {de}");
            assert!(en.contains(step), "{phase:?}: {en}");
            assert_ne!(de, en);
        }
    }

    #[test]
    fn the_login_shows_qr_url_and_instructions() {
        let mut s = state(EpaPhase::AwaitingIdentApp);
        s.login = Some(login());
        let de = state_text(&out(Lang::De), &s);
        assert!(de.contains("██ ██\n█ █ █"), "{de}");
        assert!(de.contains("Scannen Sie den QR-Code mit der App Ihrer Krankenkasse"));
        assert!(de.contains("https://idp.example/auth?request_uri=urn:x"));
        assert!(de.contains("im Browser"));
        assert!(de.contains("2026-01-01 00:00 UTC"));
        let en = state_text(&out(Lang::En), &s);
        assert!(en.contains("Scan the QR code"), "{en}");
    }

    #[test]
    fn the_device_step_names_the_masked_addresses_and_tries() {
        let mut s = state(EpaPhase::DeviceCodeSent);
        s.device = Some(PendingDevice {
            device_name: "laptop".into(),
            masked_addresses: vec!["m***@example.invalid".into()],
            code_valid_until_unix: 1_767_225_600,
            tries_left: 5,
        });
        let de = state_text(&out(Lang::De), &s);
        assert!(de.contains("m***@example.invalid"), "{de}");
        assert!(de.contains("„laptop“"), "{de}");
        assert!(de.contains("Noch 5 Versuch(e)."), "{de}");
        assert!(de.contains("Code aus der E-Mail eingeben: `epa device confirm`"));
    }

    #[test]
    fn logged_in_names_the_person_without_terminal_tricks() {
        let mut s = state(EpaPhase::LoggedIn);
        s.display_name = Some("Maria\u{1b}[31m Muster".into());
        s.relogin_skipped = true;
        let de = state_text(&out(Lang::De), &s);
        assert!(
            de.contains("Bei der ePA angemeldet als Maria?[31m Muster."),
            "{de}"
        );
        assert!(de.contains("nicht nötig"), "{de}");
        assert!(!de.contains('\u{1b}'));
    }

    #[test]
    fn devices_are_one_line_each() {
        let d = Device {
            identifier: "dev-1".into(),
            display_name: "Arbeits-PC".into(),
            status: "confirmed".into(),
            created_unix: 0,
            last_used_unix: None,
            this_device: true,
        };
        let de = device_line(&out(Lang::De), &d);
        assert_eq!(
            de,
            "dev-1  „Arbeits-PC“  bestätigt, angelegt 1970-01-01 00:00 UTC  [dieser PC]"
        );
    }
}
