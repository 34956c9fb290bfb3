//! SOAP 1.2 envelopes with WS-Addressing 1.0 headers (§5.1), plain (`application/soap+xml`) or
//! MTOM-packaged, and SOAP faults.

use bytes::Bytes;

use super::mtom::{self, ContentType, Package, Part};
use super::xml::{self, Element, Writer};
use super::{XdsError, ns};

pub const ANONYMOUS: &str = "http://www.w3.org/2005/08/addressing/anonymous";
pub const FAULT_ACTION: &str = "http://www.w3.org/2005/08/addressing/soap/fault";

/// The WS-Addressing message information headers we use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    pub action: Option<String>,
    pub message_id: Option<String>,
    pub relates_to: Option<String>,
    /// `wsa:ReplyTo/wsa:Address`.
    pub reply_to: Option<String>,
    pub to: Option<String>,
}

/// SOAP 1.2 fault codes (`env:Code/env:Value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    VersionMismatch,
    MustUnderstand,
    Sender,
    Receiver,
}

impl FaultCode {
    fn local(self) -> &'static str {
        match self {
            Self::VersionMismatch => "VersionMismatch",
            Self::MustUnderstand => "MustUnderstand",
            Self::Sender => "Sender",
            Self::Receiver => "Receiver",
        }
    }

    /// HTTP status of a fault (SOAP 1.2 Part 2, §7.5.1.2: Sender → 400, others → 500).
    pub fn http_status(self) -> u16 {
        match self {
            Self::Sender => 400,
            _ => 500,
        }
    }
}

/// A SOAP fault, received or to be sent. `subcode` is a WS-Addressing fault subcode local name
/// (`ActionNotSupported`, `MessageAddressingHeaderRequired`, …) or another QName's local part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SOAP fault {code:?}{}: {reason}", subcode.as_ref().map(|s| format!("/{s}")).unwrap_or_default())]
pub struct Fault {
    pub code: FaultCode,
    pub subcode: Option<String>,
    pub reason: String,
}

impl Fault {
    pub fn sender(subcode: Option<&str>, reason: impl Into<String>) -> Self {
        Self {
            code: FaultCode::Sender,
            subcode: subcode.map(str::to_owned),
            reason: reason.into(),
        }
    }

    /// The fault element (`env:Fault`), for [`envelope`].
    pub fn to_xml(&self) -> String {
        let mut w = Writer::new();
        w.open("env:Fault", &[]);
        w.open("env:Code", &[]);
        w.leaf("env:Value", &[], &format!("env:{}", self.code.local()));
        if let Some(s) = &self.subcode {
            w.open("env:Subcode", &[]);
            w.leaf("env:Value", &[("xmlns:wsa", ns::WSA)], &format!("wsa:{s}"));
            w.close("env:Subcode");
        }
        w.close("env:Code");
        w.open("env:Reason", &[]);
        w.leaf("env:Text", &[("xml:lang", "en")], &self.reason);
        w.close("env:Reason");
        w.close("env:Fault");
        w.finish()
    }

    pub fn from_element(el: &Element) -> Option<Self> {
        if !el.is(ns::SOAP12, "Fault") {
            return None;
        }
        let code_el = el.child(ns::SOAP12, "Code")?;
        let local = |v: &str| v.rsplit(':').next().unwrap_or(v).trim().to_owned();
        let code = match local(&code_el.child(ns::SOAP12, "Value")?.text).as_str() {
            "VersionMismatch" => FaultCode::VersionMismatch,
            "MustUnderstand" => FaultCode::MustUnderstand,
            "Sender" => FaultCode::Sender,
            _ => FaultCode::Receiver,
        };
        let subcode = code_el
            .child(ns::SOAP12, "Subcode")
            .and_then(|s| s.child(ns::SOAP12, "Value"))
            .map(|v| local(&v.text));
        let reason = el
            .child(ns::SOAP12, "Reason")
            .and_then(|r| r.child(ns::SOAP12, "Text"))
            .map(|t| t.text.clone())
            .unwrap_or_default();
        Some(Self {
            code,
            subcode,
            reason,
        })
    }
}

impl From<Fault> for XdsError {
    fn from(f: Fault) -> Self {
        XdsError::Soap(f.to_string())
    }
}

/// A whole SOAP 1.2 envelope around `payload` (one body element, already serialised).
pub fn envelope(addressing: &Addressing, payload: &str) -> String {
    let mut w = Writer::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    w.open(
        "env:Envelope",
        &[("xmlns:env", ns::SOAP12), ("xmlns:wsa", ns::WSA)],
    );
    w.open("env:Header", &[]);
    if let Some(a) = &addressing.action {
        w.leaf("wsa:Action", &[("env:mustUnderstand", "true")], a);
    }
    if let Some(m) = &addressing.message_id {
        w.leaf("wsa:MessageID", &[], m);
    }
    if let Some(r) = &addressing.reply_to {
        w.open("wsa:ReplyTo", &[]);
        w.leaf("wsa:Address", &[], r);
        w.close("wsa:ReplyTo");
    }
    if let Some(r) = &addressing.relates_to {
        w.leaf("wsa:RelatesTo", &[], r);
    }
    if let Some(t) = &addressing.to {
        w.leaf("wsa:To", &[], t);
    }
    w.close("env:Header");
    w.open("env:Body", &[]);
    w.raw(payload);
    w.close("env:Body");
    w.close("env:Envelope");
    w.finish()
}

/// The addressing headers of a request (§5.1): Action (mustUnderstand), a fresh
/// `urn:uuid:` MessageID, ReplyTo anonymous.
pub fn request_addressing(action: &str, message_uuid: &str) -> Addressing {
    Addressing {
        action: Some(action.to_owned()),
        message_id: Some(format!("urn:uuid:{message_uuid}")),
        reply_to: Some(ANONYMOUS.to_owned()),
        ..Addressing::default()
    }
}

/// An encoded HTTP body with its `Content-Type`.
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded {
    pub content_type: String,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoded")
            .field("content_type", &self.content_type)
            .field("len", &self.body.len())
            .finish()
    }
}

/// Packages an envelope: MTOM when `mtom` (also without attachments), else plain SOAP.
/// `unique` (e.g. the message's UUID) makes the boundary and root Content-ID unique.
pub fn encode(action: &str, envelope: String, parts: &[Part], mtom: bool, unique: &str) -> Encoded {
    encode_chunks(action, envelope, parts, mtom, unique).into()
}

/// An encoded HTTP body in pieces (see [`mtom::build_chunks`]), with its `Content-Type`.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunked {
    pub content_type: String,
    pub chunks: Vec<Bytes>,
}

impl std::fmt::Debug for Chunked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunked")
            .field("content_type", &self.content_type)
            .field("len", &self.chunks.iter().map(Bytes::len).sum::<usize>())
            .finish()
    }
}

impl From<Chunked> for Encoded {
    fn from(c: Chunked) -> Self {
        Encoded {
            content_type: c.content_type,
            body: c.chunks.concat(),
        }
    }
}

impl From<Encoded> for Chunked {
    fn from(e: Encoded) -> Self {
        Chunked {
            content_type: e.content_type,
            chunks: vec![e.body.into()],
        }
    }
}

/// [`encode`] without joining the pieces: attachments stay the buffers they are.
pub fn encode_chunks(
    action: &str,
    envelope: String,
    parts: &[Part],
    mtom: bool,
    unique: &str,
) -> Chunked {
    if mtom {
        let (content_type, chunks) = mtom::build_chunks(
            action,
            &envelope,
            parts,
            &format!("MIMEBoundary_{}", unique.replace('-', "")),
            &format!("0.{unique}@epa-desktop"),
        );
        Chunked {
            content_type,
            chunks,
        }
    } else {
        Chunked {
            content_type: format!("application/soap+xml; charset=UTF-8; action=\"{action}\""),
            chunks: vec![envelope.into()],
        }
    }
}

/// A decoded SOAP message.
#[derive(Debug, Clone)]
pub struct Message {
    pub addressing: Addressing,
    /// The `action` parameter of the Content-Type, if any.
    pub content_type_action: Option<String>,
    /// The single child of `env:Body`.
    pub payload: Element,
    /// The MTOM package, when the message was one.
    pub package: Option<Package>,
}

impl Message {
    /// The bytes of an `xs:base64Binary` element: its `xop:Include` part or its base64 text.
    pub fn binary(&self, el: &Element) -> Result<Bytes, XdsError> {
        if let Some(inc) = el.child(ns::XOP, "Include") {
            if el.children.len() != 1 || !el.text.trim().is_empty() {
                return Err(XdsError::Mtom(
                    "xop:Include must be the only content of its element".into(),
                ));
            }
            let Some(package) = &self.package else {
                return Err(XdsError::Mtom(
                    "xop:Include in a message without MTOM".into(),
                ));
            };
            let href = inc.attr("href").unwrap_or_default();
            return package
                .resolve(href)
                .map(|p| p.body.clone())
                .ok_or_else(|| XdsError::Mtom(format!("xop:Include href {href:?} has no part")));
        }
        if !el.children.is_empty() {
            return Err(XdsError::Xml(format!("{} must hold base64 text", el.name)));
        }
        super::base64::decode(&el.text)
            .map(Bytes::from)
            .ok_or_else(|| XdsError::Xml(format!("{} is not valid base64", el.name)))
    }

    /// The payload with every `xop:Include` replaced by the base64 text of its part (the XOP
    /// infoset reconstruction), e.g. to validate it against the schemas.
    pub fn payload_inline(&self) -> Result<Element, XdsError> {
        fn walk(m: &Message, el: &mut Element) -> Result<(), XdsError> {
            if el.child(ns::XOP, "Include").is_some() {
                let bytes = m.binary(el)?;
                el.children.clear();
                el.text = super::base64::encode(&bytes);
                return Ok(());
            }
            for c in &mut el.children {
                walk(m, c)?;
            }
            Ok(())
        }
        let mut p = self.payload.clone();
        walk(self, &mut p)?;
        Ok(p)
    }

    /// The SOAP fault this message carries, if it is one.
    pub fn fault(&self) -> Option<Fault> {
        Fault::from_element(&self.payload)
    }
}

fn sender(reason: impl Into<String>) -> Fault {
    Fault::sender(None, reason)
}

/// Decodes an HTTP body by its Content-Type: `application/soap+xml` or MTOM. A message that is
/// no SOAP 1.2 envelope gives the fault the receiver should answer with.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Message, Fault> {
    decode_shared(content_type, Bytes::copy_from_slice(body))
}

/// [`decode`] taking the body over: MTOM attachments share its buffer, so a retrieved
/// document is not copied on the way (pass a `Vec<u8>` with `.into()`).
pub fn decode_shared(content_type: &str, body: Bytes) -> Result<Message, Fault> {
    let ct = mtom::parse_content_type(content_type).map_err(|e| sender(e.to_string()))?;
    let (xml_bytes, package, ct_action) = match ct.mime.as_str() {
        "application/soap+xml" => (body, None, ct.param("action").map(str::to_owned)),
        "multipart/related" => {
            let p = mtom::parse_shared(&ct, &body).map_err(|e| sender(e.to_string()))?;
            let root_ct = mtom::parse_content_type(&p.root.content_type).unwrap_or(ContentType {
                mime: String::new(),
                params: vec![],
            });
            let action = root_ct
                .param("action")
                .or(ct.param("action"))
                .map(str::to_owned);
            (p.root.body.clone(), Some(p), action)
        }
        "text/xml" => {
            return Err(Fault {
                code: FaultCode::VersionMismatch,
                subcode: None,
                reason: "text/xml is SOAP 1.1; this endpoint speaks SOAP 1.2".into(),
            });
        }
        other => return Err(sender(format!("unsupported media type {other}"))),
    };
    let root = xml::parse(&xml_bytes).map_err(|e| sender(e.to_string()))?;
    let mut m = parse_envelope(root, package)?;
    m.content_type_action = ct_action;
    Ok(m)
}

fn parse_envelope(root: Element, package: Option<Package>) -> Result<Message, Fault> {
    if !root.is(ns::SOAP12, "Envelope") {
        return Err(Fault {
            code: FaultCode::VersionMismatch,
            subcode: None,
            reason: format!(
                "root element {{{}}}{} is no SOAP 1.2 Envelope",
                root.ns, root.name
            ),
        });
    }
    let mut header = None;
    let mut body = None;
    for c in root.children {
        match (c.is(ns::SOAP12, "Header"), c.is(ns::SOAP12, "Body")) {
            (true, _) if header.is_none() && body.is_none() => header = Some(c),
            (_, true) if body.is_none() => body = Some(c),
            _ => return Err(sender(format!("unexpected element {} in Envelope", c.name))),
        }
    }
    let Some(mut body) = body else {
        return Err(sender("Envelope without Body"));
    };
    let mut addressing = Addressing::default();
    for h in header.map(|h| h.children).unwrap_or_default() {
        let must = h
            .attr_ns(ns::SOAP12, "mustUnderstand")
            .is_some_and(|v| v == "true" || v == "1");
        if h.ns != ns::WSA {
            if must {
                return Err(Fault {
                    code: FaultCode::MustUnderstand,
                    subcode: None,
                    reason: format!("header block {{{}}}{} not understood", h.ns, h.name),
                });
            }
            continue;
        }
        let slot = match h.name.as_str() {
            "Action" => &mut addressing.action,
            "MessageID" => &mut addressing.message_id,
            "RelatesTo" => &mut addressing.relates_to,
            "To" => &mut addressing.to,
            "ReplyTo" => {
                let a = h
                    .child(ns::WSA, "Address")
                    .map(|a| a.text.trim().to_owned());
                if a.is_none() || addressing.reply_to.replace(a.unwrap_or_default()).is_some() {
                    return Err(Fault::sender(
                        Some("InvalidAddressingHeader"),
                        "ReplyTo without Address, or twice",
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if slot.replace(h.text.trim().to_owned()).is_some() {
            return Err(Fault::sender(
                Some("InvalidAddressingHeader"),
                format!("wsa:{} twice", h.name),
            ));
        }
    }
    let mut payloads = std::mem::take(&mut body.children);
    if payloads.len() != 1 || !body.text.trim().is_empty() {
        return Err(sender("the Body must hold exactly one element"));
    }
    let payload = payloads.remove(0);
    Ok(Message {
        addressing,
        content_type_action: None,
        payload,
        package,
    })
}

/// What a server requires of a request's addressing (§5.1, `wsaw:UsingAddressing
/// required="true"`): Action and MessageID present, replies only to the anonymous address, and
/// a Content-Type `action` (if any) equal to `wsa:Action`.
pub fn check_request_addressing(m: &Message) -> Result<&str, Fault> {
    let a = &m.addressing;
    let Some(action) = a.action.as_deref().filter(|s| !s.is_empty()) else {
        return Err(Fault::sender(
            Some("MessageAddressingHeaderRequired"),
            "wsa:Action is required",
        ));
    };
    if a.message_id.as_deref().is_none_or(str::is_empty) {
        return Err(Fault::sender(
            Some("MessageAddressingHeaderRequired"),
            "wsa:MessageID is required",
        ));
    }
    if let Some(r) = &a.reply_to
        && r != ANONYMOUS
    {
        return Err(Fault::sender(
            Some("OnlyAnonymousAddressSupported"),
            "replies go back on the same connection (wsa:ReplyTo must be anonymous)",
        ));
    }
    if let Some(c) = &m.content_type_action
        && c != action
    {
        return Err(Fault::sender(
            Some("ActionMismatch"),
            "the Content-Type action differs from wsa:Action",
        ));
    }
    Ok(action)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn req(action: &str) -> String {
        envelope(
            &request_addressing(action, "1b4e28ba-2fa1-41d2-883f-0016d3cca427"),
            "<p xmlns=\"urn:p\"/>",
        )
    }

    #[test]
    fn a_request_round_trips_plain_and_mtom() {
        let env = req("urn:a");
        let e = encode("urn:a", env.clone(), &[], false, "u");
        let m = decode(&e.content_type, &e.body).unwrap();
        assert_eq!(check_request_addressing(&m).unwrap(), "urn:a");
        assert_eq!(m.addressing.reply_to.as_deref(), Some(ANONYMOUS));
        assert!(m.payload.is("urn:p", "p"));
        let e = encode("urn:a", env, &[], true, "1b4e28ba-2fa1");
        let m = decode(&e.content_type, &e.body).unwrap();
        assert_eq!(check_request_addressing(&m).unwrap(), "urn:a");
        assert!(m.package.is_some());
    }

    #[test]
    fn addressing_rules_give_sender_faults_with_wsa_subcodes() {
        let no_action = envelope(
            &Addressing {
                message_id: Some("urn:uuid:x".into()),
                ..Addressing::default()
            },
            "<p/>",
        );
        let m = decode("application/soap+xml", no_action.as_bytes()).unwrap();
        let f = check_request_addressing(&m).unwrap_err();
        assert_eq!(
            (f.code, f.subcode.as_deref()),
            (FaultCode::Sender, Some("MessageAddressingHeaderRequired"))
        );
        let m = decode(
            "application/soap+xml; action=\"urn:b\"",
            req("urn:a").as_bytes(),
        )
        .unwrap();
        assert_eq!(
            check_request_addressing(&m).unwrap_err().subcode.as_deref(),
            Some("ActionMismatch")
        );
        let soap11 = format!(
            "<s:Envelope xmlns:s=\"{}\"><s:Body><p/></s:Body></s:Envelope>",
            ns::SOAP11
        );
        assert_eq!(
            decode("application/soap+xml", soap11.as_bytes())
                .unwrap_err()
                .code,
            FaultCode::VersionMismatch
        );
        let must = format!(
            "<e:Envelope xmlns:e=\"{}\"><e:Header><x:H xmlns:x=\"urn:x\" e:mustUnderstand=\"true\"/></e:Header><e:Body><p/></e:Body></e:Envelope>",
            ns::SOAP12
        );
        assert_eq!(
            decode("application/soap+xml", must.as_bytes())
                .unwrap_err()
                .code,
            FaultCode::MustUnderstand
        );
        assert_eq!(
            decode("application/json", b"{}").unwrap_err().code,
            FaultCode::Sender
        );
    }

    #[test]
    fn faults_round_trip() {
        let f = Fault::sender(Some("ActionNotSupported"), "no such action");
        let env = envelope(
            &Addressing {
                action: Some(FAULT_ACTION.into()),
                ..Addressing::default()
            },
            &f.to_xml(),
        );
        let m = decode("application/soap+xml", env.as_bytes()).unwrap();
        assert_eq!(m.fault().unwrap(), f);
    }

    proptest! {
        #[test]
        fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode("application/soap+xml", &body);
            let _ = decode("multipart/related; type=\"application/xop+xml\"; boundary=b", &body);
        }
    }
}
