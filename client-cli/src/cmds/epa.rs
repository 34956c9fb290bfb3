//! `epa epa insurers|connect`: which record this local user's ePA is ("ePA verbinden").

use clap::Subcommand;
use epa_ipc::types::EpaPhase;
use serde::Serialize;

use super::session::with_session;
use crate::Ctx;
use crate::output::{CliError, Output, clean};
use crate::render::{profile_text, state_text};

#[derive(Debug, Subcommand)]
pub enum EpaCmd {
    /// Krankenkassen, bei denen eine Anmeldung möglich ist / the insurers (available ones marked).
    Insurers,
    /// ePA verbinden: Krankenkasse und Versichertennummer / connect your ePA: insurer and KVNR.
    Connect {
        /// Ihre Krankenkasse, genau wie in `epa epa insurers` / your insurer, as listed.
        #[arg(long, value_name = "NAME")]
        insurer: String,
        /// Ihre Versichertennummer (Gesundheitskarte), z. B. X110411675 / your insurance number.
        #[arg(long, value_name = "KVNR")]
        kvnr: String,
    },
}

#[derive(Serialize)]
struct InsurerList {
    insurers: Vec<epa_ipc::types::Insurer>,
}

/// The KVNR as typed, tidied: surrounding blanks dropped, letters upper case.
pub fn normalize_kvnr(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

/// The shape of a KVNR (one capital letter, nine digits). The check digit is the daemon's call.
pub fn kvnr_shape_ok(kvnr: &str) -> bool {
    let b = kvnr.as_bytes();
    b.len() == 10 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

fn kvnr_usage_error(out: &Output) -> CliError {
    out.usage_error(
        "KVNR_INVALID",
        "Das ist keine Versichertennummer.",
        "That is not an insurance number.",
        "Die Versichertennummer steht auf Ihrer Gesundheitskarte: ein Großbuchstabe und neun Ziffern, z. B. X110411675.",
        "The insurance number is on your health card: one capital letter and nine digits, e.g. X110411675.",
    )
}

pub async fn run(ctx: &Ctx, cmd: EpaCmd) -> Result<(), CliError> {
    let out = &ctx.out;
    match cmd {
        EpaCmd::Insurers => {
            let insurers = with_session(ctx, |c| async move { c.list_insurers().await }).await?;
            let list = InsurerList { insurers };
            out.print(&list, || insurers_text(out, &list.insurers));
        }
        EpaCmd::Connect { insurer, kvnr } => {
            let kvnr = normalize_kvnr(&kvnr);
            if !kvnr_shape_ok(&kvnr) {
                return Err(kvnr_usage_error(out));
            }
            let insurer = insurer.trim().to_owned();
            let state = with_session(ctx, |c| async move {
                c.set_record_profile(&insurer, &kvnr).await
            })
            .await?;
            out.print(&state, || {
                let head = match &state.profile {
                    Some(p) => format!(
                        "{} {}",
                        out.t("ePA verbunden:", "ePA connected:"),
                        profile_text(out, p)
                    ),
                    None => out.t("ePA verbunden.", "ePA connected.").to_owned(),
                };
                let next = if state.phase == EpaPhase::LoggedOut {
                    out.t(
                        "Weiter: Anmelden mit der Ident-App Ihrer Krankenkasse: `epa login`",
                        "Next: log in with your insurer's ident app: `epa login`",
                    )
                    .to_owned()
                } else {
                    state_text(out, &state)
                };
                format!("{head}\n{next}")
            });
        }
    }
    Ok(())
}

fn insurers_text(out: &Output, insurers: &[epa_ipc::types::Insurer]) -> String {
    let mut lines = vec![
        out.t(
            "Krankenkassen (✓ = in dieser Umgebung anmeldbar):",
            "Insurers (✓ = login available in this environment):",
        )
        .to_owned(),
    ];
    for i in insurers {
        lines.push(format!(
            "  {} {}",
            if i.available { "✓" } else { " " },
            clean(&i.name)
        ));
    }
    if insurers.is_empty() {
        lines.push(out.t("  (keine)", "  (none)").to_owned());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvnr_shape() {
        assert!(kvnr_shape_ok("X110411675"));
        assert!(kvnr_shape_ok(&normalize_kvnr(" x110411675\n")));
        // A wrong check digit still has the shape: the daemon decides.
        assert!(kvnr_shape_ok("X110411676"));
        for bad in [
            "",
            "X11041167",
            "X1104116750",
            "1110411675",
            "XX10411675",
            "X11041167Ä",
        ] {
            assert!(!kvnr_shape_ok(&normalize_kvnr(bad)), "{bad}");
        }
    }

    #[test]
    fn insurers_are_marked() {
        let out = Output::new(false, epa_ipc::i18n::Lang::De);
        let text = insurers_text(
            &out,
            &[
                epa_ipc::types::Insurer {
                    name: "AOK PLUS".into(),
                    available: true,
                },
                epa_ipc::types::Insurer {
                    name: "DAK".into(),
                    available: false,
                },
            ],
        );
        assert!(text.contains("  ✓ AOK PLUS\n    DAK"), "{text}");
    }
}
