//! I_Audit_Event v1.0.1 / I_Audit_Event_Render v1.1.1 over the VAU channel: FHIR search with
//! paging, links and filters, single read, OperationOutcome errors, the PDF rendering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use epa_protocol::http::Request;
use epa_sandbox::audit::{AuditAction, AuditActor, AuditOutcome, NewAuditEvent, date_range};
use serde_json::Value;
use support::{Env, MARIA, UA};

/// Lena's record (epa-as-1) has no seeded documents, so its log holds only what a test writes.
const LENA: &str = "A526018157";

const BASE: &str = "/epa/audit/api/v1/fhir/AuditEvent";

fn at(s: &str) -> u64 {
    date_range(s).unwrap().0 as u64
}

fn get(path: &str) -> Request {
    Request::get(path)
        .header("x-useragent", UA)
        .header("x-insurantid", LENA)
}

/// 30 events for Maria: one a day from 2025-01-01 12:00Z, alternating actors and actions.
fn seed_events(env: &Env) -> Vec<String> {
    let svc = &env.s.aktensystem("epa-as-1").unwrap().services;
    (0..30u64)
        .map(|i| {
            let practice = i % 3 == 0;
            svc.audit.record(
                at("2025-01-01T12:00:00Z") + i * 86_400,
                NewAuditEvent {
                    record: LENA.into(),
                    action: [
                        AuditAction::Create,
                        AuditAction::Read,
                        AuditAction::Update,
                        AuditAction::Delete,
                        AuditAction::Execute,
                    ][(i % 5) as usize],
                    outcome: if i == 7 {
                        AuditOutcome::MinorFailure
                    } else {
                        AuditOutcome::Success
                    },
                    source: if practice { "XDSSVC" } else { "DEVICEMGMT" },
                    kind: if practice { "document" } else { "rest" },
                    operation: if practice {
                        "RetrieveDocumentSet"
                    } else {
                        "registerDevice"
                    },
                    entity_name: if practice {
                        format!("Arztbrief{i:02}")
                    } else {
                        "Device Management".into()
                    },
                    entity_detail: practice
                        .then(|| "DocumentFormatCode=urn:gematik:ig:Arztbrief:r3.1".into()),
                    actor: if practice {
                        AuditActor {
                            id: "1-883110000092404".into(),
                            name: "Praxis Dr. John Doe".into(),
                            oid: "1.2.276.0.76.4.50".into(),
                        }
                    } else {
                        AuditActor {
                            id: LENA.into(),
                            name: "Lena Muster".into(),
                            oid: "1.2.276.0.76.4.49".into(),
                        }
                    },
                },
            )
        })
        .collect()
}

fn link(bundle: &Value, rel: &str) -> Option<String> {
    bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == rel)
        .map(|l| l["url"].as_str().unwrap().to_owned())
}

fn offset_of(url: &str) -> usize {
    support::query_param(url, "_offset")
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_with_bundle_links() {
    let mut env = Env::start().await;
    let ids = seed_events(&env);
    let mut ch = env.full_session(LENA).await;

    // Default page: 25 newest first, no total (`_total` defaults to none).
    let r = ch.send(&get(BASE)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    let b: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    assert!(b.get("total").is_none());
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 25);
    assert_eq!(entries[0]["resource"]["id"], ids[29].as_str());
    assert_eq!(entries[0]["search"]["mode"], "match");
    assert!(
        entries[0]["fullUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{BASE}/{}", ids[29]))
    );
    assert!(link(&b, "previous").is_none());
    assert_eq!(offset_of(&link(&b, "next").unwrap()), 25);
    assert_eq!(offset_of(&link(&b, "last").unwrap()), 25);

    // A middle page with all five links, and the filters carried along.
    let r = ch
        .send(&get(&format!(
            "{BASE}?action=C,R,U,D,E&_count=10&_offset=10&_total=accurate"
        )))
        .await;
    let b: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(b["total"], 30);
    assert_eq!(b["entry"].as_array().unwrap().len(), 10);
    assert_eq!(b["entry"][0]["resource"]["id"], ids[19].as_str());
    for (rel, off) in [
        ("self", 10),
        ("first", 0),
        ("previous", 0),
        ("next", 20),
        ("last", 20),
    ] {
        let url = link(&b, rel).unwrap_or_else(|| panic!("no {rel} link"));
        assert_eq!(offset_of(&url), off, "{rel}");
        assert_eq!(support::query_param(&url, "_count").unwrap(), "10");
        assert_eq!(support::query_param(&url, "action").unwrap(), "C,R,U,D,E");
        assert!(url.starts_with("https://"), "{url}");
    }
    // The last page; following `next` from it is impossible.
    let r = ch.send(&get(&format!("{BASE}?_count=10&_offset=20"))).await;
    let b: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(b["entry"].as_array().unwrap().len(), 10);
    assert!(link(&b, "next").is_none());
    // Only the total.
    let r = ch
        .send(&get(&format!("{BASE}?_count=0&_total=accurate")))
        .await;
    let b: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(b["total"], 30);
    assert!(b["entry"].as_array().unwrap().is_empty());
    // Reading one's own log is not itself logged (postcondition: representatives only).
    assert_eq!(
        env.s
            .aktensystem("epa-as-1")
            .unwrap()
            .services
            .audit
            .events(LENA)
            .len(),
        30
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_and_date_prefixes() {
    let mut env = Env::start().await;
    let ids = seed_events(&env);
    let mut ch = env.full_session(LENA).await;
    // Events i = 0..29 are recorded on 2025-01-(01+i) 12:00Z (i ≥ 31 would wrap; none do).
    let id7 = ids[7].clone();
    let table: Vec<(String, usize)> = vec![
        ("date=2025-01-05".into(), 1),
        ("date=eq2025-01-05".into(), 1),
        ("date=ne2025-01-05".into(), 29),
        ("date=gt2025-01-05".into(), 25),
        ("date=sa2025-01-05".into(), 25),
        ("date=ge2025-01-05".into(), 26),
        ("date=lt2025-01-05".into(), 4),
        ("date=eb2025-01-05".into(), 4),
        ("date=le2025-01-05".into(), 5),
        ("date=2025-01".into(), 30),
        ("date=2025-02".into(), 0),
        ("date=2025".into(), 30),
        (
            "date=ge2025-01-05T12:00:00Z&date=lt2025-01-07T12:00:00Z".into(),
            2,
        ),
        ("date=gt2025-01-05T13:00:00%2B01:00".into(), 25),
        ("date=2025-01-05T12:00Z".into(), 1),
        ("date=2025-01-03,2025-01-09".into(), 2),
        ("_lastUpdated=lt2025-01-03".into(), 2),
        ("action=C".into(), 6),
        ("action=C,D".into(), 12),
        ("outcome=4".into(), 1),
        ("outcome=0".into(), 29),
        ("type=document".into(), 10),
        (
            "type=http://terminology.hl7.org/CodeSystem/audit-event-type|rest".into(),
            20,
        ),
        ("type=other-system|rest".into(), 0),
        ("entity-name=arztbrief".into(), 10),
        ("entity-name=Arztbrief0".into(), 4),
        ("entity-name:exact=Arztbrief03".into(), 1),
        ("entity-name:exact=arztbrief03".into(), 0),
        ("entity-name:contains=brief2".into(), 3),
        ("altid=1-883110000092404".into(), 10),
        (format!("altid={LENA}"), 20),
        (format!("altid={LENA}&type=document"), 0),
        (format!("_id={id7}"), 1),
        (format!("_id={id7},{}", ids[8]), 2),
        ("action=".into(), 30),
    ];
    for (q, n) in table {
        let r = ch
            .send(&get(&format!("{BASE}?{q}&_count=50&_total=accurate")))
            .await;
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, 200, "{q}: {b}");
        assert_eq!(b["total"], n, "{q}");
        assert_eq!(b["entry"].as_array().unwrap().len(), n, "{q}");
    }
    env.s.shutdown().await;
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn issue_code(b: &Value) -> &str {
    b["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_operation_outcomes_or_epa_errors() {
    let mut env = Env::start().await;
    let ids = seed_events(&env);
    let mut ch = env.full_session(LENA).await;
    let table = [
        (format!("{BASE}?foo=1"), 400, "MSG_PARAM_UNKNOWN"),
        (format!("{BASE}?_sort=date"), 400, "MSG_PARAM_UNKNOWN"),
        (format!("{BASE}?_count=abc"), 400, "MSG_BAD_SYNTAX"),
        (format!("{BASE}?_count=-1"), 400, "MSG_BAD_SYNTAX"),
        (format!("{BASE}?_count=5&_count=6"), 400, "MSG_BAD_SYNTAX"),
        (format!("{BASE}?_total=all"), 400, "MSG_BAD_SYNTAX"),
        (
            format!("{BASE}?date=gt2025-15-01T00:00:00Z"),
            400,
            "MSG_BAD_SYNTAX",
        ),
        (
            format!("{BASE}?date=2025-01-05T10:00:00"),
            400,
            "MSG_BAD_SYNTAX",
        ),
        (
            format!("{BASE}?entity-name:fuzzy=x"),
            400,
            "MSG_PARAM_MODIFIER_INVALID",
        ),
        (
            format!("{BASE}?action:not=C"),
            400,
            "MSG_PARAM_MODIFIER_INVALID",
        ),
        (
            format!("{BASE}/6a0b7e1c-0000-4000-8000-000000000000"),
            404,
            "MSG_RESOURCE_ID_FAIL",
        ),
        (format!("{BASE}/not-a-uuid"), 400, "MSG_BAD_FORMAT"),
        (
            "/epa/audit/api/v1/fhir/Patient".to_owned(),
            404,
            "MSG_UNKNOWN_TYPE",
        ),
    ];
    for (path, status, code) in table {
        let r = ch.send(&get(&path)).await;
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(r.status, status, "{path}: {b}");
        assert_eq!(b["resourceType"], "OperationOutcome", "{path}");
        assert_eq!(issue_code(&b), code, "{path}");
        assert_eq!(b["issue"][0]["severity"], "error");
    }
    // The guard's errors are ePA ErrorType bodies.
    let (s, b) = ch.json(&Request::get(BASE).header("x-useragent", UA)).await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (400, Some("malformedRequest"))
    );
    let (s, b) = ch
        .json(
            &Request::get(BASE)
                .header("x-useragent", UA)
                .header("x-insurantid", MARIA),
        )
        .await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("notEntitled")));
    let mut limited = env.login(LENA, None).await;
    let (s, b) = limited.json(&get(&format!("{BASE}/{}", ids[0]))).await;
    assert_eq!(
        (s, b["errorCode"].as_str()),
        (403, Some("unregisteredDevice"))
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_event_has_the_profile_essentials() {
    let mut env = Env::start().await;
    let ids = seed_events(&env);
    let mut ch = env.full_session(LENA).await;
    let r = ch.send(&get(&format!("{BASE}/{}", ids[3]))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    let e: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(e["resourceType"], "AuditEvent");
    assert_eq!(e["id"], ids[3].as_str());
    assert_eq!(
        e["meta"]["profile"][0],
        "https://gematik.de/fhir/epa/StructureDefinition/audit-event|1.0"
    );
    assert_eq!(e["type"]["code"], "document");
    assert_eq!(e["action"], "D");
    assert_eq!(e["outcome"], "0");
    assert_eq!(e["recorded"], "2025-01-04T12:00:00Z");
    let agent = &e["agent"][0];
    assert_eq!(
        agent["who"]["identifier"]["system"],
        "https://gematik.de/fhir/sid/telematik-id"
    );
    assert_eq!(agent["who"]["identifier"]["value"], "1-883110000092404");
    assert_eq!(agent["altId"], "1-883110000092404");
    assert_eq!(agent["name"], "Praxis Dr. John Doe");
    assert_eq!(agent["type"]["coding"][0]["code"], "PROV");
    assert_eq!(agent["requestor"], false);
    assert_eq!(
        e["source"]["observer"]["display"],
        "Elektronische Patientenakte Fachdienst"
    );
    assert_eq!(e["source"]["type"]["code"], "XDSSVC");
    assert_eq!(e["source"]["type"]["display"], "XDS Document Service");
    assert_eq!(e["entity"][0]["name"], "Arztbrief03");
    assert_eq!(e["entity"][0]["description"], "RetrieveDocumentSet");
    assert_eq!(e["entity"][0]["detail"][0]["type"], "DocumentFormatCode");
    assert_eq!(
        e["entity"][0]["detail"][0]["valueString"],
        "urn:gematik:ig:Arztbrief:r3.1"
    );
    // An insurant agent: KVNR identifier, role PAT.
    let (_, e) = ch.json(&get(&format!("{BASE}/{}", ids[1]))).await;
    assert_eq!(
        e["agent"][0]["who"]["identifier"]["system"],
        "http://fhir.de/sid/gkv/kvid-10"
    );
    assert_eq!(e["agent"][0]["who"]["identifier"]["value"], LENA);
    assert_eq!(e["agent"][0]["type"]["coding"][0]["code"], "PAT");
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_older_than_three_years_are_gone() {
    let mut env = Env::start().await;
    let svc = std::sync::Arc::clone(&env.s.aktensystem("epa-as-1").unwrap().services);
    let now = env.s.clock.now_unix();
    let old = NewAuditEvent {
        record: LENA.into(),
        action: AuditAction::Read,
        outcome: AuditOutcome::Success,
        source: "XDSSVC",
        kind: "document",
        operation: "RetrieveDocumentSet",
        entity_name: "alt".into(),
        entity_detail: None,
        actor: AuditActor {
            id: LENA.into(),
            name: "Lena Muster".into(),
            oid: "1.2.276.0.76.4.49".into(),
        },
    };
    svc.audit.record(now - 3 * 366 * 86_400, old.clone());
    svc.audit.record(
        now - 86_400,
        NewAuditEvent {
            entity_name: "neu".into(),
            ..old
        },
    );
    let mut ch = env.full_session(LENA).await;
    let (s, b) = ch.json(&get(&format!("{BASE}?_total=accurate"))).await;
    assert_eq!(s, 200);
    assert_eq!(b["total"], 1);
    assert_eq!(b["entry"][0]["resource"]["entity"][0]["name"], "neu");
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_renders_as_pdf() {
    let mut env = Env::start().await;
    seed_events(&env);
    let mut ch = env.full_session(LENA).await;
    for q in ["", "?signed=false", "?signed=true"] {
        let r = ch.send(&get(&format!("/epa/audit/render/v1/pdf{q}"))).await;
        assert_eq!(r.status, 200, "{q}");
        assert_eq!(r.header("content-type"), Some("application/pdf"));
        assert!(r.body.starts_with(b"%PDF-1.4\n"));
        assert!(r.body.ends_with(b"%%EOF\n"));
        let body = &r.body;
        assert!(
            find(
                body,
                b"(Protokoll der elektronischen Patientenakte von Lena Muster \\(A526018157\\)) Tj"
            )
            .is_some()
        );
        assert!(find(body, b"Arztbrief27").is_some());
        // The xref table points at the objects.
        let sx = find(body, b"startxref\n").unwrap() + 10;
        let end = sx + body[sx..].iter().position(|b| *b == b'\n').unwrap();
        let xref_at: usize = std::str::from_utf8(&body[sx..end])
            .unwrap()
            .parse()
            .unwrap();
        assert!(body[xref_at..].starts_with(b"xref\n"));
        let entry = xref_at + find(&body[xref_at..], b" 65535 f \n").unwrap() + 10;
        let off: usize = std::str::from_utf8(&body[entry..entry + 10])
            .unwrap()
            .parse()
            .unwrap();
        assert!(body[off..].starts_with(b"1 0 obj"));
    }
    for q in ["?signed=yes", "?signed=true&signed=false", "?other=1"] {
        let (s, b) = ch.json(&get(&format!("/epa/audit/render/v1/pdf{q}"))).await;
        assert_eq!(
            (s, b["errorCode"].as_str()),
            (400, Some("malformedRequest")),
            "{q}"
        );
    }
    env.s.shutdown().await;
}
