//! Errors across the daemon boundary: a deliberate gRPC code plus a stable machine reason
//! (an [`pb::ErrorDetail`] in the status details), decoded into one typed client error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use prost::Message;

use crate::pb;

/// gRPC status codes, re-exported so clients need no tonic dependency.
pub use tonic::Code;

macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Stable machine reasons. The strings are part of the contract (CLI `--json`, scripts).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Reason {
            $($(#[$doc])* $variant,)*
            /// A reason this client does not know yet (newer daemon).
            Other(String),
        }

        impl Reason {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Reason::$variant => $text,)*
                    Reason::Other(s) => s,
                }
            }

            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => Reason::$variant,)*
                    other => Reason::Other(other.to_owned()),
                }
            }

            /// Every known reason (for exhaustive tests of texts and mappings).
            pub const KNOWN: &'static [Reason] = &[$(Reason::$variant,)*];
        }
    };
}

reasons! {
    /// Client and daemon speak different `epa.desktop` protocol versions.
    ProtocolMismatch = "PROTOCOL_MISMATCH",
    /// The daemon is shutting down and takes no new work.
    ShuttingDown = "SHUTTING_DOWN",
    /// A bug or an unexpected local failure in the daemon; details are in its log.
    Internal = "INTERNAL",
    /// Writing to or reading from the local store failed (disk full, I/O error).
    StorageFailed = "STORAGE_FAILED",
    UsernameInvalid = "USERNAME_INVALID",
    UsernameTaken = "USERNAME_TAKEN",
    PasswordTooShort = "PASSWORD_TOO_SHORT",
    PasswordTooLong = "PASSWORD_TOO_LONG",
    PasswordEqualsUsername = "PASSWORD_EQUALS_USERNAME",
    PasswordTooCommon = "PASSWORD_TOO_COMMON",
    UserNotFound = "USER_NOT_FOUND",
    /// Metadata: `failures_before_backoff`.
    WrongPassword = "WRONG_PASSWORD",
    /// Too many wrong passwords. Metadata: `retry_after_s`, `retry_at_unix`.
    UnlockBackoff = "UNLOCK_BACKOFF",
    /// No valid local session: unlock the user first (or again, after the idle timeout).
    Locked = "LOCKED",
    TermsNotAccepted = "TERMS_NOT_ACCEPTED",
    TermsVersionUnknown = "TERMS_VERSION_UNKNOWN",
    /// A record failed its integrity check.
    VaultDamaged = "VAULT_DAMAGED",
    PreferenceInvalid = "PREFERENCE_INVALID",
    // ---- the ePA journey (service Epa) ----
    /// No insurer/KVNR set for this local user yet ("ePA verbinden").
    EpaProfileMissing = "EPA_PROFILE_MISSING",
    /// The KVNR is malformed or its check digit is wrong.
    KvnrInvalid = "KVNR_INVALID",
    /// Not an insurer this build knows. Metadata: `insurer`.
    InsurerUnknown = "INSURER_UNKNOWN",
    /// Known insurer, but the environment offers no login for it. Metadata: `insurer`.
    InsurerUnavailable = "INSURER_UNAVAILABLE",
    /// No Aktensystem has a record for the KVNR ("Noch keine ePA vorhanden?").
    NoRecord = "NO_RECORD",
    /// The record exists but is not active (e.g. suspended); retry later.
    RecordNotActivated = "RECORD_NOT_ACTIVATED",
    /// The call does not fit the journey's phase. Metadata: `phase`.
    EpaWrongPhase = "EPA_WRONG_PHASE",
    /// The callback link is not a login callback (or not this login's). Metadata: `problem`.
    CallbackInvalid = "CALLBACK_INVALID",
    /// The ident app or the user ended the login. Metadata: `error`.
    LoginCancelled = "LOGIN_CANCELLED",
    /// The login took too long; start it again.
    LoginExpired = "LOGIN_EXPIRED",
    /// The ePA login failed at the Aktensystem. Metadata: `error_code`.
    LoginRefused = "LOGIN_REFUSED",
    /// Wrong confirmation code. Metadata: `tries_left`.
    DeviceCodeWrong = "DEVICE_CODE_WRONG",
    /// The code expired or was entered wrongly too often; the device must be registered again.
    DeviceCodeExpired = "DEVICE_CODE_EXPIRED",
    /// Too many failed registrations. Metadata: `until_unix`, `until` (RFC 3339).
    DeviceRegistrationLocked = "DEVICE_REGISTRATION_LOCKED",
    /// The record has no e-mail address for the confirmation code.
    NoEmailAddress = "NO_EMAIL_ADDRESS",
    DeviceNotFound = "DEVICE_NOT_FOUND",
    /// A device name must have 1–80 characters without control characters.
    DeviceNameInvalid = "DEVICE_NAME_INVALID",
    /// Removing this PC's own registration needs `confirm_this_device`.
    ThisDeviceConfirmationRequired = "THIS_DEVICE_CONFIRMATION_REQUIRED",
    /// No ePA session: log in first. Metadata: `login_required_reason` when it was lost.
    EpaNotLoggedIn = "EPA_NOT_LOGGED_IN",
    /// The Aktensystem, IDP or demo backend cannot be reached. Metadata: `retry_after_s`.
    BackendUnreachable = "BACKEND_UNREACHABLE",
    /// The backend answered with an error the daemon cannot resolve. Metadata: `error_code`.
    BackendError = "BACKEND_ERROR",
    // ---- documents (service Documents) ----
    /// No document with this id in the record (or it was deleted meanwhile).
    DocumentNotFound = "DOCUMENT_NOT_FOUND",
    /// The content exceeds the upload limit. Metadata: `max_bytes`.
    DocumentTooLarge = "DOCUMENT_TOO_LARGE",
    /// The content is none of PDF, JPEG, PNG, TIFF or plain text (detected from the bytes).
    DocumentTypeUnsupported = "DOCUMENT_TYPE_UNSUPPORTED",
    /// A title must have 1–128 characters without control characters.
    DocumentTitleInvalid = "DOCUMENT_TITLE_INVALID",
    /// Deleting is final and needs `confirm`.
    DeleteNotConfirmed = "DELETE_NOT_CONFIRMED",
    /// The Aktensystem refused the document. Metadata: `error_code` (the registry's code).
    DocumentRejected = "DOCUMENT_REJECTED",
    /// The document is not in the local cache and the Aktensystem cannot be reached.
    DocumentOffline = "DOCUMENT_OFFLINE",
    /// The downloaded content does not match the size or hash of its metadata.
    DocumentCorrupt = "DOCUMENT_CORRUPT",
    /// No upload with this id in the queue.
    UploadNotFound = "UPLOAD_NOT_FOUND",
    /// Creating the PDF failed. Metadata: `problem`.
    PdfExportFailed = "PDF_EXPORT_FAILED",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds the status the daemon returns: code + reason (+ facts) in the details.
pub fn status(code: tonic::Code, reason: Reason, message: impl Into<String>) -> tonic::Status {
    status_with(code, reason, message, BTreeMap::new())
}

/// [`status`] with reason-specific facts, e.g. `{"remaining": "3"}`.
pub fn status_with(
    code: tonic::Code,
    reason: Reason,
    message: impl Into<String>,
    metadata: BTreeMap<String, String>,
) -> tonic::Status {
    let detail = pb::ErrorDetail {
        reason: reason.as_str().to_owned(),
        metadata: metadata.into_iter().collect(),
    };
    tonic::Status::with_details(code, message, detail.encode_to_vec().into())
}

/// Coarse classes of failure that decide a client's reaction (and the CLI's exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// No daemon, a daemon that cannot be trusted, or one of another protocol version.
    DaemonUnavailable,
    /// The local user is locked or the ePA session is not logged in.
    NotLoggedIn,
    /// The ePA backend (Aktensystem, IDP, ...) is not reachable or failed.
    BackendUnavailable,
    /// The request itself was not acceptable (bad input, wrong state).
    Rejected,
    Other,
}

/// Every way a call to the daemon can fail, as a client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no daemon is listening at {path}")]
    NotRunning { path: PathBuf },
    #[error(
        "the daemon at {path} speaks protocol {daemon} (version {daemon_version}), this client speaks {client}"
    )]
    Incompatible {
        path: PathBuf,
        daemon: u32,
        client: u32,
        daemon_version: String,
    },
    #[error("refusing to use {path}: {problem}")]
    Insecure { path: PathBuf, problem: String },
    #[error("the daemon could not be started: {detail}")]
    StartFailed { detail: String },
    #[error("the connection to the daemon failed: {0}")]
    Transport(String),
    #[error("{reason}: {message}")]
    Rpc {
        code: tonic::Code,
        reason: Reason,
        message: String,
        metadata: BTreeMap<String, String>,
    },
    #[error("the daemon sent a malformed response: {0}")]
    Malformed(String),
}

impl ClientError {
    /// "Not logged in", found out locally (no session token at hand).
    pub fn locked(message: impl Into<String>) -> Self {
        ClientError::Rpc {
            code: Code::Unauthenticated,
            reason: Reason::Locked,
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// Decodes a status from the daemon. A status without our detail came from the transport
    /// (connection reset, daemon gone), not from the daemon's logic.
    pub fn from_status(status: tonic::Status) -> Self {
        match pb::ErrorDetail::decode(status.details()) {
            Ok(detail) if !detail.reason.is_empty() => ClientError::Rpc {
                code: status.code(),
                reason: Reason::parse(&detail.reason),
                message: status.message().to_owned(),
                metadata: detail.metadata.into_iter().collect(),
            },
            _ => ClientError::Transport(format!(
                "{}: {}",
                code_name(status.code()),
                status.message()
            )),
        }
    }

    /// The stable machine code of this error (the `code` of the CLI's JSON error object).
    pub fn code(&self) -> &str {
        match self {
            ClientError::NotRunning { .. } => "DAEMON_NOT_RUNNING",
            ClientError::Incompatible { .. } => "DAEMON_INCOMPATIBLE",
            ClientError::Insecure { .. } => "DAEMON_INSECURE",
            ClientError::StartFailed { .. } => "DAEMON_START_FAILED",
            ClientError::Transport(_) => "DAEMON_CONNECTION_LOST",
            ClientError::Rpc { reason, .. } => reason.as_str(),
            ClientError::Malformed(_) => "DAEMON_MALFORMED_RESPONSE",
        }
    }

    pub fn category(&self) -> ErrorCategory {
        match self {
            ClientError::NotRunning { .. }
            | ClientError::Incompatible { .. }
            | ClientError::Insecure { .. }
            | ClientError::StartFailed { .. }
            | ClientError::Transport(_) => ErrorCategory::DaemonUnavailable,
            ClientError::Rpc {
                reason: Reason::ProtocolMismatch | Reason::ShuttingDown,
                ..
            } => ErrorCategory::DaemonUnavailable,
            ClientError::Rpc { code, .. } => match code {
                tonic::Code::Unauthenticated => ErrorCategory::NotLoggedIn,
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    ErrorCategory::BackendUnavailable
                }
                tonic::Code::InvalidArgument
                | tonic::Code::FailedPrecondition
                | tonic::Code::NotFound
                | tonic::Code::AlreadyExists
                | tonic::Code::PermissionDenied
                | tonic::Code::ResourceExhausted
                | tonic::Code::OutOfRange => ErrorCategory::Rejected,
                _ => ErrorCategory::Other,
            },
            ClientError::Malformed(_) => ErrorCategory::Other,
        }
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "ok",
        C::Cancelled => "cancelled",
        C::Unknown => "unknown",
        C::InvalidArgument => "invalid argument",
        C::DeadlineExceeded => "deadline exceeded",
        C::NotFound => "not found",
        C::AlreadyExists => "already exists",
        C::PermissionDenied => "permission denied",
        C::ResourceExhausted => "resource exhausted",
        C::FailedPrecondition => "failed precondition",
        C::Aborted => "aborted",
        C::OutOfRange => "out of range",
        C::Unimplemented => "unimplemented",
        C::Internal => "internal",
        C::Unavailable => "unavailable",
        C::DataLoss => "data loss",
        C::Unauthenticated => "unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_and_metadata_survive_the_status() {
        let meta = BTreeMap::from([("remaining".to_owned(), "3".to_owned())]);
        let s = status_with(
            tonic::Code::FailedPrecondition,
            Reason::Other("DEVICE_CODE_WRONG".into()),
            "wrong code",
            meta.clone(),
        );
        match ClientError::from_status(s) {
            ClientError::Rpc {
                code,
                reason,
                message,
                metadata,
            } => {
                assert_eq!(code, tonic::Code::FailedPrecondition);
                assert_eq!(reason.as_str(), "DEVICE_CODE_WRONG");
                assert_eq!(message, "wrong code");
                assert_eq!(metadata, meta);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn status_without_detail_is_a_transport_error() {
        let e = ClientError::from_status(tonic::Status::unavailable("connection reset"));
        assert!(matches!(e, ClientError::Transport(_)));
        assert_eq!(e.category(), ErrorCategory::DaemonUnavailable);
    }

    #[test]
    fn known_reasons_round_trip() {
        for r in [
            Reason::ProtocolMismatch,
            Reason::ShuttingDown,
            Reason::Internal,
        ] {
            assert_eq!(Reason::parse(r.as_str()), r);
        }
        assert_eq!(
            Reason::parse("NEW_THING"),
            Reason::Other("NEW_THING".into())
        );
    }
}
