//! I_Constraint_Management_Insurant v1.1.3 over the VAU channel: hide/unhide/list with the
//! YAML's error table, page-index paging, filters, audit entries, the institution view.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use epa_protocol::http::Request;
use serde_json::{Value, json};
use support::{Channel, Env, MARIA, UA};

const PATH: &str = "/epa/xds-document/api/v1/constraints";
const ROOT: &str = "^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId";

fn post_raw(content_type: &str, body: &str) -> Request {
    Request::post(PATH, content_type, body.as_bytes().to_vec())
        .header("x-useragent", UA)
        .header("x-insurantid", MARIA)
}

fn post(body: &Value) -> Request {
    post_raw("application/json", &body.to_string())
}

fn get(query: &str) -> Request {
    Request::get(format!("{PATH}{query}"))
        .header("x-useragent", UA)
        .header("x-insurantid", MARIA)
}

fn delete(id: &str) -> Request {
    Request::delete(format!("{PATH}/{id}"))
        .header("x-useragent", UA)
        .header("x-insurantid", MARIA)
}

async fn hide_category(ch: &mut Channel, c: &str) -> String {
    let (s, b) = ch
        .json(&post(
            &json!({"for": "category", "parameters": {"categoryId": c}}),
        ))
        .await;
    assert_eq!(s, 201, "{b}");
    b["assignmentId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_follows_the_error_table() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    let (s, b) = ch
        .json(&post(
            &json!({"for": "category", "parameters": {"categoryId": "patient"}}),
        ))
        .await;
    assert_eq!(s, 201);
    assert_eq!(b["for"], "category");
    assert_eq!(b["parameters"], json!({"categoryId": "patient"}));
    let id = b["assignmentId"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");

    let unknown_doc = format!("0f70653d-d5f4-46f0-99e1-b6af92eea2b6{ROOT}");
    let table: Vec<(&str, Request, u16, &str)> = vec![
        (
            "duplicate",
            post(&json!({"for": "category", "parameters": {"categoryId": "patient"}})),
            409,
            "requestMismatch",
        ),
        (
            "emp",
            post(&json!({"for": "category", "parameters": {"categoryId": "emp"}})),
            403,
            "invalidResource",
        ),
        (
            "category not of the XDS Document Service",
            post(&json!({"for": "category", "parameters": {"categoryId": "medication"}})),
            409,
            "requestMismatch",
        ),
        (
            "categoryId not a string",
            post(&json!({"for": "category", "parameters": {"categoryId": 7}})),
            400,
            "malformedRequest",
        ),
        (
            "for missing",
            post(&json!({"parameters": {"categoryId": "patient"}})),
            400,
            "malformedRequest",
        ),
        (
            "for unknown",
            post(&json!({"for": "record", "parameters": {"categoryId": "patient"}})),
            400,
            "malformedRequest",
        ),
        (
            "parameter of another kind",
            post(
                &json!({"for": "category", "parameters": {"folderUUID": "urn:uuid:84d92a96-3585-4ad3-94b1-c4f3dbe87176"}}),
            ),
            400,
            "malformedRequest",
        ),
        (
            "unknown member",
            post(&json!({"for": "category", "parameters": {"categoryId": "care"}, "user": "x"})),
            400,
            "malformedRequest",
        ),
        (
            "not JSON",
            post_raw("application/json", "{for: category"),
            400,
            "malformedRequest",
        ),
        (
            "wrong content type",
            post_raw(
                "text/plain",
                r#"{"for": "category", "parameters": {"categoryId": "care"}}"#,
            ),
            400,
            "malformedRequest",
        ),
        (
            "rootDocumentId without the suffix",
            post(
                &json!({"for": "document", "parameters": {"rootDocumentId": "0f70653d-d5f4-46f0-99e1-b6af92eea2b6"}}),
            ),
            400,
            "malformedRequest",
        ),
        (
            "unknown document",
            post(&json!({"for": "document", "parameters": {"rootDocumentId": unknown_doc}})),
            404,
            "noResource",
        ),
        (
            "folderUUID not urn-encoded",
            post(
                &json!({"for": "folder", "parameters": {"folderUUID": "84d92a96-3585-4ad3-94b1-c4f3dbe87176"}}),
            ),
            400,
            "malformedRequest",
        ),
        (
            "unknown folder",
            post(
                &json!({"for": "folder", "parameters": {"folderUUID": "urn:uuid:84d92a96-3585-4ad3-94b1-c4f3dbe87176"}}),
            ),
            404,
            "noResource",
        ),
        ("unhide: not a UUID", delete("abc"), 400, "malformedRequest"),
        (
            "unhide: unknown assignment",
            delete("fa2bc929-f6c9-419f-ae75-cea040927651"),
            404,
            "noResource",
        ),
    ];
    for (rule, req, status, code) in table {
        let (s, b) = ch.json(&req).await;
        assert_eq!(
            (s, b["errorCode"].as_str()),
            (status, Some(code)),
            "{rule}: {b}"
        );
    }
    // Unhide; a second time it is gone.
    let r = ch.send(&delete(id)).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let (s, b) = ch.json(&delete(id)).await;
    assert_eq!((s, b["errorCode"].as_str()), (404, Some("noResource")));
    // Hiding again works after unhiding.
    hide_category(&mut ch, "patient").await;

    // Set and delete are logged for all results (CONMGMT); the list is not.
    let svc = &env.s.aktensystem("epa-as-1").unwrap().services;
    let events = svc
        .audit
        .events(MARIA)
        .into_iter()
        .filter(|e| e.source == "CONMGMT")
        .collect::<Vec<_>>();
    let set: Vec<_> = events
        .iter()
        .filter(|e| e.operation == "setDenyPolicyAssignment")
        .collect();
    let deleted: Vec<_> = events
        .iter()
        .filter(|e| e.operation == "deleteDenyPolicyAssignment")
        .collect();
    assert_eq!(set.len(), 16);
    assert_eq!(deleted.len(), 4);
    assert_eq!(events.len(), 20);
    assert_eq!(set[0].outcome.code(), "0");
    assert_eq!(set[0].entity_detail.as_deref(), Some("categoryId=patient"));
    assert_eq!(set[1].outcome.code(), "4");
    assert_eq!(deleted[2].outcome.code(), "0");
    assert_eq!(deleted[2].action.code(), "D");
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_by_page_index_and_filters() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    let cats = ["reports", "dental", "patient", "care", "other"];
    let mut ids = Vec::new();
    for c in cats {
        ids.push(hide_category(&mut ch, c).await);
    }
    let (s, b) = ch.json(&get("")).await;
    assert_eq!(s, 200);
    assert_eq!(
        b["query"],
        json!({"offset": 0, "limit": 50, "totalMatching": 5})
    );
    assert_eq!(b["data"][0]["assignmentId"], ids[0].as_str());
    assert_eq!(b["data"][4]["parameters"]["categoryId"], "other");
    // offset is a page index: page 1 of size 2 is items 3 and 4.
    let (_, b) = ch.json(&get("?limit=2&offset=1")).await;
    assert_eq!(
        b["query"],
        json!({"offset": 1, "limit": 2, "totalMatching": 5})
    );
    let page: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["parameters"]["categoryId"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["patient", "care"]);
    let (_, b) = ch.json(&get("?limit=2&offset=3")).await;
    assert!(b["data"].as_array().unwrap().is_empty());
    let table = [
        ("?for=category", 5),
        ("?for=document", 0),
        ("?for=document&for=category", 5),
        ("?parameters.categoryId=dental", 1),
        (
            "?parameters.categoryId=dental&parameters.categoryId=care",
            2,
        ),
        ("?for=category&parameters.categoryId=care", 1),
        ("?for=folder&parameters.categoryId=care", 0),
        (
            "?parameters.categoryId=care&parameters.folderUUID=urn:uuid:84d92a96-3585-4ad3-94b1-c4f3dbe87176",
            0,
        ),
        (
            "?parameters.rootDocumentId=0f70653d-d5f4-46f0-99e1-b6af92eea2b6%5E%5E%5E%5Eurn:gematik:iti:xds:2023:rootDocumentUniqueId",
            0,
        ),
    ];
    for (q, n) in table {
        let (s, b) = ch.json(&get(q)).await;
        assert_eq!(s, 200, "{q}: {b}");
        assert_eq!(b["query"]["totalMatching"], n, "{q}");
    }
    for q in [
        "?limit=0",
        "?limit=51",
        "?limit=x",
        "?offset=-1",
        "?limit=5&limit=6",
        "?for=all",
        "?parameters.categoryId=emp",
        "?parameters.folderUUID=84d92a96",
        "?parameters.rootDocumentId=abc",
        "?sort=asc",
    ] {
        let (s, b) = ch.json(&get(q)).await;
        assert_eq!(
            (s, b["errorCode"].as_str()),
            (400, Some("malformedRequest")),
            "{q}"
        );
    }
    // What institutions will not see.
    let hidden = env
        .s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .constraints
        .hidden_for_institutions(MARIA);
    assert_eq!(hidden.categories.len(), 5);
    assert!(hidden.hides(Some("dental"), "x", &[]));
    assert!(!hidden.hides(Some("eab"), "x", &[]));
    // Reading the list leaves no audit entry (no postcondition).
    let svc = &env.s.aktensystem("epa-as-1").unwrap().services;
    let logged: Vec<_> = svc
        .audit
        .events(MARIA)
        .into_iter()
        .filter(|e| e.source == "CONMGMT")
        .collect();
    assert_eq!(logged.len(), 5);
    assert!(
        logged
            .iter()
            .all(|e| e.operation == "setDenyPolicyAssignment")
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_comes_first() {
    let mut env = Env::start().await;
    let mut limited = env.login(MARIA, None).await;
    let (s, b) = limited.json(&get("")).await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (403, Some("unregisteredDevice"))
    );
    let mut ch = env.full_session(MARIA).await;
    let (s, b) = ch
        .json(
            &Request::get(PATH)
                .header("x-useragent", UA)
                .header("x-insurantid", "A526018157"),
        )
        .await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("notEntitled")));
    let (s, b) = ch.json(&Request::get(PATH).header("x-useragent", UA)).await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (400, Some("malformedRequest"))
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_a_seeded_report() {
    let mut env = Env::start().await;
    let svc = std::sync::Arc::clone(&env.s.aktensystem("epa-as-1").unwrap().services);
    let report = svc
        .documents
        .current_documents(MARIA)
        .into_iter()
        .find(|d| d.category == "reports")
        .expect("Maria's seed has a report");
    let root = report.entry.root_document_id().unwrap().to_owned();
    let mut ch = env.full_session(MARIA).await;
    let body = json!({"for": "document", "parameters": {"rootDocumentId": root}});
    let (s, b) = ch.json(&post(&body)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["parameters"]["rootDocumentId"], root.as_str());
    let id = b["assignmentId"].as_str().unwrap().to_owned();
    let (s, b) = ch.json(&post(&body)).await;
    assert_eq!((s, b["errorCode"].as_str()), (409, Some("requestMismatch")));
    let hidden = svc.constraints.hidden_for_institutions(MARIA);
    assert!(hidden.hides(Some("reports"), &root, &[]));
    let (_, b) = ch.json(&get("?for=document")).await;
    assert_eq!(b["query"]["totalMatching"], 1);
    assert_eq!(ch.send(&delete(&id)).await.status, 204);
    assert!(svc.constraints.hidden_for_institutions(MARIA).is_empty());
    env.s.shutdown().await;
}

const PAUL: &str = "B908301668";

/// Paul's record (TK, epa-as-2) holds a vaccination document (uniform category), a medication
/// plan (emp) and a Mutterpass in the dynamic folder "Schwangerschaft 2024".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_documents_and_folders_of_the_seed() {
    let mut env = Env::start().await;
    let svc = std::sync::Arc::clone(&env.s.aktensystem("epa-as-2").unwrap().services);
    let root_of = |title: &str| {
        svc.documents
            .current_documents(PAUL)
            .into_iter()
            .find(|d| d.entry.title.as_deref() == Some(title))
            .and_then(|d| d.entry.root_document_id().map(str::to_owned))
            .unwrap()
    };
    let (vaccination, emp, maternity) = (
        root_of("Impfausweis"),
        root_of("Medikationsplan"),
        root_of("Mutterpass"),
    );
    let folder = epa_sandbox::xds::dynamic_folder_uuid("epa-as-2", PAUL, "Schwangerschaft 2024");
    assert!(svc.documents.dynamic_folder_exists(PAUL, &folder));
    let mut ch = env.full_session(PAUL).await;
    let post = |body: &Value| {
        Request::post(PATH, "application/json", body.to_string())
            .header("x-useragent", UA)
            .header("x-insurantid", PAUL)
    };
    let doc = |root: &str| json!({"for": "document", "parameters": {"rootDocumentId": root}});
    let folder_body = json!({"for": "folder", "parameters": {"folderUUID": folder}});
    let table = [
        (doc(&vaccination), 409, Some("requestMismatch")),
        (doc(&emp), 403, Some("invalidResource")),
        (doc(&maternity), 409, Some("requestMismatch")),
        (folder_body.clone(), 201, None),
        (folder_body, 409, Some("requestMismatch")),
        (
            json!({"for": "folder", "parameters": {"folderUUID": "urn:uuid:00000000-0000-4000-8000-000000000000"}}),
            404,
            Some("noResource"),
        ),
    ];
    for (body, status, code) in table {
        let (s, b) = ch.json(&post(&body)).await;
        assert_eq!((s, b["errorCode"].as_str()), (status, code), "{body}: {b}");
    }
    let hidden = svc.constraints.hidden_for_institutions(PAUL);
    assert!(hidden.hides(None, "some other root", &[folder.as_str()]));
    assert!(!hidden.hides(None, &vaccination, &[]));
    env.s.shutdown().await;
}
