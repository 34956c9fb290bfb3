//! A small namespace-aware element tree over quick-xml, and a writer for the messages we build.
//!
//! Parsing is strict and bounded: UTF-8 only, no DOCTYPE (SOAP 1.2 forbids DTDs, and no DTD
//! means no entity expansion), no processing instructions, only the predefined entities and
//! character references, at most [`MAX_DEPTH`] levels and [`MAX_ELEMENTS`] elements. Text is
//! kept per element (mixed content is concatenated): XDS payloads have no mixed content.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::XdsError;

pub const MAX_DEPTH: usize = 64;
pub const MAX_ELEMENTS: usize = 500_000;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attr {
    /// Namespace URI, empty for unqualified attributes.
    pub ns: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace URI, empty when unbound.
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// The element's own character data (not its descendants').
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An unqualified attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// Serialises the element as a standalone document: every namespace gets a prefix
    /// (`n0`, `n1`, …) declared on this element.
    pub fn to_xml(&self) -> String {
        fn collect<'a>(el: &'a Element, out: &mut Vec<&'a str>) {
            for n in std::iter::once(el.ns.as_str()).chain(el.attrs.iter().map(|a| a.ns.as_str())) {
                if !n.is_empty() && n != super::ns::XML && !out.contains(&n) {
                    out.push(n);
                }
            }
            for c in &el.children {
                collect(c, out);
            }
        }
        fn write(el: &Element, nss: &[&str], root: bool, w: &mut Writer) {
            let q = |ns: &str, name: &str| match nss.iter().position(|n| *n == ns) {
                Some(i) => format!("n{i}:{name}"),
                None if ns == super::ns::XML => format!("xml:{name}"),
                None => name.to_owned(),
            };
            let name = q(&el.ns, &el.name);
            let decls: Vec<(String, String)> = if root {
                nss.iter()
                    .enumerate()
                    .map(|(i, n)| (format!("xmlns:n{i}"), (*n).to_owned()))
                    .collect()
            } else {
                Vec::new()
            };
            let attrs: Vec<(String, String)> = decls
                .into_iter()
                .chain(
                    el.attrs
                        .iter()
                        .map(|a| (q(&a.ns, &a.name), a.value.clone())),
                )
                .collect();
            let refs: Vec<(&str, &str)> = attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            w.open(&name, &refs);
            w.text(&el.text);
            for c in &el.children {
                write(c, nss, false, w);
            }
            w.close(&name);
        }
        let mut nss = Vec::new();
        collect(self, &mut nss);
        let mut w = Writer::new();
        write(self, &nss, true, &mut w);
        w.finish()
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }
}

fn xml_err(e: impl std::fmt::Display) -> XdsError {
    XdsError::Xml(e.to_string())
}

fn resolved_ns(r: &ResolveResult<'_>) -> Result<String, XdsError> {
    match r {
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Bound(ns) => Ok(ns.0.to_owned()),
        ResolveResult::Unknown(p) => Err(XdsError::Xml(format!("undeclared prefix {p:?}"))),
    }
}

/// Parses one XML document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XdsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XdsError::Xml("not UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = {
            let (res, event) = reader.read_resolved_event().map_err(xml_err)?;
            (resolved_ns(&res), event)
        };
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(XdsError::Xml("unbalanced end tag".into()));
                };
                close(el, &mut stack, &mut root);
                continue;
            }
            Event::Text(t) => {
                push_text(&mut stack, &t.xml10_content())?;
                continue;
            }
            Event::CData(c) => {
                push_text(&mut stack, &c.xml10_content())?;
                continue;
            }
            Event::GeneralRef(r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(xml_err)?
                } else {
                    quick_xml::escape::resolve_predefined_entity(&r).and_then(|s| s.chars().next())
                };
                let Some(ch) = ch else {
                    return Err(XdsError::Xml(format!("unknown entity &{};", &*r)));
                };
                push_text(&mut stack, ch.encode_utf8(&mut [0; 4]))?;
                continue;
            }
            Event::Comment(_) | Event::Decl(_) => continue,
            Event::PI(_) => return Err(XdsError::Xml("processing instruction".into())),
            Event::DocType(_) => return Err(XdsError::Xml("DOCTYPE is not allowed".into())),
            Event::Eof => break,
        };
        let ns = ns?;
        if root.is_some() {
            return Err(XdsError::Xml("content after the root element".into()));
        }
        count += 1;
        if count > MAX_ELEMENTS {
            return Err(XdsError::Xml("too many elements".into()));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(XdsError::Xml("elements nested too deeply".into()));
        }
        let mut el = Element {
            ns,
            name: e.local_name().as_ref().to_owned(),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(xml_err)?;
            let key = a.key;
            if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                continue;
            }
            let (r, local) = reader.resolver().resolve_attribute(key);
            let ans = resolved_ns(&r)?;
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(xml_err)?
                .into_owned();
            let name = local.as_ref().to_owned();
            if el.attrs.iter().any(|x| x.ns == ans && x.name == name) {
                return Err(XdsError::Xml(format!("attribute {name} twice")));
            }
            el.attrs.push(Attr {
                ns: ans,
                name,
                value,
            });
        }
        if empty {
            close(el, &mut stack, &mut root);
        } else {
            stack.push(el);
        }
    }
    if !stack.is_empty() {
        return Err(XdsError::Xml("unexpected end of document".into()));
    }
    root.ok_or_else(|| XdsError::Xml("no root element".into()))
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), XdsError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(XdsError::Xml("text outside the root element".into())),
    }
}

/// Escapes text content or an attribute value; characters XML 1.0 cannot carry become U+FFFD,
/// CR/TAB/LF are written as character references so they survive normalisation.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Builds XML text; names are written as given (with their prefix), values are escaped.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    fn start_tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&escape(v));
            self.out.push('"');
        }
    }

    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start_tag(name, attrs);
        self.out.push_str("/>");
    }

    pub fn text(&mut self, s: &str) {
        self.out.push_str(&escape(s));
    }

    /// Text known to need no escaping (base64).
    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        self.text(text);
        self.close(name);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn namespaces_attributes_and_text_are_resolved() {
        let x = br#"<?xml version="1.0"?><a:r xmlns:a="urn:a" xmlns="urn:d" x="1&amp;2" a:y="z"><c>t&lt;&#x41;<![CDATA[<c>]]></c><c/></a:r>"#;
        let r = parse(x).unwrap();
        assert!(r.is("urn:a", "r"));
        assert_eq!(r.attr("x"), Some("1&2"));
        assert_eq!(r.attr_ns("urn:a", "y"), Some("z"));
        assert_eq!(r.children.len(), 2);
        assert!(r.children[0].is("urn:d", "c"));
        assert_eq!(r.children[0].text, "t<A<c>");
        assert!(r.children[1].children.is_empty());
    }

    #[test]
    fn elements_serialise_back() {
        let x = br#"<a:r xmlns:a="urn:a" xmlns="urn:d" x="1" a:y="z" xml:lang="de"><c>t</c></a:r>"#;
        let r = parse(x).unwrap();
        assert_eq!(parse(r.to_xml().as_bytes()).unwrap(), r);
    }

    #[test]
    fn hostile_documents_are_refused() {
        for bad in [
            &b"<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>"[..],
            b"<a>&e;</a>",
            b"<a><?pi x?></a>",
            b"<a></b>",
            b"<a>",
            b"<a/><b/>",
            b"<p:a/>",
            b"<a x='1' x='2'/>",
            b"\xff<a/>",
            b"",
            b"text",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn the_writer_escapes_what_it_must() {
        let mut w = Writer::new();
        w.leaf("a", &[("v", "\"<&>'\t")], "x<y\r\n\u{1}");
        let s = w.finish();
        let r = parse(s.as_bytes()).unwrap();
        assert_eq!(r.attr("v"), Some("\"<&>'\t"));
        assert_eq!(r.text, "x<y\r\n\u{fffd}");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_near_xml(s in "(<[a-c:]{1,3}( [a-c:]{1,2}=\"[^\"]{0,3}\")?/?>|</[a-c:]{1,3}>|&[#xa-z0-9]{0,4};|[a-z ]){0,20}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn text_round_trips(s in "[^\\x00-\\x1f\\u{fffe}\\u{ffff}]{0,40}") {
            let mut w = Writer::new();
            w.leaf("a", &[("v", &s)], &s);
            let r = parse(w.finish().as_bytes()).unwrap();
            prop_assert_eq!(r.attr("v").unwrap(), s.as_str());
            prop_assert_eq!(r.text, s);
        }
    }
}
