//! Human text or stable JSON; errors with a hint and a fixed exit code.

use std::io::Write;
use std::process::ExitCode;

use epa_ipc::i18n::{self, Lang};
use epa_ipc::{ClientError, ErrorCategory, Reason};
use serde::Serialize;

pub struct Output {
    pub json: bool,
    pub lang: Lang,
    /// NDJSON lines were printed: an error must then be one line too.
    ndjson: std::cell::Cell<bool>,
}

/// What a command can fail with: the daemon's answer, or the user's input.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Unusable input (already in the user's language): exit code 1, or 2 for usage.
    #[error("{text}")]
    Input {
        code: &'static str,
        text: String,
        hint: String,
        usage: bool,
    },
}

/// Exit codes (README.md lists them).
pub mod exit {
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DAEMON_UNAVAILABLE: u8 = 3;
    pub const NOT_LOGGED_IN: u8 = 4;
    pub const BACKEND_UNAVAILABLE: u8 = 5;
}

/// The exit code of a daemon error: the ePA journey's reasons are pinned one by one (their gRPC
/// codes are the daemon's business), everything else follows the error's category.
pub fn exit_code(e: &ClientError) -> u8 {
    if let ClientError::Rpc { reason, .. } = e {
        match reason {
            Reason::Locked | Reason::EpaNotLoggedIn => return exit::NOT_LOGGED_IN,
            Reason::BackendUnreachable | Reason::BackendError => {
                return exit::BACKEND_UNAVAILABLE;
            }
            // An argument of the command line is not acceptable: a usage error.
            Reason::KvnrInvalid
            | Reason::InsurerUnknown
            | Reason::CallbackInvalid
            | Reason::DeviceNameInvalid
            | Reason::ThisDeviceConfirmationRequired => return exit::USAGE,
            Reason::EpaProfileMissing
            | Reason::InsurerUnavailable
            | Reason::NoRecord
            | Reason::RecordNotActivated
            | Reason::EpaWrongPhase
            | Reason::LoginCancelled
            | Reason::LoginExpired
            | Reason::LoginRefused
            | Reason::DeviceCodeWrong
            | Reason::DeviceCodeExpired
            | Reason::DeviceRegistrationLocked
            | Reason::NoEmailAddress
            | Reason::DeviceNotFound => return exit::OTHER,
            // Documents: what the user typed or picked is not acceptable → usage.
            Reason::DocumentTooLarge
            | Reason::DocumentTypeUnsupported
            | Reason::DocumentTitleInvalid
            | Reason::DeleteNotConfirmed => return exit::USAGE,
            Reason::DocumentOffline => return exit::BACKEND_UNAVAILABLE,
            Reason::DocumentNotFound
            | Reason::UploadNotFound
            | Reason::DocumentRejected
            | Reason::DocumentCorrupt
            | Reason::PdfExportFailed => return exit::OTHER,
            _ => {}
        }
    }
    match e.category() {
        ErrorCategory::DaemonUnavailable => exit::DAEMON_UNAVAILABLE,
        ErrorCategory::NotLoggedIn => exit::NOT_LOGGED_IN,
        ErrorCategory::BackendUnavailable => exit::BACKEND_UNAVAILABLE,
        ErrorCategory::Rejected | ErrorCategory::Other => exit::OTHER,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    hint: String,
    exit_code: u8,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    error: ErrorBody<'a>,
}

/// Writes to stdout; a closed pipe (`epa ... | head`) is not an error worth a panic.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

impl Output {
    pub fn new(json: bool, lang: Lang) -> Self {
        Self {
            json,
            lang,
            ndjson: std::cell::Cell::new(false),
        }
    }

    pub fn t<'a>(&self, de: &'a str, en: &'a str) -> &'a str {
        self.lang.pick(de, en)
    }

    /// Prints `value` as JSON, or `human()` as text.
    pub fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(s) => emit(&format!("{s}\n")),
                Err(e) => eprintln!("epa: {e}"),
            }
        } else {
            emit(&format!("{}\n", human()));
        }
    }

    /// One compact JSON object per line (NDJSON, for commands that report several states), or
    /// `human()` as text.
    pub fn line<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            self.ndjson.set(true);
            match serde_json::to_string(value) {
                Ok(s) => emit(&format!("{s}\n")),
                Err(e) => eprintln!("epa: {e}"),
            }
        } else {
            emit(&format!("{}\n", human()));
        }
    }

    /// A remark for a person (never on stdout, so `--json` output stays clean).
    pub fn note(&self, text: &str) {
        eprintln!("{text}");
    }

    /// An input error in this output's language.
    pub fn input_error(
        &self,
        code: &'static str,
        de: &str,
        en: &str,
        hint_de: &str,
        hint_en: &str,
    ) -> CliError {
        CliError::Input {
            code,
            text: self.t(de, en).to_owned(),
            hint: self.t(hint_de, hint_en).to_owned(),
            usage: false,
        }
    }

    /// A usage error (exit code 2) in this output's language.
    pub fn usage_error(
        &self,
        code: &'static str,
        de: &str,
        en: &str,
        hint_de: &str,
        hint_en: &str,
    ) -> CliError {
        CliError::Input {
            code,
            text: self.t(de, en).to_owned(),
            hint: self.t(hint_de, hint_en).to_owned(),
            usage: true,
        }
    }

    pub fn fail(&self, e: &CliError) -> ExitCode {
        let (code_str, msg, code) = match e {
            CliError::Client(c) => (c.code(), i18n::describe(c, self.lang), exit_code(c)),
            CliError::Input {
                code,
                text,
                hint,
                usage,
            } => (
                *code,
                i18n::UserMessage {
                    text: text.clone(),
                    hint: hint.clone(),
                },
                if *usage { exit::USAGE } else { exit::OTHER },
            ),
        };
        if self.json {
            let obj = ErrorObject {
                error: ErrorBody {
                    code: code_str,
                    message: msg.text,
                    hint: msg.hint,
                    exit_code: code,
                },
            };
            let text = if self.ndjson.get() {
                serde_json::to_string(&obj)
            } else {
                serde_json::to_string_pretty(&obj)
            };
            match text {
                Ok(s) => emit(&format!("{s}\n")),
                Err(err) => eprintln!("epa: {err}"),
            }
        } else {
            eprintln!(
                "{}: {}\n{}: {}",
                self.t("Fehler", "Error"),
                msg.text,
                self.t("Hinweis", "Hint"),
                msg.hint
            );
        }
        ExitCode::from(code)
    }
}

/// Text from outside (IDP, Aktensystem, another process) made safe for a terminal: control
/// characters (escape sequences, line breaks) become `?`.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_documented_table() {
        use epa_ipc::error::Code;
        let not_running = ClientError::NotRunning { path: "/x".into() };
        assert_eq!(exit_code(&not_running), 3);
        let rpc = |code| ClientError::Rpc {
            code,
            reason: epa_ipc::Reason::Other("X".into()),
            message: String::new(),
            metadata: Default::default(),
        };
        assert_eq!(exit_code(&rpc(Code::Unauthenticated)), 4);
        assert_eq!(exit_code(&rpc(Code::Unavailable)), 5);
        assert_eq!(exit_code(&rpc(Code::InvalidArgument)), 1);
    }

    #[test]
    fn the_epa_reasons_have_fixed_exit_codes_whatever_the_grpc_code() {
        use epa_ipc::error::Code;
        let rpc = |code, reason: Reason| ClientError::Rpc {
            code,
            reason,
            message: String::new(),
            metadata: Default::default(),
        };
        for code in [Code::FailedPrecondition, Code::Unavailable, Code::Internal] {
            assert_eq!(exit_code(&rpc(code, Reason::EpaNotLoggedIn)), 4);
            assert_eq!(exit_code(&rpc(code, Reason::BackendUnreachable)), 5);
            assert_eq!(exit_code(&rpc(code, Reason::BackendError)), 5);
            assert_eq!(exit_code(&rpc(code, Reason::KvnrInvalid)), 2);
            assert_eq!(exit_code(&rpc(code, Reason::CallbackInvalid)), 2);
            assert_eq!(exit_code(&rpc(code, Reason::NoRecord)), 1);
            assert_eq!(exit_code(&rpc(code, Reason::DeviceCodeWrong)), 1);
            assert_eq!(exit_code(&rpc(code, Reason::LoginExpired)), 1);
        }
        // Every reason of the journey is pinned, so a daemon's choice of gRPC code cannot move it.
        let journey = Reason::KNOWN
            .iter()
            .skip_while(|r| **r != Reason::EpaProfileMissing);
        for r in journey {
            let a = exit_code(&rpc(Code::Unavailable, r.clone()));
            let b = exit_code(&rpc(Code::InvalidArgument, r.clone()));
            assert_eq!(a, b, "{r:?}");
        }
    }

    #[test]
    fn outside_text_cannot_steer_the_terminal() {
        assert_eq!(clean("Maria\u{1b}[2J Muster\n"), "Maria?[2J Muster?");
        assert_eq!(clean("Zürich"), "Zürich");
    }
}
