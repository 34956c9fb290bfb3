//! The local session kept by `epa user login` in `<socket>.session` (0600, in the private runtime
//! directory), and the client acting with it.

use epa_ipc::{ClientError, DaemonClient, Reason, SessionToken};

use crate::Ctx;
use crate::output::CliError;

pub fn save_session(ctx: &Ctx, token: &SessionToken) -> Result<(), CliError> {
    let path = ctx.endpoint.session_path();
    epa_ipc::transport::write_private_atomically(&path, token.expose().as_bytes()).map_err(|e| {
        ctx.out.input_error(
            "SESSION_NOT_SAVED",
            &format!(
                "Die Sitzung konnte nicht gespeichert werden ({}): {e}",
                path.display()
            ),
            &format!("Could not save the session ({}): {e}", path.display()),
            "Prüfen Sie die Rechte des Laufzeitverzeichnisses.",
            "Check the runtime directory's permissions.",
        )
    })
}

pub fn forget_session(ctx: &Ctx) {
    let _ = std::fs::remove_file(ctx.endpoint.session_path());
}

/// The client acting for the logged-in user (`LOCKED` when there is no saved session).
pub async fn logged_in(ctx: &Ctx) -> Result<DaemonClient, CliError> {
    let client = ctx.connect().await?;
    let token = std::fs::read_to_string(ctx.endpoint.session_path())
        .map_err(|_| ClientError::locked("no local session"))?;
    Ok(client.with_session(SessionToken::new(token.trim().to_owned())))
}

/// Whether `e` says the saved session is dead.
pub fn is_locked(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Rpc {
            reason: Reason::Locked,
            ..
        }
    )
}

/// Maps an error of a call made with the saved session: a LOCKED answer means the session is
/// dead, so the file is removed.
pub fn session_error(ctx: &Ctx, e: ClientError) -> CliError {
    if is_locked(&e) {
        forget_session(ctx);
    }
    CliError::from(e)
}

/// Runs `f` with the logged-in user's client; a LOCKED answer forgets the saved session.
pub async fn with_session<T, F, Fut>(ctx: &Ctx, f: F) -> Result<T, CliError>
where
    F: FnOnce(DaemonClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let client = logged_in(ctx).await?;
    f(client).await.map_err(|e| session_error(ctx, e))
}
