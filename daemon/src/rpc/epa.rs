//! `Epa`: translation, and the deliberate mapping of journey errors to codes and reasons.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use epa_ipc::error::{status, status_with};
use epa_ipc::types::EpaState;
use epa_ipc::{Reason, pb};
use tonic::{Code, Request, Response, Status};

use crate::session::{EpaSessions, SessionError};
use crate::store::StoreError;
use crate::users::{Session, Users};

pub struct EpaRpc {
    pub users: Arc<Users>,
    pub epa: Arc<EpaSessions>,
}

fn meta<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(super) fn map_error(e: SessionError) -> Status {
    use SessionError as E;
    let msg = e.to_string();
    match e {
        E::NoProfile => status(Code::FailedPrecondition, Reason::EpaProfileMissing, msg),
        E::KvnrInvalid(_) => status(Code::InvalidArgument, Reason::KvnrInvalid, msg),
        E::InsurerUnknown(insurer) => status_with(
            Code::InvalidArgument,
            Reason::InsurerUnknown,
            msg,
            meta([("insurer", insurer)]),
        ),
        E::InsurerUnavailable(insurer) => status_with(
            Code::FailedPrecondition,
            Reason::InsurerUnavailable,
            msg,
            meta([("insurer", insurer)]),
        ),
        E::NoRecord => status(Code::NotFound, Reason::NoRecord, msg),
        E::RecordNotActivated => status_with(
            Code::FailedPrecondition,
            Reason::RecordNotActivated,
            msg,
            // §1: retry after about a day.
            meta([("retry_after_s", "86400".to_owned())]),
        ),
        E::WrongPhase(phase) => status_with(
            Code::FailedPrecondition,
            Reason::EpaWrongPhase,
            msg,
            meta([("phase", phase.as_str().to_owned())]),
        ),
        E::CallbackInvalid(problem) => status_with(
            Code::InvalidArgument,
            Reason::CallbackInvalid,
            msg,
            meta([("problem", problem)]),
        ),
        E::LoginCancelled { error } => status_with(
            Code::FailedPrecondition,
            Reason::LoginCancelled,
            msg,
            meta([("error", error)]),
        ),
        E::LoginExpired => status(Code::FailedPrecondition, Reason::LoginExpired, msg),
        E::LoginRefused { error_code } => status_with(
            Code::FailedPrecondition,
            Reason::LoginRefused,
            msg,
            meta([("error_code", error_code)]),
        ),
        E::DeviceCodeWrong { tries_left } | E::DeviceCodeMalformed { tries_left } => status_with(
            Code::InvalidArgument,
            Reason::DeviceCodeWrong,
            msg,
            meta([("tries_left", tries_left.to_string())]),
        ),
        E::DeviceCodeExpired => status(Code::FailedPrecondition, Reason::DeviceCodeExpired, msg),
        E::RegistrationLocked { until_unix, until } => status_with(
            Code::ResourceExhausted,
            Reason::DeviceRegistrationLocked,
            msg,
            meta([("until_unix", until_unix.to_string()), ("until", until)]),
        ),
        E::NoEmailAddress => status(Code::FailedPrecondition, Reason::NoEmailAddress, msg),
        E::DeviceNotFound => status(Code::NotFound, Reason::DeviceNotFound, msg),
        E::ThisDeviceConfirmationRequired => status(
            Code::FailedPrecondition,
            Reason::ThisDeviceConfirmationRequired,
            msg,
        ),
        E::DeviceNameInvalid => status(Code::InvalidArgument, Reason::DeviceNameInvalid, msg),
        E::NotLoggedIn { reason } => status_with(
            Code::Unauthenticated,
            Reason::EpaNotLoggedIn,
            msg,
            reason
                .map(|r| meta([("login_required_reason", r)]))
                .unwrap_or_default(),
        ),
        E::BackendUnreachable { retry_after_s, .. } => status_with(
            Code::Unavailable,
            Reason::BackendUnreachable,
            msg,
            meta([("retry_after_s", retry_after_s.to_string())]),
        ),
        E::Backend {
            error_code,
            retry_after_s,
            ..
        } => {
            let mut m = meta([("error_code", error_code)]);
            if let Some(s) = retry_after_s {
                m.insert("retry_after_s".into(), s.to_string());
            }
            status_with(Code::Unavailable, Reason::BackendError, msg, m)
        }
        E::Store(StoreError::Damaged { .. }) => {
            tracing::error!(error = %msg, "vault damaged");
            status(Code::DataLoss, Reason::VaultDamaged, msg)
        }
        E::Store(_) => {
            tracing::error!(error = %msg, "storage failed");
            status(Code::Unavailable, Reason::StorageFailed, msg)
        }
        E::Internal(_) => {
            tracing::error!(error = %msg, "ePA journey failed");
            status(Code::Internal, Reason::Internal, msg)
        }
    }
}

impl EpaRpc {
    fn session<T>(&self, req: &Request<T>) -> Result<Session, Status> {
        super::users::session_of(&self.users, req)
    }
}

fn reply(r: Result<EpaState, SessionError>) -> Result<Response<pb::EpaState>, Status> {
    r.map(|s| Response::new(pb::EpaState::from(&s)))
        .map_err(map_error)
}

#[tonic::async_trait]
impl pb::epa_server::Epa for EpaRpc {
    async fn get_state(
        &self,
        req: Request<pb::GetEpaStateRequest>,
    ) -> Result<Response<pb::EpaState>, Status> {
        let s = self.session(&req)?;
        reply(self.epa.state(&s).await)
    }

    async fn list_insurers(
        &self,
        req: Request<pb::ListInsurersRequest>,
    ) -> Result<Response<pb::ListInsurersResponse>, Status> {
        self.session(&req)?;
        let insurers = self.epa.insurers().await;
        Ok(Response::new(pb::ListInsurersResponse {
            insurers: insurers
                .into_iter()
                .map(|i| pb::Insurer {
                    name: i.name,
                    available: i.available,
                })
                .collect(),
        }))
    }

    async fn set_record_profile(
        &self,
        req: Request<pb::SetRecordProfileRequest>,
    ) -> Result<Response<pb::EpaState>, Status> {
        let s = self.session(&req)?;
        let r = req.get_ref();
        reply(self.epa.set_profile(&s, &r.insurer, &r.kvnr).await)
    }

    async fn start_login(
        &self,
        req: Request<pb::StartLoginRequest>,
    ) -> Result<Response<pb::StartLoginResponse>, Status> {
        let s = self.session(&req)?;
        let state = self.epa.start_login(&s).await.map_err(map_error)?;
        Ok(Response::new(pb::StartLoginResponse {
            state: Some(pb::EpaState::from(&state)),
        }))
    }

    async fn wait_login(
        &self,
        req: Request<pb::WaitLoginRequest>,
    ) -> Result<Response<pb::EpaState>, Status> {
        let s = self.session(&req)?;
        let timeout = Duration::from_secs(u64::from(req.get_ref().timeout_s));
        reply(self.epa.wait_login(&s, timeout).await)
    }

    async fn complete_login(
        &self,
        req: Request<pb::CompleteLoginRequest>,
    ) -> Result<Response<pb::EpaState>, Status> {
        let s = self.session(&req)?;
        reply(
            self.epa
                .complete_login(&s, &req.get_ref().callback_url)
                .await,
        )
    }

    async fn confirm_device(
        &self,
        req: Request<pb::ConfirmDeviceRequest>,
    ) -> Result<Response<pb::EpaState>, Status> {
        let s = self.session(&req)?;
        reply(self.epa.confirm_device(&s, &req.get_ref().code).await)
    }

    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::EpaState>, Status> {
        let s = self.session(&req)?;
        reply(self.epa.logout(&s).await)
    }

    async fn list_devices(
        &self,
        req: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        let s = self.session(&req)?;
        let devices = self.epa.list_devices(&s).await.map_err(map_error)?;
        Ok(Response::new(pb::ListDevicesResponse {
            devices: devices.iter().map(pb::Device::from).collect(),
        }))
    }

    async fn rename_device(
        &self,
        req: Request<pb::RenameDeviceRequest>,
    ) -> Result<Response<pb::Device>, Status> {
        let s = self.session(&req)?;
        let r = req.get_ref();
        let d = self
            .epa
            .rename_device(&s, &r.identifier, &r.display_name)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::Device::from(&d)))
    }

    async fn remove_device(
        &self,
        req: Request<pb::RemoveDeviceRequest>,
    ) -> Result<Response<pb::RemoveDeviceResponse>, Status> {
        let s = self.session(&req)?;
        let r = req.get_ref();
        self.epa
            .remove_device(&s, &r.identifier, r.confirm_this_device)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::RemoveDeviceResponse {}))
    }
}
