//! Human text or stable JSON; errors with a hint and a fixed exit code.

use std::io::Write;
use std::process::ExitCode;

use epa_ipc::i18n::{self, Lang};
use epa_ipc::{ClientError, ErrorCategory};
use serde::Serialize;

pub struct Output {
    pub json: bool,
    pub lang: Lang,
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

pub fn exit_code(e: &ClientError) -> u8 {
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
        Self { json, lang }
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
            match serde_json::to_string_pretty(&obj) {
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
}
