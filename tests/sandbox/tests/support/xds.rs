//! The XDS side of the harness: an insurant's document service over a full session, with
//! epa-protocol's XDS codec as the client.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use epa_protocol::http::Request;
use epa_protocol::xds::query::{self, QueryResponse, StoredQuery};
use epa_protocol::xds::retrieve::{self, DocumentRequest};
use epa_protocol::xds::rim::{self, DocumentEntry, InsurantDocument, RegistryObject};
use epa_protocol::xds::soap::{self, Encoded, Message};
use epa_protocol::xds::submit::{self, DocumentContent, RegistryResponse};
use epa_protocol::xds::{action, status, uuid_oid};

use super::{Channel, Env, UA};

pub const PATH: &str = "/epa/xds-document/api/I_Document_Management_Insurant";

pub struct Xds {
    pub ch: Channel,
    pub kvnr: String,
    pub n: u32,
}

impl Xds {
    pub fn uuid(&mut self) -> String {
        self.n += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.n)
    }

    pub async fn raw(
        &mut self,
        e: &Encoded,
        insurant: Option<&str>,
    ) -> (u16, Option<Message>, Vec<u8>) {
        let mut r = Request::post(PATH, &e.content_type, e.body.clone()).header("x-useragent", UA);
        if let Some(k) = insurant {
            r = r.header("x-insurantid", k);
        }
        let resp = self.ch.send(&r).await;
        let ct = resp.header("content-type").unwrap_or("").to_owned();
        (
            resp.status,
            soap::decode(&ct, &resp.body).ok(),
            resp.body.to_vec(),
        )
    }

    pub async fn call(&mut self, e: &Encoded) -> (u16, Message) {
        let k = self.kvnr.clone();
        let (st, m, body) = self.raw(e, Some(&k)).await;
        let m = m.unwrap_or_else(|| panic!("{st}: {}", String::from_utf8_lossy(&body)));
        (st, m)
    }

    pub async fn query(&mut self, q: &StoredQuery) -> QueryResponse {
        let u = self.uuid();
        let (st, m) = self.call(&query::build_request(q, &u)).await;
        assert_eq!(st, 200);
        assert_eq!(
            m.addressing.action.as_deref(),
            Some(action::REGISTRY_STORED_QUERY_RESPONSE)
        );
        assert_eq!(m.addressing.relates_to, Some(format!("urn:uuid:{u}")));
        query::parse_response(&m).unwrap()
    }

    pub async fn documents(&mut self, q: StoredQuery) -> Vec<DocumentEntry> {
        let r = self.query(&q).await;
        assert_eq!(r.status, status::SUCCESS, "{:?}", r.errors);
        r.documents().cloned().collect()
    }

    pub async fn register(
        &mut self,
        objects: &[RegistryObject],
        docs: &[DocumentContent],
    ) -> (u16, RegistryResponse) {
        let u = self.uuid();
        let (st, m) = self
            .call(&submit::build_provide_and_register(objects, docs, &u, true))
            .await;
        assert_eq!(
            m.addressing.action.as_deref(),
            Some(action::PROVIDE_AND_REGISTER_RESPONSE)
        );
        (st, submit::parse_registry_response(&m).unwrap())
    }

    /// ITI-43 for one document; its bytes.
    pub async fn retrieve_one(&mut self, d: &DocumentEntry) -> Vec<u8> {
        let u = self.uuid();
        let req = DocumentRequest {
            home_community_id: None,
            repository_unique_id: d.repository_unique_id.clone().unwrap(),
            document_unique_id: d.unique_id.clone(),
        };
        let (st, m) = self.call(&retrieve::build_request(&[req], &u, true)).await;
        assert_eq!(st, 200);
        let rr = retrieve::parse_response(&m).unwrap();
        assert_eq!(
            rr.response.status,
            status::SUCCESS,
            "{:?}",
            rr.response.errors
        );
        rr.documents.into_iter().next().unwrap().bytes.to_vec()
    }

    pub fn pid(&self) -> String {
        rim::patient_id(&self.kvnr)
    }
}

pub async fn xds(env: &mut Env, kvnr: &str) -> Xds {
    Xds {
        ch: env.full_session(kvnr).await,
        kvnr: kvnr.to_owned(),
        n: 0,
    }
}

pub fn codes(r: &RegistryResponse) -> Vec<&str> {
    r.errors.iter().map(|e| e.code.as_str()).collect()
}

/// An insurant upload of `bytes` (one JPEG by default) with fresh uniqueIds.
pub fn upload(
    kvnr: &str,
    title: &str,
    n: u128,
    mime: &str,
    bytes: &[u8],
) -> (Vec<RegistryObject>, Vec<DocumentContent>) {
    let uid = uuid_oid(&format!("11111111-2222-4333-8444-{n:012x}")).unwrap();
    let ss_uid = uuid_oid(&format!("11111111-2222-4333-9444-{n:012x}")).unwrap();
    let d = InsurantDocument {
        kvnr,
        given_name: "Maria",
        family_name: "Muster",
        title,
        comments: Some("hochgeladen im Test"),
        mime_type: mime,
        creation_time: "20250401120000",
        id: "Document01",
        unique_id: &uid,
    };
    (
        d.submission(d.entry(), &ss_uid, "1.2.276.0.76.3.1.999", "20250401120500"),
        vec![DocumentContent {
            id: "Document01".into(),
            mime_type: mime.into(),
            bytes: bytes.to_vec().into(),
        }],
    )
}
