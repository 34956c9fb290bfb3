//! `epa login`, `epa open-url`, `epa logout`, `epa state [--watch]`: the ePA session of the
//! logged-in local user. The journey itself lives in the daemon; these commands show its state
//! and forward what the person does.
//!
//! `--json`: `login` and `state --watch` print NDJSON — one compact `EpaState` object per line,
//! a new line whenever the state changes (`login --no-wait`: exactly one line); `open-url`,
//! `logout` and `state` print one `EpaState` document. `qr_text` is included, the PNG is not.

use std::time::{Duration, Instant};

use clap::Args;
use epa_ipc::deeplink;
use epa_ipc::i18n::Lang;
use epa_ipc::types::{Change, EpaPhase, EpaState, Event};
use epa_ipc::{ClientError, DaemonClient, Reason};
use futures_util::StreamExt;

use super::session::{logged_in, session_error};
use crate::Ctx;
use crate::output::{CliError, Output};
use crate::render::{now_unix, state_text};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Den Anmelde-Link im Browser öffnen / open the login link in the system browser.
    #[arg(long)]
    open: bool,
    /// Nicht auf den Abschluss warten / do not wait for the login to complete.
    #[arg(long)]
    no_wait: bool,
    /// Höchstens so viele Sekunden auf jeden Anmeldeschritt warten / wait at most SECS per step.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    timeout: u64,
}

/// How long one `WaitLogin` call may block; the loop re-checks the state in between.
const WAIT_CHUNK: Duration = Duration::from_secs(60);
/// A pending login closer than this to its end is not worth showing again: a new one is started.
const REUSE_MARGIN_S: u64 = 20;

/// Prints states, each only once: NDJSON lines with `--json`, texts otherwise.
struct StatePrinter<'a> {
    out: &'a Output,
    last: Option<EpaState>,
    separate: bool,
}

impl<'a> StatePrinter<'a> {
    fn new(out: &'a Output) -> Self {
        Self {
            out,
            last: None,
            separate: false,
        }
    }

    /// Remembers `s`; false when it is what was shown last.
    fn is_new(&mut self, s: &EpaState) -> bool {
        if self.last.as_ref() == Some(s) {
            return false;
        }
        self.last = Some(s.clone());
        true
    }

    /// Prints `s` unless it is what was printed last.
    fn show(&mut self, s: &EpaState) {
        if !self.is_new(s) {
            return;
        }
        let out = self.out;
        let separate = self.separate;
        out.line(s, || {
            let text = state_text(out, s);
            if separate { format!("\n{text}") } else { text }
        });
        self.separate = true;
    }
}

fn waits_for_ident_app(s: &EpaState) -> bool {
    matches!(
        s.phase,
        EpaPhase::AwaitingIdentApp | EpaPhase::ReloginRequired
    )
}

/// A pending login that is still worth scanning: shown again instead of starting a new one
/// (a new one would invalidate a QR code that may already be on another screen).
fn reusable(s: &EpaState, now: u64) -> bool {
    waits_for_ident_app(s)
        && s.login
            .as_ref()
            .is_some_and(|l| l.expires_unix == 0 || l.expires_unix > now + REUSE_MARGIN_S)
}

fn login_url(s: &EpaState) -> Option<&str> {
    s.login.as_ref().map(|l| l.authorization_url.as_str())
}

pub async fn login(ctx: &Ctx, args: LoginArgs) -> Result<(), CliError> {
    let out = &ctx.out;
    let client = logged_in(ctx).await?;
    let call = |r: Result<EpaState, ClientError>| r.map_err(|e| session_error(ctx, e));
    let mut state = call(client.epa_state().await)?;
    let mut printer = StatePrinter::new(out);
    if state.phase == EpaPhase::LoggedIn {
        printer.show(&state);
        return Ok(());
    }
    if !reusable(&state, now_unix()) {
        state = call(client.start_login().await)?;
    }
    let timeout = Duration::from_secs(args.timeout);
    let mut deadline = Instant::now() + timeout;
    // The login whose link was opened / whose wait was announced.
    let mut handled_url: Option<String> = None;
    let mut started_here = false;
    loop {
        printer.show(&state);
        match state.phase {
            EpaPhase::LoggedIn | EpaPhase::DeviceCodeSent => return Ok(()),
            EpaPhase::NoProfile | EpaPhase::LoggedOut => return Err(login_ended(out)),
            EpaPhase::AwaitingIdentApp | EpaPhase::ReloginRequired => {}
        }
        let Some(url) = login_url(&state).map(str::to_owned) else {
            // Waiting for the ident app without a pending login: start one (once).
            if started_here {
                return Err(login_ended(out));
            }
            started_here = true;
            state = call(client.start_login().await)?;
            continue;
        };
        if handled_url.as_deref() != Some(url.as_str()) {
            // A new human step (first login or the re-login): its own time and link.
            if handled_url.is_some() {
                deadline = Instant::now() + timeout;
            }
            if args.open {
                open_in_browser(out, &url);
            }
            if !args.no_wait && !out.json {
                out.note(&match out.lang {
                    Lang::De => format!(
                        "Warte bis zu {} s auf die Anmeldung … (Strg+C beendet nur das Warten)",
                        args.timeout
                    ),
                    Lang::En => format!(
                        "Waiting up to {} s for the login … (Ctrl+C only stops the waiting)",
                        args.timeout
                    ),
                });
            }
            handled_url = Some(url);
        }
        if args.no_wait {
            return Ok(());
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(wait_timeout(out, args.timeout));
        }
        let chunk = remaining.min(WAIT_CHUNK).max(Duration::from_secs(1));
        state = call(client.wait_login(chunk).await)?;
    }
}

fn login_ended(out: &Output) -> CliError {
    out.input_error(
        "LOGIN_ENDED",
        "Die Anmeldung wurde beendet, ohne dass sie abgeschlossen wurde.",
        "The login ended without completing.",
        "Starten Sie sie erneut: `epa login`; `epa state` zeigt den Stand.",
        "Start it again: `epa login`; `epa state` shows where things stand.",
    )
}

fn wait_timeout(out: &Output, secs: u64) -> CliError {
    CliError::Input {
        code: "LOGIN_WAIT_TIMEOUT",
        text: match out.lang {
            Lang::De => format!("Die Anmeldung wurde nicht innerhalb von {secs} s abgeschlossen."),
            Lang::En => format!("The login did not complete within {secs} s."),
        },
        hint: out
            .t(
                "Solange der QR-Code gilt, läuft sie weiter: `epa login` wartet erneut, `epa state` zeigt den Stand.",
                "It goes on while the QR code is valid: `epa login` waits again, `epa state` shows where things stand.",
            )
            .to_owned(),
        usage: false,
    }
}

/// Opens the authorization URL in the browser; a failure is only a remark (the link is printed).
fn open_in_browser(out: &Output, url: &str) {
    if !url.starts_with("https://") {
        out.note(out.t(
            "Der Anmelde-Link ist kein https-Link und wird nicht geöffnet.",
            "The login link is not an https link and is not opened.",
        ));
        return;
    }
    if let Err(e) = epa_ipc::present::system_open(std::ffi::OsStr::new(url)).spawn() {
        out.note(&match out.lang {
            Lang::De => format!(
                "Der Browser konnte nicht geöffnet werden ({e}); öffnen Sie den Link selbst."
            ),
            Lang::En => format!("Could not open the browser ({e}); open the link yourself."),
        });
    }
}

/// The local check of `epa open-url`: what `parse_auth_callback` refuses never reaches the
/// daemon (exit code 2).
pub fn check_callback(out: &Output, url: &str) -> Result<(), CliError> {
    match deeplink::parse_auth_callback(url) {
        // The parsed code is dropped (and wiped) at once: the daemon parses the link itself.
        Ok(_) => Ok(()),
        Err(e) => {
            let problem = e.describe(out.lang);
            Err(CliError::Input {
                code: "CALLBACK_INVALID",
                text: match out.lang {
                    Lang::De => format!("Das ist kein Anmelde-Link von epa-desktop: {problem}."),
                    Lang::En => format!("This is not an epa-desktop login link: {problem}."),
                },
                hint: out
                    .t(
                        "Öffnen Sie nur den Link, den Ihre Krankenkasse nach der Anmeldung zurückgibt; bei Bedarf neu anmelden: `epa login`.",
                        "Only open the link your insurer hands back after the login; start again if needed: `epa login`.",
                    )
                    .to_owned(),
                usage: true,
            })
        }
    }
}

/// `epa open-url URL`: the forwarder the OS URL handler runs for `epa-desktop://` links.
///
/// The callback URL carries the OAuth authorization code, and it arrives in argv because that
/// is the only way an OS URL handler can hand it over. That is acceptable here, unlike for
/// passwords: the code is one-time (redeemed at once by the daemon, worthless afterwards),
/// lives for seconds (the IDP's codes expire after 60 s), and is bound to this login's `state`
/// and PKCE verifier, which only the daemon holds — another process that reads it from the
/// process list cannot redeem it. It is still never printed, not even in error messages.
pub async fn open_url(ctx: &Ctx, url: String) -> Result<(), CliError> {
    let out = &ctx.out;
    check_callback(out, &url)?;
    let client = logged_in(ctx).await?;
    let result = client.complete_login(&url).await;
    drop(url);
    let state = match result {
        Ok(state) => state,
        // The daemon noticed the approval by itself (IDP polling) before the browser's link
        // arrived: the link is no longer needed, which is no failure of the person's.
        Err(
            e @ ClientError::Rpc {
                reason: Reason::EpaWrongPhase,
                ..
            },
        ) => {
            let state = client
                .epa_state()
                .await
                .map_err(|e| session_error(ctx, e))?;
            if !login_already_done(&state) {
                return Err(e.into());
            }
            out.note(out.t(
                "Die Anmeldung war bereits abgeschlossen; der Link wird nicht mehr gebraucht.",
                "The login had already completed; the link is no longer needed.",
            ));
            state
        }
        Err(e) => return Err(session_error(ctx, e)),
    };
    out.print(&state, || state_text(out, &state));
    Ok(())
}

/// After a completed login: logged in, or waiting for the device code.
fn login_already_done(s: &EpaState) -> bool {
    matches!(s.phase, EpaPhase::LoggedIn | EpaPhase::DeviceCodeSent)
}

pub async fn logout(ctx: &Ctx) -> Result<(), CliError> {
    let out = &ctx.out;
    let client = logged_in(ctx).await?;
    let state = match client.epa_logout().await {
        Ok(s) => s,
        // Not logged in to the ePA: the goal is reached.
        Err(ClientError::Rpc {
            reason: Reason::EpaNotLoggedIn,
            ..
        }) => client
            .epa_state()
            .await
            .map_err(|e| session_error(ctx, e))?,
        Err(e) => return Err(session_error(ctx, e)),
    };
    out.print(&state, || {
        format!(
            "{}\n{}",
            out.t(
                "Von der ePA abgemeldet. Dieser PC bleibt als Gerät registriert; der lokale Benutzer bleibt angemeldet (`epa user lock` sperrt ihn).",
                "Logged out of the ePA. This PC stays registered as a device; the local user stays logged in (`epa user lock` locks it).",
            ),
            state_text(out, &state)
        )
    });
    Ok(())
}

pub async fn state(ctx: &Ctx, watch: bool) -> Result<(), CliError> {
    let out = &ctx.out;
    let client = logged_in(ctx).await?;
    if !watch {
        let state = client
            .epa_state()
            .await
            .map_err(|e| session_error(ctx, e))?;
        out.print(&state, || state_text(out, &state));
        return Ok(());
    }
    // Subscribe first, then read the state: no change can fall in between.
    let mut events = client.watch().await?;
    let mut printer = StatePrinter::new(out);
    refresh(ctx, &client, &mut printer).await?;
    while let Some(event) = events.next().await {
        let relevant = match event? {
            // A fresh snapshot (also after falling behind): anything may have changed.
            Event::Snapshot { .. } => true,
            Event::Delta { change, .. } => match change {
                // The event names only the local user; GetState with our token tells whether
                // it is ours (an unchanged state prints nothing).
                Change::EpaPhaseChanged { .. } | Change::UserLocked { .. } => true,
                Change::ShuttingDown => {
                    return Err(ClientError::Rpc {
                        code: epa_ipc::error::Code::Unavailable,
                        reason: Reason::ShuttingDown,
                        message: "the daemon is shutting down".into(),
                        metadata: Default::default(),
                    }
                    .into());
                }
                _ => false,
            },
        };
        if relevant {
            refresh(ctx, &client, &mut printer).await?;
        }
    }
    Err(ClientError::Transport("the daemon ended the event stream".into()).into())
}

async fn refresh(
    ctx: &Ctx,
    client: &DaemonClient,
    printer: &mut StatePrinter<'_>,
) -> Result<(), CliError> {
    let state = client
        .epa_state()
        .await
        .map_err(|e| session_error(ctx, e))?;
    printer.show(&state);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use epa_ipc::types::{PendingLogin, RecordProfile};

    fn out(lang: Lang) -> Output {
        Output::new(false, lang)
    }

    fn problem(url: &str, lang: Lang) -> (String, String, bool) {
        match check_callback(&out(lang), url) {
            Err(CliError::Input {
                code, text, usage, ..
            }) => (code.to_owned(), text, usage),
            other => panic!("accepted {url}: {other:?}"),
        }
    }

    #[test]
    fn only_login_callbacks_pass_and_refusals_never_repeat_the_code() {
        let secret = "SECRETCODE123";
        assert!(
            check_callback(
                &out(Lang::De),
                "epa-desktop://auth/callback?code=abc&state=xyz"
            )
            .is_ok()
        );
        assert!(
            check_callback(
                &out(Lang::De),
                "epa-desktop://auth/callback?error=access_denied&state=xyz"
            )
            .is_ok()
        );
        for url in [
            format!("https://evil.example/auth/callback?code={secret}&state=s"),
            format!("epa-desktop://auth/other?code={secret}&state=s"),
            format!("epa-desktop://auth/callback?code={secret}&state=s&redirect=x"),
            format!("epa-desktop://auth/callback?code={secret}&code={secret}&state=s"),
            format!("epa-desktop://auth/callback?code={secret}"),
            format!("epa-desktop://auth/callback?code={secret}%00&state=s"),
            format!("epa-desktop://user@auth/callback?code={secret}&state=s"),
            format!("epa-desktop://auth/callback?code={secret}&state=s#frag"),
        ] {
            for lang in [Lang::De, Lang::En] {
                let (code, text, usage) = problem(&url, lang);
                assert_eq!(code, "CALLBACK_INVALID");
                assert!(usage, "exit code 2");
                assert!(!text.contains(secret), "{text}");
            }
        }
        let (_, de, _) = problem("https://x/auth/callback?code=a&state=b", Lang::De);
        assert!(
            de.contains("kein Anmelde-Link") && de.contains("epa-desktop://"),
            "{de}"
        );
        let (_, en, _) = problem(
            "epa-desktop://auth/callback?code=a&state=b&x\u{1b}=1",
            Lang::En,
        );
        assert!(
            en.contains("not an epa-desktop login link") && !en.contains('\u{1b}'),
            "{en}"
        );
    }

    fn awaiting(url: &str, expires: u64) -> EpaState {
        EpaState {
            phase: EpaPhase::AwaitingIdentApp,
            profile: Some(RecordProfile {
                insurer: "AOK PLUS".into(),
                kvnr: "X110411675".into(),
            }),
            aktensystem: None,
            login: Some(PendingLogin {
                authorization_url: url.into(),
                qr_png: Vec::new(),
                qr_text: String::new(),
                expires_unix: expires,
                completes_without_browser: false,
            }),
            device: None,
            display_name: None,
            login_required_reason: None,
            relogin_skipped: false,
        }
    }

    #[test]
    fn a_pending_login_is_reused_while_it_is_worth_scanning() {
        let now = 1_000_000;
        assert!(reusable(&awaiting("https://a", now + 200), now));
        assert!(!reusable(&awaiting("https://a", now + 5), now));
        let mut s = awaiting("https://a", now + 200);
        s.phase = EpaPhase::ReloginRequired;
        assert!(reusable(&s, now));
        s.phase = EpaPhase::LoggedOut;
        assert!(!reusable(&s, now));
        s.phase = EpaPhase::AwaitingIdentApp;
        s.login = None;
        assert!(!reusable(&s, now));
    }

    #[test]
    fn the_printer_prints_each_state_once() {
        let o = Output::new(true, Lang::De);
        let mut p = StatePrinter::new(&o);
        let a = awaiting("https://a", 5);
        assert!(p.is_new(&a));
        assert!(!p.is_new(&a));
        assert!(p.is_new(&awaiting("https://b", 5)));
    }

    #[test]
    fn json_lines_carry_the_qr_text_but_not_the_png() {
        let mut s = awaiting("https://a", 5);
        if let Some(l) = s.login.as_mut() {
            l.qr_png = vec![0x89, b'P', b'N', b'G'];
            l.qr_text = "██".into();
        }
        let line = serde_json::to_string(&s).unwrap_or_default();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["phase"], "AWAITING_IDENT_APP");
        assert_eq!(v["login"]["qr_text"], "██");
        assert!(v["login"].get("qr_png").is_none());
    }

    #[test]
    fn the_browser_gets_the_url_as_one_argument() {
        let url = "https://idp.example/auth?a=1&b=$(rm -rf ~)";
        let cmd = epa_ipc::present::system_open(std::ffi::OsStr::new(url));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args.last().map(String::as_str), Some(url));
        let prog = cmd.get_program().to_string_lossy().into_owned();
        assert!(
            ["xdg-open", "open", "rundll32"].contains(&prog.as_str()),
            "{prog}"
        );
    }
}
