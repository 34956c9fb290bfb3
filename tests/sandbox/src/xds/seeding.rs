//! The seed's documents: built-in files, code display names, and the registry objects and
//! audit history they become.

use epa_protocol::xds::rim::{
    Author, Code, DocumentEntry, InsurantDocument, SubmissionSet, codes, dtm_from_unix, has_member,
    insurant_author, patient_id, scheme,
};
use epa_protocol::xds::{derived_uuid, sha1_hex, status, uuid_oid};

use super::{DocumentState, INSURANT_OID, SeedAudit, StoredDocument};
use crate::audit::{AuditAction, AuditActor, AuditOutcome, NewAuditEvent};
use crate::seed::{Seed, UploaderSeed, parse_utc};

/// Files seeds can name (small, real files made for the sandbox).
const FILES: [(&str, &[u8]); 5] = [
    (
        "image001.jpg",
        include_bytes!("../../seed/documents/image001.jpg"),
    ),
    (
        "roentgenaufnahme.png",
        include_bytes!("../../seed/documents/roentgenaufnahme.png"),
    ),
    ("demo.pdf", include_bytes!("../../seed/documents/demo.pdf")),
    (
        "arztbrief.pdf",
        include_bytes!("../../seed/documents/arztbrief.pdf"),
    ),
    (
        "laborbefund.pdf",
        include_bytes!("../../seed/documents/laborbefund.pdf"),
    ),
];

pub fn seed_file(name: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// MIME types a document may have (I_Test_Driver_FdV, DocumentMetadata.mimeType).
pub const MIME_TYPES: [&str; 11] = [
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/tiff",
    "text/plain",
    "text/rtf",
    "application/xml",
    "application/hl7-v3",
    "application/pkcs7-mime",
    "application/fhir+xml",
    "application/xacml+xml",
];

/// The static categories (folder codes, system 1.2.276.0.76.5.512, §5.6).
pub const CATEGORIES: [&str; 16] = [
    "reports",
    "emergency",
    "eab",
    "dental",
    "child",
    "pregnancy_childbirth",
    "vaccination",
    "patient",
    "receipt",
    "diga",
    "care",
    "eau",
    "rehab",
    "transcripts",
    "other",
    "emp",
];

/// Display names of the IHE-DE codes the seed uses (unknown codes show as themselves).
fn display(code: &str) -> &str {
    match code {
        "BIL" => "Bilddaten",
        "BRI" => "Brief",
        "LAB" => "Laborergebnisse",
        "DOK" => "Dokumente ohne besondere Form (Notizen)",
        "BEF" => "Befundbericht",
        "PATD" => "Patienteneigene Dokumente",
        "BERI" => "Arztberichte",
        "BEFU" => "Ergebnisse Diagnostik",
        "BILD" => "Ergebnisse bildgebender Diagnostik",
        "PRA" => "Arztpraxis",
        "MVZ" => "Medizinisches Versorgungszentrum",
        "KHS" => "Krankenhaus",
        "ALLG" => "Allgemeinmedizin",
        "LABO" => "Laboratoriumsmedizin",
        "ORTH" => "Orthopädie",
        "INNE" => "Innere Medizin",
        other => other,
    }
}

fn practice_author(p: &crate::seed::PracticeSeed) -> Author {
    let d = &p.doctor;
    Author {
        person: Some(format!(
            "^{}^{}^^^{}^^^",
            d.family_name, d.given_name, d.prefix
        )),
        // XON with the TelematikID as organisation identifier (assigning authority
        // 1.2.276.0.76.4.188 = TelematikID).
        institutions: vec![format!(
            "{}^^^^^&1.2.276.0.76.4.188&ISO^^^^{}",
            p.name, p.telematik_id
        )],
        roles: vec!["8^^^&1.3.6.1.4.1.19376.3.276.1.5.13&ISO".to_owned()],
        ..Author::default()
    }
}

/// The entryUUID of a seeded dynamic folder: stable across starts, so clients and state files
/// can refer to it.
pub fn dynamic_folder_uuid(system_id: &str, kvnr: &str, title: &str) -> String {
    format!(
        "urn:uuid:{}",
        derived_uuid(&format!("seed/{system_id}/folder/{kvnr}/{title}"))
    )
}

/// Fills the registry of the records on `system_id` and queues their audit history.
pub fn seed(st: &mut DocumentState, seed: &Seed, system_id: &str) {
    let repo = st.repository_unique_id.clone();
    let home = st.home_community_id.clone();
    for (i, d) in seed.documents.iter().enumerate() {
        let Some(person) = seed.insurants.iter().find(|p| p.kvnr == d.kvnr) else {
            continue;
        };
        if seed.aktensystem_of(person) != Some(system_id) || person.record.is_none() {
            continue;
        }
        let (Some(bytes), Some(created)) = (seed_file(&d.file), parse_utc(&d.created)) else {
            continue;
        };
        let name = |what: &str| {
            format!(
                "urn:uuid:{}",
                derived_uuid(&format!("seed/{system_id}/{i}/{what}"))
            )
        };
        let entry_id = name("entry");
        let unique_id = uuid_oid(&entry_id).unwrap_or_default();
        let ss_unique = uuid_oid(&name("set")).unwrap_or_default();
        let dtm = dtm_from_unix(created);
        let base = InsurantDocument {
            kvnr: &person.kvnr,
            given_name: &person.given_name,
            family_name: &person.family_name,
            title: &d.title,
            comments: d.comments.as_deref(),
            mime_type: &d.mime_type,
            creation_time: &dtm,
            id: &entry_id,
            unique_id: &unique_id,
        };
        let mut e: DocumentEntry = base.entry();
        let mut set: SubmissionSet =
            base.submission_set(&name("set"), &ss_unique, "1.2.276.0.76.3.1.999", &dtm);
        e.class_code = Some(Code::new(
            &d.class_code,
            codes::CLASS,
            display(&d.class_code),
        ));
        e.type_code = Some(Code::new(&d.type_code, codes::TYPE, display(&d.type_code)));
        let practice = match &d.uploaded_by {
            UploaderSeed::Insurant => None,
            UploaderSeed::Practice(t) => seed.practices.iter().find(|p| p.telematik_id == *t),
        };
        let actor = match practice {
            Some(p) => {
                let a = practice_author(p);
                e.authors = vec![a.clone()];
                set.authors = vec![a];
                set.content_type_code =
                    Some(Code::new("1", codes::CONTENT_TYPE, "Patientenkontakt"));
                e.healthcare_facility_type_code = Some(Code::new(
                    &p.facility_type_code,
                    codes::FACILITY,
                    display(&p.facility_type_code),
                ));
                e.practice_setting_code = Some(Code::new(
                    &p.practice_setting_code,
                    codes::PRACTICE,
                    display(&p.practice_setting_code),
                ));
                AuditActor {
                    id: p.telematik_id.clone(),
                    name: p.name.clone(),
                    oid: p.profession_oid.clone(),
                }
            }
            None => {
                e.authors = vec![insurant_author(
                    &person.kvnr,
                    &person.given_name,
                    &person.family_name,
                )];
                AuditActor {
                    id: person.kvnr.clone(),
                    name: format!("{} {}", person.given_name, person.family_name),
                    oid: INSURANT_OID.to_owned(),
                }
            }
        };
        let root = format!(
            "{}{}",
            entry_id.trim_start_matches("urn:uuid:"),
            epa_protocol::xds::rim::slot::ROOT_DOCUMENT_SUFFIX
        );
        e.reference_ids = vec![root];
        e.status = Some(status::APPROVED.to_owned());
        e.lid = Some(entry_id.clone());
        e.version = Some("1".to_owned());
        e.home = Some(home.clone());
        e.repository_unique_id = Some(repo.clone());
        e.hash = Some(sha1_hex(bytes));
        e.size = Some(bytes.len() as u64);
        e.object_type = scheme::STABLE.to_owned();
        e.patient_id = patient_id(&person.kvnr);
        set.status = Some(status::APPROVED.to_owned());
        set.home = Some(home.clone());
        let mut assoc = has_member(&name("member"), &set.id, &entry_id);
        assoc.status = Some(status::APPROVED.to_owned());
        let event = |at: u64, action, operation: &'static str, actor: AuditActor| SeedAudit {
            at,
            event: NewAuditEvent {
                record: person.kvnr.clone(),
                action,
                outcome: AuditOutcome::Success,
                source: "XDSSVC",
                kind: "document",
                operation,
                entity_name: d.title.clone(),
                entity_detail: Some(unique_id.clone()),
                actor,
            },
        };
        st.seed_audit.push(event(
            created,
            AuditAction::Create,
            "ProvideAndRegisterDocumentSet-b",
            actor,
        ));
        for r in &d.read_by {
            let (Some(p), Some(at)) = (
                seed.practices.iter().find(|p| p.telematik_id == r.practice),
                parse_utc(&r.at),
            ) else {
                continue;
            };
            let reader = AuditActor {
                id: p.telematik_id.clone(),
                name: p.name.clone(),
                oid: p.profession_oid.clone(),
            };
            st.seed_audit
                .push(event(at, AuditAction::Read, "RetrieveDocumentSet", reader));
        }
        let rec = st.records.entry(person.kvnr.clone()).or_default();
        if let Some(title) = &d.dynamic_folder {
            let folder = dynamic_folder_uuid(system_id, &person.kvnr, title);
            if !rec.dynamic_folders.contains(&folder) {
                rec.dynamic_folders.push(folder);
            }
        }
        rec.contents
            .insert(unique_id.clone(), bytes.to_vec().into());
        rec.entries.push(StoredDocument {
            entry: e,
            category: d.category.clone(),
        });
        rec.submission_sets.push(set);
        rec.associations.push(assoc);
    }
    st.seed_audit.sort_by_key(|a| a.at);
}
