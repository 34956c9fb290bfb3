//! ITI-41 (provide and register), ITI-92 (restricted update) and ITI-62 (delete): validation
//! per epa-protocol.md §5.6/§5.7, then one atomic change of the record.

use axum::http::StatusCode;
use epa_protocol::xds::error_code as ec;
use epa_protocol::xds::rim::{
    Association, DocumentEntry, RegistryObject, SubmissionSet, patient_id, scheme, slot,
    unix_from_dtm,
};
use epa_protocol::xds::soap::{Encoded, Message};
use epa_protocol::xds::submit::{self, RegistryError, RegistryResponse};
use epa_protocol::xds::{action, is_oid, is_urn_uuid, sha1_hex, status};

use super::seeding::MIME_TYPES;
use super::{Ctx, RecordDocuments, StoredDocument};
use crate::audit::{AuditAction, AuditOutcome};

/// Where an insurant's uploads are filed (§5.6: [inferred], the mapping table is not public).
const INSURANT_CATEGORY: &str = "patient";

type Refusal = (StatusCode, RegistryError);

fn refuse(code: &str, context: impl Into<String>) -> Refusal {
    (StatusCode::OK, RegistryError::error(code, context))
}

fn respond(
    ctx: &Ctx<'_>,
    response_action: &str,
    result: Result<(), Refusal>,
) -> (StatusCode, Encoded) {
    let (st, r) = match result {
        Ok(()) => (StatusCode::OK, RegistryResponse::success()),
        Err((st, e)) => {
            tracing::warn!(code = %e.code, context = %e.context, action = response_action, "XDS: request refused");
            (st, RegistryResponse::failure(vec![e]))
        }
    };
    let e = submit::build_registry_response(
        response_action,
        ctx.relates_to.as_deref(),
        &ctx.new_uuid(),
        &r,
    );
    (st, e)
}

fn dtm_ok(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|t| unix_from_dtm(t).is_some())
}

/// The first XCN component (the person id), if any.
fn xcn_id(person: &str) -> &str {
    person.split('^').next().unwrap_or("")
}

/// Metadata every DocumentEntry of an insurant needs (§5.6).
fn check_entry(e: &DocumentEntry, pid: &str, uploader: Option<&str>) -> Result<(), Refusal> {
    let m = |msg: String| {
        refuse(
            ec::REGISTRY_METADATA_ERROR,
            format!("DocumentEntry {}: {msg}", e.id),
        )
    };
    if e.patient_id != pid {
        return Err(refuse(
            ec::PATIENT_ID_DOES_NOT_MATCH,
            format!(
                "DocumentEntry {}: patientId {:?} is not x-insurantid's",
                e.id, e.patient_id
            ),
        ));
    }
    if !is_oid(&e.unique_id) {
        return Err(m(format!(
            "uniqueId {:?} is no OID of at most 64 characters",
            e.unique_id
        )));
    }
    if e.object_type != scheme::STABLE {
        return Err(m("only stable DocumentEntries can be submitted".into()));
    }
    if !MIME_TYPES.contains(&e.mime_type.as_str()) {
        return Err(m(format!("mimeType {:?} is not allowed", e.mime_type)));
    }
    if e.title.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err(m("title (rim:Name) is required".into()));
    }
    if e.creation_time.is_none() || !dtm_ok(&e.creation_time) {
        return Err(m("creationTime (YYYYMMDDhhmmss) is required".into()));
    }
    if !dtm_ok(&e.service_start_time) || !dtm_ok(&e.service_stop_time) {
        return Err(m("serviceStartTime/serviceStopTime must be DTM".into()));
    }
    if e.language_code.is_none() || e.source_patient_id.is_none() {
        return Err(m("languageCode and sourcePatientId are required".into()));
    }
    for (name, c) in [
        ("classCode", &e.class_code),
        ("typeCode", &e.type_code),
        ("formatCode", &e.format_code),
        (
            "healthcareFacilityTypeCode",
            &e.healthcare_facility_type_code,
        ),
        ("practiceSettingCode", &e.practice_setting_code),
    ] {
        if c.is_none() {
            return Err(m(format!("{name} is required")));
        }
    }
    if e.confidentiality_codes.is_empty() {
        return Err(m("at least one confidentialityCode is required".into()));
    }
    if e.authors.is_empty() {
        return Err(m("at least one author is required".into()));
    }
    // An insurant uploads as themself: authors are persons, and a person id, where given,
    // is the uploader's KVNR.
    for a in e.authors.iter().filter(|_| uploader.is_some()) {
        let Some(p) = &a.person else {
            return Err(m(
                "an insurant's upload names the insurant as authorPerson".into()
            ));
        };
        let id = xcn_id(p);
        if !id.is_empty() && Some(id) != uploader {
            return Err(m(format!(
                "authorPerson id {id:?} is not the uploading insurant"
            )));
        }
    }
    Ok(())
}

fn check_submission_set(s: &SubmissionSet, pid: &str) -> Result<(), Refusal> {
    let m = |msg: &str| {
        refuse(
            ec::REGISTRY_METADATA_ERROR,
            format!("SubmissionSet {}: {msg}", s.id),
        )
    };
    if s.patient_id != pid {
        return Err(refuse(
            ec::PATIENT_ID_DOES_NOT_MATCH,
            format!(
                "SubmissionSet patientId {:?} is not x-insurantid's",
                s.patient_id
            ),
        ));
    }
    if !is_oid(&s.unique_id) || !is_oid(&s.source_id) {
        return Err(m("uniqueId and sourceId must be OIDs"));
    }
    if s.submission_time.is_none() || !dtm_ok(&s.submission_time) {
        return Err(m("submissionTime is required"));
    }
    if s.content_type_code.is_none() {
        return Err(m("contentTypeCode is required"));
    }
    if s.authors.is_empty() {
        return Err(m("author is required"));
    }
    Ok(())
}

struct Split {
    set: SubmissionSet,
    entries: Vec<DocumentEntry>,
    associations: Vec<Association>,
}

fn split(objects: Vec<RegistryObject>) -> Result<Split, Refusal> {
    let mut sets = Vec::new();
    let mut entries = Vec::new();
    let mut associations = Vec::new();
    for o in objects {
        match o {
            RegistryObject::SubmissionSet(s) => sets.push(*s),
            RegistryObject::DocumentEntry(e) => entries.push(*e),
            RegistryObject::Association(a) => associations.push(a),
            RegistryObject::Folder(id) => {
                return Err(refuse(
                    ec::REGISTRY_METADATA_ERROR,
                    format!("Folder {id}: categories are assigned by the Aktensystem"),
                ));
            }
            RegistryObject::ObjectRef(_) => {}
        }
    }
    if sets.len() != 1 {
        return Err(refuse(
            ec::REGISTRY_METADATA_ERROR,
            "exactly one SubmissionSet is required",
        ));
    }
    if entries.is_empty() {
        return Err(refuse(
            ec::REGISTRY_METADATA_ERROR,
            "no DocumentEntry in the submission",
        ));
    }
    Ok(Split {
        set: sets.remove(0),
        entries,
        associations,
    })
}

/// Symbolic ids become fresh entryUUIDs; given UUIDs must be new.
fn assign_id(
    ctx: &Ctx<'_>,
    id: &str,
    rec: Option<&RecordDocuments>,
    map: &mut Vec<(String, String)>,
) -> Result<String, Refusal> {
    if map.iter().any(|(from, _)| from == id) {
        return Err(refuse(
            ec::REGISTRY_METADATA_ERROR,
            format!("id {id} used twice in the submission"),
        ));
    }
    let new = if id.starts_with("urn:uuid:") {
        if !is_urn_uuid(id) {
            return Err(refuse(
                ec::REGISTRY_METADATA_ERROR,
                format!("{id} is no valid urn:uuid"),
            ));
        }
        let used = rec.is_some_and(|r| {
            r.entries.iter().any(|e| e.entry.id == id)
                || r.submission_sets.iter().any(|s| s.id == id)
                || r.associations.iter().any(|a| a.id == id)
        });
        if used {
            return Err(refuse(
                ec::REGISTRY_ERROR,
                format!("entryUUID {id} is already in the registry"),
            ));
        }
        id.to_owned()
    } else {
        format!("urn:uuid:{}", ctx.new_uuid())
    };
    map.push((id.to_owned(), new.clone()));
    Ok(new)
}

fn mapped(map: &[(String, String)], id: &str) -> String {
    map.iter()
        .find(|(f, _)| f == id)
        .map_or_else(|| id.to_owned(), |(_, t)| t.clone())
}

/// ITI-41.
pub fn provide_and_register(ctx: &Ctx<'_>, m: &Message) -> (StatusCode, Encoded) {
    let result = register(ctx, m);
    let (outcome, titles) = match &result {
        Ok(t) => (AuditOutcome::Success, t.clone()),
        Err(_) => (AuditOutcome::MinorFailure, vec![(String::new(), None)]),
    };
    for (title, uid) in titles {
        ctx.audit(
            AuditAction::Create,
            outcome,
            "ProvideAndRegisterDocumentSet-b",
            title,
            uid,
        );
    }
    respond(
        ctx,
        action::PROVIDE_AND_REGISTER_RESPONSE,
        result.map(|_| ()),
    )
}

fn register(ctx: &Ctx<'_>, m: &Message) -> Result<Vec<(String, Option<String>)>, Refusal> {
    let req = submit::parse_provide_and_register(m)
        .map_err(|e| refuse(ec::REGISTRY_METADATA_ERROR, e.to_string()))?;
    let pid = patient_id(ctx.kvnr);
    let uploader = ctx.caller.user.kvnr.as_str();
    let Split {
        mut set,
        mut entries,
        mut associations,
    } = split(req.objects)?;
    check_submission_set(&set, &pid)?;
    for e in &entries {
        check_entry(e, &pid, Some(uploader))?;
    }
    let mut st = ctx.svc.documents.lock();
    let max = st.max_document_bytes;
    // Documents and entries must pair up.
    for e in &entries {
        let Some(d) = req.documents.iter().find(|d| d.id == e.id) else {
            return Err(refuse(
                ec::MISSING_DOCUMENT,
                format!("no xdsb:Document for DocumentEntry {}", e.id),
            ));
        };
        if d.bytes.len() as u64 > max {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                RegistryError::error(
                    ec::REPOSITORY_ERROR,
                    format!(
                        "document {} has {} bytes, the limit is {max}",
                        e.id,
                        d.bytes.len()
                    ),
                ),
            ));
        }
        if let Some(h) = &e.hash
            && !h.eq_ignore_ascii_case(&sha1_hex(&d.bytes))
        {
            return Err(refuse(
                ec::REPOSITORY_METADATA_ERROR,
                format!("hash of {} does not match the document", e.id),
            ));
        }
        if let Some(s) = e.size
            && s != d.bytes.len() as u64
        {
            return Err(refuse(
                ec::REPOSITORY_METADATA_ERROR,
                format!("size of {} does not match the document", e.id),
            ));
        }
    }
    if let Some(d) = req
        .documents
        .iter()
        .find(|d| !entries.iter().any(|e| e.id == d.id))
    {
        return Err(refuse(
            ec::MISSING_DOCUMENT_METADATA,
            format!("xdsb:Document {} has no DocumentEntry", d.id),
        ));
    }
    // uniqueIds: unique in the message and new to the registry.
    let rec = st.records.get(ctx.kvnr);
    let mut uids: Vec<&str> = vec![set.unique_id.as_str()];
    for e in &entries {
        if uids.contains(&e.unique_id.as_str()) {
            return Err(refuse(
                "XDSRegistryDuplicateUniqueIdInMessage",
                format!("uniqueId {} twice in the submission", e.unique_id),
            ));
        }
        uids.push(&e.unique_id);
    }
    let taken = |u: &str| {
        st.records.values().any(|r| {
            r.entries.iter().any(|e| e.entry.unique_id == u)
                || r.submission_sets.iter().any(|s| s.unique_id == u)
        })
    };
    if let Some(u) = uids.iter().find(|u| taken(u)) {
        return Err(refuse(
            ec::DUPLICATE_UNIQUE_ID_IN_REGISTRY,
            format!("uniqueId {u} is already registered"),
        ));
    }
    // Associations: one HasMember (Original) from the set to each entry; RPLC to a current
    // document of this record.
    let mut replaced: Vec<(String, String)> = Vec::new();
    for a in &associations {
        match a.association_type.as_str() {
            scheme::HAS_MEMBER => {
                if a.source != set.id || !entries.iter().any(|e| e.id == a.target) {
                    return Err(refuse(
                        ec::REGISTRY_METADATA_ERROR,
                        format!(
                            "HasMember {} must link the SubmissionSet to a DocumentEntry of this submission",
                            a.id
                        ),
                    ));
                }
                if a.slot("SubmissionSetStatus") != Some("Original") {
                    return Err(refuse(
                        ec::REGISTRY_METADATA_ERROR,
                        format!("HasMember {} needs SubmissionSetStatus Original", a.id),
                    ));
                }
            }
            scheme::RPLC => {
                if !entries.iter().any(|e| e.id == a.source) {
                    return Err(refuse(
                        ec::REGISTRY_METADATA_ERROR,
                        format!(
                            "RPLC {} must start at a DocumentEntry of this submission",
                            a.id
                        ),
                    ));
                }
                let current = rec.is_some_and(|r| {
                    r.entries.iter().any(|e| {
                        e.entry.id == a.target
                            && e.entry.status.as_deref() == Some(status::APPROVED)
                    })
                });
                if !current {
                    return Err(refuse(
                        ec::UNRESOLVED_REFERENCE,
                        format!(
                            "RPLC target {} is no current document of this record",
                            a.target
                        ),
                    ));
                }
                replaced.push((a.source.clone(), a.target.clone()));
            }
            other => {
                return Err(refuse(
                    ec::REGISTRY_METADATA_ERROR,
                    format!("association type {other} is not supported here"),
                ));
            }
        }
    }
    for e in &entries {
        let n = associations
            .iter()
            .filter(|a| a.association_type == scheme::HAS_MEMBER && a.target == e.id)
            .count();
        if n != 1 {
            return Err(refuse(
                ec::REGISTRY_METADATA_ERROR,
                format!(
                    "DocumentEntry {} needs exactly one HasMember association",
                    e.id
                ),
            ));
        }
    }
    // Ids.
    let mut map = Vec::new();
    set.id = assign_id(ctx, &set.id, rec, &mut map)?;
    for e in &mut entries {
        e.id = assign_id(ctx, &e.id, rec, &mut map)?;
    }
    for a in &mut associations {
        a.id = assign_id(ctx, &a.id, rec, &mut map)?;
        a.source = mapped(&map, &a.source);
        a.target = mapped(&map, &a.target);
        a.status = Some(status::APPROVED.to_owned());
    }
    // Apply.
    let repo = st.repository_unique_id.clone();
    let home = st.home_community_id.clone();
    let rec = st.records.entry(ctx.kvnr.to_owned()).or_default();
    let mut audit = Vec::new();
    set.status = Some(status::APPROVED.to_owned());
    set.home = Some(home.clone());
    for mut e in entries {
        let symbolic = map
            .iter()
            .find(|(_, t)| *t == e.id)
            .map(|(f, _)| f.clone())
            .unwrap_or_default();
        let Some(d) = req.documents.iter().find(|d| d.id == symbolic) else {
            continue;
        };
        let replaces = replaced
            .iter()
            .find(|(s, _)| *s == symbolic)
            .map(|(_, t)| t.clone());
        let root = match &replaces {
            Some(old) => rec
                .entries
                .iter()
                .find(|x| x.entry.id == *old)
                .and_then(|x| x.entry.root_document_id().map(str::to_owned)),
            None => None,
        };
        e.reference_ids
            .retain(|r| !r.ends_with(slot::ROOT_DOCUMENT_SUFFIX));
        let root = root.unwrap_or_else(|| {
            let u = e.id.trim_start_matches("urn:uuid:");
            format!("{u}{}", slot::ROOT_DOCUMENT_SUFFIX)
        });
        e.reference_ids.push(root);
        e.status = Some(status::APPROVED.to_owned());
        e.lid = Some(e.id.clone());
        e.version = Some("1".to_owned());
        e.home = Some(home.clone());
        e.repository_unique_id = Some(repo.clone());
        e.hash = Some(sha1_hex(&d.bytes));
        e.size = Some(d.bytes.len() as u64);
        if let Some(old) = replaces
            && let Some(x) = rec.entries.iter_mut().find(|x| x.entry.id == old)
        {
            x.entry.status = Some(status::DEPRECATED.to_owned());
        }
        rec.contents.insert(e.unique_id.clone(), d.bytes.clone());
        audit.push((
            e.title.clone().unwrap_or_default(),
            Some(e.unique_id.clone()),
        ));
        rec.entries.push(StoredDocument {
            entry: e,
            category: INSURANT_CATEGORY.to_owned(),
        });
    }
    rec.submission_sets.push(set);
    rec.associations.extend(associations);
    Ok(audit)
}

/// ITI-62: hard delete of the named documents (all their versions), their associations and
/// bytes; a SubmissionSet left without members goes too.
pub fn delete(ctx: &Ctx<'_>, m: &Message) -> (StatusCode, Encoded) {
    let result = remove(ctx, m);
    match &result {
        Ok(titles) => {
            for (t, uid) in titles {
                ctx.audit(
                    AuditAction::Delete,
                    AuditOutcome::Success,
                    "DeleteDocumentSet",
                    t.clone(),
                    Some(uid.clone()),
                );
            }
        }
        Err(_) => ctx.audit(
            AuditAction::Delete,
            AuditOutcome::MinorFailure,
            "DeleteDocumentSet",
            String::new(),
            None,
        ),
    }
    respond(
        ctx,
        action::DELETE_DOCUMENT_SET_RESPONSE,
        result.map(|_| ()),
    )
}

fn remove(ctx: &Ctx<'_>, m: &Message) -> Result<Vec<(String, String)>, Refusal> {
    let ids = submit::parse_remove_objects(m)
        .map_err(|e| refuse(ec::REGISTRY_METADATA_ERROR, e.to_string()))?;
    let mut st = ctx.svc.documents.lock();
    let Some(rec) = st.records.get_mut(ctx.kvnr) else {
        return Err(refuse(
            ec::UNRESOLVED_REFERENCE,
            format!("{} not in this record", ids[0]),
        ));
    };
    let mut lids = Vec::new();
    let mut assoc_ids = Vec::new();
    for id in &ids {
        if let Some(e) = rec.entries.iter().find(|e| e.entry.id == *id) {
            lids.push(e.entry.lid.clone().unwrap_or_else(|| e.entry.id.clone()));
        } else if rec.associations.iter().any(|a| a.id == *id) {
            assoc_ids.push(id.clone());
        } else {
            return Err(refuse(
                ec::UNRESOLVED_REFERENCE,
                format!("{id} is no document or association of this record"),
            ));
        }
    }
    let gone: Vec<StoredDocument> = rec
        .entries
        .iter()
        .filter(|e| lids.contains(e.entry.lid.as_ref().unwrap_or(&e.entry.id)))
        .cloned()
        .collect();
    let gone_ids: Vec<&str> = gone.iter().map(|e| e.entry.id.as_str()).collect();
    rec.entries
        .retain(|e| !gone_ids.contains(&e.entry.id.as_str()));
    rec.associations.retain(|a| {
        !assoc_ids.contains(&a.id)
            && !gone_ids.contains(&a.source.as_str())
            && !gone_ids.contains(&a.target.as_str())
    });
    let still_used: Vec<String> = rec
        .entries
        .iter()
        .map(|e| e.entry.unique_id.clone())
        .collect();
    rec.contents.retain(|uid, _| still_used.contains(uid));
    let members: Vec<String> = rec
        .associations
        .iter()
        .filter(|a| a.association_type == scheme::HAS_MEMBER)
        .map(|a| a.source.clone())
        .collect();
    rec.submission_sets.retain(|s| members.contains(&s.id));
    let mut titles: Vec<(String, String)> = Vec::new();
    for e in gone {
        if e.entry.status.as_deref() == Some(status::APPROVED) {
            titles.push((e.entry.title.unwrap_or_default(), e.entry.unique_id));
        }
    }
    Ok(titles)
}

/// ITI-92: a new version of one DocumentEntry; only the updatable attributes of §5.7 may
/// differ from the current version.
pub fn restricted_update(ctx: &Ctx<'_>, m: &Message) -> (StatusCode, Encoded) {
    let result = update(ctx, m);
    let (outcome, title, uid) = match &result {
        Ok((t, u)) => (AuditOutcome::Success, t.clone(), Some(u.clone())),
        Err(_) => (AuditOutcome::MinorFailure, String::new(), None),
    };
    ctx.audit(
        AuditAction::Update,
        outcome,
        "RestrictedUpdateDocumentSet",
        title,
        uid,
    );
    respond(ctx, action::RESTRICTED_UPDATE_RESPONSE, result.map(|_| ()))
}

fn update(ctx: &Ctx<'_>, m: &Message) -> Result<(String, String), Refusal> {
    let objects = submit::parse_submit_objects(m)
        .map_err(|e| refuse(ec::REGISTRY_METADATA_ERROR, e.to_string()))?;
    let pid = patient_id(ctx.kvnr);
    let Split {
        mut set,
        entries,
        associations,
    } = split(objects)?;
    check_submission_set(&set, &pid)?;
    let [mut e] = <[DocumentEntry; 1]>::try_from(entries).map_err(|_| {
        refuse(
            ec::REGISTRY_METADATA_ERROR,
            "a restricted update carries exactly one DocumentEntry",
        )
    })?;
    let [mut a] = <[Association; 1]>::try_from(associations).map_err(|_| {
        refuse(
            ec::REGISTRY_METADATA_ERROR,
            "a restricted update carries exactly one association",
        )
    })?;
    if a.association_type != scheme::HAS_MEMBER || a.source != set.id || a.target != e.id {
        return Err(refuse(
            ec::REGISTRY_METADATA_ERROR,
            "the association must be HasMember from the SubmissionSet to the DocumentEntry",
        ));
    }
    let Some(prev) = a.slot("PreviousVersion").map(str::to_owned) else {
        return Err(refuse(
            ec::REGISTRY_METADATA_ERROR,
            "HasMember needs slot PreviousVersion",
        ));
    };
    let Some(lid) = e.lid.clone() else {
        return Err(refuse(
            ec::REGISTRY_METADATA_ERROR,
            "the new version needs @lid (logical id of the document)",
        ));
    };
    let mut st = ctx.svc.documents.lock();
    let repo = st.repository_unique_id.clone();
    let home = st.home_community_id.clone();
    let uid_taken_elsewhere = |u: &str| {
        st.records
            .values()
            .any(|r| r.submission_sets.iter().any(|s| s.unique_id == u))
    };
    if uid_taken_elsewhere(&set.unique_id) {
        return Err(refuse(
            ec::DUPLICATE_UNIQUE_ID_IN_REGISTRY,
            format!("uniqueId {} is already registered", set.unique_id),
        ));
    }
    let Some(rec) = st.records.get_mut(ctx.kvnr) else {
        return Err(refuse(
            ec::UNRESOLVED_REFERENCE,
            format!("no document {lid} in this record"),
        ));
    };
    let Some(cur) = rec
        .entries
        .iter()
        .find(|x| {
            x.entry.lid.as_deref() == Some(lid.as_str())
                && x.entry.status.as_deref() == Some(status::APPROVED)
        })
        .cloned()
    else {
        return Err(refuse(
            ec::UNRESOLVED_REFERENCE,
            format!("no current document with logical id {lid} in this record"),
        ));
    };
    let cur_version = cur.entry.version.clone().unwrap_or_else(|| "1".into());
    if prev != cur_version {
        return Err(refuse(
            ec::METADATA_VERSION_ERROR,
            format!("PreviousVersion {prev} is not the current version {cur_version}"),
        ));
    }
    // Attributes outside the updatable list must stay; absent repository-side ones are kept.
    let c = &cur.entry;
    e.hash = e.hash.take().or(c.hash.clone());
    e.size = e.size.or(c.size);
    e.repository_unique_id = e
        .repository_unique_id
        .take()
        .or(c.repository_unique_id.clone());
    e.home = e.home.take().or(c.home.clone());
    e.source_patient_id = e.source_patient_id.take().or(c.source_patient_id.clone());
    for (name, same) in [
        ("uniqueId", e.unique_id == c.unique_id),
        ("patientId", e.patient_id == c.patient_id),
        ("mimeType", e.mime_type == c.mime_type),
        ("hash", e.hash == c.hash),
        ("size", e.size == c.size),
        (
            "repositoryUniqueId",
            e.repository_unique_id == c.repository_unique_id,
        ),
        ("homeCommunityId", e.home == c.home),
        (
            "sourcePatientId",
            e.source_patient_id == c.source_patient_id,
        ),
        ("objectType", e.object_type == c.object_type),
    ] {
        if !same {
            return Err(refuse(
                ec::REGISTRY_METADATA_ERROR,
                format!("{name} cannot be changed by a restricted update"),
            ));
        }
    }
    // Authors kept from the current version need not be the insurant (a practice's letter).
    let uploader = (e.authors != c.authors).then_some(ctx.caller.user.kvnr.as_str());
    check_entry(&e, &pid, uploader)?;
    let root = c.root_document_id().map(str::to_owned);
    match (e.root_document_id(), &root) {
        (Some(new), Some(old)) if new != old => {
            return Err(refuse(
                ec::REGISTRY_METADATA_ERROR,
                "the root document id in referenceIdList cannot change",
            ));
        }
        (None, Some(old)) => e.reference_ids.push(old.clone()),
        _ => {}
    }
    let mut map = Vec::new();
    set.id = assign_id(ctx, &set.id, Some(rec), &mut map)?;
    e.id = assign_id(ctx, &e.id, Some(rec), &mut map)?;
    a.id = assign_id(ctx, &a.id, Some(rec), &mut map)?;
    a.source = set.id.clone();
    a.target = e.id.clone();
    a.status = Some(status::APPROVED.to_owned());
    let next = cur_version.parse::<u64>().map_or(2, |v| v + 1);
    e.version = Some(next.to_string());
    e.status = Some(status::APPROVED.to_owned());
    e.repository_unique_id = Some(repo);
    e.home = Some(home.clone());
    set.status = Some(status::APPROVED.to_owned());
    set.home = Some(home);
    if let Some(x) = rec.entries.iter_mut().find(|x| x.entry.id == c.id) {
        x.entry.status = Some(status::DEPRECATED.to_owned());
    }
    let out = (e.title.clone().unwrap_or_default(), e.unique_id.clone());
    rec.entries.push(StoredDocument {
        entry: e,
        // Re-categorisation (§5.7): an insurant's documents stay in their category.
        category: cur.category.clone(),
    });
    rec.submission_sets.push(set);
    rec.associations.push(a);
    Ok(out)
}
