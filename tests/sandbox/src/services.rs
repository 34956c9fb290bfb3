//! What the inner routes of one Aktensystem share: its records, devices, e-mail addresses,
//! documents, constraints and audit log, plus the access guard every record service runs first
//! (epa-protocol.md §4, §6: user session, scope, `x-useragent`, `x-insurantid`, record state).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rand_chacha::ChaCha20Rng;

use crate::audit::AuditLog;
use crate::authz::{Authz, ChannelSession, Scope, UserSession};
use crate::clock::Clock;
use crate::constraints::Constraints;
use crate::devices::DeviceRegistry;
use crate::email::EmailDirectory;
use crate::info::{check_useragent, error, insurant_id_ok};
use crate::mail::Outbox;
use crate::seed::{RecordSeed, RecordStatus, Seed};
use crate::xds::DocumentStore;

#[derive(Debug, Clone)]
pub struct Record {
    pub status: RecordStatus,
    pub consent: std::collections::BTreeMap<String, String>,
}

impl From<&RecordSeed> for Record {
    fn from(r: &RecordSeed) -> Self {
        Self {
            status: r.status,
            consent: r.consent.clone(),
        }
    }
}

/// The records that live on one Aktensystem, by KVNR.
#[derive(Debug, Default)]
pub struct Records(RwLock<HashMap<String, Record>>);

impl Records {
    pub fn new(records: HashMap<String, Record>) -> Self {
        Self(RwLock::new(records))
    }

    pub fn get(&self, kvnr: &str) -> Option<Record> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kvnr)
            .cloned()
    }

    pub fn status(&self, kvnr: &str) -> Option<RecordStatus> {
        self.get(kvnr).map(|r| r.status)
    }
}

/// A person of the seed as the record services need them (names for audit entries and mails).
#[derive(Debug, Clone)]
pub struct Person {
    pub kvnr: String,
    pub given_name: String,
    pub family_name: String,
    pub insurer: String,
    pub email: String,
}

impl Person {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// Which rules a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Device Management: any insurant session, also the limited one; no `x-insurantid`.
    DeviceManagement,
    /// E-mail Management: a session with a confirmed device; no `x-insurantid`.
    Email,
    /// Record services (XDS, constraints, audit, …): confirmed device, `x-insurantid` naming an
    /// ACTIVATED record on this Aktensystem that the user may access.
    Record,
}

/// Who is calling, once the guard let them in.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserSession,
    /// The record the request is about (`x-insurantid`); `None` for device/e-mail management.
    pub record: Option<String>,
}

/// Behaviour switches of this Aktensystem that the spec leaves open.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// After confirmPendingDevice, upgrade the running session to full access at once (clients
    /// then need no second login); off by default, like the servers observed in the field.
    pub full_access_after_confirm: std::sync::atomic::AtomicBool,
}

pub struct RecordServices {
    pub system_id: String,
    pub clock: Arc<Clock>,
    pub outbox: Arc<Outbox>,
    pub records: Arc<Records>,
    /// Everybody in the seed, by KVNR (also people whose record lives elsewhere).
    pub people: HashMap<String, Person>,
    pub devices: Arc<DeviceRegistry>,
    pub emails: Arc<EmailDirectory>,
    pub documents: Arc<DocumentStore>,
    pub constraints: Arc<Constraints>,
    pub audit: Arc<AuditLog>,
    pub behaviour: Behaviour,
    pub rng: Mutex<ChaCha20Rng>,
}

fn refuse(status: StatusCode, code: &'static str, rule: &str) -> Response {
    tracing::warn!(code, rule, "record service: request refused");
    error(status, code, None)
}

impl RecordServices {
    pub fn new(
        system_id: &str,
        seed: &Seed,
        clock: Arc<Clock>,
        outbox: Arc<Outbox>,
        rng: ChaCha20Rng,
    ) -> Self {
        let records: HashMap<String, Record> = seed
            .insurants
            .iter()
            .filter(|p| seed.aktensystem_of(p) == Some(system_id))
            .filter_map(|p| p.record.as_ref().map(|r| (p.kvnr.clone(), Record::from(r))))
            .collect();
        let people: HashMap<String, Person> = seed
            .insurants
            .iter()
            .map(|p| {
                (
                    p.kvnr.clone(),
                    Person {
                        kvnr: p.kvnr.clone(),
                        given_name: p.given_name.clone(),
                        family_name: p.family_name.clone(),
                        insurer: p.insurer.clone(),
                        email: p.email.clone(),
                    },
                )
            })
            .collect();
        let emails = EmailDirectory::seeded(records.keys().filter_map(|k| people.get(k)));
        Self {
            system_id: system_id.to_owned(),
            clock,
            outbox,
            records: Arc::new(Records::new(records)),
            people,
            devices: Arc::new(DeviceRegistry::default()),
            emails: Arc::new(emails),
            documents: Arc::new(DocumentStore::seeded(seed, system_id)),
            constraints: Arc::new(Constraints::default()),
            audit: Arc::new(AuditLog::default()),
            behaviour: Behaviour::default(),
            rng: Mutex::new(rng),
        }
    }

    pub fn rng(&self) -> MutexGuard<'_, ChaCha20Rng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `n` random bytes as lower-case hex.
    pub fn random_hex(&self, n: usize) -> String {
        let mut raw = vec![0u8; n];
        rand_core::Rng::fill_bytes(&mut *self.rng(), &mut raw);
        crate::idp::hex(&raw)
    }

    /// A random (version 4) UUID, lower case.
    pub fn random_uuid(&self) -> String {
        epa_protocol::xds::new_uuid(&mut *self.rng())
    }

    /// The checks every record-service route makes before it does anything; a refusal is the
    /// spec's error response and a stderr line naming the rule.
    // The refusal is the finished HTTP response (large, but built only for refused requests).
    #[allow(clippy::result_large_err)]
    pub fn require(
        &self,
        session: &ChannelSession,
        headers: &HeaderMap,
        access: Access,
    ) -> Result<Caller, Response> {
        if let Err(rule) = check_useragent(headers, false) {
            return Err(refuse(StatusCode::BAD_REQUEST, "malformedRequest", rule));
        }
        let Some(user) = session.user() else {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "invalAuth",
                "no user session on this VAU channel (log in first)",
            ));
        };
        let insurant_id = headers.get("x-insurantid").and_then(|v| v.to_str().ok());
        match access {
            Access::DeviceManagement => Ok(Caller { user, record: None }),
            Access::Email => {
                if user.scope != Scope::Full {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "unregisteredDevice",
                        "e-mail management needs a session with a confirmed device",
                    ));
                }
                Ok(Caller { user, record: None })
            }
            Access::Record => {
                let Some(id) = insurant_id else {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "malformedRequest",
                        "x-insurantid header missing",
                    ));
                };
                if !insurant_id_ok(id) {
                    return Err(refuse(
                        StatusCode::BAD_REQUEST,
                        "malformedRequest",
                        "x-insurantid must match ^[A-Z]\\d{9}$",
                    ));
                }
                if user.scope != Scope::Full {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "unregisteredDevice",
                        "record services need a session with a confirmed device",
                    ));
                }
                // Entitlements for representatives come with the representation service; until
                // then a user reaches their own record only.
                if id != user.kvnr {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "notEntitled",
                        "no entitlement for this record",
                    ));
                }
                match self.records.status(id) {
                    None => Err(refuse(
                        StatusCode::NOT_FOUND,
                        "noHealthRecord",
                        "no record for x-insurantid on this Aktensystem",
                    )),
                    Some(RecordStatus::Activated) => Ok(Caller {
                        user,
                        record: Some(id.to_owned()),
                    }),
                    Some(_) => Err(refuse(
                        StatusCode::CONFLICT,
                        "statusMismatch",
                        "the record is not ACTIVATED",
                    )),
                }
            }
        }
    }

    /// [`Self::require`] with [`Access::Record`]: the caller and the record they asked for.
    pub fn require_record(
        &self,
        session: &ChannelSession,
        headers: &HeaderMap,
    ) -> Result<(Caller, String), Box<Response>> {
        let caller = self
            .require(session, headers, Access::Record)
            .map_err(Box::new)?;
        let Some(record) = caller.record.clone() else {
            tracing::error!("the record guard passed without a record");
            return Err(Box::new(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internalError",
                None,
            )));
        };
        Ok((caller, record))
    }
}

impl RecordServices {
    /// The stores that `--state-dir` keeps as JSON (documents add their bytes as files, see
    /// [`crate::persist`]).
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "devices": self.devices.snapshot(),
            "emails": self.emails.snapshot(),
            "constraints": self.constraints.snapshot(),
            "audit": self.audit.snapshot(),
        })
    }

    pub fn restore(&self, mut v: serde_json::Value) -> Result<(), String> {
        let mut take = |k: &str| {
            v.get_mut(k)
                .map(serde_json::Value::take)
                .ok_or(format!("{k} missing"))
        };
        let (devices, emails, constraints, audit) = (
            take("devices")?,
            take("emails")?,
            take("constraints")?,
            take("audit")?,
        );
        let e = |what: &'static str| move |err: serde_json::Error| format!("{what}: {err}");
        self.devices.restore(devices).map_err(e("devices"))?;
        self.emails.restore(emails).map_err(e("emails"))?;
        self.constraints
            .restore(constraints)
            .map_err(e("constraints"))?;
        self.audit.restore(audit).map_err(e("audit"))?;
        Ok(())
    }
}

/// Every inner route of an Aktensystem.
pub fn router(svc: Arc<RecordServices>, authz: Arc<Authz>) -> axum::Router {
    crate::authz::router(authz)
        .merge(crate::devices::router(Arc::clone(&svc)))
        .merge(crate::email::router(Arc::clone(&svc)))
        .merge(crate::xds::router(Arc::clone(&svc)))
        .merge(crate::constraints::router(Arc::clone(&svc)))
        .merge(crate::audit::router(svc))
}
