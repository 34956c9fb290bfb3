#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::seed::Seed;

const BASE: &str = "https://127.0.0.1:4431";
const PLUS: &str = "https://127.0.0.1:4431/idp/aok-plus";
const CLIENT: &str = "https://epa-as-1.sandbox.local/epa/authz";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const MARIA: &str = "X110411675";
const MARIA_CODE: &str = "428193";

fn idps() -> (Arc<Idps>, Arc<Clock>) {
    let clock = Arc::new(Clock::default());
    let seed = Seed::default_seed().unwrap();
    (
        Idps::new(&format!("{BASE}/"), &seed, Arc::clone(&clock)),
        clock,
    )
}

fn par_request() -> ParRequest {
    ParRequest {
        client_id: CLIENT.into(),
        state: "st/ate with spaces&=".into(),
        redirect_uri: REDIRECT_URI.into(),
        code_challenge: CHALLENGE.into(),
        code_challenge_method: "S256".into(),
        response_type: "code".into(),
        nonce: "n-0S6_WzA2Mj".into(),
        scope: "openid urn:telematik:versicherter urn:telematik:display_name".into(),
        acr_values: "gematik-ehealth-loa-high".into(),
        amr: None,
    }
}

fn started(idps: &Idps) -> String {
    let r = idps.par(PLUS, par_request()).unwrap();
    idps.authorization_url(PLUS, CLIENT, &r.request_uri)
}

fn code_of(redirect: &str) -> String {
    let query = redirect.split_once('?').unwrap().1;
    parse_form(query).unwrap()["code"].clone()
}

#[test]
fn issuers_cover_every_seeded_insurer() {
    let (idps, _) = idps();
    let issuers = idps.issuers();
    assert_eq!(issuers.len(), 13);
    assert_eq!(
        issuers.iter().filter(|(n, _)| n.starts_with("AOK")).count(),
        11
    );
    assert!(issuers.contains(&("AOK PLUS".into(), PLUS.into())));
    assert!(issuers.contains(&("BARMER".into(), format!("{BASE}/idp/barmer"))));
    assert_eq!(idps.ident_app_url(), format!("{BASE}/ident"));
}

#[test]
fn par_answers_a_request_uri_bound_to_the_client() {
    let (idps, _) = idps();
    let r = idps.par(PLUS, par_request()).unwrap();
    assert_eq!(r.expires_in, 90);
    let hex = r
        .request_uri
        .strip_prefix(&format!("urn:{CLIENT}:"))
        .unwrap();
    assert_eq!(hex.len(), 32);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let again = idps.par(PLUS, par_request()).unwrap();
    assert_ne!(again.request_uri, r.request_uri);
    assert_eq!(
        idps.authorization_url(PLUS, "a b", "urn:x:1"),
        format!("{PLUS}/auth?client_id=a%20b&request_uri=urn%3Ax%3A1")
    );
}

#[test]
fn par_validation() {
    let (idps, _) = idps();
    assert_eq!(
        idps.par("https://127.0.0.1:4431/idp/nowhere", par_request()),
        Err(IdpError::UnknownIssuer).map(|()| unreachable!())
    );
    type Edit = fn(&mut ParRequest);
    let cases: &[(&str, Edit)] = &[
        ("client_id", |r| r.client_id.clear()),
        ("client_id", |r| r.client_id = "a b".into()),
        ("state", |r| r.state.clear()),
        ("redirect_uri", |r| {
            r.redirect_uri = "https://evil.example/cb".into()
        }),
        ("response_type", |r| r.response_type = "token".into()),
        ("code_challenge_method", |r| {
            r.code_challenge_method = "plain".into()
        }),
        ("code_challenge", |r| r.code_challenge = "a".repeat(44)),
        // 43 characters, but with bits beyond the 32 bytes.
        ("code_challenge", |r| {
            r.code_challenge = format!("{}l", &CHALLENGE[..42])
        }),
        ("code_challenge", |r| {
            r.code_challenge = format!("{}+", &CHALLENGE[..42])
        }),
        ("code_challenge", |r| r.code_challenge.clear()),
        ("nonce", |r| r.nonce.clear()),
        ("openid", |r| r.scope = "urn:telematik:versicherter".into()),
        ("urn:telematik:versicherter", |r| r.scope = "openid".into()),
        ("urn:telematik:versicherter", |r| {
            r.scope = "openid urn:telematik:versicherterX".into()
        }),
        ("acr_values", |r| {
            r.acr_values = "gematik-ehealth-loa-low".into()
        }),
        ("amr", |r| {
            r.amr = Some("urn:telematik:auth:password".into())
        }),
    ];
    for (needle, edit) in cases {
        let mut req = par_request();
        edit(&mut req);
        match idps.par(PLUS, req) {
            Err(IdpError::Malformed(m)) => assert!(m.contains(needle), "{needle}: {m}"),
            other => panic!("{needle}: {other:?}"),
        }
    }
    let mut req = par_request();
    req.amr = Some(AMR_GUEST_EGK.into());
    req.acr_values = "gematik-ehealth-loa-substantial".into();
    assert!(idps.par(PLUS, req).is_ok());
}

#[test]
fn full_flow_yields_the_insurants_claims_once() {
    let (idps, _) = idps();
    let url = started(&idps);
    let redirect = idps.approve(&url, MARIA, MARIA_CODE).unwrap();
    let (base, query) = redirect.split_once('?').unwrap();
    assert_eq!(base, REDIRECT_URI);
    let q = parse_form(query).unwrap();
    assert_eq!(q["state"], "st/ate with spaces&=");
    assert_eq!(q.len(), 2);
    let code = &q["code"];
    assert_eq!(code.len(), 43);

    let claims = idps
        .redeem(PLUS, code, VERIFIER, CLIENT, REDIRECT_URI)
        .unwrap();
    assert_eq!(
        claims,
        IdClaims {
            kvnr: MARIA.into(),
            profession_oid: PROFESSION_VERSICHERTER.into(),
            given_name: "Maria".into(),
            family_name: "Muster".into(),
            display_name: "Maria Muster".into(),
            amr: AMR_OTHER.into(),
        }
    );
    assert_eq!(
        idps.redeem(PLUS, code, VERIFIER, CLIENT, REDIRECT_URI),
        Err(IdpError::CodeInvalid)
    );
    // The request itself is used up.
    assert_eq!(
        idps.approve(&url, MARIA, MARIA_CODE),
        Err(IdpError::UnknownRequest)
    );
}

#[test]
fn the_representative_amr_reaches_the_claims() {
    let (idps, _) = idps();
    let mut req = par_request();
    req.amr = Some(AMR_GUEST_EGK.into());
    let r = idps.par(PLUS, req).unwrap();
    let url = idps.authorization_url(PLUS, CLIENT, &r.request_uri);
    let code = code_of(&idps.approve(&url, MARIA, MARIA_CODE).unwrap());
    let claims = idps
        .redeem(PLUS, &code, VERIFIER, CLIENT, REDIRECT_URI)
        .unwrap();
    assert_eq!(claims.amr, AMR_GUEST_EGK);
}

#[test]
fn the_relying_partys_location_with_state_is_accepted() {
    // The Authorization Service appends `&state=…` to the authorization URL.
    let (idps, _) = idps();
    let url = format!("{}&state=abc", started(&idps));
    assert!(idps.approve(&url, " x110411675 ", MARIA_CODE).is_ok());
    // A host other than the portal base, same path: still this sandbox's IDP.
    let url = started(&idps).replace("127.0.0.1", "localhost");
    assert!(idps.approve(&url, MARIA, MARIA_CODE).is_ok());
}

#[test]
fn redemption_checks_pkce_client_redirect_and_issuer_and_consumes_the_code() {
    let (idps, _) = idps();
    let other_verifier = "a".repeat(43);
    type Attempt<'a> = (&'a str, &'a str, &'a str, &'a str);
    let attempts: [Attempt<'_>; 4] = [
        (PLUS, &other_verifier, CLIENT, REDIRECT_URI),
        (PLUS, VERIFIER, "https://other.example", REDIRECT_URI),
        (PLUS, VERIFIER, CLIENT, "epa-desktop://other"),
        (
            "https://127.0.0.1:4431/idp/aok-bayern",
            VERIFIER,
            CLIENT,
            REDIRECT_URI,
        ),
    ];
    for (issuer, verifier, client, redirect) in attempts {
        let code = code_of(&idps.approve(&started(&idps), MARIA, MARIA_CODE).unwrap());
        assert_eq!(
            idps.redeem(issuer, &code, verifier, client, redirect),
            Err(IdpError::CodeInvalid)
        );
        // One-time even after a failed attempt.
        assert_eq!(
            idps.redeem(PLUS, &code, VERIFIER, CLIENT, REDIRECT_URI),
            Err(IdpError::CodeInvalid)
        );
    }
    assert_eq!(
        idps.redeem(PLUS, "no-such-code", VERIFIER, CLIENT, REDIRECT_URI),
        Err(IdpError::CodeInvalid)
    );
    assert_eq!(
        idps.redeem(
            "https://elsewhere/idp/aok-plus",
            "x",
            VERIFIER,
            CLIENT,
            REDIRECT_URI
        ),
        Err(IdpError::UnknownIssuer)
    );
}

#[test]
fn codes_expire_after_60_seconds() {
    let (idps, clock) = idps();
    let code = code_of(&idps.approve(&started(&idps), MARIA, MARIA_CODE).unwrap());
    clock.advance(61);
    assert_eq!(
        idps.redeem(PLUS, &code, VERIFIER, CLIENT, REDIRECT_URI),
        Err(IdpError::CodeInvalid)
    );
    let code = code_of(&idps.approve(&started(&idps), MARIA, MARIA_CODE).unwrap());
    clock.advance(45);
    assert!(
        idps.redeem(PLUS, &code, VERIFIER, CLIENT, REDIRECT_URI)
            .is_ok()
    );
}

#[test]
fn request_uris_expire_after_90_seconds_unless_the_page_was_opened() {
    let (idps, clock) = idps();
    let url = started(&idps);
    clock.advance(91);
    assert_eq!(
        idps.approve(&url, MARIA, MARIA_CODE),
        Err(IdpError::UnknownRequest)
    );

    // Opened in time: 10 minutes from the first opening.
    let r = idps.par(PLUS, par_request()).unwrap();
    clock.advance(80);
    assert_eq!(
        idps.open("aok-plus", CLIENT, &r.request_uri),
        Ok(AuthStatus {
            approved: false,
            redirect_uri: None
        })
    );
    clock.advance(500);
    // Opening again does not restart the window.
    assert!(idps.open("aok-plus", CLIENT, &r.request_uri).is_ok());
    clock.advance(90);
    let url = idps.authorization_url(PLUS, CLIENT, &r.request_uri);
    assert!(idps.approve(&url, MARIA, MARIA_CODE).is_ok());

    let r = idps.par(PLUS, par_request()).unwrap();
    idps.open("aok-plus", CLIENT, &r.request_uri).unwrap();
    clock.advance(601);
    let url = idps.authorization_url(PLUS, CLIENT, &r.request_uri);
    assert_eq!(
        idps.approve(&url, MARIA, MARIA_CODE),
        Err(IdpError::UnknownRequest)
    );
    assert_eq!(
        idps.open("aok-plus", CLIENT, &r.request_uri),
        Err(IdpError::UnknownRequest)
    );

    // Too late to open.
    let r = idps.par(PLUS, par_request()).unwrap();
    clock.advance(91);
    assert_eq!(
        idps.open("aok-plus", CLIENT, &r.request_uri),
        Err(IdpError::UnknownRequest)
    );
}

#[test]
fn opening_needs_the_matching_issuer_and_client() {
    let (idps, _) = idps();
    let r = idps.par(PLUS, par_request()).unwrap();
    assert_eq!(
        idps.open("aok-bayern", CLIENT, &r.request_uri),
        Err(IdpError::UnknownRequest)
    );
    assert_eq!(
        idps.open("aok-plus", "https://other.example", &r.request_uri),
        Err(IdpError::UnknownRequest)
    );
    let url = idps.authorization_url(
        "https://127.0.0.1:4431/idp/aok-bayern",
        CLIENT,
        &r.request_uri,
    );
    assert_eq!(
        idps.approve(&url, MARIA, MARIA_CODE),
        Err(IdpError::UnknownRequest)
    );
    let url = idps.authorization_url(PLUS, "https://other.example", &r.request_uri);
    assert_eq!(
        idps.approve(&url, MARIA, MARIA_CODE),
        Err(IdpError::UnknownRequest)
    );
}

#[test]
fn status_flips_to_approved() {
    let (idps, _) = idps();
    let r = idps.par(PLUS, par_request()).unwrap();
    let url = idps.authorization_url(PLUS, CLIENT, &r.request_uri);
    let s = idps.status(PLUS, &r.request_uri).unwrap();
    assert!(!s.approved && s.redirect_uri.is_none());
    let redirect = idps.approve(&url, MARIA, MARIA_CODE).unwrap();
    let s = idps.status(PLUS, &r.request_uri).unwrap();
    assert!(s.approved);
    assert_eq!(s.redirect_uri.as_deref(), Some(redirect.as_str()));
    assert_eq!(idps.status(PLUS, "urn:nope"), Err(IdpError::UnknownRequest));
    assert_eq!(
        idps.status("https://127.0.0.1:4431/idp/tk", &r.request_uri),
        Err(IdpError::UnknownRequest)
    );
}

#[test]
fn five_wrong_codes_kill_the_request() {
    let (idps, _) = idps();
    let url = started(&idps);
    for _ in 0..4 {
        assert_eq!(
            idps.approve(&url, MARIA, "000000"),
            Err(IdpError::WrongCode)
        );
    }
    // Insurants of other insurers and malformed input do not count.
    assert_eq!(
        idps.approve(&url, "M432109873", "905172"),
        Err(IdpError::UnknownInsurant)
    );
    assert!(matches!(
        idps.approve(&url, MARIA, "12345"),
        Err(IdpError::Malformed(_))
    ));
    assert!(matches!(
        idps.approve(&url, "X110411676", MARIA_CODE),
        Err(IdpError::Malformed(_))
    ));
    assert!(idps.approve(&url, MARIA, MARIA_CODE).is_ok());

    let url = started(&idps);
    for _ in 0..5 {
        assert_eq!(
            idps.approve(&url, MARIA, "999999"),
            Err(IdpError::WrongCode)
        );
    }
    assert_eq!(
        idps.approve(&url, MARIA, MARIA_CODE),
        Err(IdpError::UnknownRequest)
    );
}

#[test]
fn insurants_of_other_insurers_and_unknown_kvnrs_are_refused() {
    let (idps, _) = idps();
    let url = started(&idps);
    // Jonas Beispiel is with AOK Bayern, Paul Probe with TK.
    assert_eq!(
        idps.approve(&url, "M432109873", "905172"),
        Err(IdpError::UnknownInsurant)
    );
    assert_eq!(
        idps.approve(&url, "B908301668", "771023"),
        Err(IdpError::UnknownInsurant)
    );
    // A valid KVNR that is not seeded.
    let unseeded = epa_protocol::kvnr::with_check_digit('Z', &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    assert_eq!(
        idps.approve(&url, unseeded.as_str(), "123456"),
        Err(IdpError::UnknownInsurant)
    );
    // The other AOK PLUS insurant with her own code works.
    let code = code_of(&idps.approve(&url, "A526018157", "316640").unwrap());
    let claims = idps
        .redeem(PLUS, &code, VERIFIER, CLIENT, REDIRECT_URI)
        .unwrap();
    assert_eq!(claims.display_name, "Lena Muster");
}

#[test]
fn authorization_urls_are_parsed_strictly_enough() {
    let (idps, _) = idps();
    for bad in [
        "",
        "not a url",
        "https://127.0.0.1:4431/idp/aok-plus/auth",
        "https://127.0.0.1:4431/idp/aok-plus/token?client_id=a&request_uri=b",
        "https://127.0.0.1:4431/idp/aok-plus/auth?client_id=a",
        "https://127.0.0.1:4431/idp/aok-plus/auth?request_uri=b",
        "https://127.0.0.1:4431/idp/aok-plus/auth?client_id=a&request_uri=%zz",
    ] {
        assert!(
            matches!(
                idps.approve(bad, MARIA, MARIA_CODE),
                Err(IdpError::Malformed(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        idps.approve(
            "https://127.0.0.1:4431/idp/nowhere/auth?client_id=a&request_uri=b",
            MARIA,
            MARIA_CODE
        ),
        Err(IdpError::UnknownIssuer)
    );
}

#[test]
fn expired_entries_are_purged() {
    let (idps, clock) = idps();
    let url = started(&idps);
    idps.approve(&url, MARIA, MARIA_CODE).unwrap();
    started(&idps);
    clock.advance(700);
    started(&idps);
    let state = idps.state();
    assert_eq!(state.requests.len(), 1);
    assert!(state.codes.is_empty());
}

#[test]
fn pages_escape_what_they_show() {
    let page = pages::AuthPage {
        insurer: "AOK <PLUS>".into(),
        slug: "aok-plus".into(),
        authorization_url: "https://x/auth?client_id=\"><script>&request_uri=u".into(),
        client_id: "\"><script>".into(),
        request_uri: "urn:</script>".into(),
        ident_app_url: "https://x/ident".into(),
        error: Some("<b>".into()),
    }
    .render();
    assert!(!page.contains("<script>&"));
    assert!(!page.contains("\"><script>"));
    assert!(!page.contains("<b>"));
    assert_eq!(page.matches("</script>").count(), 1);
    assert!(page.contains("AOK &lt;PLUS&gt;"));
    assert!(page.contains("/idp/aok-plus/auth/status?request_uri=urn%3A%3C%2Fscript%3E"));
}
