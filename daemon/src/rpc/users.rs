//! `Users`: translation and the deliberate mapping of users errors to codes and reasons.

use std::collections::BTreeMap;
use std::sync::Arc;

use epa_ipc::error::{status, status_with};
use epa_ipc::secret::SESSION_HEADER;
use epa_ipc::{Reason, pb};
use tonic::{Code, Request, Response, Status};
use zeroize::Zeroizing;

use crate::legal::{LegalLang, legal_texts};
use crate::store::StoreError;
use crate::users::{Session, TermsInfo, UserInfo, Users, UsersError};

pub struct UsersRpc(pub Arc<Users>);

fn map_error(e: UsersError) -> Status {
    use UsersError as E;
    let reason_of = |r: &str| Reason::parse(r);
    match e {
        E::Rule(r) => status(Code::InvalidArgument, reason_of(r.reason()), r.to_string()),
        E::UsernameTaken => status(Code::AlreadyExists, Reason::UsernameTaken, e.to_string()),
        E::UserNotFound => status(Code::NotFound, Reason::UserNotFound, e.to_string()),
        E::WrongPassword {
            failures_before_backoff,
        } => status_with(
            Code::Unauthenticated,
            Reason::WrongPassword,
            e.to_string(),
            BTreeMap::from([(
                "failures_before_backoff".to_owned(),
                failures_before_backoff.to_string(),
            )]),
        ),
        E::Backoff {
            retry_after_s,
            retry_at_unix,
        } => status_with(
            Code::Unauthenticated,
            Reason::UnlockBackoff,
            e.to_string(),
            BTreeMap::from([
                ("retry_after_s".to_owned(), retry_after_s.to_string()),
                ("retry_at_unix".to_owned(), retry_at_unix.to_string()),
            ]),
        ),
        E::Locked => status(Code::Unauthenticated, Reason::Locked, e.to_string()),
        E::TermsVersionUnknown(_) => status(
            Code::InvalidArgument,
            Reason::TermsVersionUnknown,
            e.to_string(),
        ),
        E::PreferenceInvalid(_) => status(
            Code::InvalidArgument,
            Reason::PreferenceInvalid,
            e.to_string(),
        ),
        E::Store(StoreError::Damaged { .. }) => {
            tracing::error!(error = %e, "vault damaged");
            status(Code::DataLoss, Reason::VaultDamaged, e.to_string())
        }
        E::Store(_) | E::InstallationKey { .. } => {
            tracing::error!(error = %e, "storage failed");
            status(Code::Unavailable, Reason::StorageFailed, e.to_string())
        }
        E::Crypto(_) => {
            tracing::error!(error = %e, "crypto failed");
            status(Code::Internal, Reason::Internal, e.to_string())
        }
    }
}

fn summary(u: UserInfo) -> pb::UserSummary {
    pb::UserSummary {
        username: u.username,
        created_unix: u.created_unix,
        terms_accepted_version: u.terms_accepted_version.unwrap_or_default(),
        unlocked: u.unlocked,
    }
}

fn terms(t: TermsInfo) -> pb::TermsState {
    pb::TermsState {
        accepted_version: t.accepted_version.unwrap_or_default(),
        current_version: t.current_version.to_owned(),
        acceptance_required: t.acceptance_required,
    }
}

fn token<T>(req: &Request<T>) -> Result<&str, Status> {
    req.metadata()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| map_error(UsersError::Locked))
}

/// The local session a request's token names (every service but Daemon needs one).
pub(super) fn session_of<T>(users: &Users, req: &Request<T>) -> Result<Session, Status> {
    users.session(token(req)?).map_err(map_error)
}

impl UsersRpc {
    fn session<T>(&self, req: &Request<T>) -> Result<Session, Status> {
        session_of(&self.0, req)
    }
}

/// Moves a password out of a request into memory that is wiped on drop.
fn secret(s: &mut String) -> Zeroizing<String> {
    Zeroizing::new(std::mem::take(s))
}

#[tonic::async_trait]
impl pb::users_server::Users for UsersRpc {
    async fn create_user(
        &self,
        mut req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let r = req.get_mut();
        let password = secret(&mut r.password);
        let user = self
            .0
            .create(&r.username, password)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(summary(user)),
        }))
    }

    async fn list_users(
        &self,
        _req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let (users, damaged) = self.0.list();
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(summary).collect(),
            damaged_entries: damaged,
        }))
    }

    async fn unlock(
        &self,
        mut req: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let r = req.get_mut();
        let password = secret(&mut r.password);
        let (token, user, t) = self
            .0
            .unlock(&r.username, password)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::UnlockResponse {
            session_token: token.to_string(),
            user: Some(summary(user)),
            terms: Some(terms(t)),
            idle_timeout_s: self.0.idle_timeout().as_secs(),
        }))
    }

    async fn lock(
        &self,
        req: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        let s = self.session(&req)?;
        self.0.lock(&s);
        Ok(Response::new(pb::LockResponse {}))
    }

    async fn change_password(
        &self,
        mut req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let s = self.session(&req)?;
        let tok = token(&req)?.to_owned();
        let r = req.get_mut();
        let (old, new) = (secret(&mut r.old_password), secret(&mut r.new_password));
        self.0
            .change_password(&s, &tok, old, new)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn delete_user(
        &self,
        mut req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let r = req.get_mut();
        let password = secret(&mut r.password);
        self.0
            .delete(&r.username, password)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn accept_terms(
        &self,
        req: Request<pb::AcceptTermsRequest>,
    ) -> Result<Response<pb::AcceptTermsResponse>, Status> {
        let s = self.session(&req)?;
        let t = self
            .0
            .accept_terms(&s, &req.get_ref().version)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::AcceptTermsResponse {
            terms: Some(terms(t)),
        }))
    }

    async fn get_legal_texts(
        &self,
        req: Request<pb::GetLegalTextsRequest>,
    ) -> Result<Response<pb::GetLegalTextsResponse>, Status> {
        let lang = match req.get_ref().lang.as_str() {
            "" | "de" => LegalLang::De,
            "en" => LegalLang::En,
            other => {
                return Err(status(
                    Code::InvalidArgument,
                    Reason::Other("LANGUAGE_UNSUPPORTED".into()),
                    format!("no legal texts in {other:?}; use \"de\" or \"en\""),
                ));
            }
        };
        Ok(Response::new(pb::GetLegalTextsResponse {
            texts: legal_texts(lang)
                .into_iter()
                .map(|t| pb::LegalText {
                    id: t.kind.id().to_owned(),
                    title: t.title.to_owned(),
                    version: t.version.to_owned(),
                    body: t.body.to_owned(),
                })
                .collect(),
            current_terms_version: crate::legal::TERMS_VERSION.to_owned(),
        }))
    }

    async fn set_preference(
        &self,
        req: Request<pb::SetPreferenceRequest>,
    ) -> Result<Response<pb::SetPreferenceResponse>, Status> {
        let s = self.session(&req)?;
        let r = req.get_ref();
        self.0
            .set_preference(&s, &r.key, &r.value)
            .map_err(map_error)?;
        Ok(Response::new(pb::SetPreferenceResponse {}))
    }

    async fn get_preference(
        &self,
        req: Request<pb::GetPreferenceRequest>,
    ) -> Result<Response<pb::GetPreferenceResponse>, Status> {
        let s = self.session(&req)?;
        let value = self
            .0
            .get_preference(&s, &req.get_ref().key)
            .map_err(map_error)?;
        Ok(Response::new(pb::GetPreferenceResponse {
            found: value.is_some(),
            value: value.unwrap_or_default(),
        }))
    }
}
