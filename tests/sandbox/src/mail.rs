//! The mail outbox: every mail the sandbox "sends" (device confirmation codes, notices) is an
//! `.eml` file in the outbox directory and is listed by `GET {mail_api}/messages?to=ADDRESS`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// One mail as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub id: String,
    pub to: String,
    pub subject: String,
    /// RFC 3339, UTC.
    pub date: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a mail of this sandbox ({problem})")]
    Malformed {
        path: PathBuf,
        problem: &'static str,
    },
}

pub struct Outbox {
    dir: PathBuf,
    next: Mutex<u64>,
    /// Control-API fault: mails appear only this many sandbox seconds after sending.
    delay_s: AtomicU64,
    /// Sent but not yet delivered mails: (due, path, .eml text).
    pending: Mutex<Vec<(u64, PathBuf, String)>>,
    clock: OnceLock<Arc<Clock>>,
}

const FROM: &str = "ePA Sandbox <no-reply@sandbox.invalid>";

impl Outbox {
    pub fn open(dir: &Path) -> Result<Self, MailError> {
        std::fs::create_dir_all(dir).map_err(|source| MailError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let count = std::fs::read_dir(dir)
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        Ok(Self {
            dir: dir.to_owned(),
            next: Mutex::new(count + 1),
            delay_s: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            clock: OnceLock::new(),
        })
    }

    /// The sandbox clock that decides when delayed mails are due (set once by the server).
    pub fn use_clock(&self, clock: Arc<Clock>) {
        let _ = self.clock.set(clock);
    }

    /// Mail delay in sandbox seconds (0: at once).
    pub fn set_delay(&self, seconds: u64) {
        self.delay_s.store(seconds, Ordering::SeqCst);
    }

    pub fn delay(&self) -> u64 {
        self.delay_s.load(Ordering::SeqCst)
    }

    /// Writes the delayed mails that are due at `now`; the server calls this periodically.
    pub fn deliver_due(&self, now: u64) -> Result<(), MailError> {
        let due: Vec<(u64, PathBuf, String)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let (due, later) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(at, _, _)| *at <= now);
            *pending = later;
            due
        };
        for (_, path, eml) in due {
            std::fs::write(&path, eml).map_err(|source| MailError::Io { path, source })?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a mail (sent at `now_unix`, the sandbox clock) and returns it.
    pub fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        now_unix: u64,
    ) -> Result<Mail, MailError> {
        let n = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let n = *next;
            *next += 1;
            n
        };
        let id = format!("{now_unix:012}-{n:06}");
        let mail = Mail {
            id: id.clone(),
            to: to.to_owned(),
            subject: subject.to_owned(),
            date: rfc3339(now_unix),
            text: text.to_owned(),
        };
        let eml = format!(
            "From: {FROM}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{id}@sandbox.invalid>\r\nX-Sandbox-Date: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}",
            rfc2822(now_unix),
            mail.date,
            text.replace('\n', "\r\n"),
        );
        let path = self.dir.join(format!("{id}.eml"));
        let delay = self.delay();
        if delay > 0 {
            tracing::info!(%to, %subject, delay_s = delay, "mail sent; delivery delayed (fault)");
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((now_unix.saturating_add(delay), path, eml));
            return Ok(mail);
        }
        std::fs::write(&path, eml).map_err(|source| MailError::Io { path, source })?;
        tracing::info!(%to, %subject, "mail sent to the outbox");
        Ok(mail)
    }

    /// The mails to `to` (case-insensitive), newest first.
    pub fn messages(&self, to: &str) -> Result<Vec<Mail>, MailError> {
        if let Some(clock) = self.clock.get() {
            self.deliver_due(clock.now_unix())?;
        }
        read_outbox(&self.dir, to)
    }
}

/// Reads the `.eml` files of an outbox directory (also used by `epa-sandbox mail`).
pub fn read_outbox(dir: &Path, to: &str) -> Result<Vec<Mail>, MailError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| MailError::Io { path, source }
    };
    let mut mails = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let mail = parse_eml(&path, &text)?;
        if mail.to.eq_ignore_ascii_case(to) {
            mails.push(mail);
        }
    }
    mails.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(mails)
}

fn parse_eml(path: &Path, text: &str) -> Result<Mail, MailError> {
    let bad = |problem| MailError::Malformed {
        path: path.to_owned(),
        problem,
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header/body separator"))?;
    let header = |name: &str| {
        head.split("\r\n").find_map(|l| {
            l.split_once(": ")
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_owned())
        })
    };
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| bad("file name"))?
        .to_owned();
    Ok(Mail {
        id,
        to: header("To").ok_or_else(|| bad("no To"))?,
        subject: header("Subject").ok_or_else(|| bad("no Subject"))?,
        date: header("X-Sandbox-Date").ok_or_else(|| bad("no date"))?,
        text: body.replace("\r\n", "\n"),
    })
}

#[derive(Deserialize)]
struct ToQuery {
    to: Option<String>,
}

pub fn router(outbox: std::sync::Arc<Outbox>) -> axum::Router {
    axum::Router::new()
        .route("/mail/messages", get(list))
        .with_state(outbox)
}

async fn list(State(outbox): State<std::sync::Arc<Outbox>>, Query(q): Query<ToQuery>) -> Response {
    let Some(to) = q.to.filter(|t| !t.is_empty()) else {
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"errorCode": "malformedRequest", "errorDetail": "query parameter `to` is required"}))).into_response();
    };
    match outbox.messages(&to) {
        Ok(m) => Json(m).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the outbox failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"errorCode": "internalError"})),
            )
                .into_response()
        }
    }
}

/// (year, month, day, hour, minute, second, weekday 0 = Monday) of a Unix time, UTC.
fn civil(unix: u64) -> (i64, u32, u32, u32, u32, u32, usize) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = epa_protocol::xds::rim::civil_from_days(days);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
        weekday,
    )
}

pub fn rfc3339(unix: u64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn rfc2822(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(unix);
    format!(
        "{}, {d} {} {y} {h:02}:{mi:02}:{s:02} +0000",
        DAYS[wd],
        MONTHS[(mo - 1) as usize]
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc2822(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc3339(1_742_342_400), "2025-03-19T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc2822(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 +0000");
    }

    #[test]
    fn mails_are_files_listed_newest_first_per_recipient() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        o.send(
            "maria.muster@example.invalid",
            "Ihr Bestätigungscode",
            "Code: 123456\nGültig 6 Stunden.",
            1_000,
        )
        .unwrap();
        o.send("MARIA.muster@example.invalid", "Zweite", "x", 2_000)
            .unwrap();
        o.send("other@example.invalid", "Fremd", "y", 3_000)
            .unwrap();
        let m = o.messages("maria.muster@example.invalid").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].subject, "Zweite");
        assert_eq!(m[1].text, "Code: 123456\nGültig 6 Stunden.");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        // A fresh outbox on the same directory sees them and keeps numbering unique.
        let again = Outbox::open(dir.path()).unwrap();
        again
            .send("maria.muster@example.invalid", "Dritte", "z", 2_000)
            .unwrap();
        assert_eq!(
            again
                .messages("maria.muster@example.invalid")
                .unwrap()
                .len(),
            3
        );
    }
}
