//! ITI-18 stored queries and ITI-43 retrieve over a record's registry and repository.

use axum::http::StatusCode;
use epa_protocol::xds::error_code as ec;
use epa_protocol::xds::query::{self, QueryResponse, ReturnType, StoredQuery, id, param};
use epa_protocol::xds::retrieve::{self, RetrieveResponse, RetrievedDocument};
use epa_protocol::xds::rim::{Code, DocumentEntry, RegistryObject, patient_id};
use epa_protocol::xds::soap::{Chunked, Encoded, Message};
use epa_protocol::xds::status;
use epa_protocol::xds::submit::{RegistryError, RegistryResponse};

use super::{Ctx, RecordDocuments};
use crate::audit::{AuditAction, AuditOutcome};

/// SQL LIKE with `%` and `_`, case-insensitive (the spec names LIKE but no collation).
pub fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative wildcard matching with backtracking to the last `%`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// The parameters each implemented query takes: (name, required, repeatable with AND).
fn params_of(query_id: &str) -> Option<Vec<(&'static str, bool, bool)>> {
    let find = vec![
        (param::PATIENT_ID, true, false),
        (param::STATUS, true, false),
        (param::CLASS_CODE, false, false),
        (param::TYPE_CODE, false, false),
        (param::PRACTICE_SETTING_CODE, false, false),
        (param::HEALTHCARE_FACILITY_TYPE_CODE, false, false),
        (param::FORMAT_CODE, false, false),
        (param::CONFIDENTIALITY_CODE, false, true),
        (param::EVENT_CODE_LIST, false, true),
        (param::CREATION_TIME_FROM, false, false),
        (param::CREATION_TIME_TO, false, false),
        (param::SERVICE_START_TIME_FROM, false, false),
        (param::SERVICE_START_TIME_TO, false, false),
        (param::SERVICE_STOP_TIME_FROM, false, false),
        (param::SERVICE_STOP_TIME_TO, false, false),
        (param::AUTHOR_PERSON, false, false),
        (param::TYPE, false, false),
    ];
    let with = |extra: &'static str| {
        let mut v = find.clone();
        v.push((extra, true, false));
        v
    };
    Some(match query_id {
        id::FIND_DOCUMENTS => find,
        id::FIND_DOCUMENTS_BY_TITLE => with(param::TITLE),
        id::FIND_DOCUMENTS_BY_COMMENT => with(param::COMMENTS),
        id::FIND_DOCUMENTS_BY_REFERENCE_ID => with(param::REFERENCE_ID_LIST),
        id::GET_ALL => vec![
            (param::GET_ALL_PATIENT_ID, true, false),
            (param::STATUS, true, false),
            (param::SUBMISSION_SET_STATUS, true, false),
            (param::FOLDER_STATUS, true, false),
            (param::FORMAT_CODE, false, false),
            (param::CONFIDENTIALITY_CODE, false, true),
        ],
        _ => return None,
    })
}

fn query_name(query_id: &str) -> &'static str {
    match query_id {
        id::FIND_DOCUMENTS => "FindDocuments",
        id::FIND_DOCUMENTS_BY_TITLE => "FindDocumentsByTitle",
        id::FIND_DOCUMENTS_BY_COMMENT => "FindDocumentsByComment",
        id::FIND_DOCUMENTS_BY_REFERENCE_ID => "FindDocumentsByReferenceId",
        id::GET_ALL => "GetAll",
        _ => "RegistryStoredQuery",
    }
}

const KNOWN_UNIMPLEMENTED: [&str; 5] = [
    id::FIND_FOLDERS,
    id::GET_FOLDER_AND_CONTENTS,
    id::GET_DOCUMENTS_AND_ASSOCIATIONS,
    id::GET_ASSOCIATIONS,
    id::GET_RELATED_APPROVED_DOCUMENTS,
];

fn err(code: &str, context: impl Into<String>) -> RegistryError {
    let e = RegistryError::error(code, context);
    tracing::warn!(code = %e.code, context = %e.context, "XDS ITI-18: query refused");
    e
}

/// `code^^^&scheme&ISO`.
fn parse_code(v: &str) -> Option<(&str, &str)> {
    let (code, rest) = v.split_once("^^^&")?;
    let scheme = rest.strip_suffix("&ISO")?;
    (!code.is_empty() && !scheme.is_empty()).then_some((code, scheme))
}

fn pad(t: &str) -> String {
    format!("{t:0<14}")
}

/// A compiled filter over DocumentEntries.
struct Filter<'q> {
    q: &'q StoredQuery,
}

impl Filter<'_> {
    fn values(&self, name: &str) -> Vec<&Vec<String>> {
        self.q
            .params
            .iter()
            .filter(|p| p.name == name)
            .map(|p| &p.values)
            .collect()
    }

    fn codes_match(&self, name: &str, have: &[&Code]) -> bool {
        // Slots of one name: AND; values within a slot: OR.
        self.values(name).iter().all(|alts| {
            alts.iter().any(|v| {
                parse_code(v)
                    .is_some_and(|(c, s)| have.iter().any(|h| h.code == c && h.scheme == s))
            })
        })
    }

    fn time_in(&self, from: &str, to: &str, t: Option<&str>) -> bool {
        let f = self
            .values(from)
            .first()
            .and_then(|v| v.first())
            .map(|s| pad(s));
        let u = self
            .values(to)
            .first()
            .and_then(|v| v.first())
            .map(|s| pad(s));
        if f.is_none() && u.is_none() {
            return true;
        }
        let Some(t) = t.map(pad) else { return false };
        f.is_none_or(|f| t >= f) && u.is_none_or(|u| t < u)
    }

    fn like_any(&self, name: &str, text: Option<&str>) -> bool {
        self.values(name)
            .iter()
            .all(|alts| text.is_some_and(|t| alts.iter().any(|p| like(p, t))))
    }

    fn matches(&self, e: &DocumentEntry) -> bool {
        let st = self.values(param::STATUS);
        let status_ok = st
            .iter()
            .all(|alts| alts.iter().any(|s| e.status.as_deref() == Some(s.as_str())));
        let type_ok = self
            .values(param::TYPE)
            .iter()
            .all(|alts| alts.contains(&e.object_type));
        fn one(c: &Option<Code>) -> Vec<&Code> {
            c.iter().collect()
        }
        let authors: Vec<&str> = e
            .authors
            .iter()
            .filter_map(|a| a.person.as_deref())
            .collect();
        status_ok
            && type_ok
            && self.codes_match(param::CLASS_CODE, &one(&e.class_code))
            && self.codes_match(param::TYPE_CODE, &one(&e.type_code))
            && self.codes_match(param::FORMAT_CODE, &one(&e.format_code))
            && self.codes_match(
                param::HEALTHCARE_FACILITY_TYPE_CODE,
                &one(&e.healthcare_facility_type_code),
            )
            && self.codes_match(param::PRACTICE_SETTING_CODE, &one(&e.practice_setting_code))
            && self.codes_match(
                param::CONFIDENTIALITY_CODE,
                &e.confidentiality_codes.iter().collect::<Vec<_>>(),
            )
            && self.codes_match(
                param::EVENT_CODE_LIST,
                &e.event_codes.iter().collect::<Vec<_>>(),
            )
            && self.time_in(
                param::CREATION_TIME_FROM,
                param::CREATION_TIME_TO,
                e.creation_time.as_deref(),
            )
            && self.time_in(
                param::SERVICE_START_TIME_FROM,
                param::SERVICE_START_TIME_TO,
                e.service_start_time.as_deref(),
            )
            && self.time_in(
                param::SERVICE_STOP_TIME_FROM,
                param::SERVICE_STOP_TIME_TO,
                e.service_stop_time.as_deref(),
            )
            && self
                .values(param::AUTHOR_PERSON)
                .iter()
                .all(|alts| alts.iter().any(|p| authors.iter().any(|a| like(p, a))))
            && self.like_any(param::TITLE, e.title.as_deref())
            && self.like_any(param::COMMENTS, e.comments.as_deref())
            && self
                .values(param::REFERENCE_ID_LIST)
                .iter()
                .all(|alts| alts.iter().any(|r| e.reference_ids.iter().any(|x| x == r)))
    }
}

/// Checks the parameters against the query's definition and the record (§5.4).
fn check(q: &StoredQuery, kvnr: &str) -> Result<(), RegistryError> {
    let Some(defs) = params_of(&q.id) else {
        if KNOWN_UNIMPLEMENTED.contains(&q.id.as_str()) {
            return Err(err(
                ec::REGISTRY_ERROR,
                format!("stored query {} is not offered by this sandbox", q.id),
            ));
        }
        return Err(err(
            ec::UNKNOWN_STORED_QUERY,
            format!("unknown stored query id {}", q.id),
        ));
    };
    for p in &q.params {
        let Some((_, _, repeatable)) = defs.iter().find(|(n, _, _)| *n == p.name) else {
            return Err(err(
                ec::STORED_QUERY_PARAM_NUMBER,
                format!("parameter {} is not defined for this query", p.name),
            ));
        };
        if !repeatable && q.params_named(&p.name).count() > 1 {
            return Err(err(
                ec::STORED_QUERY_PARAM_NUMBER,
                format!("parameter {} given more than once", p.name),
            ));
        }
        if p.values.is_empty() {
            return Err(err(
                ec::STORED_QUERY_PARAM_NUMBER,
                format!("parameter {} without value", p.name),
            ));
        }
        let single = p.name == param::PATIENT_ID
            || p.name == param::GET_ALL_PATIENT_ID
            || p.name.ends_with("TimeFrom")
            || p.name.ends_with("TimeTo");
        if single && p.values.len() != 1 {
            return Err(err(
                ec::STORED_QUERY_PARAM_NUMBER,
                format!("parameter {} takes one value", p.name),
            ));
        }
        if (p.name.ends_with("Code") || p.name == param::EVENT_CODE_LIST)
            && let Some(v) = p.values.iter().find(|v| parse_code(v).is_none())
        {
            {
                return Err(err(
                    ec::REGISTRY_ERROR,
                    format!("{}: {v:?} is not code^^^&codeSystem&ISO", p.name),
                ));
            }
        }
        if single && p.name.contains("Time") {
            let v = &p.values[0];
            if epa_protocol::xds::rim::unix_from_dtm(v).is_none() {
                return Err(err(
                    ec::REGISTRY_ERROR,
                    format!("{}: {v:?} is no DTM (YYYY[MM[DD[hh[mm[ss]]]]])", p.name),
                ));
            }
        }
    }
    for (name, required, _) in &defs {
        if *required && q.params_named(name).next().is_none() {
            return Err(err(
                ec::STORED_QUERY_PARAM_NUMBER,
                format!("required parameter {name} missing"),
            ));
        }
    }
    let pid_param = if q.id == id::GET_ALL {
        param::GET_ALL_PATIENT_ID
    } else {
        param::PATIENT_ID
    };
    let pid = q
        .params_named(pid_param)
        .next()
        .and_then(|p| p.values.first())
        .map(String::as_str)
        .unwrap_or("");
    if pid != patient_id(kvnr) {
        return Err(err(
            ec::PATIENT_ID_DOES_NOT_MATCH,
            format!("{pid_param} {pid:?} is not the record of x-insurantid"),
        ));
    }
    Ok(())
}

/// Runs a checked query.
fn run(q: &StoredQuery, docs: Option<&RecordDocuments>) -> Vec<RegistryObject> {
    let Some(docs) = docs else { return Vec::new() };
    let filter = Filter { q };
    let entries: Vec<&DocumentEntry> = docs
        .entries
        .iter()
        .map(|e| &e.entry)
        .filter(|e| filter.matches(e))
        .collect();
    let mut out: Vec<RegistryObject> = Vec::new();
    if q.id == id::GET_ALL {
        let ss_status: Vec<&String> = q
            .params_named(param::SUBMISSION_SET_STATUS)
            .flat_map(|p| p.values.iter())
            .collect();
        let sets: Vec<_> = docs
            .submission_sets
            .iter()
            .filter(|s| {
                ss_status
                    .iter()
                    .any(|st| s.status.as_deref() == Some(st.as_str()))
            })
            .collect();
        let ids: Vec<&str> = entries
            .iter()
            .map(|e| e.id.as_str())
            .chain(sets.iter().map(|s| s.id.as_str()))
            .collect();
        out.extend(
            sets.into_iter()
                .map(|s| RegistryObject::SubmissionSet(Box::new(s.clone()))),
        );
        out.extend(
            entries
                .iter()
                .map(|e| RegistryObject::DocumentEntry(Box::new((*e).clone()))),
        );
        out.extend(
            docs.associations
                .iter()
                .filter(|a| ids.contains(&a.source.as_str()) && ids.contains(&a.target.as_str()))
                .map(|a| RegistryObject::Association(a.clone())),
        );
    } else {
        out.extend(
            entries
                .iter()
                .map(|e| RegistryObject::DocumentEntry(Box::new((*e).clone()))),
        );
    }
    if q.return_type == ReturnType::ObjectRef {
        out = out
            .into_iter()
            .map(|o| RegistryObject::ObjectRef(o.id().to_owned()))
            .collect();
    }
    out
}

/// ITI-18.
pub fn stored_query(ctx: &Ctx<'_>, m: &Message) -> (StatusCode, Encoded) {
    let (resp, name) = match query::parse_request(m) {
        Err(e) => (
            QueryResponse {
                status: status::FAILURE.into(),
                errors: vec![err(ec::REGISTRY_ERROR, e.to_string())],
                objects: vec![],
            },
            "RegistryStoredQuery",
        ),
        Ok(q) => {
            let name = query_name(&q.id);
            match check(&q, ctx.kvnr) {
                Err(e) => (
                    QueryResponse {
                        status: status::FAILURE.into(),
                        errors: vec![e],
                        objects: vec![],
                    },
                    name,
                ),
                Ok(()) => {
                    let st = ctx.svc.documents.lock();
                    let objects = run(&q, st.records.get(ctx.kvnr));
                    (
                        QueryResponse {
                            status: status::SUCCESS.into(),
                            errors: vec![],
                            objects,
                        },
                        name,
                    )
                }
            }
        }
    };
    let ok = resp.status == status::SUCCESS;
    ctx.audit(
        AuditAction::Read,
        if ok {
            AuditOutcome::Success
        } else {
            AuditOutcome::MinorFailure
        },
        "RegistryStoredQuery",
        name.to_owned(),
        Some(format!("{} objects", resp.objects.len())),
    );
    let e = query::build_response(&resp, ctx.relates_to.as_deref(), &ctx.new_uuid());
    (StatusCode::OK, e)
}

/// ITI-43: every requested document that exists in this record's repository; the others as
/// XDSMissingDocument (PartialSuccess when some were found). Answered with MTOM (§5.2).
pub fn retrieve(ctx: &Ctx<'_>, m: &Message) -> (StatusCode, Chunked) {
    let mut errors = Vec::new();
    let mut documents = Vec::new();
    let mut found_titles = Vec::new();
    match retrieve::parse_request(m) {
        Err(e) => errors.push(err(ec::REPOSITORY_ERROR, e.to_string())),
        Ok(reqs) => {
            let st = ctx.svc.documents.lock();
            for r in reqs {
                if r.repository_unique_id != st.repository_unique_id {
                    errors.push(err(
                        ec::UNKNOWN_REPOSITORY_ID,
                        format!(
                            "repository {} is not this Aktensystem's",
                            r.repository_unique_id
                        ),
                    ));
                    continue;
                }
                if let Some(h) = &r.home_community_id
                    && *h != st.home_community_id
                {
                    errors.push(err(
                        "XDSUnknownCommunity",
                        format!("home community {h} unknown"),
                    ));
                    continue;
                }
                let rec = st.records.get(ctx.kvnr);
                let entry = rec.and_then(|d| {
                    d.entries
                        .iter()
                        .rev()
                        .find(|e| e.entry.unique_id == r.document_unique_id)
                });
                let bytes = rec.and_then(|d| d.contents.get(&r.document_unique_id));
                match (entry, bytes) {
                    (Some(e), Some(b)) => {
                        found_titles.push((
                            e.entry.title.clone().unwrap_or_default(),
                            e.entry.unique_id.clone(),
                        ));
                        documents.push(RetrievedDocument {
                            home_community_id: Some(st.home_community_id.clone()),
                            repository_unique_id: st.repository_unique_id.clone(),
                            document_unique_id: r.document_unique_id.clone(),
                            mime_type: e.entry.mime_type.clone(),
                            bytes: b.clone(),
                        });
                    }
                    _ => errors.push(RegistryError {
                        location: None,
                        ..err(
                            ec::MISSING_DOCUMENT,
                            format!("document {} not in this record", r.document_unique_id),
                        )
                    }),
                }
            }
        }
    }
    let status = match (documents.is_empty(), errors.is_empty()) {
        (false, true) => status::SUCCESS,
        (false, false) => status::PARTIAL_SUCCESS,
        _ => status::FAILURE,
    };
    for (title, uid) in found_titles {
        ctx.audit(
            AuditAction::Read,
            AuditOutcome::Success,
            "RetrieveDocumentSet",
            title,
            Some(uid),
        );
    }
    if documents.is_empty() {
        ctx.audit(
            AuditAction::Read,
            AuditOutcome::MinorFailure,
            "RetrieveDocumentSet",
            String::new(),
            None,
        );
    }
    let resp = RetrieveResponse {
        response: RegistryResponse {
            status: status.to_owned(),
            errors,
        },
        documents,
    };
    let c =
        retrieve::build_response_chunks(&resp, ctx.relates_to.as_deref(), &ctx.new_uuid(), true);
    (StatusCode::OK, c)
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_follows_sql() {
        for (p, t, m) in [
            ("%", "", true),
            ("image%", "image001", true),
            ("%001", "image001", true),
            ("i_age001", "image001", true),
            ("%MUSTER%", "X1^Muster^Maria", true),
            ("röntgen%", "Röntgenaufnahme", true),
            ("image", "image001", false),
            ("%x%", "image001", false),
            ("%a%b", "aab", true),
            ("_", "", false),
        ] {
            assert_eq!(like(p, t), m, "{p} ~ {t}");
        }
    }
}
