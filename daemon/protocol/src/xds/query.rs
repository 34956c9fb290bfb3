//! ITI-18 Registry Stored Query (§5.4): stored-query ids and parameters, AdhocQueryRequest and
//! AdhocQueryResponse.

use super::rim::{Code, DocumentEntry, RegistryObject, parse_object_list, write_object_list};
use super::soap::{self, Encoded, Message};
use super::submit::{PAYLOAD_NS, RegistryError, expect, response_addressing, write_error_list};
use super::xml::Writer;
use super::{XdsError, action, meta, ns, status};

/// Stored query ids (`rim:AdhocQuery/@id`).
pub mod id {
    pub const FIND_DOCUMENTS: &str = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d";
    pub const FIND_FOLDERS: &str = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431";
    pub const GET_ALL: &str = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3";
    pub const GET_FOLDER_AND_CONTENTS: &str = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7";
    pub const GET_DOCUMENTS_AND_ASSOCIATIONS: &str =
        "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a";
    pub const GET_ASSOCIATIONS: &str = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155";
    pub const GET_RELATED_APPROVED_DOCUMENTS: &str =
        "urn:uuid:1c1f1cea-ad3a-11ed-afa1-0242ac120002";
    pub const FIND_DOCUMENTS_BY_TITLE: &str = "urn:uuid:ab474085-82b5-402d-8115-3f37cb1e2405";
    pub const FIND_DOCUMENTS_BY_COMMENT: &str = "urn:uuid:2609dda5-2b97-44d5-a795-3e999c24ca99";
    pub const FIND_DOCUMENTS_BY_REFERENCE_ID: &str =
        "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492";
}

/// Parameter names.
pub mod param {
    pub const PATIENT_ID: &str = "$XDSDocumentEntryPatientId";
    pub const STATUS: &str = "$XDSDocumentEntryStatus";
    pub const CLASS_CODE: &str = "$XDSDocumentEntryClassCode";
    pub const TYPE_CODE: &str = "$XDSDocumentEntryTypeCode";
    pub const FORMAT_CODE: &str = "$XDSDocumentEntryFormatCode";
    pub const PRACTICE_SETTING_CODE: &str = "$XDSDocumentEntryPracticeSettingCode";
    pub const HEALTHCARE_FACILITY_TYPE_CODE: &str = "$XDSDocumentEntryHealthcareFacilityTypeCode";
    pub const CONFIDENTIALITY_CODE: &str = "$XDSDocumentEntryConfidentialityCode";
    pub const EVENT_CODE_LIST: &str = "$XDSDocumentEntryEventCodeList";
    pub const CREATION_TIME_FROM: &str = "$XDSDocumentEntryCreationTimeFrom";
    pub const CREATION_TIME_TO: &str = "$XDSDocumentEntryCreationTimeTo";
    pub const SERVICE_START_TIME_FROM: &str = "$XDSDocumentEntryServiceStartTimeFrom";
    pub const SERVICE_START_TIME_TO: &str = "$XDSDocumentEntryServiceStartTimeTo";
    pub const SERVICE_STOP_TIME_FROM: &str = "$XDSDocumentEntryServiceStopTimeFrom";
    pub const SERVICE_STOP_TIME_TO: &str = "$XDSDocumentEntryServiceStopTimeTo";
    pub const AUTHOR_PERSON: &str = "$XDSDocumentEntryAuthorPerson";
    pub const TYPE: &str = "$XDSDocumentEntryType";
    pub const TITLE: &str = "$XDSDocumentEntryTitle";
    pub const COMMENTS: &str = "$XDSDocumentEntryComments";
    pub const REFERENCE_ID_LIST: &str = "$XDSDocumentEntryReferenceIdList";
    pub const GET_ALL_PATIENT_ID: &str = "$patientId";
    pub const SUBMISSION_SET_STATUS: &str = "$XDSSubmissionSetStatus";
    pub const FOLDER_STATUS: &str = "$XDSFolderStatus";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnType {
    /// Full metadata.
    LeafClass,
    /// Ids only.
    ObjectRef,
}

/// One `rim:Slot` of a query: the values of all its `rim:Value`s, unquoted, lists expanded.
/// Values of one slot are alternatives (OR); repeated slots of one name are combined with AND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredQuery {
    pub id: String,
    pub return_type: ReturnType,
    pub params: Vec<Param>,
}

/// `'value'` with `'` doubled.
fn quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Parses one `rim:Value` of a query slot: `'x'`, `('x','y')` or an unquoted number.
pub fn parse_value(raw: &str) -> Result<Vec<String>, XdsError> {
    let raw = raw.trim();
    let bad = || XdsError::Metadata(format!("query parameter value {raw:?} is malformed"));
    let (inner, list) = match raw.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(i) => (i, true),
        None => (raw, false),
    };
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut v = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        v.push('\'');
                    }
                    Some('\'') => break,
                    Some(c) => v.push(c),
                    None => return Err(bad()),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                if !c.is_ascii_digit() {
                    return Err(bad());
                }
                v.push(c);
                chars.next();
            }
            if v.is_empty() {
                return Err(bad());
            }
        }
        out.push(v);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') if list => continue,
            Some(_) => return Err(bad()),
        }
    }
    Ok(out)
}

impl StoredQuery {
    pub fn new(id: &str, return_type: ReturnType) -> Self {
        Self {
            id: id.to_owned(),
            return_type,
            params: Vec::new(),
        }
    }

    /// FindDocuments for the record of `patient_id` (status Approved).
    pub fn find_documents(patient_id: &str, return_type: ReturnType) -> Self {
        Self::new(id::FIND_DOCUMENTS, return_type)
            .with(param::PATIENT_ID, &[patient_id])
            .with(param::STATUS, &[status::APPROVED])
    }

    /// FindDocumentsByTitle (ePA extension): `pattern` is a LIKE pattern (`%`, `_`).
    pub fn find_documents_by_title(patient_id: &str, pattern: &str) -> Self {
        Self::new(id::FIND_DOCUMENTS_BY_TITLE, ReturnType::LeafClass)
            .with(param::PATIENT_ID, &[patient_id])
            .with(param::STATUS, &[status::APPROVED])
            .with(param::TITLE, &[pattern])
    }

    /// GetAll: documents, submission sets, folders and associations of the record.
    pub fn get_all(patient_id: &str) -> Self {
        Self::new(id::GET_ALL, ReturnType::LeafClass)
            .with(param::GET_ALL_PATIENT_ID, &[patient_id])
            .with(param::STATUS, &[status::APPROVED])
            .with(param::SUBMISSION_SET_STATUS, &[status::APPROVED])
            .with(param::FOLDER_STATUS, &[status::APPROVED])
    }

    /// Adds a slot (values are alternatives).
    pub fn with(mut self, name: &str, values: &[&str]) -> Self {
        self.params.push(Param {
            name: name.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        });
        self
    }

    /// Adds a coded-value filter (`code^^^&scheme&ISO`).
    pub fn with_codes(self, name: &str, codes: &[Code]) -> Self {
        let v: Vec<String> = codes.iter().map(Code::query_value).collect();
        let r: Vec<&str> = v.iter().map(String::as_str).collect();
        self.with(name, &r)
    }

    /// The slots of one name.
    pub fn params_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Param> + 'a {
        self.params.iter().filter(move |p| p.name == name)
    }

    fn is_time(name: &str) -> bool {
        name.ends_with("TimeFrom") || name.ends_with("TimeTo")
    }

    /// Single-valued parameters are written `'v'` (times unquoted), the others as lists.
    fn is_single(name: &str) -> bool {
        matches!(name, param::PATIENT_ID | param::GET_ALL_PATIENT_ID) || Self::is_time(name)
    }

    pub fn write(&self, w: &mut Writer, root_ns: bool) {
        let attrs: &[(&str, &str)] = if root_ns { &PAYLOAD_NS } else { &[] };
        w.open("query:AdhocQueryRequest", attrs);
        let rt = match self.return_type {
            ReturnType::LeafClass => "LeafClass",
            ReturnType::ObjectRef => "ObjectRef",
        };
        w.empty(
            "query:ResponseOption",
            &[("returnType", rt), ("returnComposedObjects", "true")],
        );
        w.open("rim:AdhocQuery", &[("id", &self.id)]);
        for p in &self.params {
            let v = if Self::is_time(&p.name) && p.values.len() == 1 {
                p.values[0].clone()
            } else if Self::is_single(&p.name) && p.values.len() == 1 {
                quote(&p.values[0])
            } else {
                format!(
                    "({})",
                    p.values
                        .iter()
                        .map(|v| quote(v))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            w.open("rim:Slot", &[("name", &p.name)]);
            w.open("rim:ValueList", &[]);
            w.leaf("rim:Value", &[], &v);
            w.close("rim:ValueList");
            w.close("rim:Slot");
        }
        w.close("rim:AdhocQuery");
        w.close("query:AdhocQueryRequest");
    }
}

pub fn build_request(q: &StoredQuery, message_uuid: &str) -> Encoded {
    let mut w = Writer::new();
    q.write(&mut w, true);
    let act = action::REGISTRY_STORED_QUERY;
    let env = soap::envelope(&soap::request_addressing(act, message_uuid), &w.finish());
    soap::encode(act, env, &[], false, message_uuid)
}

pub fn parse_request(m: &Message) -> Result<StoredQuery, XdsError> {
    let p = expect(m, ns::QUERY, "AdhocQueryRequest")?;
    let return_type = match p
        .child(ns::QUERY, "ResponseOption")
        .and_then(|r| r.attr("returnType"))
    {
        Some("LeafClass") => ReturnType::LeafClass,
        Some("ObjectRef") => ReturnType::ObjectRef,
        Some(other) => return meta(format!("returnType {other:?} is not supported")),
        None => return meta("AdhocQueryRequest without ResponseOption/@returnType"),
    };
    let Some(q) = p.child(ns::RIM, "AdhocQuery") else {
        return meta("AdhocQueryRequest without AdhocQuery");
    };
    let id = q
        .attr("id")
        .ok_or_else(|| XdsError::Metadata("AdhocQuery without @id".into()))?
        .to_owned();
    let mut params = Vec::new();
    for s in q.children_named(ns::RIM, "Slot") {
        let name = s
            .attr("name")
            .ok_or_else(|| XdsError::Metadata("Slot without @name".into()))?
            .to_owned();
        let mut values = Vec::new();
        for v in s
            .child(ns::RIM, "ValueList")
            .into_iter()
            .flat_map(|l| l.children_named(ns::RIM, "Value"))
        {
            values.extend(parse_value(&v.text)?);
        }
        params.push(Param { name, values });
    }
    Ok(StoredQuery {
        id,
        return_type,
        params,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResponse {
    pub status: String,
    pub errors: Vec<RegistryError>,
    pub objects: Vec<RegistryObject>,
}

impl QueryResponse {
    pub fn documents(&self) -> impl Iterator<Item = &DocumentEntry> {
        self.objects.iter().filter_map(|o| match o {
            RegistryObject::DocumentEntry(d) => Some(&**d),
            _ => None,
        })
    }

    pub fn object_refs(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().filter_map(|o| match o {
            RegistryObject::ObjectRef(id) => Some(id.as_str()),
            _ => None,
        })
    }
}

pub fn build_response(r: &QueryResponse, relates_to: Option<&str>, message_uuid: &str) -> Encoded {
    let mut w = Writer::new();
    let mut attrs = PAYLOAD_NS.to_vec();
    attrs.push(("status", &r.status));
    w.open("query:AdhocQueryResponse", &attrs);
    if !r.errors.is_empty() {
        write_error_list(&mut w, &r.errors);
    }
    write_object_list(&mut w, &r.objects);
    w.close("query:AdhocQueryResponse");
    let act = action::REGISTRY_STORED_QUERY_RESPONSE;
    let env = soap::envelope(
        &response_addressing(act, relates_to, message_uuid),
        &w.finish(),
    );
    soap::encode(act, env, &[], false, message_uuid)
}

pub fn parse_response(m: &Message) -> Result<QueryResponse, XdsError> {
    let p = expect(m, ns::QUERY, "AdhocQueryResponse")?;
    let head = super::submit::RegistryResponse::from_element(p)?;
    let objects = match p.child(ns::RIM, "RegistryObjectList") {
        Some(l) => parse_object_list(l)?,
        None => Vec::new(),
    };
    Ok(QueryResponse {
        status: head.status,
        errors: head.errors,
        objects,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slot_values_parse() {
        assert_eq!(parse_value("'a''b'").unwrap(), ["a'b"]);
        assert_eq!(parse_value(" ('x', 'y' ,'z') ").unwrap(), ["x", "y", "z"]);
        assert_eq!(parse_value("20250101").unwrap(), ["20250101"]);
        for bad in ["'a", "a", "('a' 'b')", "'a','b'", "()", "(", "('a',)"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_query_round_trips() {
        let q = StoredQuery::find_documents(
            "X110411675^^^&1.2.276.0.76.4.8&ISO",
            ReturnType::ObjectRef,
        )
        .with_codes(
            param::CLASS_CODE,
            &[Code::new("BEF", "1.3.6", ""), Code::new("LAB", "1.3.6", "")],
        )
        .with(param::CREATION_TIME_FROM, &["20250301"])
        .with(param::AUTHOR_PERSON, &["%O'Brien%"]);
        let e = build_request(&q, "m");
        let m = soap::decode(&e.content_type, &e.body).unwrap();
        assert_eq!(parse_request(&m).unwrap(), q);
        let r = QueryResponse {
            status: status::SUCCESS.into(),
            errors: vec![],
            objects: vec![RegistryObject::ObjectRef("urn:uuid:1".into())],
        };
        let e = build_response(&r, Some("urn:uuid:x"), "m2");
        let m = soap::decode(&e.content_type, &e.body).unwrap();
        assert_eq!(parse_response(&m).unwrap(), r);
    }

    proptest! {
        #[test]
        fn parse_value_never_panics(s in ".{0,40}") {
            let _ = parse_value(&s);
        }
    }
}
