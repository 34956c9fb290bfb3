//! E-mail Management (I_Email_Management v1.0.0, epa-protocol.md §6.2): the addresses of a
//! record's owner, which receive the device confirmation codes. Inner routes under
//! `/epa/basic/api/v1/emails` for the insurant's own addresses (FdV: confirmed device needed).
//!
//! Audit events use source type `DEVICEMGMT`: the profile's code system (CDMGMT, ENTITMGMT,
//! DEVICEMGMT, HRRSVC, XDSSVC, MEDICATIONSVC, CONMGMT) has no code of its own for e-mail
//! management, and these addresses exist for device registration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::AuditAction;
use crate::authz::{ChannelSession, UserSession};
use crate::devices::{
    AuditedService, Done, Refusal, audited, json_body, paged, paging, parse_query, refuse,
};
use crate::info::insurant_id_ok;
use crate::mail::rfc3339;
use crate::services::{Access, Person, RecordServices};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailEntry {
    pub identifier: String,
    pub email: String,
    /// Display name of who stored it (the insurance or the insurant).
    pub actor: String,
    pub created_at: u64,
}

impl EmailEntry {
    /// EmailType (getEmail); the list adds `identifier` (EmailResponseType).
    fn to_json(&self, with_identifier: bool) -> Value {
        let mut v = json!({
            "email": self.email,
            "actor": self.actor,
            "createdAt": rfc3339(self.created_at),
        });
        if with_identifier {
            v["identifier"] = json!(self.identifier);
        }
        v
    }
}

/// Why deleteEmail refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveError {
    /// 404 noRessource.
    Unknown,
    /// 409 onlyOneEmail.
    OnlyOne,
}

#[derive(Debug, Default)]
pub struct EmailDirectory {
    by_kvnr: Mutex<HashMap<String, Vec<EmailEntry>>>,
}

impl EmailDirectory {
    /// Everything, for `--state-dir`.
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(&*self.by_kvnr.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or(Value::Null)
    }

    pub fn restore(&self, v: Value) -> Result<(), serde_json::Error> {
        *self.by_kvnr.lock().unwrap_or_else(|p| p.into_inner()) = serde_json::from_value(v)?;
        Ok(())
    }

    /// The insurance stored each record owner's address when it created the record (taken as
    /// the moment the sandbox starts).
    pub fn seeded<'a>(people: impl Iterator<Item = &'a Person>) -> Self {
        let now = crate::clock::Clock::default().now_unix();
        let mut map: HashMap<String, Vec<EmailEntry>> = HashMap::new();
        for (i, p) in people.enumerate() {
            map.entry(p.kvnr.clone()).or_default().push(EmailEntry {
                identifier: format!("00000000-0000-4000-8000-{:012}", i + 1),
                email: p.email.clone(),
                actor: p.insurer.clone(),
                created_at: now,
            });
        }
        Self {
            by_kvnr: Mutex::new(map),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Vec<EmailEntry>>> {
        self.by_kvnr.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every stored address of `kvnr` (where device codes go).
    pub fn addresses(&self, kvnr: &str) -> Vec<String> {
        self.map()
            .get(kvnr)
            .map(|v| v.iter().map(|e| e.email.clone()).collect())
            .unwrap_or_default()
    }

    /// The stored entries of `kvnr`, oldest first.
    pub fn entries(&self, kvnr: &str) -> Vec<EmailEntry> {
        self.map().get(kvnr).cloned().unwrap_or_default()
    }

    pub fn get(&self, kvnr: &str, identifier: &str) -> Option<EmailEntry> {
        self.map()
            .get(kvnr)?
            .iter()
            .find(|e| e.identifier == identifier)
            .cloned()
    }

    /// Stores `email` for `kvnr` under `identifier`; an address the KVNR already has (compared
    /// case-insensitively) is not stored twice: then the existing entry and `false` come back.
    pub fn add(
        &self,
        kvnr: &str,
        identifier: &str,
        email: &str,
        actor: &str,
        now: u64,
    ) -> (EmailEntry, bool) {
        let mut map = self.map();
        let list = map.entry(kvnr.to_owned()).or_default();
        if let Some(e) = list.iter().find(|e| e.email.eq_ignore_ascii_case(email)) {
            return (e.clone(), false);
        }
        let e = EmailEntry {
            identifier: identifier.to_owned(),
            email: email.to_owned(),
            actor: actor.to_owned(),
            created_at: now,
        };
        list.push(e.clone());
        (e, true)
    }

    /// Deletes an address; the last one stays.
    pub fn remove(&self, kvnr: &str, identifier: &str) -> Result<EmailEntry, RemoveError> {
        let mut map = self.map();
        let list = map.get_mut(kvnr).ok_or(RemoveError::Unknown)?;
        let i = list
            .iter()
            .position(|e| e.identifier == identifier)
            .ok_or(RemoveError::Unknown)?;
        if list.len() == 1 {
            return Err(RemoveError::OnlyOne);
        }
        Ok(list.remove(i))
    }
}

/// `format: email` as a mail server would take it: ASCII `local@domain`, local part of atext
/// and single dots (≤ 64), domain of ≥ 2 LDH labels (≤ 63 each), ≤ 254 in all.
pub fn email_ok(s: &str) -> bool {
    if s.len() > 254 || !s.is_ascii() {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

const SERVICE: AuditedService = AuditedService {
    access: Access::Email,
    source: "DEVICEMGMT",
    name: "E-Mail Management",
};

pub fn router(svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
        .route("/epa/basic/api/v1/emails", get(get_emails).post(set_email))
        .route(
            "/epa/basic/api/v1/emails/{identifier}",
            get(get_email).delete(delete_email),
        )
        .with_state(svc)
}

/// The FdV manages its own addresses: `x-insurantid` is optional and, when sent, must name the
/// user (409 requestMismatch otherwise).
fn own_data(headers: &HeaderMap, user: &UserSession) -> Result<(), Refusal> {
    match headers.get("x-insurantid").map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(id)) if insurant_id_ok(id) => {
            if id == user.kvnr {
                Ok(())
            } else {
                Err(refuse(
                    StatusCode::CONFLICT,
                    "requestMismatch",
                    None,
                    "an insurant manages only their own e-mail addresses",
                ))
            }
        }
        Some(_) => Err(malformed("x-insurantid must match ^[A-Z]\\d{9}$")),
    }
}

fn malformed(rule: &str) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, "malformedRequest", None, rule)
}

fn not_found() -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        "noRessource",
        None,
        "no such e-mail address for this KVNR",
    )
}

fn done(status: StatusCode, body: Value, entry: Option<&EmailEntry>) -> Done {
    Done {
        response: (status, Json(body)).into_response(),
        entity_name: entry.map_or_else(|| SERVICE.name.to_owned(), |e| e.email.clone()),
        entity_detail: entry.map(|e| format!("EmailIdentifier={}", e.identifier)),
    }
}

async fn get_emails(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Read,
        "getEmails",
        |user| {
            own_data(&headers, user)?;
            let q = parse_query(query.as_deref()).map_err(|rule| malformed(&rule))?;
            let p = paging(&q).map_err(|rule| malformed(&rule))?;
            let items = svc
                .emails
                .entries(&user.kvnr)
                .iter()
                .map(|e| e.to_json(true))
                .collect();
            Ok(done(StatusCode::OK, paged(items, p), None))
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    email: String,
}

async fn set_email(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Create,
        "setEmail",
        |user| {
            own_data(&headers, user)?;
            let b: EmailRequest = json_body(&headers, &body).map_err(|rule| malformed(&rule))?;
            if !email_ok(&b.email) {
                return Err(malformed("email is not a valid e-mail address"));
            }
            let now = svc.clock.now_unix();
            let person = svc.people.get(&user.kvnr);
            let actor = person.map_or_else(|| user.display_name.clone(), Person::display_name);
            let (entry, new) =
                svc.emails
                    .add(&user.kvnr, &svc.random_uuid(), &b.email, &actor, now);
            if new {
                let text = format!(
                    "Guten Tag {actor},\n\
                 \n\
                 diese E-Mail-Adresse ({email}) wurde am {date} (UTC) für Ihre elektronische\n\
                 Patientenakte (ePA) hinterlegt. An sie gehen künftig auch die Bestätigungscodes\n\
                 für neue Geräte.\n\
                 \n\
                 Haben Sie diese Adresse nicht selbst hinterlegt, wenden Sie sich bitte an Ihre\n\
                 Krankenkasse.\n\
                 \n\
                 Ihr ePA-Aktensystem {system}\n",
                    email = entry.email,
                    date = rfc3339(now),
                    system = svc.system_id,
                );
                if let Err(e) =
                    svc.outbox
                        .send(&entry.email, "Neue E-Mail-Adresse für Ihre ePA", &text, now)
                {
                    // The address is stored; only the notice is missing.
                    tracing::error!(error = %e, "sending the e-mail notification failed");
                }
            }
            Ok(done(
                StatusCode::CREATED,
                json!(entry.identifier),
                Some(&entry),
            ))
        },
    )
}

async fn get_email(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Read,
        "getEmail",
        |user| {
            own_data(&headers, user)?;
            let e = svc.emails.get(&user.kvnr, &id).ok_or_else(not_found)?;
            Ok(done(StatusCode::OK, e.to_json(false), Some(&e)))
        },
    )
}

async fn delete_email(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Delete,
        "deleteEmail",
        |user| {
            own_data(&headers, user)?;
            match svc.emails.remove(&user.kvnr, &id) {
                Ok(e) => Ok(Done {
                    response: StatusCode::NO_CONTENT.into_response(),
                    entity_name: e.email,
                    entity_detail: Some(format!("EmailIdentifier={}", e.identifier)),
                }),
                Err(RemoveError::Unknown) => Err(not_found()),
                Err(RemoveError::OnlyOne) => Err(refuse(
                    StatusCode::CONFLICT,
                    "onlyOneEmail",
                    None,
                    "the last e-mail address cannot be deleted",
                )),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_checked_like_a_mail_server_would() {
        for ok in [
            "maria.muster@example.invalid",
            "a+b@x.de",
            "o'neil@mail.example.com",
            "x@sub-domain.example.org",
        ] {
            assert!(email_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "maria",
            "@example.de",
            "maria@",
            "maria@localhost",
            "ma ria@example.de",
            "maria..m@example.de",
            ".maria@example.de",
            "maria@-x.de",
            "maria@x..de",
            "maria@x.d3",
            "märia@example.de",
            "a@b@example.de",
        ] {
            assert!(!email_ok(bad), "{bad}");
        }
        assert!(!email_ok(&format!("{}@example.de", "a".repeat(65))));
    }

    #[test]
    fn the_last_address_stays() {
        let d = EmailDirectory::default();
        let (a, new) = d.add("X110411675", "1", "a@example.de", "AOK", 1);
        assert!(new);
        assert_eq!(
            d.remove("X110411675", &a.identifier).unwrap_err(),
            RemoveError::OnlyOne
        );
        let (_, new) = d.add("X110411675", "2", "A@EXAMPLE.DE", "Maria", 2);
        assert!(!new);
        d.add("X110411675", "3", "b@example.de", "Maria", 3);
        assert_eq!(
            d.remove("X110411675", "1").map(|e| e.email).ok(),
            Some("a@example.de".into())
        );
        assert_eq!(
            d.remove("X110411675", "1").unwrap_err(),
            RemoveError::Unknown
        );
        assert_eq!(
            d.remove("M432109873", "3").unwrap_err(),
            RemoveError::Unknown
        );
        assert_eq!(d.addresses("X110411675"), vec!["b@example.de".to_owned()]);
    }
}
