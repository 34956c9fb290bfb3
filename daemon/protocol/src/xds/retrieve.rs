//! ITI-43 Retrieve Document Set (§5.5): request by repository and document uniqueId, response
//! with the documents as MTOM attachments or inline base64.

use super::mtom::Attachments;
use super::soap::{self, Encoded, Message};
use super::submit::{PAYLOAD_NS, RegistryResponse, expect, response_addressing, write_error_list};
use super::xml::{Element, Writer};
use super::{XdsError, action, meta, ns};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRequest {
    pub home_community_id: Option<String>,
    pub repository_unique_id: String,
    pub document_unique_id: String,
}

fn text_of(el: &Element, name: &str) -> Result<String, XdsError> {
    el.child(ns::XDSB, name)
        .map(|c| c.text.trim().to_owned())
        .ok_or_else(|| XdsError::Metadata(format!("{} without {name}", el.name)))
}

fn opt_text(el: &Element, name: &str) -> Option<String> {
    el.child(ns::XDSB, name).map(|c| c.text.trim().to_owned())
}

pub fn build_request(requests: &[DocumentRequest], message_uuid: &str, mtom: bool) -> Encoded {
    let mut w = Writer::new();
    w.open("xdsb:RetrieveDocumentSetRequest", &PAYLOAD_NS);
    for r in requests {
        w.open("xdsb:DocumentRequest", &[]);
        if let Some(h) = &r.home_community_id {
            w.leaf("xdsb:HomeCommunityId", &[], h);
        }
        w.leaf("xdsb:RepositoryUniqueId", &[], &r.repository_unique_id);
        w.leaf("xdsb:DocumentUniqueId", &[], &r.document_unique_id);
        w.close("xdsb:DocumentRequest");
    }
    w.close("xdsb:RetrieveDocumentSetRequest");
    let act = action::RETRIEVE_DOCUMENT_SET;
    let env = soap::envelope(&soap::request_addressing(act, message_uuid), &w.finish());
    soap::encode(act, env, &[], mtom, message_uuid)
}

pub fn parse_request(m: &Message) -> Result<Vec<DocumentRequest>, XdsError> {
    let p = expect(m, ns::XDSB, "RetrieveDocumentSetRequest")?;
    let mut out = Vec::new();
    for r in p.children_named(ns::XDSB, "DocumentRequest") {
        out.push(DocumentRequest {
            home_community_id: opt_text(r, "HomeCommunityId"),
            repository_unique_id: text_of(r, "RepositoryUniqueId")?,
            document_unique_id: text_of(r, "DocumentUniqueId")?,
        });
    }
    if out.is_empty() {
        return meta("RetrieveDocumentSetRequest without DocumentRequest");
    }
    Ok(out)
}

#[derive(Clone, PartialEq, Eq)]
pub struct RetrievedDocument {
    pub home_community_id: Option<String>,
    pub repository_unique_id: String,
    pub document_unique_id: String,
    pub mime_type: String,
    pub bytes: bytes::Bytes,
}

impl std::fmt::Debug for RetrievedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrievedDocument")
            .field("document_unique_id", &self.document_unique_id)
            .field("mime_type", &self.mime_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveResponse {
    pub response: RegistryResponse,
    pub documents: Vec<RetrievedDocument>,
}

/// The answer, MTOM-packaged when `mtom` (what a repository should send, §5.2).
pub fn build_response(
    r: &RetrieveResponse,
    relates_to: Option<&str>,
    message_uuid: &str,
    mtom: bool,
) -> Encoded {
    build_response_chunks(r, relates_to, message_uuid, mtom).into()
}

/// [`build_response`] in pieces: the documents are not copied into one body.
pub fn build_response_chunks(
    r: &RetrieveResponse,
    relates_to: Option<&str>,
    message_uuid: &str,
    mtom: bool,
) -> soap::Chunked {
    let mut w = Writer::new();
    w.open("xdsb:RetrieveDocumentSetResponse", &PAYLOAD_NS);
    let st = [("status", r.response.status.as_str())];
    if r.response.errors.is_empty() {
        w.empty("rs:RegistryResponse", &st);
    } else {
        w.open("rs:RegistryResponse", &st);
        write_error_list(&mut w, &r.response.errors);
        w.close("rs:RegistryResponse");
    }
    let mut att = Attachments::new(mtom, message_uuid);
    for d in &r.documents {
        w.open("xdsb:DocumentResponse", &[]);
        if let Some(h) = &d.home_community_id {
            w.leaf("xdsb:HomeCommunityId", &[], h);
        }
        w.leaf("xdsb:RepositoryUniqueId", &[], &d.repository_unique_id);
        w.leaf("xdsb:DocumentUniqueId", &[], &d.document_unique_id);
        w.leaf("xdsb:mimeType", &[], &d.mime_type);
        w.open("xdsb:Document", &[]);
        att.write(&mut w, &d.bytes, &d.mime_type);
        w.close("xdsb:Document");
        w.close("xdsb:DocumentResponse");
    }
    w.close("xdsb:RetrieveDocumentSetResponse");
    let act = action::RETRIEVE_DOCUMENT_SET_RESPONSE;
    let env = soap::envelope(
        &response_addressing(act, relates_to, message_uuid),
        &w.finish(),
    );
    soap::encode_chunks(act, env, &att.into_parts(), mtom, message_uuid)
}

/// Parses MTOM and inline-base64 answers alike.
pub fn parse_response(m: &Message) -> Result<RetrieveResponse, XdsError> {
    let p = expect(m, ns::XDSB, "RetrieveDocumentSetResponse")?;
    let Some(rr) = p.child(ns::RS, "RegistryResponse") else {
        return meta("RetrieveDocumentSetResponse without RegistryResponse");
    };
    let response = RegistryResponse::from_element(rr)?;
    let mut documents = Vec::new();
    for d in p.children_named(ns::XDSB, "DocumentResponse") {
        let Some(doc) = d.child(ns::XDSB, "Document") else {
            return meta("DocumentResponse without Document");
        };
        documents.push(RetrievedDocument {
            home_community_id: opt_text(d, "HomeCommunityId"),
            repository_unique_id: text_of(d, "RepositoryUniqueId")?,
            document_unique_id: text_of(d, "DocumentUniqueId")?,
            mime_type: text_of(d, "mimeType")?,
            bytes: m.binary(doc)?,
        });
    }
    Ok(RetrieveResponse {
        response,
        documents,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::xds::status;
    use crate::xds::submit::RegistryError;

    #[test]
    fn requests_and_responses_round_trip() {
        let reqs = vec![DocumentRequest {
            home_community_id: Some("urn:oid:1.2.3".into()),
            repository_unique_id: "1.2.3.4".into(),
            document_unique_id: "2.25.9".into(),
        }];
        let e = build_request(&reqs, "m1", false);
        let m = soap::decode(&e.content_type, &e.body).unwrap();
        assert_eq!(parse_request(&m).unwrap(), reqs);
        let resp = RetrieveResponse {
            response: RegistryResponse {
                status: status::PARTIAL_SUCCESS.into(),
                errors: vec![RegistryError::error("XDSMissingDocument", "2.25.10")],
            },
            documents: vec![RetrievedDocument {
                home_community_id: None,
                repository_unique_id: "1.2.3.4".into(),
                document_unique_id: "2.25.9".into(),
                mime_type: "application/pdf".into(),
                bytes: b"%PDF-1.4\r\n--MIMEBoundary\r\n".to_vec().into(),
            }],
        };
        for mtom in [true, false] {
            let e = build_response(
                &resp,
                Some("urn:uuid:q"),
                "0b3b6c1e-8f50-4c8e-9d3e-2b7f4c1d9a01",
                mtom,
            );
            let m = soap::decode(&e.content_type, &e.body).unwrap();
            assert_eq!(parse_response(&m).unwrap(), resp);
        }
    }
}
