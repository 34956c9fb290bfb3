//! The IDPs and the virtual ident app over HTTPS, as the FdV, the phone and the Authorization
//! Service use them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use epa_sandbox::clock::Clock;
use epa_sandbox::idp::{
    IdClaims, IdpError, Idps, PROFESSION_VERSICHERTER, ParRequest, REDIRECT_URI, form_encode,
    parse_form, s256,
};
use epa_sandbox::seed::Seed;
use epa_sandbox::tls::{self, SandboxCa};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const CLIENT: &str = "https://epa-as-1.sandbox.local/epa/authz";
const MARIA: &str = "X110411675";
const MARIA_CODE: &str = "428193";

struct Portal {
    base: String,
    idps: Arc<Idps>,
    clock: Arc<Clock>,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
    _ca_dir: tempfile::TempDir,
}

impl Portal {
    async fn start() -> Self {
        let ca_dir = tempfile::tempdir().unwrap();
        let ca = SandboxCa::load_or_create(ca_dir.path()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("https://{addr}");
        let clock = Arc::new(Clock::default());
        let idps = Idps::new(&base, &Seed::default_seed().unwrap(), Arc::clone(&clock));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(tls::serve_tls(
            listener,
            ca.server_config(&[]).unwrap(),
            idps.router(),
            async move {
                let _ = stopped.await;
            },
        ));
        tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()])
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base,
            idps,
            clock,
            http,
            _stop: stop,
            _ca_dir: ca_dir,
        }
    }

    fn issuer(&self, slug: &str) -> String {
        format!("{}/idp/{slug}", self.base)
    }

    async fn post_form(&self, url: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(pairs))
            .send()
            .await
            .unwrap()
    }

    /// PAR over HTTP, as the reference IDP's relying parties do it.
    async fn par(&self, slug: &str, verifier: &str) -> (StatusCode, Value) {
        let challenge = s256(verifier);
        let r = self
            .post_form(
                &format!("{}/PAR_Auth", self.issuer(slug)),
                &[
                    ("client_id", CLIENT),
                    ("state", "opaque+state/ä"),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"),
                    ("response_type", "code"),
                    ("nonce", "nonce-1"),
                    ("scope", "openid urn:telematik:versicherter"),
                    ("acr_values", "gematik-ehealth-loa-high"),
                    ("claims", "{}"),
                ],
            )
            .await;
        (r.status(), r.json().await.unwrap())
    }

    async fn ident_approve(&self, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/approve", self.idps.ident_app_url()))
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// The phone: `POST {ident_app}/approve`.
    async fn phone(&self, url: &str, kvnr: &str, code: &str) -> (StatusCode, Value) {
        self.ident_approve(&json!({
            "authorization_url": url,
            "kvnr": kvnr,
            "gesundheitsid_code": code,
        }))
        .await
    }

    async fn status(&self, slug: &str, request_uri: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!(
                "{}/auth/status?{}",
                self.issuer(slug),
                form_encode(&[("request_uri", request_uri)])
            ))
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }
}

fn verifier() -> String {
    "verifier-0123456789-abcdefghijklmnopqrstuvwxyz".into()
}

fn par_request(verifier: &str) -> ParRequest {
    ParRequest {
        client_id: CLIENT.into(),
        state: "s1".into(),
        redirect_uri: REDIRECT_URI.into(),
        code_challenge: s256(verifier),
        code_challenge_method: "S256".into(),
        response_type: "code".into(),
        nonce: "n1".into(),
        scope: "openid urn:telematik:versicherter".into(),
        acr_values: "gematik-ehealth-loa-high".into(),
        amr: None,
    }
}

fn query_of(redirect: &str) -> std::collections::HashMap<String, String> {
    let (base, query) = redirect.split_once('?').unwrap();
    assert_eq!(base, REDIRECT_URI);
    parse_form(query).unwrap()
}

fn maria() -> IdClaims {
    IdClaims {
        kvnr: MARIA.into(),
        profession_oid: PROFESSION_VERSICHERTER.into(),
        given_name: "Maria".into(),
        family_name: "Muster".into(),
        display_name: "Maria Muster".into(),
        amr: "urn:telematik:auth:other".into(),
    }
}

#[tokio::test]
async fn cross_device_flow_over_https() {
    let p = Portal::start().await;
    let v = verifier();
    let (status, par) = p.par("aok-plus", &v).await;
    assert_eq!(status, StatusCode::CREATED, "{par}");
    assert_eq!(par["expires_in"], 90);
    let request_uri = par["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with(&format!("urn:{CLIENT}:")));

    // The FdV opens the authorization URL in the browser.
    let issuer = p.issuer("aok-plus");
    let url = p.idps.authorization_url(&issuer, CLIENT, &request_uri);
    let page = p.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"de\""));
    assert!(html.contains("AOK PLUS"));
    // The QR payload is the authorization URL (HTML-escaped `&`).
    let escaped_url = url.replace('&', "&amp;");
    assert!(
        html.contains(&format!("data-qr-payload=\"{escaped_url}\"")),
        "{html}"
    );
    assert!(html.contains(&format!("<pre id=\"qr-payload\">{escaped_url}</pre>")));
    assert!(html.contains("<svg"), "the page shows a QR code");
    // The polling script and the same-device form.
    assert!(html.contains("/idp/aok-plus/auth/status?request_uri="));
    assert!(html.contains("setTimeout(poll, 1000)"));
    assert!(html.contains("window.location.href = s.redirect_uri"));
    assert!(html.contains("action=\"/idp/aok-plus/auth/approve\""));
    assert!(html.contains("name=\"gesundheitsid_code\""));

    let (s, body) = p.status("aok-plus", &request_uri).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"approved": false, "redirect_uri": null}));

    // The phone scans the QR code and approves — with a typo first.
    let (s, body) = p.phone(&url, MARIA, "111111").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["errorCode"], "wrongCode");
    let (s, body) = p.phone(&url, MARIA, MARIA_CODE).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let redirect = body["redirect_uri"].as_str().unwrap().to_owned();
    let q = query_of(&redirect);
    assert_eq!(q["state"], "opaque+state/ä");

    // The desktop page's poll sees it.
    let (s, body) = p.status("aok-plus", &request_uri).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"approved": true, "redirect_uri": redirect}));

    // The Authorization Service redeems the code at the token endpoint.
    let token_url = format!("{issuer}/token");
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("code_verifier", v.as_str()),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT_URI),
    ];
    let r = p.post_form(&token_url, &redeem).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert!(tokens["access_token"].as_str().unwrap().len() >= 43);
    let id: Value = serde_json::from_str(tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id["iss"], issuer);
    assert_eq!(id["aud"], CLIENT);
    assert_eq!(id["nonce"], "nonce-1");
    assert_eq!(id["acr"], "gematik-ehealth-loa-high");
    assert_eq!(id["amr"], json!(["urn:telematik:auth:other"]));
    assert_eq!(id["urn:telematik:claims:id"], MARIA);
    assert_eq!(
        id["urn:telematik:claims:profession"],
        PROFESSION_VERSICHERTER
    );
    assert_eq!(id["urn:telematik:claims:display_name"], "Maria Muster");

    // One-time.
    let r = p.post_form(&token_url, &redeem).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // Approving the same request again: it is used up.
    let (s, body) = p.phone(&url, MARIA, MARIA_CODE).await;
    assert_eq!(
        (s, body["errorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknownRequest"))
    );
}

#[tokio::test]
async fn api_flow_and_code_expiry() {
    let p = Portal::start().await;
    let issuer = p.issuer("aok-plus");
    let v = verifier();
    let start = || {
        let r = p.idps.par(&issuer, par_request(&v)).unwrap();
        p.idps.authorization_url(&issuer, CLIENT, &r.request_uri)
    };
    let redirect = p.idps.approve(&start(), MARIA, MARIA_CODE).unwrap();
    let q = query_of(&redirect);
    assert_eq!(q["state"], "s1");
    assert_eq!(
        p.idps
            .redeem(&issuer, &q["code"], &v, CLIENT, REDIRECT_URI)
            .unwrap(),
        maria()
    );
    assert!(matches!(
        p.idps.redeem(&issuer, &q["code"], &v, CLIENT, REDIRECT_URI),
        Err(IdpError::CodeInvalid)
    ));

    // Expired after 60 s.
    let q = query_of(&p.idps.approve(&start(), MARIA, MARIA_CODE).unwrap());
    p.clock.advance(61);
    assert!(matches!(
        p.idps.redeem(&issuer, &q["code"], &v, CLIENT, REDIRECT_URI),
        Err(IdpError::CodeInvalid)
    ));

    // PKCE mismatch, over HTTP too.
    let q = query_of(&p.idps.approve(&start(), MARIA, MARIA_CODE).unwrap());
    let wrong = "another-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let r = p
        .post_form(
            &format!("{issuer}/token"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("code_verifier", wrong),
                ("client_id", CLIENT),
                ("redirect_uri", REDIRECT_URI),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // … and the code is gone.
    assert!(
        p.idps
            .redeem(&issuer, &q["code"], &v, CLIENT, REDIRECT_URI)
            .is_err()
    );
}

#[tokio::test]
async fn par_errors_over_http() {
    let p = Portal::start().await;
    let (s, body) = p.par("nowhere", &verifier()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    let url = format!("{}/PAR_Auth", p.issuer("tk"));
    let challenge = s256(&verifier());
    let good: Vec<(&str, &str)> = vec![
        ("client_id", CLIENT),
        ("state", "s"),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("response_type", "code"),
        ("nonce", "n"),
        ("scope", "openid urn:telematik:versicherter"),
        ("acr_values", "gematik-ehealth-loa-high"),
    ];
    assert_eq!(p.post_form(&url, &good).await.status(), StatusCode::CREATED);
    for (i, (name, _)) in good.iter().enumerate() {
        let mut missing = good.clone();
        missing.remove(i);
        let r = p.post_form(&url, &missing).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"].as_str().unwrap().contains(name),
            "{body}"
        );
    }
    let mut plain = good.clone();
    plain[4] = ("code_challenge_method", "plain");
    let r = p.post_form(&url, &plain).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Repeated parameters are refused (RFC 6749 §3.1).
    let mut twice = good.clone();
    twice.push(("state", "t"));
    assert_eq!(
        p.post_form(&url, &twice).await.status(),
        StatusCode::BAD_REQUEST
    );
    // Broken percent escapes.
    let r = p
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=%zz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = p
        .post_form(
            &format!("{}/token", p.issuer("tk")),
            &[("grant_type", "password"), ("code", "x")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn ident_app_errors() {
    let p = Portal::start().await;
    let issuer = p.issuer("aok-plus");
    let r = p.idps.par(&issuer, par_request(&verifier())).unwrap();
    let url = p.idps.authorization_url(&issuer, CLIENT, &r.request_uri);

    // Jonas Beispiel is insured with AOK Bayern.
    let (s, body) = p.phone(&url, "M432109873", "905172").await;
    assert_eq!(
        (s, body["errorCode"].as_str()),
        (StatusCode::FORBIDDEN, Some("unknownInsurant"))
    );

    let (s, body) = p
        .ident_approve(&json!({"authorization_url": url, "kvnr": MARIA}))
        .await;
    assert_eq!(
        (s, body["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformedRequest"))
    );
    let (s, body) = p.phone("https://example.invalid/", MARIA, MARIA_CODE).await;
    assert_eq!(
        (s, body["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformedRequest"))
    );
    let raw = p
        .http
        .post(format!("{}/approve", p.idps.ident_app_url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["errorCode"],
        "malformedRequest"
    );

    // Five wrong codes kill the request.
    for _ in 0..5 {
        let (s, body) = p.phone(&url, MARIA, "000000").await;
        assert_eq!(
            (s, body["errorCode"].as_str()),
            (StatusCode::FORBIDDEN, Some("wrongCode"))
        );
    }
    let (s, body) = p.phone(&url, MARIA, MARIA_CODE).await;
    assert_eq!(
        (s, body["errorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknownRequest"))
    );
    let (s, body) = p.status("aok-plus", &r.request_uri).await;
    assert_eq!(
        (s, body["errorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknownRequest"))
    );

    // Expired request_uri (never opened): 90 s.
    let r = p.idps.par(&issuer, par_request(&verifier())).unwrap();
    let url = p.idps.authorization_url(&issuer, CLIENT, &r.request_uri);
    p.clock.advance(91);
    let (s, _) = p.phone(&url, MARIA, MARIA_CODE).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let page = p.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("abgelaufen"));
}

#[tokio::test]
async fn opening_the_page_gives_ten_minutes_to_scan() {
    let p = Portal::start().await;
    let issuer = p.issuer("barmer");
    let r = p.idps.par(&issuer, par_request(&verifier())).unwrap();
    let url = p.idps.authorization_url(&issuer, CLIENT, &r.request_uri);
    p.clock.advance(60);
    assert_eq!(
        p.http.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    p.clock.advance(9 * 60);
    // Ida Test is insured with BARMER.
    let redirect = p.idps.approve(&url, "C131860918", "260947").unwrap();
    let q = query_of(&redirect);
    let claims = p
        .idps
        .redeem(&issuer, &q["code"], &verifier(), CLIENT, REDIRECT_URI)
        .unwrap();
    assert_eq!(claims.kvnr, "C131860918");
    assert_eq!(claims.display_name, "Ida Test");
}

#[tokio::test]
async fn same_device_form_redirects_to_the_app() {
    let p = Portal::start().await;
    let issuer = p.issuer("aok-plus");
    let r = p.idps.par(&issuer, par_request(&verifier())).unwrap();
    let url = format!("{issuer}/auth/approve");
    let form = |code: &'static str| {
        let pairs = [
            ("client_id", CLIENT),
            ("request_uri", r.request_uri.as_str()),
            ("kvnr", MARIA),
            ("gesundheitsid_code", code),
        ];
        p.http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&pairs))
            .send()
    };

    let wrong = form("123123").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("GesundheitsID-Code ist falsch"), "{html}");
    assert!(html.contains("id=\"same-device\""));

    let ok = form(MARIA_CODE).await.unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let location = ok.headers()["location"].to_str().unwrap().to_owned();
    let q = query_of(&location);
    assert_eq!(q["state"], "s1");
    assert_eq!(
        p.idps
            .redeem(&issuer, &q["code"], &verifier(), CLIENT, REDIRECT_URI)
            .unwrap(),
        maria()
    );
}

#[tokio::test]
async fn ident_page_for_humans() {
    let p = Portal::start().await;
    let page = p.http.get(p.idps.ident_app_url()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("GesundheitsID-App"));
    assert!(html.contains("name=\"authorization_url\""));
    assert!(html.contains("action=\"/ident\""));

    let issuer = p.issuer("aok-plus");
    let r = p.idps.par(&issuer, par_request(&verifier())).unwrap();
    let url = p.idps.authorization_url(&issuer, CLIENT, &r.request_uri);
    let prefilled = p
        .http
        .get(format!(
            "{}?{}",
            p.idps.ident_app_url(),
            form_encode(&[("authorization_url", &url)])
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(prefilled.contains(&url.replace('&', "&amp;")));

    let ident = p.idps.ident_app_url();
    let submit = |code: &'static str| {
        let pairs = [
            ("authorization_url", url.as_str()),
            ("kvnr", MARIA),
            ("gesundheitsid_code", code),
        ];
        p.http
            .post(&ident)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&pairs))
            .send()
    };
    let wrong = submit("000001").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(wrong.text().await.unwrap().contains("falsch"));
    let ok = submit(MARIA_CODE).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let html = ok.text().await.unwrap();
    assert!(html.contains("Anmeldung freigegeben"));
    assert!(html.contains("epa-desktop://auth/callback?code="));
    let (_, status) = p.status("aok-plus", &r.request_uri).await;
    assert_eq!(status["approved"], true);
}
