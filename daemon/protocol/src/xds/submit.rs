//! Registry responses, ITI-41 Provide and Register Document Set-b, ITI-62 Delete Document Set
//! (`lcm:RemoveObjectsRequest`) and ITI-92 Restricted Update Document Set
//! (`lcm:SubmitObjectsRequest`), §5.6 and §5.7.

use serde::{Deserialize, Serialize};

use super::mtom::{Attachments, Part};
use super::rim::{RegistryObject, parse_object_list, write_object_list};
use super::soap::{self, Addressing, Encoded, Message};
use super::xml::{Element, Writer};
use super::{XdsError, action, meta, ns, status};

/// One `rs:RegistryError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryError {
    pub code: String,
    pub context: String,
    pub severity: String,
    pub location: Option<String>,
}

impl RegistryError {
    pub fn error(code: &str, context: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            context: context.into(),
            severity: status::SEVERITY_ERROR.to_owned(),
            location: None,
        }
    }
}

/// `rs:RegistryResponse` (also the head of AdhocQueryResponse and RetrieveDocumentSetResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryResponse {
    pub status: String,
    pub errors: Vec<RegistryError>,
}

impl RegistryResponse {
    pub fn success() -> Self {
        Self {
            status: status::SUCCESS.to_owned(),
            errors: Vec::new(),
        }
    }

    pub fn failure(errors: Vec<RegistryError>) -> Self {
        Self {
            status: status::FAILURE.to_owned(),
            errors,
        }
    }

    pub fn is_success(&self) -> bool {
        self.status == status::SUCCESS
    }

    /// Writes the element `name` (e.g. `rs:RegistryResponse`) with the given extra attributes.
    pub fn write(&self, w: &mut Writer, name: &str, attrs: &[(&str, &str)]) {
        let mut a = attrs.to_vec();
        a.push(("status", &self.status));
        if self.errors.is_empty() {
            w.empty(name, &a);
        } else {
            w.open(name, &a);
            write_error_list(w, &self.errors);
            w.close(name);
        }
    }

    /// Reads status and error list of a RegistryResponseType element.
    pub fn from_element(el: &Element) -> Result<Self, XdsError> {
        let status = el
            .attr("status")
            .ok_or_else(|| XdsError::Metadata(format!("{} without @status", el.name)))?
            .to_owned();
        let mut errors = Vec::new();
        if let Some(list) = el.child(ns::RS, "RegistryErrorList") {
            for e in list.children_named(ns::RS, "RegistryError") {
                errors.push(RegistryError {
                    code: e.attr("errorCode").unwrap_or_default().to_owned(),
                    context: e.attr("codeContext").unwrap_or_default().to_owned(),
                    severity: e
                        .attr("severity")
                        .unwrap_or(status::SEVERITY_ERROR)
                        .to_owned(),
                    location: e.attr("location").map(str::to_owned),
                });
            }
        }
        Ok(Self { status, errors })
    }
}

/// `rs:RegistryErrorList` with `highestSeverity`.
pub fn write_error_list(w: &mut Writer, errors: &[RegistryError]) {
    let highest = if errors.iter().any(|e| e.severity == status::SEVERITY_ERROR) {
        status::SEVERITY_ERROR
    } else {
        status::SEVERITY_WARNING
    };
    w.open("rs:RegistryErrorList", &[("highestSeverity", highest)]);
    for e in errors {
        let mut a = vec![
            ("errorCode", e.code.as_str()),
            ("codeContext", e.context.as_str()),
            ("severity", e.severity.as_str()),
        ];
        if let Some(l) = &e.location {
            a.push(("location", l));
        }
        w.empty("rs:RegistryError", &a);
    }
    w.close("rs:RegistryErrorList");
}

/// The namespace declarations every payload root carries, so that the payload is a complete
/// document by itself (and can be validated alone).
pub const PAYLOAD_NS: [(&str, &str); 5] = [
    ("xmlns:rs", ns::RS),
    ("xmlns:rim", ns::RIM),
    ("xmlns:lcm", ns::LCM),
    ("xmlns:query", ns::QUERY),
    ("xmlns:xdsb", ns::XDSB),
];

/// The addressing of a response: response Action, RelatesTo the request's MessageID, a fresh
/// MessageID.
pub fn response_addressing(
    action: &str,
    relates_to: Option<&str>,
    message_uuid: &str,
) -> Addressing {
    Addressing {
        action: Some(action.to_owned()),
        message_id: Some(format!("urn:uuid:{message_uuid}")),
        relates_to: relates_to.map(str::to_owned),
        ..Addressing::default()
    }
}

/// A RegistryResponse as the answer to ITI-41, ITI-62 or ITI-92 (`response_action`).
pub fn build_registry_response(
    response_action: &str,
    relates_to: Option<&str>,
    message_uuid: &str,
    r: &RegistryResponse,
) -> Encoded {
    let mut w = Writer::new();
    r.write(&mut w, "rs:RegistryResponse", &PAYLOAD_NS);
    let env = soap::envelope(
        &response_addressing(response_action, relates_to, message_uuid),
        &w.finish(),
    );
    soap::encode(response_action, env, &[], false, message_uuid)
}

/// The payload must be the expected element, and the message no fault.
pub(crate) fn expect<'a>(m: &'a Message, ns: &str, name: &str) -> Result<&'a Element, XdsError> {
    if let Some(f) = m.fault() {
        return Err(f.into());
    }
    if !m.payload.is(ns, name) {
        return Err(XdsError::Soap(format!(
            "expected {name}, got {{{}}}{}",
            m.payload.ns, m.payload.name
        )));
    }
    Ok(&m.payload)
}

pub fn parse_registry_response(m: &Message) -> Result<RegistryResponse, XdsError> {
    RegistryResponse::from_element(expect(m, ns::RS, "RegistryResponse")?)
}

/// A document to upload: the id of its ExtrinsicObject, its MIME type and bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct DocumentContent {
    pub id: String,
    pub mime_type: String,
    pub bytes: bytes::Bytes,
}

impl std::fmt::Debug for DocumentContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentContent")
            .field("id", &self.id)
            .field("mime_type", &self.mime_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn submit_objects(w: &mut Writer, objects: &[RegistryObject], root_ns: bool) {
    let attrs: &[(&str, &str)] = if root_ns { &PAYLOAD_NS } else { &[] };
    w.open("lcm:SubmitObjectsRequest", attrs);
    write_object_list(w, objects);
    w.close("lcm:SubmitObjectsRequest");
}

/// ITI-41: metadata plus documents; with `mtom` each document is an attachment (§5.2).
pub fn build_provide_and_register(
    objects: &[RegistryObject],
    documents: &[DocumentContent],
    message_uuid: &str,
    mtom: bool,
) -> Encoded {
    let mut w = Writer::new();
    w.open("xdsb:ProvideAndRegisterDocumentSetRequest", &PAYLOAD_NS);
    submit_objects(&mut w, objects, false);
    let mut att = Attachments::new(mtom, message_uuid);
    for d in documents {
        w.open("xdsb:Document", &[("id", &d.id)]);
        att.write(&mut w, &d.bytes, &d.mime_type);
        w.close("xdsb:Document");
    }
    w.close("xdsb:ProvideAndRegisterDocumentSetRequest");
    let act = action::PROVIDE_AND_REGISTER;
    let env = soap::envelope(&soap::request_addressing(act, message_uuid), &w.finish());
    let parts: Vec<Part> = att.into_parts();
    soap::encode(act, env, &parts, mtom, message_uuid)
}

/// What an ITI-41 request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvideAndRegister {
    pub objects: Vec<RegistryObject>,
    pub documents: Vec<DocumentContent>,
}

fn object_list(req: &Element) -> Result<Vec<RegistryObject>, XdsError> {
    let Some(list) = req.child(ns::RIM, "RegistryObjectList") else {
        return meta("SubmitObjectsRequest without RegistryObjectList");
    };
    parse_object_list(list)
}

pub fn parse_provide_and_register(m: &Message) -> Result<ProvideAndRegister, XdsError> {
    let p = expect(m, ns::XDSB, "ProvideAndRegisterDocumentSetRequest")?;
    let Some(sor) = p.child(ns::LCM, "SubmitObjectsRequest") else {
        return meta("ProvideAndRegisterDocumentSetRequest without SubmitObjectsRequest");
    };
    let objects = object_list(sor)?;
    let mut documents: Vec<DocumentContent> = Vec::new();
    for d in p.children_named(ns::XDSB, "Document") {
        let id = d
            .attr("id")
            .ok_or_else(|| XdsError::Metadata("Document without @id".into()))?
            .to_owned();
        if documents.iter().any(|x| x.id == id) {
            return meta(format!("Document {id} twice"));
        }
        let mime_type = objects
            .iter()
            .find_map(|o| match o {
                RegistryObject::DocumentEntry(e) if e.id == id => Some(e.mime_type.clone()),
                _ => None,
            })
            .unwrap_or_default();
        documents.push(DocumentContent {
            bytes: m.binary(d)?,
            id,
            mime_type,
        });
    }
    Ok(ProvideAndRegister { objects, documents })
}

/// ITI-62: delete these entryUUIDs (DocumentEntries, with their associations).
pub fn build_remove_objects(ids: &[String], message_uuid: &str) -> Encoded {
    let mut w = Writer::new();
    w.open("lcm:RemoveObjectsRequest", &PAYLOAD_NS);
    w.open("rim:ObjectRefList", &[]);
    for id in ids {
        w.empty("rim:ObjectRef", &[("id", id)]);
    }
    w.close("rim:ObjectRefList");
    w.close("lcm:RemoveObjectsRequest");
    let act = action::DELETE_DOCUMENT_SET;
    let env = soap::envelope(&soap::request_addressing(act, message_uuid), &w.finish());
    soap::encode(act, env, &[], false, message_uuid)
}

pub const DELETE_ALL: &str = "urn:oasis:names:tc:ebxml-regrep:DeletionScopeType:DeleteAll";

/// The ids of an ITI-62 request. Only ObjectRefs with the default deletion scope (RMD, ITI TF-2b
/// §3.62.4.1.2: no AdhocQuery, `DeleteAll`).
pub fn parse_remove_objects(m: &Message) -> Result<Vec<String>, XdsError> {
    let p = expect(m, ns::LCM, "RemoveObjectsRequest")?;
    if p.attr("deletionScope").is_some_and(|s| s != DELETE_ALL) {
        return meta("deletionScope must be DeleteAll");
    }
    if p.child(ns::RIM, "AdhocQuery").is_some() {
        return meta("RemoveObjectsRequest with AdhocQuery is not supported; name the objects");
    }
    let Some(list) = p.child(ns::RIM, "ObjectRefList") else {
        return meta("RemoveObjectsRequest without ObjectRefList");
    };
    let mut ids = Vec::new();
    for r in list.children_named(ns::RIM, "ObjectRef") {
        let id = r
            .attr("id")
            .ok_or_else(|| XdsError::Metadata("ObjectRef without @id".into()))?;
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    if ids.is_empty() {
        return meta("empty ObjectRefList");
    }
    Ok(ids)
}

/// ITI-92: a new SubmissionSet, the new version of the DocumentEntry (`lid` = the logical id,
/// `version` ignored) and a HasMember association with `PreviousVersion`.
pub fn build_restricted_update(objects: &[RegistryObject], message_uuid: &str) -> Encoded {
    let mut w = Writer::new();
    submit_objects(&mut w, objects, true);
    let act = action::RESTRICTED_UPDATE;
    let env = soap::envelope(&soap::request_addressing(act, message_uuid), &w.finish());
    soap::encode(act, env, &[], false, message_uuid)
}

pub fn parse_submit_objects(m: &Message) -> Result<Vec<RegistryObject>, XdsError> {
    object_list(expect(m, ns::LCM, "SubmitObjectsRequest")?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::xds::rim::InsurantDocument;

    fn upload() -> (Vec<RegistryObject>, Vec<DocumentContent>) {
        let d = InsurantDocument {
            kvnr: "X110411675",
            given_name: "Maria",
            family_name: "Muster",
            title: "Scan",
            comments: None,
            mime_type: "image/jpeg",
            creation_time: "20250319081500",
            id: "Document01",
            unique_id: "2.25.7",
        };
        (
            d.submission(d.entry(), "2.25.8", "1.2.3", "20250319081600"),
            vec![DocumentContent {
                id: "Document01".into(),
                mime_type: "image/jpeg".into(),
                bytes: vec![0xff, 0xd8, 0, 13, 10, 0xff].into(),
            }],
        )
    }

    #[test]
    fn provide_and_register_round_trips_with_and_without_mtom() {
        let (objects, docs) = upload();
        for mtom in [true, false] {
            let e = build_provide_and_register(
                &objects,
                &docs,
                "0b3b6c1e-8f50-4c8e-9d3e-2b7f4c1d9a00",
                mtom,
            );
            assert_eq!(e.content_type.starts_with("multipart/related"), mtom);
            let m = soap::decode(&e.content_type, &e.body).unwrap();
            assert_eq!(
                soap::check_request_addressing(&m).unwrap(),
                action::PROVIDE_AND_REGISTER
            );
            let p = parse_provide_and_register(&m).unwrap();
            assert_eq!(p.objects, objects);
            assert_eq!(p.documents, docs);
        }
    }

    #[test]
    fn remove_objects_and_registry_responses_round_trip() {
        let e = build_remove_objects(&["urn:uuid:a".into(), "urn:uuid:a".into()], "u1");
        let m = soap::decode(&e.content_type, &e.body).unwrap();
        assert_eq!(
            parse_remove_objects(&m).unwrap(),
            vec!["urn:uuid:a".to_owned()]
        );
        let r = RegistryResponse::failure(vec![RegistryError::error("XDSRegistryError", "x")]);
        let e = build_registry_response(
            action::DELETE_DOCUMENT_SET_RESPONSE,
            Some("urn:uuid:1"),
            "u2",
            &r,
        );
        let m = soap::decode(&e.content_type, &e.body).unwrap();
        assert_eq!(m.addressing.relates_to.as_deref(), Some("urn:uuid:1"));
        assert_eq!(parse_registry_response(&m).unwrap(), r);
    }
}
