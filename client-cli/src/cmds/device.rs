//! `epa device confirm|list|rename|rm`: this PC's activation and the record's devices.
//!
//! The confirmation code is not a password (six digits from an e-mail, valid for hours, a few
//! tries): it may be typed with echo, or come as one line on stdin (`--code-stdin`). Like every
//! secret it never comes from argv and is never printed.

use std::io::{BufRead, IsTerminal, Write};

use clap::Subcommand;
use epa_ipc::i18n::Lang;
use serde::Serialize;

use super::session::with_session;
use crate::Ctx;
use crate::output::{CliError, Output, clean};
use crate::render::{device_line, state_text};

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// Diesen PC mit dem Code aus der E-Mail freischalten / activate this PC with the e-mailed code.
    Confirm {
        /// Den Code als eine Zeile von der Standardeingabe lesen / read the code from stdin.
        #[arg(long)]
        code_stdin: bool,
    },
    /// Die registrierten Geräte der ePA / the devices registered with the ePA.
    List,
    /// Ein Gerät umbenennen / rename a device.
    Rename {
        /// Kennung aus `epa device list` / identifier from `epa device list`.
        id: String,
        /// Neuer Name / new name.
        name: String,
    },
    /// Ein Gerät entfernen / remove a device.
    Rm {
        /// Kennung aus `epa device list` / identifier from `epa device list`.
        id: String,
        /// Auch diesen PC selbst entfernen (er verliert den vollen Zugriff) / also remove this PC.
        #[arg(long)]
        this_device: bool,
    },
}

#[derive(Serialize)]
struct DeviceList {
    devices: Vec<epa_ipc::types::Device>,
}

#[derive(Serialize)]
struct Removed {
    removed: bool,
    identifier: String,
}

/// The code as typed, if it is one: six digits; blanks and dashes between them are dropped.
pub fn parse_code(raw: &str) -> Option<String> {
    let code: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn read_code(out: &Output, from_stdin: bool) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if !from_stdin {
        if !stdin.is_terminal() {
            return Err(out.usage_error(
                "NO_TERMINAL",
                "Kein Terminal, um nach dem Code zu fragen.",
                "No terminal to ask for the code.",
                "Übergeben Sie ihn mit --code-stdin (eine Zeile).",
                "Pass it with --code-stdin (one line).",
            ));
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "{}",
            out.t(
                "Bestätigungscode aus der E-Mail (6 Ziffern): ",
                "Confirmation code from the e-mail (6 digits): "
            )
        )
        .and_then(|()| err.flush());
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let unreadable = |detail: String| CliError::Input {
        code: "DEVICE_CODE_UNREADABLE",
        text: match out.lang {
            Lang::De => format!("Der Code konnte nicht gelesen werden: {detail}"),
            Lang::En => format!("Could not read the code: {detail}"),
        },
        hint: out
            .t(
                "Geben Sie ihn erneut ein: `epa device confirm`.",
                "Enter it again: `epa device confirm`.",
            )
            .to_owned(),
        usage: false,
    };
    match read {
        Ok(0) => return Err(unreadable(out.t("keine Eingabe", "no input").to_owned())),
        Ok(_) => {}
        Err(e) => return Err(unreadable(e.to_string())),
    }
    parse_code(&line).ok_or_else(|| {
        out.input_error(
            "DEVICE_CODE_MALFORMED",
            "Der Bestätigungscode besteht aus sechs Ziffern.",
            "The confirmation code has six digits.",
            "Er steht in der E-Mail „Ihr Bestätigungscode für die ePA“. Es wurde kein Versuch verbraucht.",
            "It is in the e-mail \"Ihr Bestätigungscode für die ePA\". No attempt was used up.",
        )
    })
}

pub async fn run(ctx: &Ctx, cmd: DeviceCmd) -> Result<(), CliError> {
    let out = &ctx.out;
    match cmd {
        DeviceCmd::Confirm { code_stdin } => {
            let code = read_code(out, code_stdin)?;
            let state = with_session(ctx, |c| async move { c.confirm_device(&code).await }).await?;
            out.print(&state, || {
                format!(
                    "{}\n{}",
                    out.t("Code bestätigt.", "Code confirmed."),
                    state_text(out, &state)
                )
            });
        }
        DeviceCmd::List => {
            let devices = with_session(ctx, |c| async move { c.list_devices().await }).await?;
            let list = DeviceList { devices };
            out.print(&list, || {
                if list.devices.is_empty() {
                    return out
                        .t("Keine Geräte registriert.", "No devices registered.")
                        .to_owned();
                }
                list.devices
                    .iter()
                    .map(|d| device_line(out, d))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DeviceCmd::Rename { id, name } => {
            let device =
                with_session(ctx, |c| async move { c.rename_device(&id, &name).await }).await?;
            out.print(&device, || {
                format!(
                    "{} {}",
                    out.t("Gerät umbenannt:", "Device renamed:"),
                    device_line(out, &device)
                )
            });
        }
        DeviceCmd::Rm { id, this_device } => {
            let client = super::session::logged_in(ctx).await?;
            // Only to warn precisely; the daemon decides (and refuses this PC without the flag).
            let is_this = if this_device {
                client
                    .list_devices()
                    .await
                    .map(|l| l.iter().any(|d| d.identifier == id && d.this_device))
                    .unwrap_or(true)
            } else {
                false
            };
            if is_this {
                out.note(out.t(
                    "Achtung: Sie entfernen diesen PC aus Ihrer ePA. Er verliert den vollen Zugriff und muss danach neu freigeschaltet werden (`epa login`, Code per E-Mail).",
                    "Warning: you are removing this PC from your ePA. It loses full access and must be activated again afterwards (`epa login`, code by e-mail).",
                ));
            }
            client
                .remove_device(&id, this_device)
                .await
                .map_err(|e| super::session::session_error(ctx, e))?;
            let view = Removed {
                removed: true,
                identifier: id,
            };
            out.print(&view, || {
                format!(
                    "{} „{}“.",
                    out.t("Gerät entfernt:", "Device removed:"),
                    clean(&view.identifier)
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(parse_code("123456\n").as_deref(), Some("123456"));
        assert_eq!(parse_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(parse_code("123-456\r\n").as_deref(), Some("123456"));
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(parse_code(bad), None, "{bad}");
        }
    }
}
