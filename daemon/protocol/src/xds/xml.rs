//! A small namespace-aware element tree over quick-xml, and a writer for the messages we build.
//!
//! Parsing is strict and bounded: UTF-8 only, no DOCTYPE (SOAP 1.2 forbids DTDs, and no DTD
//! means no entity expansion), no processing instructions, only the predefined entities and
//! character references, at most [`MAX_DEPTH`] levels and [`MAX_ELEMENTS`] elements. Text is
//! kept per element (mixed content is concatenated): XDS payloads have no mixed content.
//!
//! Only characters of XML 1.0 (`Char`, also through character references) and names that are
//! `QName`s are accepted. Namespaces are resolved here (not by quick-xml) so that a namespace
//! name is the attribute value with its references resolved, and the rules of Namespaces in
//! XML 1.0 §3 hold: `xmlns` is never declared nor used as an element prefix, `xml` is bound only
//! to its namespace, no other prefix (and not the default namespace) to the `xml` or `xmlns`
//! namespace, and a prefix is never undeclared (`xmlns:p=""`). What [`parse`] accepts,
//! [`Element::to_xml`] writes back to a document that parses to the same tree.

use quick_xml::XmlVersion;
use quick_xml::events::Event;

use super::XdsError;

pub const MAX_DEPTH: usize = 64;
pub const MAX_ELEMENTS: usize = 500_000;
/// Namespace declarations in scope at once (quick-xml's default bound for its resolver).
pub const MAX_NAMESPACE_BINDINGS: usize = 128;

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

/// The namespace the `xmlns` prefix is bound to (Namespaces in XML 1.0 §3).
const XMLNS: &str = "http://www.w3.org/2000/xmlns/";

/// XML 1.0 `Char` production (§2.2); surrogates cannot occur in a `str`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// Refuses characters XML 1.0 cannot carry (also when they come from a character reference).
fn check_chars(s: &str, what: &str) -> Result<(), XdsError> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        None => Ok(()),
        Some(c) => Err(XdsError::Xml(format!(
            "character U+{:04X} in {what} is not allowed in XML 1.0 (production Char)",
            c as u32
        ))),
    }
}

/// XML 1.0 `NameStartChar` (§2.3) without `:`.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{c0}'..='\u{d6}' | '\u{d8}'..='\u{f6}'
        | '\u{f8}'..='\u{2ff}' | '\u{370}'..='\u{37d}' | '\u{37f}'..='\u{1fff}'
        | '\u{200c}'..='\u{200d}' | '\u{2070}'..='\u{218f}' | '\u{2c00}'..='\u{2fef}'
        | '\u{3001}'..='\u{d7ff}' | '\u{f900}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffd}'
        | '\u{10000}'..='\u{effff}')
}

/// XML 1.0 `NameChar` (§2.3) without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{b7}' | '\u{300}'..='\u{36f}' | '\u{203f}'..='\u{2040}')
}

/// Namespaces in XML 1.0 `NCName`: an XML name without a colon.
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// Splits a Namespaces in XML 1.0 `QName` into prefix and local part, refusing anything else.
fn qname<'a>(s: &'a str, what: &str) -> Result<(Option<&'a str>, &'a str), XdsError> {
    let (prefix, local) = match s.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, s),
    };
    if prefix.is_none_or(is_ncname) && is_ncname(local) {
        Ok((prefix, local))
    } else {
        Err(XdsError::Xml(format!(
            "{what} name {s:?} is not an XML QName (NCName with an optional NCName prefix)"
        )))
    }
}

/// The namespace bindings in scope, innermost last: `(prefix, namespace name)`, prefix `""`
/// for the default namespace (whose name may be empty: undeclared).
#[derive(Default)]
struct Bindings(Vec<(String, String)>);

impl Bindings {
    /// Adds the binding of a namespace declaration, enforcing the reserved prefixes and
    /// namespace names of Namespaces in XML 1.0 §3.
    fn declare(&mut self, prefix: Option<&str>, ns: String) -> Result<(), XdsError> {
        let refuse = |m: String| Err(XdsError::Xml(format!("{m} (Namespaces in XML 1.0 §3)")));
        match prefix {
            None if ns == super::ns::XML || ns == XMLNS => {
                return refuse(format!("the default namespace must not be {ns}"));
            }
            None => {}
            Some("xmlns") => return refuse("the prefix xmlns must not be declared".into()),
            Some("xml") if ns == super::ns::XML => return Ok(()),
            Some("xml") => {
                return refuse(format!(
                    "the prefix xml must not be bound to {ns:?}, only to {}",
                    super::ns::XML
                ));
            }
            Some(p) if ns == super::ns::XML || ns == XMLNS => {
                return refuse(format!("the prefix {p} must not be bound to {ns}"));
            }
            Some(p) if ns.is_empty() => {
                return refuse(format!(
                    "the prefix {p} must not be bound to an empty namespace name"
                ));
            }
            Some(_) => {}
        }
        if self.0.len() >= MAX_NAMESPACE_BINDINGS {
            return Err(XdsError::Xml(
                "too many namespace declarations in scope".into(),
            ));
        }
        self.0.push((prefix.unwrap_or_default().to_owned(), ns));
        Ok(())
    }

    /// The namespace of a prefixed name, or of an unprefixed element name (`default`).
    fn resolve(&self, prefix: Option<&str>, default: bool) -> Result<String, XdsError> {
        let key = match prefix {
            None if !default => return Ok(String::new()),
            None => "",
            Some("xml") => return Ok(super::ns::XML.to_owned()),
            Some("xmlns") => {
                return Err(XdsError::Xml(
                    "names must not have the prefix xmlns (Namespaces in XML 1.0 §3)".into(),
                ));
            }
            Some(p) => p,
        };
        match self.0.iter().rev().find(|(p, _)| p == key) {
            Some((_, ns)) => Ok(ns.clone()),
            None if key.is_empty() => Ok(String::new()),
            None => Err(XdsError::Xml(format!("undeclared prefix {key:?}"))),
        }
    }
}

/// Parses one XML document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XdsError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XdsError::Xml("not UTF-8".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_chars(text, "the document")?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    // Per open element: how many bindings were in scope before its declarations.
    let mut marks: Vec<usize> = Vec::new();
    let mut bindings = Bindings::default();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (e, empty) = match reader.read_event().map_err(xml_err)? {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                let (Some(el), Some(mark)) = (stack.pop(), marks.pop()) else {
                    return Err(XdsError::Xml("unbalanced end tag".into()));
                };
                bindings.0.truncate(mark);
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
                let mut buf = [0; 4];
                let s = ch.encode_utf8(&mut buf);
                check_chars(s, "a character reference")?;
                push_text(&mut stack, s)?;
                continue;
            }
            Event::Comment(_) | Event::Decl(_) => continue,
            Event::PI(_) => return Err(XdsError::Xml("processing instruction".into())),
            Event::DocType(_) => return Err(XdsError::Xml("DOCTYPE is not allowed".into())),
            Event::Eof => break,
        };
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
        let (prefix, local) = qname(e.name().into_inner(), "element")?;
        let mark = bindings.0.len();
        // Namespace declarations first: they apply to the element's own name and attributes.
        let mut attrs: Vec<(Option<&str>, &str, String)> = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(xml_err)?;
            let (aprefix, alocal) = qname(a.key.into_inner(), "attribute")?;
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(xml_err)?
                .into_owned();
            check_chars(&value, "an attribute value")?;
            match (aprefix, alocal) {
                (None, "xmlns") => bindings.declare(None, value)?,
                (Some("xmlns"), p) => bindings.declare(Some(p), value)?,
                _ => attrs.push((aprefix, alocal, value)),
            }
        }
        let mut el = Element {
            ns: bindings.resolve(prefix, true)?,
            name: local.to_owned(),
            ..Element::default()
        };
        for (aprefix, alocal, value) in attrs {
            let ns = bindings.resolve(aprefix, false)?;
            if el.attrs.iter().any(|x| x.ns == ns && x.name == alocal) {
                return Err(XdsError::Xml(format!("attribute {alocal} twice")));
            }
            el.attrs.push(Attr {
                ns,
                name: alocal.to_owned(),
                value,
            });
        }
        if empty {
            bindings.0.truncate(mark);
            close(el, &mut stack, &mut root);
        } else {
            marks.push(mark);
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

    /// Each case of the fuzz findings, with a piece of the message that names the rule.
    #[test]
    fn what_xml_1_0_and_its_namespaces_forbid_is_refused() {
        for (bad, rule) in [
            // Characters outside XML 1.0 `Char`, raw or through a character reference.
            ("<a>\0</a>", "U+0000 in the document"),
            ("<a x=\"\u{1}\"/>", "U+0001 in the document"),
            ("<p:a xmlns:p=\"urn:\0\"/>", "U+0000 in the document"),
            ("<a>\u{ffff}</a>", "U+FFFF in the document"),
            ("<!--\u{8}--><a/>", "U+0008 in the document"),
            ("<a><![CDATA[\u{1f}]]></a>", "U+001F in the document"),
            ("<a>&#1;</a>", "U+0001 in a character reference"),
            ("<a>&#xFFFE;</a>", "U+FFFE in a character reference"),
            ("<a x=\"&#x1f;\"/>", "U+001F in an attribute value"),
            (
                "<p:a xmlns:p=\"urn:&#2;\"/>",
                "U+0002 in an attribute value",
            ),
            ("<a>&#0;</a>", "0x0 character is not permitted"),
            ("<a x=\"&#0;\"/>", "0x0 character is not permitted"),
            // Names that are no QNames.
            ("<a/b></a/b>", "not an XML QName"),
            ("<1a/>", "not an XML QName"),
            ("<-a/>", "not an XML QName"),
            ("<:a/>", "not an XML QName"),
            ("<p:a: xmlns:p=\"u\"/>", "not an XML QName"),
            ("<p:a:b xmlns:p=\"u\"/>", "not an XML QName"),
            ("<a\u{d7}/>", "not an XML QName"),
            ("<a b/c=\"1\"/>", "not an XML QName"),
            ("<a 1b=\"1\"/>", "not an XML QName"),
            ("<a :b=\"1\"/>", "not an XML QName"),
            ("<a xmlns:=\"u\"/>", "not an XML QName"),
            ("<a xmlns:1=\"u\"/>", "not an XML QName"),
            // Reserved prefixes and namespace names (Namespaces in XML 1.0 §3).
            ("<xmlns:a/>", "prefix xmlns"),
            ("<a xmlns:p=\"u\"><xmlns:b/></a>", "prefix xmlns"),
            (
                "<a xmlns:xmlns=\"urn:x\"/>",
                "the prefix xmlns must not be declared",
            ),
            (
                "<a xmlns:xmlns=\"http://www.w3.org/2000/xmlns/\"/>",
                "the prefix xmlns must not be declared",
            ),
            (
                "<a xmlns:xml=\"urn:x\"/>",
                "the prefix xml must not be bound",
            ),
            ("<a xmlns:xml=\"\"/>", "the prefix xml must not be bound"),
            (
                "<a xmlns:p=\"http://www.w3.org/XML/1998/namespace\"/>",
                "the prefix p must not be bound",
            ),
            (
                "<a xmlns:p=\"http://www.w3.org/2000/xmlns/\"/>",
                "the prefix p must not be bound",
            ),
            (
                "<a xmlns:p=\"http://www.w3.org/2000/xmlns&#x2F;\"/>",
                "the prefix p must not be bound",
            ),
            (
                "<a xmlns=\"http://www.w3.org/2000/xmlns/\"/>",
                "the default namespace",
            ),
            (
                "<a xmlns=\"http://www.w3.org/XML/1998/namespace\"/>",
                "the default namespace",
            ),
            ("<a xmlns:p=\"\"/>", "empty namespace name"),
            // Namespace names are attribute values: their references must resolve.
            ("<p:a xmlns:p=\"urn:&e;\"/>", "unrecognized entity"),
            (
                "<p:a xmlns:p=\"urn:&#xZ;\"/>",
                "invalid character reference",
            ),
            // A declaration is scoped to its element.
            (
                "<a><p:b xmlns:p=\"u\"/><p:c/></a>",
                "undeclared prefix \"p\"",
            ),
        ] {
            match parse(bad.as_bytes()) {
                Ok(el) => panic!("{bad:?} accepted: {el:?}"),
                Err(e) => assert!(e.to_string().contains(rule), "{bad:?}: {e}"),
            }
        }
    }

    #[test]
    fn what_namespaces_in_xml_allows_is_accepted() {
        let x = "<a xmlns:xml=\"http://www.w3.org/XML/1998/namespace\" xml:lang=\"de\" \
                 xmlns=\"urn:d\" xmlns:p=\"urn:p&amp;q&#x3C;&#10;\" xmlns:s=\"ur&#x6E;:s\">\
                 <b xmlns=\"\" p:x=\"1\" s:y=\"&#9;\"/><p:b xmlns:p=\"urn:other\"/>\
                 <p:c/><xml:d/><xmlns/><\u{e9}l\u{e8}ve-1.\u{b7}\u{300}/></a>";
        let r = parse(x.as_bytes()).unwrap();
        assert!(r.is("urn:d", "a"));
        assert_eq!(r.attr_ns(super::super::ns::XML, "lang"), Some("de"));
        let b = &r.children[0];
        assert!(b.is("", "b"));
        assert_eq!(b.attr_ns("urn:p&q<\n", "x"), Some("1"));
        assert_eq!(b.attr_ns("urn:s", "y"), Some("\t"));
        assert!(r.children[1].is("urn:other", "b"));
        assert!(r.children[2].is("urn:p&q<\n", "c"));
        assert!(r.children[3].is(super::super::ns::XML, "d"));
        assert!(r.children[4].is("urn:d", "xmlns"));
        assert!(r.children[5].is("urn:d", "\u{e9}l\u{e8}ve-1.\u{b7}\u{300}"));
        assert_eq!(parse(r.to_xml().as_bytes()).unwrap(), r);
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

    /// A namespace name: none, a few fixed ones (with characters the writer escapes, and the
    /// `xml` namespace, which the writer does not declare), or any XML 1.0 characters.
    fn namespace() -> BoxedStrategy<String> {
        prop_oneof![
            Just(String::new()),
            Just("urn:a".to_owned()),
            Just("urn:b?x=1&y=<2>\"'\t\n\r".to_owned()),
            Just(super::super::ns::XML.to_owned()),
            "[\\t\\n\\r\\u{20}-\\u{d7ff}\\u{e000}-\\u{fffd}\\u{10000}-\\u{10ffff}]{1,8}"
                .prop_filter("not the xmlns namespace", |n| n != XMLNS),
        ]
        .boxed()
    }

    /// An NCName (ASCII, some of the non-ASCII ranges of NameStartChar and NameChar).
    fn ncname() -> BoxedStrategy<String> {
        "[A-Za-z_\\u{c0}-\\u{d6}\\u{370}-\\u{37d}\\u{3001}-\\u{3010}\\u{10000}-\\u{10010}]\
         [-.0-9A-Za-z_\\u{b7}\\u{300}-\\u{305}\\u{203f}-\\u{2040}\\u{f8}-\\u{100}]{0,5}"
            .boxed()
    }

    fn xml_text() -> BoxedStrategy<String> {
        "[\\t\\n\\r\\u{20}-\\u{d7ff}\\u{e000}-\\u{fffd}\\u{10000}-\\u{10ffff}]{0,12}".boxed()
    }

    fn element() -> impl Strategy<Value = Element> {
        // An unprefixed `xmlns` is a namespace declaration, not an attribute.
        let attrs = proptest::collection::btree_map((namespace(), ncname()), xml_text(), 0..4)
            .prop_map(|m| {
                m.into_iter()
                    .filter(|((ns, name), _)| !(ns.is_empty() && name == "xmlns"))
                    .map(|((ns, name), value)| Attr { ns, name, value })
                    .collect::<Vec<_>>()
            });
        let node = (namespace(), ncname(), attrs, xml_text());
        let leaf = node.clone().prop_map(|(ns, name, attrs, text)| Element {
            ns,
            name,
            attrs,
            text,
            children: Vec::new(),
        });
        leaf.prop_recursive(4, 24, 4, move |inner| {
            (node.clone(), proptest::collection::vec(inner, 0..4)).prop_map(
                |((ns, name, attrs, text), children)| Element {
                    ns,
                    name,
                    attrs,
                    children,
                    text,
                },
            )
        })
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
        fn valid_trees_round_trip(el in element()) {
            let xml = el.to_xml();
            let again = parse(xml.as_bytes());
            prop_assert!(again.is_ok(), "{:?}: {}", again, xml);
            prop_assert_eq!(again.unwrap(), el, "{}", xml);
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
