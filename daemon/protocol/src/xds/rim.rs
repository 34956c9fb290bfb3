//! The ebRIM 3.0 model of XDS metadata (IHE ITI TF-3 §4.2, epa-protocol.md §5.3, §5.6):
//! DocumentEntry (`rim:ExtrinsicObject`), SubmissionSet (`rim:RegistryPackage`), Association,
//! and how they are written and read.

use serde::{Deserialize, Serialize};

use super::xml::{Element, Writer};
use super::{XdsError, derived_uuid, meta, ns};

/// Classification and identification schemes (§5.6) and object types.
pub mod scheme {
    pub const SUBMISSION_SET: &str = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd";
    pub const FOLDER: &str = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2";
    pub const SS_AUTHOR: &str = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d";
    pub const SS_CONTENT_TYPE: &str = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500";
    pub const SS_UNIQUE_ID: &str = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8";
    pub const SS_SOURCE_ID: &str = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832";
    pub const SS_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
    pub const DE_AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
    pub const DE_CLASS: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
    pub const DE_CONFIDENTIALITY: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
    pub const DE_EVENT: &str = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4";
    pub const DE_FORMAT: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
    pub const DE_FACILITY_TYPE: &str = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1";
    pub const DE_PRACTICE_SETTING: &str = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead";
    pub const DE_TYPE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
    pub const DE_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
    pub const DE_UNIQUE_ID: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";
    /// objectType of a stable DocumentEntry.
    pub const STABLE: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
    pub const ON_DEMAND: &str = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248";
    pub const HAS_MEMBER: &str = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember";
    pub const RPLC: &str = "urn:ihe:iti:2007:AssociationType:RPLC";
    pub const REGISTRY_PACKAGE: &str =
        "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage";
    pub const CLASSIFICATION: &str =
        "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification";
    pub const EXTERNAL_IDENTIFIER: &str =
        "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier";
    pub const ASSOCIATION: &str =
        "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association";
}

/// Slot names.
pub mod slot {
    pub const REFERENCE_ID_LIST: &str = "urn:ihe:iti:xds:2013:referenceIdList";
    pub const ROOT_DOCUMENT_SUFFIX: &str = "^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId";
}

/// Assigning authority of KVNRs in patient ids (§5.3).
pub const KVNR_AUTHORITY_OID: &str = "1.2.276.0.76.4.8";

/// `<KVNR>^^^&1.2.276.0.76.4.8&ISO`.
pub fn patient_id(kvnr: &str) -> String {
    format!("{kvnr}^^^&{KVNR_AUTHORITY_OID}&ISO")
}

/// The KVNR of a patient id in ePA form, if it is one.
pub fn kvnr_of_patient_id(id: &str) -> Option<&str> {
    id.strip_suffix(&format!("^^^&{KVNR_AUTHORITY_OID}&ISO"))
        .filter(|k| k.len() == 10 && k.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A coded value: `@nodeRepresentation`, slot `codingScheme`, display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Code {
    pub code: String,
    pub scheme: String,
    pub display: String,
}

impl Code {
    pub fn new(code: &str, scheme: &str, display: &str) -> Self {
        Self {
            code: code.into(),
            scheme: scheme.into(),
            display: display.into(),
        }
    }

    /// The stored-query form `code^^^&scheme&ISO`.
    pub fn query_value(&self) -> String {
        format!("{}^^^&{}&ISO", self.code, self.scheme)
    }
}

/// An author (Classification with the author scheme and empty nodeRepresentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// XCN `id^family^given^…^^&authority&ISO`.
    pub person: Option<String>,
    /// XON, e.g. `Praxis Dr. Sommer^^^^^^^^^1-20014567&1.2.276.0.76.4.188&ISO`.
    pub institutions: Vec<String>,
    pub roles: Vec<String>,
    pub specialties: Vec<String>,
    pub telecom: Vec<String>,
}

/// Any other slot, kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub name: String,
    pub values: Vec<String>,
}

/// XDSDocumentEntry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentEntry {
    /// entryUUID (`urn:uuid:…`) or, inside one submission, a symbolic id.
    pub id: String,
    /// logicalID (`@lid`); versions of one document share it.
    pub lid: Option<String>,
    /// `rim:VersionInfo/@versionName`.
    pub version: Option<String>,
    /// availabilityStatus (`@status`).
    pub status: Option<String>,
    pub object_type: String,
    /// homeCommunityId (`@home`).
    pub home: Option<String>,
    pub mime_type: String,
    pub title: Option<String>,
    pub comments: Option<String>,
    pub unique_id: String,
    pub patient_id: String,
    pub creation_time: Option<String>,
    pub language_code: Option<String>,
    pub source_patient_id: Option<String>,
    pub service_start_time: Option<String>,
    pub service_stop_time: Option<String>,
    /// SHA-1, lower-case hex.
    pub hash: Option<String>,
    pub size: Option<u64>,
    pub repository_unique_id: Option<String>,
    pub uri: Option<String>,
    pub legal_authenticator: Option<String>,
    pub reference_ids: Vec<String>,
    pub class_code: Option<Code>,
    pub type_code: Option<Code>,
    pub format_code: Option<Code>,
    pub healthcare_facility_type_code: Option<Code>,
    pub practice_setting_code: Option<Code>,
    pub confidentiality_codes: Vec<Code>,
    pub event_codes: Vec<Code>,
    pub authors: Vec<Author>,
    pub other_slots: Vec<Slot>,
}

/// XDSSubmissionSet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionSet {
    pub id: String,
    pub status: Option<String>,
    pub home: Option<String>,
    pub title: Option<String>,
    pub comments: Option<String>,
    pub unique_id: String,
    pub source_id: String,
    pub patient_id: String,
    pub submission_time: Option<String>,
    pub content_type_code: Option<Code>,
    pub authors: Vec<Author>,
    pub other_slots: Vec<Slot>,
}

/// An Association (HasMember, RPLC, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Association {
    pub id: String,
    pub association_type: String,
    pub source: String,
    pub target: String,
    pub status: Option<String>,
    pub slots: Vec<Slot>,
}

impl Association {
    pub fn slot(&self, name: &str) -> Option<&str> {
        self.slots
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.values.first())
            .map(String::as_str)
    }
}

/// One member of a `rim:RegistryObjectList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryObject {
    DocumentEntry(Box<DocumentEntry>),
    SubmissionSet(Box<SubmissionSet>),
    /// A Folder (RegistryPackage classified as folder); only its id is modelled.
    Folder(String),
    Association(Association),
    ObjectRef(String),
}

// ---------------------------------------------------------------------------------------------
// time (DTM)

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYYMMDDhhmmss` (UTC) of a Unix time.
pub fn dtm_from_unix(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let s = t % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Parses a DTM of 4, 6, 8, 10, 12 or 14 digits (missing parts are the start of the period).
pub fn unix_from_dtm(s: &str) -> Option<u64> {
    if !matches!(s.len(), 4 | 6 | 8 | 10 | 12 | 14) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize, default: u32| -> Option<u32> {
        if s.len() >= b {
            s.get(a..b)?.parse().ok()
        } else {
            Some(default)
        }
    };
    let y: i64 = s.get(0..4)?.parse().ok()?;
    let (mo, d, h, mi, se) = (
        n(4, 6, 1)?,
        n(6, 8, 1)?,
        n(8, 10, 0)?,
        n(10, 12, 0)?,
        n(12, 14, 0)?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > dim[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || se > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let t = days * 86_400 + i64::from(h * 3600 + mi * 60 + se);
    u64::try_from(t).ok()
}

// ---------------------------------------------------------------------------------------------
// writing

fn write_slot(w: &mut Writer, name: &str, values: &[&str]) {
    w.open("rim:Slot", &[("name", name)]);
    w.open("rim:ValueList", &[]);
    for v in values {
        w.leaf("rim:Value", &[], v);
    }
    w.close("rim:ValueList");
    w.close("rim:Slot");
}

fn write_opt_slot(w: &mut Writer, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        write_slot(w, name, &[v]);
    }
}

fn write_text(w: &mut Writer, el: &str, v: &Option<String>) {
    if let Some(v) = v {
        w.open(el, &[]);
        w.empty(
            "rim:LocalizedString",
            &[("xml:lang", "de-DE"), ("charset", "UTF-8"), ("value", v)],
        );
        w.close(el);
    }
}

fn urn(name: &str) -> String {
    format!("urn:uuid:{}", derived_uuid(name))
}

fn write_code(w: &mut Writer, object: &str, scheme: &str, n: usize, c: &Code) {
    w.open(
        "rim:Classification",
        &[
            ("id", &urn(&format!("{object}/{scheme}/{n}"))),
            ("objectType", scheme::CLASSIFICATION),
            ("classificationScheme", scheme),
            ("classifiedObject", object),
            ("nodeRepresentation", &c.code),
        ],
    );
    write_slot(w, "codingScheme", &[&c.scheme]);
    write_text(w, "rim:Name", &Some(c.display.clone()));
    w.close("rim:Classification");
}

fn write_author(w: &mut Writer, object: &str, scheme: &str, n: usize, a: &Author) {
    w.open(
        "rim:Classification",
        &[
            ("id", &urn(&format!("{object}/{scheme}/{n}"))),
            ("objectType", scheme::CLASSIFICATION),
            ("classificationScheme", scheme),
            ("classifiedObject", object),
            ("nodeRepresentation", ""),
        ],
    );
    if let Some(p) = &a.person {
        write_slot(w, "authorPerson", &[p]);
    }
    for (name, list) in [
        ("authorInstitution", &a.institutions),
        ("authorRole", &a.roles),
        ("authorSpecialty", &a.specialties),
        ("authorTelecommunication", &a.telecom),
    ] {
        if !list.is_empty() {
            let v: Vec<&str> = list.iter().map(String::as_str).collect();
            write_slot(w, name, &v);
        }
    }
    w.close("rim:Classification");
}

fn write_external_id(w: &mut Writer, object: &str, scheme: &str, value: &str, name: &str) {
    w.open(
        "rim:ExternalIdentifier",
        &[
            ("id", &urn(&format!("{object}/{scheme}"))),
            ("objectType", scheme::EXTERNAL_IDENTIFIER),
            ("registryObject", object),
            ("identificationScheme", scheme),
            ("value", value),
        ],
    );
    write_text(w, "rim:Name", &Some(name.to_owned()));
    w.close("rim:ExternalIdentifier");
}

fn push_attr<'a>(attrs: &mut Vec<(&'a str, &'a str)>, name: &'a str, v: &'a Option<String>) {
    if let Some(v) = v {
        attrs.push((name, v));
    }
}

impl DocumentEntry {
    pub fn write(&self, w: &mut Writer) {
        let mut attrs = vec![("id", self.id.as_str())];
        push_attr(&mut attrs, "lid", &self.lid);
        push_attr(&mut attrs, "home", &self.home);
        attrs.push(("mimeType", &self.mime_type));
        attrs.push(("objectType", &self.object_type));
        push_attr(&mut attrs, "status", &self.status);
        w.open("rim:ExtrinsicObject", &attrs);
        write_opt_slot(w, "creationTime", &self.creation_time);
        write_opt_slot(w, "hash", &self.hash);
        write_opt_slot(w, "languageCode", &self.language_code);
        write_opt_slot(w, "legalAuthenticator", &self.legal_authenticator);
        write_opt_slot(w, "repositoryUniqueId", &self.repository_unique_id);
        write_opt_slot(w, "serviceStartTime", &self.service_start_time);
        write_opt_slot(w, "serviceStopTime", &self.service_stop_time);
        if let Some(s) = self.size {
            write_slot(w, "size", &[&s.to_string()]);
        }
        write_opt_slot(w, "sourcePatientId", &self.source_patient_id);
        write_opt_slot(w, "URI", &self.uri);
        if !self.reference_ids.is_empty() {
            let v: Vec<&str> = self.reference_ids.iter().map(String::as_str).collect();
            write_slot(w, slot::REFERENCE_ID_LIST, &v);
        }
        for s in &self.other_slots {
            let v: Vec<&str> = s.values.iter().map(String::as_str).collect();
            write_slot(w, &s.name, &v);
        }
        write_text(w, "rim:Name", &self.title);
        write_text(w, "rim:Description", &self.comments);
        if let Some(v) = &self.version {
            w.empty("rim:VersionInfo", &[("versionName", v)]);
        }
        let id = &self.id;
        for (n, a) in self.authors.iter().enumerate() {
            write_author(w, id, scheme::DE_AUTHOR, n, a);
        }
        for (scheme, code) in [
            (scheme::DE_CLASS, &self.class_code),
            (scheme::DE_TYPE, &self.type_code),
            (scheme::DE_FORMAT, &self.format_code),
            (
                scheme::DE_FACILITY_TYPE,
                &self.healthcare_facility_type_code,
            ),
            (scheme::DE_PRACTICE_SETTING, &self.practice_setting_code),
        ] {
            if let Some(c) = code {
                write_code(w, id, scheme, 0, c);
            }
        }
        for (n, c) in self.confidentiality_codes.iter().enumerate() {
            write_code(w, id, scheme::DE_CONFIDENTIALITY, n, c);
        }
        for (n, c) in self.event_codes.iter().enumerate() {
            write_code(w, id, scheme::DE_EVENT, n, c);
        }
        write_external_id(
            w,
            id,
            scheme::DE_PATIENT_ID,
            &self.patient_id,
            "XDSDocumentEntry.patientId",
        );
        write_external_id(
            w,
            id,
            scheme::DE_UNIQUE_ID,
            &self.unique_id,
            "XDSDocumentEntry.uniqueId",
        );
        w.close("rim:ExtrinsicObject");
    }

    /// The root id of the document's replacement chain (`…^^^^urn:gematik:…rootDocumentUniqueId`).
    pub fn root_document_id(&self) -> Option<&str> {
        self.reference_ids
            .iter()
            .find(|r| r.ends_with(slot::ROOT_DOCUMENT_SUFFIX))
            .map(String::as_str)
    }

    /// The creation time as a Unix time.
    pub fn created_unix(&self) -> Option<u64> {
        self.creation_time.as_deref().and_then(unix_from_dtm)
    }
}

impl SubmissionSet {
    pub fn write(&self, w: &mut Writer) {
        let mut attrs = vec![("id", self.id.as_str())];
        push_attr(&mut attrs, "home", &self.home);
        attrs.push(("objectType", scheme::REGISTRY_PACKAGE));
        push_attr(&mut attrs, "status", &self.status);
        w.open("rim:RegistryPackage", &attrs);
        write_opt_slot(w, "submissionTime", &self.submission_time);
        for s in &self.other_slots {
            let v: Vec<&str> = s.values.iter().map(String::as_str).collect();
            write_slot(w, &s.name, &v);
        }
        write_text(w, "rim:Name", &self.title);
        write_text(w, "rim:Description", &self.comments);
        let id = &self.id;
        for (n, a) in self.authors.iter().enumerate() {
            write_author(w, id, scheme::SS_AUTHOR, n, a);
        }
        if let Some(c) = &self.content_type_code {
            write_code(w, id, scheme::SS_CONTENT_TYPE, 0, c);
        }
        w.empty(
            "rim:Classification",
            &[
                ("id", &urn(&format!("{id}/node"))),
                ("objectType", scheme::CLASSIFICATION),
                ("classifiedObject", id),
                ("classificationNode", scheme::SUBMISSION_SET),
            ],
        );
        write_external_id(
            w,
            id,
            scheme::SS_UNIQUE_ID,
            &self.unique_id,
            "XDSSubmissionSet.uniqueId",
        );
        write_external_id(
            w,
            id,
            scheme::SS_SOURCE_ID,
            &self.source_id,
            "XDSSubmissionSet.sourceId",
        );
        write_external_id(
            w,
            id,
            scheme::SS_PATIENT_ID,
            &self.patient_id,
            "XDSSubmissionSet.patientId",
        );
        w.close("rim:RegistryPackage");
    }
}

impl Association {
    pub fn write(&self, w: &mut Writer) {
        let mut attrs = vec![
            ("id", self.id.as_str()),
            ("objectType", scheme::ASSOCIATION),
            ("associationType", &self.association_type),
            ("sourceObject", &self.source),
            ("targetObject", &self.target),
        ];
        push_attr(&mut attrs, "status", &self.status);
        if self.slots.is_empty() {
            w.empty("rim:Association", &attrs);
            return;
        }
        w.open("rim:Association", &attrs);
        for s in &self.slots {
            let v: Vec<&str> = s.values.iter().map(String::as_str).collect();
            write_slot(w, &s.name, &v);
        }
        w.close("rim:Association");
    }
}

impl RegistryObject {
    pub fn write(&self, w: &mut Writer) {
        match self {
            Self::DocumentEntry(d) => d.write(w),
            Self::SubmissionSet(s) => s.write(w),
            Self::Folder(id) | Self::ObjectRef(id) => w.empty("rim:ObjectRef", &[("id", id)]),
            Self::Association(a) => a.write(w),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Self::DocumentEntry(d) => &d.id,
            Self::SubmissionSet(s) => &s.id,
            Self::Folder(id) | Self::ObjectRef(id) => id,
            Self::Association(a) => &a.id,
        }
    }
}

/// Writes a `rim:RegistryObjectList`.
pub fn write_object_list(w: &mut Writer, objects: &[RegistryObject]) {
    w.open("rim:RegistryObjectList", &[]);
    for o in objects {
        o.write(w);
    }
    w.close("rim:RegistryObjectList");
}

// ---------------------------------------------------------------------------------------------
// reading

fn required_attr<'a>(el: &'a Element, name: &str) -> Result<&'a str, XdsError> {
    el.attr(name)
        .ok_or_else(|| XdsError::Metadata(format!("{} without @{name}", el.name)))
}

fn slots(el: &Element) -> Result<Vec<Slot>, XdsError> {
    let mut out: Vec<Slot> = Vec::new();
    for s in el.children_named(ns::RIM, "Slot") {
        let name = required_attr(s, "name")?.to_owned();
        if out.iter().any(|o| o.name == name) {
            return meta(format!("slot {name} twice on {}", el.name));
        }
        let Some(list) = s.child(ns::RIM, "ValueList") else {
            return meta(format!("slot {name} without ValueList"));
        };
        let values = list
            .children_named(ns::RIM, "Value")
            .map(|v| v.text.clone())
            .collect();
        out.push(Slot { name, values });
    }
    Ok(out)
}

fn take_single(slots: &mut Vec<Slot>, name: &str) -> Result<Option<String>, XdsError> {
    let Some(i) = slots.iter().position(|s| s.name == name) else {
        return Ok(None);
    };
    let mut s = slots.remove(i);
    if s.values.len() != 1 {
        return meta(format!("slot {name} must have exactly one value"));
    }
    Ok(s.values.pop())
}

fn take_multi(slots: &mut Vec<Slot>, name: &str) -> Vec<String> {
    match slots.iter().position(|s| s.name == name) {
        Some(i) => slots.remove(i).values,
        None => Vec::new(),
    }
}

fn localized(el: &Element, name: &str) -> Option<String> {
    el.child(ns::RIM, name)
        .and_then(|n| n.child(ns::RIM, "LocalizedString"))
        .and_then(|l| l.attr("value"))
        .map(str::to_owned)
}

fn check_sub_object(sub: &Element, attr: &str, owner: &str) -> Result<(), XdsError> {
    let target = required_attr(sub, attr)?;
    if target != owner {
        return meta(format!(
            "{} {attr}={target:?} does not point to its parent {owner:?}",
            sub.name
        ));
    }
    Ok(())
}

fn parse_code(c: &Element) -> Result<Code, XdsError> {
    let code = required_attr(c, "nodeRepresentation")?.to_owned();
    let mut s = slots(c)?;
    let scheme = take_single(&mut s, "codingScheme")?
        .ok_or_else(|| XdsError::Metadata(format!("code {code:?} without codingScheme")))?;
    let display = localized(c, "Name").unwrap_or_default();
    if code.is_empty() || scheme.is_empty() {
        return meta("coded value with an empty code or coding scheme");
    }
    Ok(Code {
        code,
        scheme,
        display,
    })
}

fn parse_author(c: &Element) -> Result<Author, XdsError> {
    let mut s = slots(c)?;
    let a = Author {
        person: take_single(&mut s, "authorPerson")?,
        institutions: take_multi(&mut s, "authorInstitution"),
        roles: take_multi(&mut s, "authorRole"),
        specialties: take_multi(&mut s, "authorSpecialty"),
        telecom: take_multi(&mut s, "authorTelecommunication"),
    };
    if a.person.is_none() && a.institutions.is_empty() {
        return meta("author without authorPerson and authorInstitution");
    }
    Ok(a)
}

fn set_once<T>(slot: &mut Option<T>, v: T, what: &str) -> Result<(), XdsError> {
    if slot.replace(v).is_some() {
        return meta(format!("{what} given twice"));
    }
    Ok(())
}

impl DocumentEntry {
    pub fn from_element(el: &Element) -> Result<Self, XdsError> {
        let id = required_attr(el, "id")?.to_owned();
        let mut s = slots(el)?;
        let size = match take_single(&mut s, "size")? {
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| XdsError::Metadata(format!("size {v:?} is no number")))?,
            ),
            None => None,
        };
        let mut d = DocumentEntry {
            lid: el.attr("lid").map(str::to_owned),
            version: el
                .child(ns::RIM, "VersionInfo")
                .and_then(|v| v.attr("versionName"))
                .map(str::to_owned),
            status: el.attr("status").map(str::to_owned),
            object_type: el.attr("objectType").unwrap_or(scheme::STABLE).to_owned(),
            home: el.attr("home").map(str::to_owned),
            mime_type: el.attr("mimeType").unwrap_or_default().to_owned(),
            title: localized(el, "Name"),
            comments: localized(el, "Description"),
            creation_time: take_single(&mut s, "creationTime")?,
            language_code: take_single(&mut s, "languageCode")?,
            source_patient_id: take_single(&mut s, "sourcePatientId")?,
            service_start_time: take_single(&mut s, "serviceStartTime")?,
            service_stop_time: take_single(&mut s, "serviceStopTime")?,
            hash: take_single(&mut s, "hash")?,
            size,
            repository_unique_id: take_single(&mut s, "repositoryUniqueId")?,
            uri: take_single(&mut s, "URI")?,
            legal_authenticator: take_single(&mut s, "legalAuthenticator")?,
            reference_ids: take_multi(&mut s, slot::REFERENCE_ID_LIST),
            other_slots: s,
            id,
            ..DocumentEntry::default()
        };
        for c in el.children_named(ns::RIM, "Classification") {
            check_sub_object(c, "classifiedObject", &d.id)?;
            let scheme = c.attr("classificationScheme").unwrap_or_default();
            match scheme {
                scheme::DE_AUTHOR => d.authors.push(parse_author(c)?),
                scheme::DE_CLASS => set_once(&mut d.class_code, parse_code(c)?, "classCode")?,
                scheme::DE_TYPE => set_once(&mut d.type_code, parse_code(c)?, "typeCode")?,
                scheme::DE_FORMAT => set_once(&mut d.format_code, parse_code(c)?, "formatCode")?,
                scheme::DE_FACILITY_TYPE => set_once(
                    &mut d.healthcare_facility_type_code,
                    parse_code(c)?,
                    "healthcareFacilityTypeCode",
                )?,
                scheme::DE_PRACTICE_SETTING => set_once(
                    &mut d.practice_setting_code,
                    parse_code(c)?,
                    "practiceSettingCode",
                )?,
                scheme::DE_CONFIDENTIALITY => d.confidentiality_codes.push(parse_code(c)?),
                scheme::DE_EVENT => d.event_codes.push(parse_code(c)?),
                other => return meta(format!("unknown DocumentEntry classification {other:?}")),
            }
        }
        let (mut pid, mut uid) = (None, None);
        for x in el.children_named(ns::RIM, "ExternalIdentifier") {
            check_sub_object(x, "registryObject", &d.id)?;
            let value = required_attr(x, "value")?.to_owned();
            match required_attr(x, "identificationScheme")? {
                scheme::DE_PATIENT_ID => set_once(&mut pid, value, "patientId")?,
                scheme::DE_UNIQUE_ID => set_once(&mut uid, value, "uniqueId")?,
                other => return meta(format!("unknown DocumentEntry identifier {other:?}")),
            }
        }
        d.patient_id =
            pid.ok_or_else(|| XdsError::Metadata("DocumentEntry without patientId".into()))?;
        d.unique_id =
            uid.ok_or_else(|| XdsError::Metadata("DocumentEntry without uniqueId".into()))?;
        Ok(d)
    }
}

impl SubmissionSet {
    /// `extra` are top-level Classifications of the same list that point at this package.
    pub fn from_element(el: &Element) -> Result<Self, XdsError> {
        let id = required_attr(el, "id")?.to_owned();
        let mut s = slots(el)?;
        let mut ss = SubmissionSet {
            status: el.attr("status").map(str::to_owned),
            home: el.attr("home").map(str::to_owned),
            title: localized(el, "Name"),
            comments: localized(el, "Description"),
            submission_time: take_single(&mut s, "submissionTime")?,
            other_slots: s,
            id,
            ..SubmissionSet::default()
        };
        for c in el.children_named(ns::RIM, "Classification") {
            check_sub_object(c, "classifiedObject", &ss.id)?;
            if c.attr("classificationNode").is_some() {
                continue;
            }
            match c.attr("classificationScheme").unwrap_or_default() {
                scheme::SS_AUTHOR => ss.authors.push(parse_author(c)?),
                scheme::SS_CONTENT_TYPE => {
                    set_once(&mut ss.content_type_code, parse_code(c)?, "contentTypeCode")?
                }
                other => return meta(format!("unknown SubmissionSet classification {other:?}")),
            }
        }
        let (mut pid, mut uid, mut src) = (None, None, None);
        for x in el.children_named(ns::RIM, "ExternalIdentifier") {
            check_sub_object(x, "registryObject", &ss.id)?;
            let value = required_attr(x, "value")?.to_owned();
            match required_attr(x, "identificationScheme")? {
                scheme::SS_PATIENT_ID => set_once(&mut pid, value, "patientId")?,
                scheme::SS_UNIQUE_ID => set_once(&mut uid, value, "uniqueId")?,
                scheme::SS_SOURCE_ID => set_once(&mut src, value, "sourceId")?,
                other => return meta(format!("unknown SubmissionSet identifier {other:?}")),
            }
        }
        ss.patient_id =
            pid.ok_or_else(|| XdsError::Metadata("SubmissionSet without patientId".into()))?;
        ss.unique_id =
            uid.ok_or_else(|| XdsError::Metadata("SubmissionSet without uniqueId".into()))?;
        ss.source_id =
            src.ok_or_else(|| XdsError::Metadata("SubmissionSet without sourceId".into()))?;
        Ok(ss)
    }
}

impl Association {
    pub fn from_element(el: &Element) -> Result<Self, XdsError> {
        Ok(Association {
            id: required_attr(el, "id")?.to_owned(),
            association_type: required_attr(el, "associationType")?.to_owned(),
            source: required_attr(el, "sourceObject")?.to_owned(),
            target: required_attr(el, "targetObject")?.to_owned(),
            status: el.attr("status").map(str::to_owned),
            slots: slots(el)?,
        })
    }
}

/// Reads a `rim:RegistryObjectList`. RegistryPackages are told apart (SubmissionSet / Folder)
/// by their classification node, nested or as a top-level Classification of the list.
pub fn parse_object_list(list: &Element) -> Result<Vec<RegistryObject>, XdsError> {
    let top_nodes: Vec<(&str, &str)> = list
        .children_named(ns::RIM, "Classification")
        .filter_map(|c| Some((c.attr("classifiedObject")?, c.attr("classificationNode")?)))
        .collect();
    let mut out = Vec::new();
    for c in &list.children {
        if c.ns != ns::RIM {
            return meta(format!("{{{}}}{} in RegistryObjectList", c.ns, c.name));
        }
        match c.name.as_str() {
            "ExtrinsicObject" => out.push(RegistryObject::DocumentEntry(Box::new(
                DocumentEntry::from_element(c)?,
            ))),
            "RegistryPackage" => {
                let id = required_attr(c, "id")?;
                let node = c
                    .children_named(ns::RIM, "Classification")
                    .find_map(|k| k.attr("classificationNode"))
                    .or_else(|| top_nodes.iter().find(|(o, _)| *o == id).map(|(_, n)| *n));
                match node {
                    Some(scheme::SUBMISSION_SET) => out.push(RegistryObject::SubmissionSet(
                        Box::new(SubmissionSet::from_element(c)?),
                    )),
                    Some(scheme::FOLDER) => out.push(RegistryObject::Folder(id.to_owned())),
                    _ => {
                        return meta(format!(
                            "RegistryPackage {id} is neither SubmissionSet nor Folder"
                        ));
                    }
                }
            }
            "Association" => out.push(RegistryObject::Association(Association::from_element(c)?)),
            "ObjectRef" => out.push(RegistryObject::ObjectRef(
                required_attr(c, "id")?.to_owned(),
            )),
            "Classification" => {
                if c.attr("classificationNode").is_none() {
                    return meta("top-level Classification without classificationNode");
                }
            }
            other => {
                return meta(format!(
                    "rim:{other} in RegistryObjectList is not supported"
                ));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// insurant uploads

/// Code systems of the IHE-DE value sets (§5.6).
pub mod codes {
    pub const CLASS: &str = "1.3.6.1.4.1.19376.3.276.1.5.8";
    pub const TYPE: &str = "1.3.6.1.4.1.19376.3.276.1.5.9";
    pub const FORMAT_IHE: &str = "1.3.6.1.4.1.19376.1.2.3";
    pub const FORMAT_DE: &str = "1.3.6.1.4.1.19376.3.276.1.5.6";
    pub const FACILITY: &str = "1.3.6.1.4.1.19376.3.276.1.5.2";
    pub const FACILITY_NON_MEDICAL: &str = "1.3.6.1.4.1.19376.3.276.1.5.3";
    pub const PRACTICE: &str = "1.3.6.1.4.1.19376.3.276.1.5.4";
    pub const PRACTICE_NON_MEDICAL: &str = "1.3.6.1.4.1.19376.3.276.1.5.5";
    pub const CONFIDENTIALITY: &str = "2.16.840.1.113883.5.25";
    pub const AUTHOR_ROLE_DE: &str = "1.3.6.1.4.1.19376.3.276.1.5.14";
    pub const CONTENT_TYPE: &str = "1.3.6.1.4.1.19376.3.276.1.5.12";
}

/// The author of an insurant's own upload: XCN with the KVNR, role 102 "Patient".
pub fn insurant_author(kvnr: &str, given_name: &str, family_name: &str) -> Author {
    Author {
        person: Some(format!(
            "{kvnr}^{family_name}^{given_name}^^^^^^&{KVNR_AUTHORITY_OID}&ISO"
        )),
        roles: vec![format!("102^^^&{}&ISO", codes::AUTHOR_ROLE_DE)],
        ..Author::default()
    }
}

/// What an insurant says about a document to upload.
#[derive(Debug, Clone)]
pub struct InsurantDocument<'a> {
    pub kvnr: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub title: &'a str,
    pub comments: Option<&'a str>,
    pub mime_type: &'a str,
    /// `YYYYMMDDhhmmss` UTC.
    pub creation_time: &'a str,
    /// Symbolic id or `urn:uuid:…`.
    pub id: &'a str,
    /// An OID (see [`super::uuid_oid`]).
    pub unique_id: &'a str,
}

impl InsurantDocument<'_> {
    /// A DocumentEntry with the codes of a patient's own document (typeCode `PATD`, facility and
    /// practice setting `PAT`, formatCode `mimeTypeSufficient`, confidentiality `N`).
    pub fn entry(&self) -> DocumentEntry {
        let pid = patient_id(self.kvnr);
        DocumentEntry {
            id: self.id.to_owned(),
            object_type: scheme::STABLE.to_owned(),
            mime_type: self.mime_type.to_owned(),
            title: Some(self.title.to_owned()),
            comments: self.comments.map(str::to_owned),
            unique_id: self.unique_id.to_owned(),
            patient_id: pid.clone(),
            creation_time: Some(self.creation_time.to_owned()),
            language_code: Some("de-DE".to_owned()),
            source_patient_id: Some(pid),
            class_code: Some(Code::new(
                "DOK",
                codes::CLASS,
                "Dokumente ohne besondere Form (Notizen)",
            )),
            type_code: Some(Code::new("PATD", codes::TYPE, "Patienteneigene Dokumente")),
            format_code: Some(Code::new(
                "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                codes::FORMAT_IHE,
                "Format aus MIME Type ableitbar",
            )),
            healthcare_facility_type_code: Some(Code::new(
                "PAT",
                codes::FACILITY_NON_MEDICAL,
                "Patient außerhalb der Betreuung",
            )),
            practice_setting_code: Some(Code::new(
                "PAT",
                codes::PRACTICE_NON_MEDICAL,
                "Patient außerhalb der Betreuung",
            )),
            confidentiality_codes: vec![Code::new("N", codes::CONFIDENTIALITY, "normal")],
            authors: vec![insurant_author(
                self.kvnr,
                self.given_name,
                self.family_name,
            )],
            ..DocumentEntry::default()
        }
    }

    /// The SubmissionSet of an upload made by the insurant (contentTypeCode 8 "Veranlassung
    /// durch Patient").
    pub fn submission_set(
        &self,
        id: &str,
        unique_id: &str,
        source_id: &str,
        submission_time: &str,
    ) -> SubmissionSet {
        SubmissionSet {
            id: id.to_owned(),
            unique_id: unique_id.to_owned(),
            source_id: source_id.to_owned(),
            patient_id: patient_id(self.kvnr),
            submission_time: Some(submission_time.to_owned()),
            content_type_code: Some(Code::new(
                "8",
                codes::CONTENT_TYPE,
                "Veranlassung durch Patient",
            )),
            authors: vec![insurant_author(
                self.kvnr,
                self.given_name,
                self.family_name,
            )],
            ..SubmissionSet::default()
        }
    }

    /// The registry objects of a one-document upload: SubmissionSet `SubmissionSet01`, `entry`
    /// (from [`Self::entry`], perhaps with hash and size) and their HasMember association.
    pub fn submission(
        &self,
        entry: DocumentEntry,
        submission_set_unique_id: &str,
        source_id: &str,
        submission_time: &str,
    ) -> Vec<RegistryObject> {
        vec![
            RegistryObject::SubmissionSet(Box::new(self.submission_set(
                "SubmissionSet01",
                submission_set_unique_id,
                source_id,
                submission_time,
            ))),
            RegistryObject::DocumentEntry(Box::new(entry)),
            RegistryObject::Association(has_member("Association01", "SubmissionSet01", self.id)),
        ]
    }
}

/// The HasMember association of a submission.
pub fn has_member(id: &str, submission_set: &str, entry: &str) -> Association {
    Association {
        id: id.to_owned(),
        association_type: scheme::HAS_MEMBER.to_owned(),
        source: submission_set.to_owned(),
        target: entry.to_owned(),
        status: None,
        slots: vec![Slot {
            name: "SubmissionSetStatus".into(),
            values: vec!["Original".into()],
        }],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn doc() -> InsurantDocument<'static> {
        InsurantDocument {
            kvnr: "X110411675",
            given_name: "Maria",
            family_name: "Muster",
            title: "Blutwerte <2025> & mehr",
            comments: Some("vom Hausarzt"),
            mime_type: "application/pdf",
            creation_time: "20250305101500",
            id: "Document01",
            unique_id: "2.25.1",
        }
    }

    #[test]
    fn entries_and_sets_round_trip_through_ebrim() {
        let mut e = doc().entry();
        e.hash = Some("da39a3ee5e6b4b0d3255bfef95601890afd80709".into());
        e.size = Some(0);
        e.reference_ids = vec![format!("x{}", slot::ROOT_DOCUMENT_SUFFIX)];
        e.event_codes = vec![Code::new("E1", "1.2.3", "Ereignis")];
        e.version = Some("1".into());
        let ss = doc().submission_set("SubmissionSet01", "2.25.2", "1.2.3.4", "20250305101600");
        let a = has_member("a1", "SubmissionSet01", "Document01");
        let objects = vec![
            RegistryObject::SubmissionSet(Box::new(ss)),
            RegistryObject::DocumentEntry(Box::new(e)),
            RegistryObject::Association(a),
        ];
        let mut w = Writer::new();
        w.open("rim:RegistryObjectList", &[("xmlns:rim", ns::RIM)]);
        for o in &objects {
            o.write(&mut w);
        }
        w.close("rim:RegistryObjectList");
        let el = super::super::xml::parse(w.finish().as_bytes()).unwrap();
        assert_eq!(parse_object_list(&el).unwrap(), objects);
    }

    #[test]
    fn inconsistent_metadata_is_refused() {
        let mut w = Writer::new();
        w.open("rim:RegistryObjectList", &[("xmlns:rim", ns::RIM)]);
        doc().entry().write(&mut w);
        w.close("rim:RegistryObjectList");
        let good = w.finish();
        for (from, to) in [
            (
                "classifiedObject=\"Document01\"",
                "classifiedObject=\"Other\"",
            ),
            (
                "identificationScheme=\"urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab\"",
                "identificationScheme=\"urn:uuid:x\"",
            ),
            (
                "<rim:Slot name=\"creationTime\"><rim:ValueList><rim:Value>20250305101500</rim:Value>",
                "<rim:Slot name=\"creationTime\"><rim:ValueList><rim:Value>1</rim:Value><rim:Value>2</rim:Value>",
            ),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good, "{from}");
            let el = super::super::xml::parse(bad.as_bytes()).unwrap();
            assert!(parse_object_list(&el).is_err(), "{to}");
        }
    }

    #[test]
    fn dtm_conversions() {
        assert_eq!(dtm_from_unix(0), "19700101000000");
        let t = unix_from_dtm("20250319081500").unwrap();
        assert_eq!(dtm_from_unix(t), "20250319081500");
        assert_eq!(unix_from_dtm("2025"), unix_from_dtm("20250101000000"));
        for bad in [
            "",
            "2025130",
            "20250230",
            "202501011261",
            "2025-01",
            "20240229246000",
        ] {
            assert!(unix_from_dtm(bad).is_none(), "{bad}");
        }
        assert!(unix_from_dtm("20240229").is_some());
        assert_eq!(
            kvnr_of_patient_id(&patient_id("X110411675")),
            Some("X110411675")
        );
        assert_eq!(kvnr_of_patient_id("X110411675^^^&1.2.3&ISO"), None);
    }
}
