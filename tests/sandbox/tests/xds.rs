//! XDS Document Service over the real VAU channel, with epa-protocol's XDS codec as the client:
//! the seeded record, upload → query → retrieve → delete, filters, restricted update, and the
//! refusals (registry errors, SOAP faults, access guard). Payloads are validated against
//! gematik's XSDs when xmllint is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use epa_protocol::xds::query::{self, ReturnType, StoredQuery, id, param};
use epa_protocol::xds::retrieve::{self, DocumentRequest};
use epa_protocol::xds::rim::{self, Code, DocumentEntry, InsurantDocument, RegistryObject};
use epa_protocol::xds::soap::{self, Encoded, Message};
use epa_protocol::xds::submit::{self, RegistryResponse};
use epa_protocol::xds::{action, status, uuid_oid};
use support::xds::{Xds, codes, upload, xds};
use support::{Env, MARIA};

const JONAS: &str = "M432109873";

fn entry_mut(objects: &mut [RegistryObject]) -> &mut DocumentEntry {
    objects
        .iter_mut()
        .find_map(|o| match o {
            RegistryObject::DocumentEntry(e) => Some(&mut **e),
            _ => None,
        })
        .unwrap()
}

const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\r\n--MIMEBoundary\r\n\xff\xd9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeded_record_holds_the_guide_documents_and_their_history() {
    let mut env = Env::start().await;
    let mut x = xds(&mut env, MARIA).await;
    let docs = x
        .documents(StoredQuery::find_documents(&x.pid(), ReturnType::LeafClass))
        .await;
    for (title, created, mime) in [
        ("image001", "20250319", "image/jpeg"),
        ("röntgenaufnahme", "20250311", "image/png"),
        ("Demo PDF", "20250305", "application/pdf"),
    ] {
        let d = docs
            .iter()
            .find(|d| d.title.as_deref() == Some(title))
            .unwrap_or_else(|| panic!("{title}"));
        assert!(
            d.creation_time.as_deref().unwrap().starts_with(created),
            "{title}"
        );
        assert_eq!(d.mime_type, mime);
        let author = d.authors[0].person.as_deref().unwrap();
        assert!(author.starts_with("X110411675^Muster^Maria^"), "{author}");
        assert_eq!(d.status.as_deref(), Some(status::APPROVED));
        assert!(d.root_document_id().is_some());
    }
    let letter = docs
        .iter()
        .find(|d| d.title.as_deref() == Some("Arztbrief Bronchitis"))
        .unwrap();
    assert!(letter.authors[0].institutions[0].ends_with("1-20014567"));
    assert_eq!(docs.len(), 5);
    // ObjectRef gives the same set of ids.
    let refs = x
        .query(&StoredQuery::find_documents(
            &x.pid(),
            ReturnType::ObjectRef,
        ))
        .await;
    let mut ids: Vec<&str> = refs.object_refs().collect();
    let mut want: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(ids, want);
    // GetAll: documents, submission sets and their HasMember associations.
    let all = x.query(&StoredQuery::get_all(&x.pid())).await;
    let count = |f: fn(&RegistryObject) -> bool| all.objects.iter().filter(|o| f(o)).count();
    assert_eq!(count(|o| matches!(o, RegistryObject::DocumentEntry(_))), 5);
    assert_eq!(count(|o| matches!(o, RegistryObject::SubmissionSet(_))), 5);
    assert_eq!(count(|o| matches!(o, RegistryObject::Association(_))), 5);
    // Categories and the audit history a client counts accesses from.
    let svc = &env.s.aktensystem("epa-as-1").unwrap().services;
    let cats: Vec<(String, String)> = svc
        .documents
        .current_documents(MARIA)
        .into_iter()
        .map(|d| (d.entry.title.unwrap_or_default(), d.category))
        .collect();
    assert!(cats.contains(&("Demo PDF".into(), "patient".into())));
    assert!(cats.contains(&("Arztbrief Bronchitis".into(), "reports".into())));
    let events = svc.audit.events(MARIA);
    let reads_by_others = events
        .iter()
        .filter(|e| e.operation == "RetrieveDocumentSet" && e.actor.id != MARIA)
        .count();
    assert_eq!(reads_by_others, 5);
    assert!(events.iter().any(
        |e| e.entity_name == "Demo PDF" && e.actor.name == "Hausarztpraxis Dr. med. Eva Sommer"
    ));
    // Constraint Management's view of the chain.
    let root = docs
        .iter()
        .find(|d| d.title.as_deref() == Some("Demo PDF"))
        .unwrap()
        .root_document_id()
        .unwrap();
    assert_eq!(
        svc.documents.category_of_root(MARIA, root).as_deref(),
        Some("patient")
    );
    assert!(!svc.documents.root_document_exists(JONAS, root));
    // Jonas has his own documents.
    let mut j = xds(&mut env, JONAS).await;
    let jd = j
        .documents(StoredQuery::find_documents(&j.pid(), ReturnType::LeafClass))
        .await;
    assert_eq!(jd.len(), 2);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_query_retrieve_delete_round_trip() {
    let mut env = Env::start().await;
    let mut x = xds(&mut env, MARIA).await;
    let (objects, contents) = upload(MARIA, "Scan Impfpass", 1, "image/jpeg", JPEG);
    let (st, r) = x.register(&objects, &contents).await;
    assert_eq!(
        (st, r.status.as_str()),
        (200, status::SUCCESS),
        "{:?}",
        r.errors
    );
    let found = x
        .documents(StoredQuery::find_documents_by_title(&x.pid(), "Scan Impf%"))
        .await;
    assert_eq!(found.len(), 1);
    let d = &found[0];
    assert!(
        d.id.starts_with("urn:uuid:"),
        "symbolic id replaced: {}",
        d.id
    );
    assert_eq!(
        d.hash.as_deref(),
        Some(epa_protocol::xds::sha1_hex(JPEG).as_str())
    );
    assert_eq!(d.size, Some(JPEG.len() as u64));
    let repo = d.repository_unique_id.clone().unwrap();
    let svc = &env.s.aktensystem("epa-as-1").unwrap().services;
    let stored = svc.documents.current_documents(MARIA);
    assert_eq!(
        stored.iter().find(|s| s.entry.id == d.id).unwrap().category,
        "patient"
    );
    // Retrieve, with one unknown document: PartialSuccess, MTOM answer, bytes equal.
    let reqs = vec![
        DocumentRequest {
            home_community_id: d.home.clone(),
            repository_unique_id: repo.clone(),
            document_unique_id: d.unique_id.clone(),
        },
        DocumentRequest {
            home_community_id: None,
            repository_unique_id: repo.clone(),
            document_unique_id: "2.25.4711".into(),
        },
    ];
    let u = x.uuid();
    let (st, m) = x.call(&retrieve::build_request(&reqs, &u, true)).await;
    assert_eq!(st, 200);
    assert!(m.package.is_some(), "ITI-43 is answered with MTOM");
    let rr = retrieve::parse_response(&m).unwrap();
    assert_eq!(rr.response.status, status::PARTIAL_SUCCESS);
    assert_eq!(codes(&rr.response), ["XDSMissingDocument"]);
    assert_eq!(rr.documents.len(), 1);
    assert_eq!(rr.documents[0].bytes, JPEG);
    assert_eq!(rr.documents[0].mime_type, "image/jpeg");
    // Seeded documents come back byte-equal too.
    let all = x
        .documents(StoredQuery::find_documents(&x.pid(), ReturnType::LeafClass))
        .await;
    let pdf = all
        .iter()
        .find(|d| d.title.as_deref() == Some("Demo PDF"))
        .unwrap();
    let (st, m) = x
        .call(&retrieve::build_request(
            &[DocumentRequest {
                home_community_id: None,
                repository_unique_id: repo.clone(),
                document_unique_id: pdf.unique_id.clone(),
            }],
            "r2",
            false,
        ))
        .await;
    assert_eq!(st, 200);
    let rr = retrieve::parse_response(&m).unwrap();
    assert_eq!(rr.response.status, status::SUCCESS);
    assert!(rr.documents[0].bytes.starts_with(b"%PDF-1.4"));
    assert_eq!(
        rr.documents[0].bytes,
        epa_sandbox::xds::seed_file("demo.pdf").unwrap()
    );
    // Delete: gone from queries and the repository.
    let u = x.uuid();
    let (st, m) = x
        .call(&submit::build_remove_objects(
            std::slice::from_ref(&d.id),
            &u,
        ))
        .await;
    assert_eq!(st, 200);
    let r = submit::parse_registry_response(&m).unwrap();
    assert_eq!(r.status, status::SUCCESS, "{:?}", r.errors);
    assert!(
        x.documents(StoredQuery::find_documents_by_title(&x.pid(), "Scan Impf%"))
            .await
            .is_empty()
    );
    let (_, m) = x
        .call(&retrieve::build_request(&reqs[..1], "r3", false))
        .await;
    let rr = retrieve::parse_response(&m).unwrap();
    assert_eq!(
        (rr.response.status.as_str(), codes(&rr.response)),
        (status::FAILURE, vec!["XDSMissingDocument"])
    );
    // Deleting it again: nothing to resolve.
    let (_, m) = x
        .call(&submit::build_remove_objects(
            std::slice::from_ref(&d.id),
            "r4",
        ))
        .await;
    assert_eq!(
        codes(&submit::parse_registry_response(&m).unwrap()),
        ["UnresolvedReferenceException"]
    );
    // Every transaction is in the audit log.
    let events = svc.audit.events(MARIA);
    let ops: Vec<(&str, &'static str)> = events
        .iter()
        .filter(|e| e.actor.id == MARIA && e.entity_name == "Scan Impfpass")
        .map(|e| (e.operation.as_str(), e.action.code()))
        .collect();
    assert_eq!(
        ops,
        [
            ("ProvideAndRegisterDocumentSet-b", "C"),
            ("RetrieveDocumentSet", "R"),
            ("DeleteDocumentSet", "D")
        ]
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_documents_filters() {
    let mut env = Env::start().await;
    let mut x = xds(&mut env, MARIA).await;
    let pid = x.pid();
    let class = |c: &str| Code::new(c, rim::codes::CLASS, "");
    let typ = |c: &str| Code::new(c, rim::codes::TYPE, "");
    let base = || StoredQuery::find_documents(&pid, ReturnType::LeafClass);
    let cases: Vec<(&str, StoredQuery, Vec<&str>)> = vec![
        (
            "title LIKE",
            StoredQuery::find_documents_by_title(&pid, "%PDF"),
            vec!["Demo PDF"],
        ),
        (
            "title LIKE _ and case",
            StoredQuery::find_documents_by_title(&pid, "IMAGE00_"),
            vec!["image001"],
        ),
        (
            "author",
            base().with(param::AUTHOR_PERSON, &["%^Muster^Maria^%"]),
            vec!["image001", "röntgenaufnahme", "Demo PDF"],
        ),
        (
            "author of a practice",
            base().with(param::AUTHOR_PERSON, &["%Sommer%"]),
            vec!["Arztbrief Bronchitis"],
        ),
        (
            "class code",
            base().with_codes(param::CLASS_CODE, &[class("BIL")]),
            vec!["image001", "röntgenaufnahme"],
        ),
        (
            "class codes OR",
            base().with_codes(param::CLASS_CODE, &[class("LAB"), class("BRI")]),
            vec!["Arztbrief Bronchitis", "Laborbefund Blutbild"],
        ),
        (
            "type code",
            base().with_codes(param::TYPE_CODE, &[typ("PATD")]),
            vec!["image001", "röntgenaufnahme", "Demo PDF"],
        ),
        (
            "class code needs its system",
            base().with_codes(param::CLASS_CODE, &[Code::new("BIL", "1.2.3", "")]),
            vec![],
        ),
        (
            "creation range",
            base()
                .with(param::CREATION_TIME_FROM, &["20250310"])
                .with(param::CREATION_TIME_TO, &["20250320"]),
            vec!["image001", "röntgenaufnahme"],
        ),
        (
            "creation To is exclusive",
            base().with(param::CREATION_TIME_TO, &["20250218161000"]),
            vec![],
        ),
        (
            "creation From is inclusive",
            base().with(param::CREATION_TIME_FROM, &["20250319081500"]),
            vec!["image001"],
        ),
        (
            "deprecated only",
            StoredQuery::new(id::FIND_DOCUMENTS, ReturnType::LeafClass)
                .with(param::PATIENT_ID, &[&pid])
                .with(param::STATUS, &[status::DEPRECATED]),
            vec![],
        ),
        (
            "format code",
            base().with_codes(
                param::FORMAT_CODE,
                &[Code::new(
                    "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    rim::codes::FORMAT_IHE,
                    "",
                )],
            ),
            vec![
                "image001",
                "röntgenaufnahme",
                "Demo PDF",
                "Arztbrief Bronchitis",
                "Laborbefund Blutbild",
            ],
        ),
    ];
    for (name, q, want) in cases {
        let docs = x.documents(q).await;
        let mut got: Vec<&str> = docs.iter().filter_map(|d| d.title.as_deref()).collect();
        let mut want = want;
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{name}");
    }
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_follow_the_rules() {
    let mut env = Env::start().await;
    let mut x = xds(&mut env, MARIA).await;
    let pid = x.pid();
    // ITI-18 registry errors.
    let other = rim::patient_id(JONAS);
    for (name, q, code) in [
        (
            "patient id of another record",
            StoredQuery::find_documents(&other, ReturnType::LeafClass),
            "XDSPatientIdDoesNotMatch",
        ),
        (
            "unknown query id",
            StoredQuery::new(
                "urn:uuid:00000000-0000-4000-8000-000000000000",
                ReturnType::LeafClass,
            )
            .with(param::PATIENT_ID, &[&pid]),
            "XDSUnknownStoredQuery",
        ),
        (
            "missing status",
            StoredQuery::new(id::FIND_DOCUMENTS, ReturnType::LeafClass)
                .with(param::PATIENT_ID, &[&pid]),
            "XDSStoredQueryParamNumber",
        ),
        (
            "unknown parameter",
            StoredQuery::find_documents(&pid, ReturnType::LeafClass)
                .with("$XDSNoSuchThing", &["x"]),
            "XDSStoredQueryParamNumber",
        ),
        (
            "title without pattern",
            StoredQuery::find_documents(&pid, ReturnType::LeafClass).with(param::TITLE, &["x"]),
            "XDSStoredQueryParamNumber",
        ),
        (
            "malformed code",
            StoredQuery::find_documents(&pid, ReturnType::LeafClass)
                .with(param::CLASS_CODE, &["BIL"]),
            "XDSRegistryError",
        ),
        (
            "malformed time",
            StoredQuery::find_documents(&pid, ReturnType::LeafClass)
                .with(param::CREATION_TIME_FROM, &["2025"])
                .with(param::CREATION_TIME_TO, &["20251340"]),
            "XDSRegistryError",
        ),
    ] {
        let r = x.query(&q).await;
        assert_eq!(r.status, status::FAILURE, "{name}");
        assert_eq!(
            r.errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(),
            [code],
            "{name}"
        );
    }
    // ITI-41 registry errors.
    let seeded = x
        .documents(StoredQuery::find_documents(&pid, ReturnType::LeafClass))
        .await;
    let seeded_uid = seeded[0].unique_id.clone();
    type Edit = Box<dyn Fn(&mut Vec<RegistryObject>)>;
    let cases: Vec<(&str, Edit, u16, &str)> = vec![
        (
            "patient id of another record",
            Box::new(move |o| entry_mut(o).patient_id = rim::patient_id(JONAS)),
            200,
            "XDSPatientIdDoesNotMatch",
        ),
        (
            "uniqueId no OID",
            Box::new(|o| entry_mut(o).unique_id = "not-an-oid".into()),
            200,
            "XDSRegistryMetadataError",
        ),
        (
            "uniqueId already registered",
            Box::new(move |o| entry_mut(o).unique_id = seeded_uid.clone()),
            200,
            "XDSDuplicateUniqueIdInRegistry",
        ),
        (
            "MIME type not allowed",
            Box::new(|o| entry_mut(o).mime_type = "text/html".into()),
            200,
            "XDSRegistryMetadataError",
        ),
        (
            "no classCode",
            Box::new(|o| entry_mut(o).class_code = None),
            200,
            "XDSRegistryMetadataError",
        ),
        (
            "no creationTime",
            Box::new(|o| entry_mut(o).creation_time = None),
            200,
            "XDSRegistryMetadataError",
        ),
        (
            "author is someone else",
            Box::new(|o| {
                entry_mut(o).authors = vec![rim::insurant_author(JONAS, "Jonas", "Beispiel")]
            }),
            200,
            "XDSRegistryMetadataError",
        ),
        (
            "wrong hash",
            Box::new(|o| entry_mut(o).hash = Some("00".repeat(20))),
            200,
            "XDSRepositoryMetadataError",
        ),
        (
            "no HasMember",
            Box::new(|o| o.retain(|x| !matches!(x, RegistryObject::Association(_)))),
            200,
            "XDSRegistryMetadataError",
        ),
        (
            "document without entry",
            Box::new(|o| entry_mut(o).id = "Document02".into()),
            200,
            "XDSMissingDocument",
        ),
    ];
    for (i, (name, edit, st, code)) in cases.into_iter().enumerate() {
        let (mut objects, contents) = upload(MARIA, name, 100 + i as u128, "image/jpeg", JPEG);
        edit(&mut objects);
        let (got_st, r) = x.register(&objects, &contents).await;
        assert_eq!(
            (got_st, r.status.as_str(), codes(&r)),
            (st, status::FAILURE, vec![code]),
            "{name}"
        );
    }
    // Size limit: 413 + XDSRepositoryError.
    env.s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .documents
        .set_max_document_bytes(16);
    let (objects, contents) = upload(MARIA, "too big", 200, "image/jpeg", JPEG);
    let (st, r) = x.register(&objects, &contents).await;
    assert_eq!((st, codes(&r)), (413, vec!["XDSRepositoryError"]));
    env.s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .documents
        .set_max_document_bytes(1 << 20);
    // Nothing of the refused uploads was stored.
    assert_eq!(
        x.documents(StoredQuery::find_documents(&pid, ReturnType::LeafClass))
            .await
            .len(),
        5
    );

    // SOAP faults: WS-Addressing and actions.
    let payload =
        "<query:AdhocQueryRequest xmlns:query=\"urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0\"/>";
    let no_action = soap::envelope(
        &soap::Addressing {
            message_id: Some("urn:uuid:1".into()),
            ..Default::default()
        },
        payload,
    );
    let no_message_id = soap::envelope(
        &soap::Addressing {
            action: Some(action::REGISTRY_STORED_QUERY.into()),
            ..Default::default()
        },
        payload,
    );
    let wrong_action = soap::envelope(
        &soap::request_addressing("urn:ihe:iti:2007:RegistryStoredQueryX", "2"),
        payload,
    );
    let mismatched_body = soap::envelope(
        &soap::request_addressing(action::RETRIEVE_DOCUMENT_SET, "3"),
        payload,
    );
    let reply_elsewhere = soap::envelope(
        &soap::Addressing {
            reply_to: Some("https://evil.example/".into()),
            ..soap::request_addressing(action::REGISTRY_STORED_QUERY, "4")
        },
        payload,
    );
    for (name, env_xml, ct, st, sub) in [
        (
            "no wsa:Action",
            no_action,
            "application/soap+xml",
            400,
            Some("MessageAddressingHeaderRequired"),
        ),
        (
            "no wsa:MessageID",
            no_message_id,
            "application/soap+xml",
            400,
            Some("MessageAddressingHeaderRequired"),
        ),
        (
            "unknown action",
            wrong_action,
            "application/soap+xml",
            400,
            Some("ActionNotSupported"),
        ),
        (
            "body does not match the action",
            mismatched_body,
            "application/soap+xml",
            400,
            None,
        ),
        (
            "non-anonymous ReplyTo",
            reply_elsewhere,
            "application/soap+xml",
            400,
            Some("OnlyAnonymousAddressSupported"),
        ),
        (
            "not XML",
            "{}".to_owned(),
            "application/soap+xml",
            400,
            None,
        ),
        (
            "JSON media type",
            "{}".to_owned(),
            "application/json",
            415,
            None,
        ),
    ] {
        let e = Encoded {
            content_type: ct.into(),
            body: env_xml.into_bytes(),
        };
        let (got, m, body) = x.raw(&e, Some(MARIA)).await;
        assert_eq!(got, st, "{name}: {}", String::from_utf8_lossy(&body));
        let f = m
            .and_then(|m| m.fault())
            .unwrap_or_else(|| panic!("{name}: no fault"));
        assert_eq!(f.code, soap::FaultCode::Sender, "{name}");
        assert_eq!(f.subcode.as_deref(), sub, "{name}");
    }
    // The access guard: no x-insurantid, another's record, limited session.
    let q = query::build_request(
        &StoredQuery::find_documents(&pid, ReturnType::LeafClass),
        "5",
    );
    let (st, _, body) = x.raw(&q, None).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (st, v["errorCode"].as_str()),
        (400, Some("malformedRequest"))
    );
    let (st, _, body) = x.raw(&q, Some(JONAS)).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((st, v["errorCode"].as_str()), (403, Some("notEntitled")));
    let mut limited = Xds {
        ch: env.login(MARIA, None).await,
        kvnr: MARIA.into(),
        n: 0,
    };
    let (st, _, body) = limited.raw(&q, Some(MARIA)).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (st, v["errorCode"].as_str()),
        (403, Some("unregisteredDevice"))
    );
    env.s.shutdown().await;
}

fn update_objects(x: &mut Xds, e: &DocumentEntry, prev: &str, n: u128) -> Vec<RegistryObject> {
    let uid = uuid_oid(&format!("22222222-2222-4333-8444-{n:012x}")).unwrap();
    let d = InsurantDocument {
        kvnr: &x.kvnr.clone(),
        given_name: "Maria",
        family_name: "Muster",
        title: "",
        comments: None,
        mime_type: "",
        creation_time: "",
        id: "",
        unique_id: "",
    };
    let set = d.submission_set(
        "SubmissionSet01",
        &uid,
        "1.2.276.0.76.3.1.999",
        "20250402100000",
    );
    let mut new = e.clone();
    new.lid = Some(e.lid.clone().unwrap());
    new.id = "Document01".into();
    new.status = None;
    let mut a = rim::has_member("Association01", "SubmissionSet01", "Document01");
    a.slots.push(rim::Slot {
        name: "PreviousVersion".into(),
        values: vec![prev.into()],
    });
    vec![
        RegistryObject::SubmissionSet(Box::new(set)),
        RegistryObject::DocumentEntry(Box::new(new)),
        RegistryObject::Association(a),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_update_changes_only_updatable_attributes() {
    let mut env = Env::start().await;
    let mut x = xds(&mut env, MARIA).await;
    let pid = x.pid();
    let docs = x
        .documents(StoredQuery::find_documents_by_title(&pid, "Demo PDF"))
        .await;
    let cur = docs[0].clone();
    let send = |objects: Vec<RegistryObject>, u: &str| submit::build_restricted_update(&objects, u);
    // Title change: a new version, the old one deprecated, same uniqueId and bytes.
    let mut objects = update_objects(&mut x, &cur, "1", 1);
    entry_mut(&mut objects).title = Some("Demo PDF (umbenannt)".into());
    let (st, m) = x.call(&send(objects, "u1")).await;
    assert_eq!(
        m.addressing.action.as_deref(),
        Some(action::RESTRICTED_UPDATE_RESPONSE)
    );
    let r = submit::parse_registry_response(&m).unwrap();
    assert_eq!(
        (st, r.status.as_str()),
        (200, status::SUCCESS),
        "{:?}",
        r.errors
    );
    let now = x
        .documents(StoredQuery::find_documents_by_title(&pid, "Demo PDF%"))
        .await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].title.as_deref(), Some("Demo PDF (umbenannt)"));
    assert_eq!(now[0].version.as_deref(), Some("2"));
    assert_eq!(now[0].lid, cur.lid);
    assert_eq!(now[0].unique_id, cur.unique_id);
    assert_eq!(now[0].root_document_id(), cur.root_document_id());
    // $XDSDocumentEntryStatus is one slot; a second one is a parameter-count error.
    let twice = x
        .query(
            &StoredQuery::find_documents(&pid, ReturnType::LeafClass)
                .with(param::STATUS, &[status::DEPRECATED]),
        )
        .await;
    assert_eq!(
        codes(&RegistryResponse {
            status: twice.status,
            errors: twice.errors
        }),
        ["XDSStoredQueryParamNumber"]
    );
    let old = x
        .documents(
            StoredQuery::new(id::FIND_DOCUMENTS, ReturnType::LeafClass)
                .with(param::PATIENT_ID, &[&pid])
                .with(param::STATUS, &[status::DEPRECATED]),
        )
        .await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].title.as_deref(), Some("Demo PDF"));
    // Refusals.
    let cur = now[0].clone();
    type Edit = Box<dyn Fn(&mut DocumentEntry)>;
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        (
            "mimeType is not updatable",
            "2",
            Box::new(|e| e.mime_type = "image/png".into()),
            "XDSRegistryMetadataError",
        ),
        (
            "uniqueId is not updatable",
            "2",
            Box::new(|e| e.unique_id = "2.25.99".into()),
            "XDSRegistryMetadataError",
        ),
        (
            "hash is not updatable",
            "2",
            Box::new(|e| e.hash = Some("11".repeat(20))),
            "XDSRegistryMetadataError",
        ),
        (
            "stale PreviousVersion",
            "1",
            Box::new(|e| e.title = Some("x".into())),
            "XDSMetadataVersionError",
        ),
        (
            "unknown logical id",
            "2",
            Box::new(|e| e.lid = Some("urn:uuid:00000000-0000-4000-8000-000000000999".into())),
            "UnresolvedReferenceException",
        ),
    ];
    for (i, (name, prev, edit, code)) in cases.into_iter().enumerate() {
        let mut objects = update_objects(&mut x, &cur, prev, 10 + i as u128);
        edit(entry_mut(&mut objects));
        let (_, m) = x.call(&send(objects, "u2")).await;
        let r = submit::parse_registry_response(&m).unwrap();
        assert_eq!(
            (r.status.as_str(), codes(&r)),
            (status::FAILURE, vec![code]),
            "{name}"
        );
    }
    let ops: Vec<_> = env
        .s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .audit
        .events(MARIA)
        .into_iter()
        .filter(|e| e.operation == "RestrictedUpdateDocumentSet")
        .map(|e| (e.action.code(), e.outcome.code()))
        .collect();
    assert_eq!(ops[0], ("U", "0"));
    assert_eq!(ops.len(), 6);
    env.s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Schema validation with xmllint (skipped with a note when it is not installed).

fn schema_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/specs/gematik-ePA-XDS-Document-3.0.1/src/schema/ext")
}

struct Validator {
    dir: tempfile::TempDir,
    n: usize,
}

impl Validator {
    fn new() -> Option<Self> {
        let ok = std::process::Command::new("xmllint")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let ihe = schema_dir().join("IHE");
        if !ok {
            eprintln!(
                "SKIP schema validation: xmllint not installed (apt-get install libxml2-utils)"
            );
            return None;
        }
        if !ihe.exists() {
            eprintln!("SKIP schema validation: {} not found", ihe.display());
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let url = |p: &str| {
            format!(
                "file://{}",
                std::fs::canonicalize(ihe.join(p)).unwrap().display()
            )
        };
        // One schema that pulls in the XDS.b and RMD schemas (and through them rs/rim/lcm/query).
        let xsd = format!(
            "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" targetNamespace=\"urn:epa-sandbox:xds-validation\">\
             <xs:import namespace=\"urn:ihe:iti:xds-b:2007\" schemaLocation=\"{}\"/>\
             <xs:import namespace=\"urn:ihe:iti:rmd:2017\" schemaLocation=\"{}\"/></xs:schema>",
            url("XDS.b_DocumentRepository.xsd"),
            url("RMD.xsd")
        );
        std::fs::write(dir.path().join("all.xsd"), xsd).unwrap();
        Some(Self { dir, n: 0 })
    }

    /// Validates the payload (body element) of a message, XOP includes resolved.
    fn check(&mut self, what: &str, m: &Message) {
        self.n += 1;
        let file = self.dir.path().join(format!("{}.xml", self.n));
        std::fs::write(&file, m.payload_inline().unwrap().to_xml()).unwrap();
        let out = std::process::Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(self.dir.path().join("all.xsd"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn decode(e: &Encoded) -> Message {
    soap::decode(&e.content_type, &e.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_answers_conform_to_the_xds_schemas() {
    let Some(mut v) = Validator::new() else {
        return;
    };
    let mut env = Env::start().await;
    let mut x = xds(&mut env, MARIA).await;
    let pid = x.pid();
    // What the codec sends.
    let q = StoredQuery::find_documents(&pid, ReturnType::LeafClass)
        .with_codes(
            param::CLASS_CODE,
            &[Code::new("BIL", rim::codes::CLASS, "")],
        )
        .with(param::CREATION_TIME_FROM, &["20250101"]);
    let qe = query::build_request(&q, "q1");
    v.check("AdhocQueryRequest", &decode(&qe));
    let (objects, contents) = upload(MARIA, "Schema", 1, "application/pdf", b"%PDF-1.4\n%%EOF\n");
    let pe = submit::build_provide_and_register(
        &objects,
        &contents,
        "00000000-0000-4000-8000-0000000000aa",
        true,
    );
    v.check("ProvideAndRegisterDocumentSetRequest (MTOM)", &decode(&pe));
    v.check(
        "ProvideAndRegisterDocumentSetRequest (inline)",
        &decode(&submit::build_provide_and_register(
            &objects, &contents, "p2", false,
        )),
    );
    v.check(
        "RemoveObjectsRequest",
        &decode(&submit::build_remove_objects(
            &["urn:uuid:00000000-0000-4000-8000-000000000001".into()],
            "d1",
        )),
    );
    // What the sandbox answers.
    let (_, m) = x.call(&pe).await;
    v.check("RegistryResponse (ITI-41)", &m);
    let (_, m) = x
        .call(&query::build_request(&StoredQuery::get_all(&pid), "q2"))
        .await;
    v.check("AdhocQueryResponse (GetAll)", &m);
    let docs = query::parse_response(&m).unwrap();
    let d = docs
        .documents()
        .find(|d| d.title.as_deref() == Some("image001"))
        .unwrap()
        .clone();
    let (_, m) = x
        .call(&query::build_request(
            &StoredQuery::find_documents(&pid, ReturnType::ObjectRef),
            "q3",
        ))
        .await;
    v.check("AdhocQueryResponse (ObjectRef)", &m);
    let (_, m) = x
        .call(&query::build_request(
            &StoredQuery::new("urn:uuid:nope", ReturnType::LeafClass),
            "q4",
        ))
        .await;
    v.check("AdhocQueryResponse (Failure)", &m);
    let reqs = vec![
        DocumentRequest {
            home_community_id: d.home.clone(),
            repository_unique_id: d.repository_unique_id.clone().unwrap(),
            document_unique_id: d.unique_id.clone(),
        },
        DocumentRequest {
            home_community_id: None,
            repository_unique_id: "1.2.3".into(),
            document_unique_id: "2.25.1".into(),
        },
    ];
    let re = retrieve::build_request(&reqs, "r1", false);
    v.check("RetrieveDocumentSetRequest", &decode(&re));
    let (_, m) = x.call(&re).await;
    v.check("RetrieveDocumentSetResponse (PartialSuccess, MTOM)", &m);
    let mut objects = update_objects(&mut x, &d, "1", 1);
    entry_mut(&mut objects).title = Some("image001 (2)".into());
    let ue = submit::build_restricted_update(&objects, "u1");
    v.check("SubmitObjectsRequest (ITI-92)", &decode(&ue));
    let (_, m) = x.call(&ue).await;
    v.check("RegistryResponse (ITI-92)", &m);
    env.s.shutdown().await;
}
