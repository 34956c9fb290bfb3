//! `epa user create|list|login|lock|passwd|delete|terms`
//!
//! Passwords come from a no-echo prompt on the terminal or, with `--password-stdin`, one per
//! line from standard input — never from argv. The local-session token of `login` is kept in
//! `<socket>.session` (0600, in the private runtime directory) for the following commands.

use std::io::{BufRead, IsTerminal};

use clap::{Args, Subcommand};
use epa_ipc::types::TermsState;
use epa_ipc::{ClientError, Password, Reason};
use serde::Serialize;

use super::session::{forget_session, save_session, with_session};
use crate::Ctx;
use crate::output::{CliError, Output};

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a local user ("Neuen lokalen Benutzer anlegen").
    Create {
        name: String,
        #[command(flatten)]
        pw: PasswordSource,
    },
    /// List the local users of this PC.
    List,
    /// Log in (unlock the user's vault) for the following commands.
    Login {
        name: String,
        #[command(flatten)]
        pw: PasswordSource,
    },
    /// Log out: lock the vault, forget the session.
    Lock,
    /// Change the password of the logged-in user (stdin: old, then new password).
    Passwd {
        #[command(flatten)]
        pw: PasswordSource,
    },
    /// Delete a local user and everything stored for it on this PC.
    Delete {
        name: String,
        #[command(flatten)]
        pw: PasswordSource,
    },
    /// Show the terms of use and the other legal texts; `--accept` accepts the current version.
    Terms {
        /// Accept the current terms of use (needs `epa user login`).
        #[arg(long)]
        accept: bool,
    },
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password(s) from standard input, one per line, instead of prompting.
    #[arg(long)]
    password_stdin: bool,
}

/// Reads passwords one by one: stdin lines or no-echo prompts.
struct Passwords {
    stdin: Option<std::io::StdinLock<'static>>,
}

impl Passwords {
    fn new(src: &PasswordSource, out: &Output) -> Result<Self, CliError> {
        if src.password_stdin {
            return Ok(Self {
                stdin: Some(std::io::stdin().lock()),
            });
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Input {
                code: "NO_TERMINAL",
                text: out
                    .t(
                        "Kein Terminal, um nach dem Passwort zu fragen.",
                        "No terminal to ask for the password.",
                    )
                    .to_owned(),
                hint: out
                    .t(
                        "Übergeben Sie es mit --password-stdin (eine Zeile je Passwort).",
                        "Pass it with --password-stdin (one line per password).",
                    )
                    .to_owned(),
                usage: true,
            });
        }
        Ok(Self { stdin: None })
    }

    fn next(&mut self, prompt: &str, out: &Output) -> Result<Password, CliError> {
        let read = match &mut self.stdin {
            Some(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                    Ok(_) => {
                        // In place: the wiped buffer then also covers the cut-off newline.
                        let len = line.trim_end_matches(['\n', '\r']).len();
                        line.truncate(len);
                        return Ok(Password::new(line));
                    }
                    Err(e) => Err(e),
                }
            }
            None => rpassword::prompt_password(prompt),
        };
        read.map(Password::new).map_err(|e| {
            out.input_error(
                "PASSWORD_UNREADABLE",
                &format!("Das Passwort konnte nicht gelesen werden: {e}"),
                &format!("Could not read the password: {e}"),
                "Geben Sie es erneut ein oder nutzen Sie --password-stdin.",
                "Enter it again or use --password-stdin.",
            )
        })
    }

    /// A new password, asked twice on a terminal.
    fn new_password(&mut self, out: &Output) -> Result<Password, CliError> {
        let first = self.next(out.t("Neues Passwort: ", "New password: "), out)?;
        if self.stdin.is_some() {
            return Ok(first);
        }
        let second = self.next(
            out.t("Neues Passwort (Wiederholung): ", "Repeat new password: "),
            out,
        )?;
        if first.expose() != second.expose() {
            return Err(out.input_error(
                "PASSWORDS_DIFFER",
                "Die beiden Passwörter stimmen nicht überein.",
                "The two passwords differ.",
                "Geben Sie zweimal dasselbe Passwort ein.",
                "Enter the same password twice.",
            ));
        }
        Ok(first)
    }
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

fn terms_line(out: &Output, t: &TermsState) -> String {
    if t.acceptance_required {
        format!(
            "{} {}: `epa user terms --accept`",
            out.t(
                "Bitte lesen und akzeptieren Sie die Nutzungsbedingungen, Version",
                "Please read and accept the terms of use, version"
            ),
            t.current_version
        )
    } else {
        format!(
            "{} {}",
            out.t(
                "Nutzungsbedingungen angenommen, Version",
                "Terms of use accepted, version"
            ),
            t.current_version
        )
    }
}

pub async fn run(ctx: &Ctx, cmd: UserCmd) -> Result<(), CliError> {
    let out = &ctx.out;
    match cmd {
        UserCmd::Create { name, pw } => {
            let mut pws = Passwords::new(&pw, out)?;
            let password = pws.new_password(out)?;
            let user = ctx.connect().await?.create_user(&name, &password).await?;
            out.print(&user, || {
                format!(
                    "{} „{}“. {}",
                    out.t("Lokaler Benutzer angelegt:", "Local user created:"),
                    user.username,
                    out.t(
                        "Anmelden mit `epa user login NAME`.",
                        "Log in with `epa user login NAME`."
                    )
                )
            });
        }
        UserCmd::List => {
            let list = ctx.connect().await?.list_users().await?;
            out.print(&list, || {
                let mut lines: Vec<String> = list
                    .users
                    .iter()
                    .map(|u| {
                        format!(
                            "{}{}  ({}: {})",
                            u.username,
                            if u.unlocked {
                                out.t("  [angemeldet]", "  [logged in]")
                            } else {
                                ""
                            },
                            out.t("Nutzungsbedingungen", "terms of use"),
                            u.terms_accepted_version
                                .as_deref()
                                .unwrap_or(out.t("nicht angenommen", "not accepted")),
                        )
                    })
                    .collect();
                if lines.is_empty() {
                    lines.push(
                        out.t(
                            "Noch keine lokalen Benutzer. Anlegen mit `epa user create NAME`.",
                            "No local users yet. Create one with `epa user create NAME`.",
                        )
                        .to_owned(),
                    );
                }
                if list.damaged_entries > 0 {
                    lines.push(format!(
                        "{} {}",
                        list.damaged_entries,
                        out.t(
                            "beschädigte Einträge übersprungen.",
                            "damaged entries skipped."
                        )
                    ));
                }
                lines.join("\n")
            });
        }
        UserCmd::Login { name, pw } => {
            let mut pws = Passwords::new(&pw, out)?;
            let password = pws.next(out.t("Passwort: ", "Password: "), out)?;
            let client = ctx.connect().await?;
            let (token, unlocked) = client.unlock(&name, &password).await?;
            save_session(ctx, &token)?;
            out.print(&unlocked, || {
                format!(
                    "{} „{}“.\n{}",
                    out.t("Angemeldet als", "Logged in as"),
                    unlocked.user.username,
                    terms_line(out, &unlocked.terms)
                )
            });
        }
        UserCmd::Lock => {
            let result = with_session(ctx, |c| async move { c.lock().await }).await;
            forget_session(ctx);
            match result {
                // Already locked (idle timeout, restart): the goal is reached.
                Ok(())
                | Err(CliError::Client(ClientError::Rpc {
                    reason: Reason::Locked,
                    ..
                })) => {}
                Err(e) => return Err(e),
            }
            out.print(&Done { ok: true }, || {
                out.t("Abgemeldet.", "Logged out.").to_owned()
            });
        }
        UserCmd::Passwd { pw } => {
            let mut pws = Passwords::new(&pw, out)?;
            let old = pws.next(out.t("Bisheriges Passwort: ", "Current password: "), out)?;
            let new = pws.new_password(out)?;
            with_session(ctx, |c| async move { c.change_password(&old, &new).await }).await?;
            out.print(&Done { ok: true }, || {
                out.t("Passwort geändert.", "Password changed.").to_owned()
            });
        }
        UserCmd::Delete { name, pw } => {
            let mut pws = Passwords::new(&pw, out)?;
            let password = pws.next(
                out.t(
                    "Passwort (löscht den Benutzer und alle seine Daten auf diesem PC): ",
                    "Password (deletes the user and all its data on this PC): ",
                ),
                out,
            )?;
            ctx.connect().await?.delete_user(&name, &password).await?;
            out.print(&Done { ok: true }, || {
                format!("„{name}“ {}", out.t("wurde gelöscht.", "was deleted."))
            });
        }
        UserCmd::Terms { accept } => {
            let (texts, current) = ctx.connect().await?.legal_texts(out.lang).await?;
            if accept {
                let terms = with_session(ctx, |c| {
                    let v = current.clone();
                    async move { c.accept_terms(&v).await }
                })
                .await?;
                out.print(&terms, || terms_line(out, &terms));
            } else {
                out.print(&texts, || {
                    texts
                        .iter()
                        .map(|t| format!("# {} ({})\n\n{}", t.title, t.version, t.body.trim()))
                        .collect::<Vec<_>>()
                        .join("\n\n")
                });
            }
        }
    }
    Ok(())
}
