//! The HTML pages (German, like the Kassen's own): the IDP's `/auth` landing page, the ident app
//! page, and error pages. Everything interpolated is escaped ([`html_escape`], [`js_string`]).

use super::IdpError;
use super::codec::{html_escape, js_string, pct_encode};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#1a1a1a}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}\
pre{white-space:pre-wrap;word-break:break-all;background:#f3f3f3;padding:.75rem;border-radius:.3rem}\
label{display:block;margin:.6rem 0}input,textarea{display:block;width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box}\
button{margin-top:.8rem;padding:.5rem 1rem;font-size:1rem}\
.error{color:#a40000;border:1px solid #a40000;padding:.5rem;border-radius:.3rem}\
.ok{color:#14601c;border:1px solid #14601c;padding:.5rem;border-radius:.3rem}\
.note{color:#555;font-size:.9rem}.qr svg{width:16rem;height:16rem}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"de\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        html_escape(title)
    )
}

/// The message a human sees for `e`.
pub fn german(e: &IdpError) -> String {
    match e {
        IdpError::WrongCode => "Der GesundheitsID-Code ist falsch. Nach 5 Fehlversuchen wird die \
                                Anmeldeanfrage ungültig."
            .into(),
        IdpError::UnknownInsurant => {
            "Diese Versichertennummer gehört zu keiner versicherten Person \
                                      dieser Krankenkasse."
                .into()
        }
        IdpError::UnknownRequest => {
            "Die Anmeldeanfrage ist unbekannt, abgelaufen oder wurde bereits \
                                     verwendet. Bitte starten Sie die Anmeldung in der App neu."
                .into()
        }
        IdpError::UnknownIssuer => "Unbekannter Identitätsanbieter.".into(),
        IdpError::Malformed(m) => format!("Ungültige Eingabe ({m})."),
        IdpError::CodeInvalid | IdpError::Internal(_) => format!("Interner Fehler ({e})."),
        IdpError::Unavailable => {
            "Der Identitätsanbieter ist nicht erreichbar. Bitte später erneut versuchen.".into()
        }
    }
}

/// An error page for requests that cannot show the login page.
pub fn error_page(e: &IdpError) -> String {
    document(
        "Anmeldung nicht möglich",
        &format!(
            "<h1>Anmeldung nicht möglich</h1>\n<p class=\"error\" id=\"error\">{}</p>",
            html_escape(&german(e))
        ),
    )
}

/// The QR code of `data` as inline SVG (the `<?xml …?>` prologue cut off); `None` if the payload is
/// too long for a QR code, and the page then shows it as text only.
fn qr_svg(data: &str) -> Option<String> {
    let svg = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        .ok()?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    svg.find("<svg").map(|i| svg[i..].to_owned())
}

/// The IDP's landing page (`GET {issuer}/auth`).
#[derive(Debug, Clone)]
pub struct AuthPage {
    pub insurer: String,
    pub slug: String,
    /// The QR payload.
    pub authorization_url: String,
    pub client_id: String,
    pub request_uri: String,
    pub ident_app_url: String,
    /// Shown above the same-device form (after a failed attempt).
    pub error: Option<String>,
}

impl AuthPage {
    pub fn render(&self) -> String {
        let slug = pct_encode(&self.slug);
        let status_url = format!(
            "/idp/{slug}/auth/status?request_uri={}",
            pct_encode(&self.request_uri)
        );
        let payload = html_escape(&self.authorization_url);
        let qr = match qr_svg(&self.authorization_url) {
            Some(svg) => format!(
                "<div class=\"qr\" id=\"qr\" data-qr-payload=\"{payload}\">{svg}</div>\n\
                 <details><summary>Inhalt des QR-Codes</summary><pre id=\"qr-payload\">{payload}</pre></details>"
            ),
            None => format!(
                "<div class=\"qr\" id=\"qr\" data-qr-payload=\"{payload}\">\n\
                 <p class=\"note\">Diese Sandbox zeigt den Inhalt des QR-Codes als Text. Die \
                 virtuelle GesundheitsID-App (<a href=\"{ident}\">{ident}</a>) nimmt diese Adresse \
                 entgegen.</p>\n<pre id=\"qr-payload\">{payload}</pre>\n</div>",
                ident = html_escape(&self.ident_app_url)
            ),
        };
        let error = self.error.as_deref().map_or_else(String::new, |m| {
            format!("<p class=\"error\" id=\"error\">{}</p>\n", html_escape(m))
        });
        let body = format!(
            r##"<h1>Anmelden mit der GesundheitsID der {insurer}</h1>
<p>Ihre ePA-App möchte Sie mit Ihrer GesundheitsID anmelden.</p>
<h2>Mit dem Smartphone</h2>
<p>Öffnen Sie die GesundheitsID-App Ihrer Krankenkasse, scannen Sie den QR-Code und bestätigen Sie
die Anmeldung mit Ihrem GesundheitsID-Code. Diese Seite erkennt die Bestätigung und leitet Sie
automatisch zur App weiter.</p>
{qr}
<p id="status" role="status">Warte auf die Bestätigung in der GesundheitsID-App …</p>
<p><a id="continue" href="#" hidden>Weiter zur App</a></p>
<h2>Auf diesem Gerät</h2>
{error}<form id="same-device" method="post" action="/idp/{slug}/auth/approve">
<input type="hidden" name="client_id" value="{client_id}">
<input type="hidden" name="request_uri" value="{request_uri}">
<label>Versichertennummer (KVNR)
<input name="kvnr" required autocomplete="off" pattern="[A-Za-z][0-9]{{9}}" placeholder="X110411675"></label>
<label>GesundheitsID-Code (6 Ziffern)
<input name="gesundheitsid_code" required inputmode="numeric" pattern="[0-9]{{6}}" maxlength="6" autocomplete="one-time-code"></label>
<button type="submit">Anmelden</button>
</form>
<p class="note">Die Anmeldeanfrage bleibt 10 Minuten gültig.</p>
<script>
(function () {{
  "use strict";
  var statusUrl = {status_js};
  var info = document.getElementById("status");
  var link = document.getElementById("continue");
  var done = false;
  function poll() {{
    if (done) {{ return; }}
    fetch(statusUrl, {{ cache: "no-store" }}).then(function (r) {{
      if (r.status === 404) {{
        done = true;
        info.textContent = "Die Anmeldeanfrage ist abgelaufen. Bitte starten Sie die Anmeldung in der App neu.";
        return null;
      }}
      return r.ok ? r.json() : null;
    }}).then(function (s) {{
      if (s && s.approved && s.redirect_uri) {{
        done = true;
        info.textContent = "Anmeldung bestätigt. Sie werden zur App weitergeleitet …";
        link.href = s.redirect_uri;
        link.hidden = false;
        window.location.href = s.redirect_uri;
      }}
    }}).catch(function () {{}}).then(function () {{
      if (!done) {{ setTimeout(poll, 1000); }}
    }});
  }}
  setTimeout(poll, 1000);
}})();
</script>"##,
            insurer = html_escape(&self.insurer),
            client_id = html_escape(&self.client_id),
            request_uri = html_escape(&self.request_uri),
            status_js = js_string(&status_url),
        );
        document(&format!("GesundheitsID – {}", self.insurer), &body)
    }
}

/// The virtual ident app for humans (`GET`/`POST {ident_app}`). `result` is the outcome of a
/// submitted form: the redirect URI, or a message.
pub fn ident_page(
    ident_app_url: &str,
    authorization_url: &str,
    kvnr: &str,
    result: Option<Result<String, String>>,
) -> String {
    let outcome = match result {
        None => String::new(),
        Some(Ok(redirect)) => format!(
            "<div class=\"ok\" id=\"result\"><p>Anmeldung freigegeben.</p>\n\
             <p>Eine Anmeldeseite auf dem Computer leitet jetzt automatisch zur App weiter. Auf \
             demselben Gerät: <a id=\"redirect\" href=\"{r}\">zurück zur App</a>.</p>\n\
             <pre>{r}</pre></div>",
            r = html_escape(&redirect)
        ),
        Some(Err(message)) => format!(
            "<p class=\"error\" id=\"error\">{}</p>",
            html_escape(&message)
        ),
    };
    let body = format!(
        r#"<h1>GesundheitsID-App (Sandbox)</h1>
<p>Diese Seite spielt das Smartphone: Sie bestätigt eine Anmeldung wie die GesundheitsID-App der
Krankenkasse, nachdem diese den QR-Code gescannt hat.</p>
{outcome}
<form method="post" action="/ident">
<label>Inhalt des QR-Codes (Adresse der Anmeldeseite)
<textarea name="authorization_url" rows="4" required>{url}</textarea></label>
<label>Versichertennummer (KVNR)
<input name="kvnr" required autocomplete="off" value="{kvnr}" pattern="[A-Za-z][0-9]{{9}}"></label>
<label>GesundheitsID-Code (6 Ziffern)
<input name="gesundheitsid_code" required inputmode="numeric" pattern="[0-9]{{6}}" maxlength="6" autocomplete="off"></label>
<button type="submit">Anmeldung bestätigen</button>
</form>
<p class="note">Für Tests: <code>POST {action}/approve</code> mit JSON
<code>{{"authorization_url": "…", "kvnr": "…", "gesundheitsid_code": "…"}}</code>.</p>"#,
        action = html_escape(ident_app_url),
        url = html_escape(authorization_url),
        kvnr = html_escape(kvnr),
    );
    document("GesundheitsID-App (Sandbox)", &body)
}
