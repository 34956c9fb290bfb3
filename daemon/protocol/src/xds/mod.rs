//! XDS Document Service codec (epa-protocol.md §5): SOAP 1.2 envelopes with WS-Addressing,
//! MTOM/XOP packaging, the ebRIM model of DocumentEntry / SubmissionSet / Association, and the
//! request and response messages of ITI-18 (stored queries), ITI-41 (provide and register),
//! ITI-43 (retrieve), ITI-62 (delete) and ITI-92 (restricted update).
//!
//! Both sides use it: the daemon builds requests and parses responses, the sandbox parses
//! requests and builds responses. Everything that reads bytes from outside returns
//! [`XdsError`] and never panics; parsing is bounded (element depth and count, MTOM parts).
//! Randomness (message ids, UUIDs) is injected by the caller.

pub mod base64;
pub mod mtom;
pub mod query;
pub mod retrieve;
pub mod rim;
pub mod soap;
pub mod submit;
pub mod xml;

/// Namespaces of the messages (§5.1).
pub mod ns {
    pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
    pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    pub const WSA: &str = "http://www.w3.org/2005/08/addressing";
    pub const XDSB: &str = "urn:ihe:iti:xds-b:2007";
    pub const QUERY: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0";
    pub const RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
    pub const RS: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0";
    pub const LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
    pub const RMD: &str = "urn:ihe:iti:rmd:2017";
    pub const XOP: &str = "http://www.w3.org/2004/08/xop/include";
    pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
}

/// `wsa:Action` values of the five operations (XDSDocumentService.wsdl).
pub mod action {
    pub const REGISTRY_STORED_QUERY: &str = "urn:ihe:iti:2007:RegistryStoredQuery";
    pub const REGISTRY_STORED_QUERY_RESPONSE: &str = "urn:ihe:iti:2007:RegistryStoredQueryResponse";
    pub const RETRIEVE_DOCUMENT_SET: &str = "urn:ihe:iti:2007:RetrieveDocumentSet";
    pub const RETRIEVE_DOCUMENT_SET_RESPONSE: &str = "urn:ihe:iti:2007:RetrieveDocumentSetResponse";
    pub const PROVIDE_AND_REGISTER: &str = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b";
    pub const PROVIDE_AND_REGISTER_RESPONSE: &str =
        "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse";
    pub const DELETE_DOCUMENT_SET: &str = "urn:ihe:iti:2010:DeleteDocumentSet";
    pub const DELETE_DOCUMENT_SET_RESPONSE: &str = "urn:ihe:iti:2010:DeleteDocumentSetResponse";
    pub const RESTRICTED_UPDATE: &str = "urn:ihe:iti:2018:RestrictedUpdateDocumentSet";
    pub const RESTRICTED_UPDATE_RESPONSE: &str =
        "urn:ihe:iti:2018:RestrictedUpdateDocumentSetResponse";

    /// The response action of a request action.
    pub fn response_of(request: &str) -> Option<&'static str> {
        Some(match request {
            REGISTRY_STORED_QUERY => REGISTRY_STORED_QUERY_RESPONSE,
            RETRIEVE_DOCUMENT_SET => RETRIEVE_DOCUMENT_SET_RESPONSE,
            PROVIDE_AND_REGISTER => PROVIDE_AND_REGISTER_RESPONSE,
            DELETE_DOCUMENT_SET => DELETE_DOCUMENT_SET_RESPONSE,
            RESTRICTED_UPDATE => RESTRICTED_UPDATE_RESPONSE,
            _ => return None,
        })
    }
}

/// `@status` values of registry responses.
pub mod status {
    pub const SUCCESS: &str = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success";
    pub const FAILURE: &str = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure";
    pub const PARTIAL_SUCCESS: &str = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess";
    pub const APPROVED: &str = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved";
    pub const DEPRECATED: &str = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated";
    pub const SEVERITY_ERROR: &str = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error";
    pub const SEVERITY_WARNING: &str = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning";
}

/// IHE registry error codes (`rs:RegistryError/@errorCode`, §5.4).
pub mod error_code {
    pub const REGISTRY_ERROR: &str = "XDSRegistryError";
    pub const REPOSITORY_ERROR: &str = "XDSRepositoryError";
    pub const UNKNOWN_PATIENT_ID: &str = "XDSUnknownPatientId";
    pub const PATIENT_ID_DOES_NOT_MATCH: &str = "XDSPatientIdDoesNotMatch";
    pub const REGISTRY_METADATA_ERROR: &str = "XDSRegistryMetadataError";
    pub const REPOSITORY_METADATA_ERROR: &str = "XDSRepositoryMetadataError";
    pub const DOCUMENT_UNIQUE_ID_ERROR: &str = "XDSDocumentUniqueIdError";
    pub const MISSING_DOCUMENT: &str = "XDSMissingDocument";
    pub const MISSING_DOCUMENT_METADATA: &str = "XDSMissingDocumentMetadata";
    pub const DUPLICATE_UNIQUE_ID_IN_REGISTRY: &str = "XDSDuplicateUniqueIdInRegistry";
    pub const STORED_QUERY_PARAM_NUMBER: &str = "XDSStoredQueryParamNumber";
    pub const UNKNOWN_STORED_QUERY: &str = "XDSUnknownStoredQuery";
    pub const TOO_MANY_RESULTS: &str = "XDSTooManyResults";
    pub const UNKNOWN_REPOSITORY_ID: &str = "XDSUnknownRepositoryId";
    pub const METADATA_VERSION_ERROR: &str = "XDSMetadataVersionError";
    pub const UNRESOLVED_REFERENCE: &str = "UnresolvedReferenceException";
}

/// Everything that can go wrong building or parsing an XDS message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XdsError {
    #[error("XML: {0}")]
    Xml(String),
    #[error("MTOM/multipart: {0}")]
    Mtom(String),
    #[error("SOAP: {0}")]
    Soap(String),
    #[error("metadata: {0}")]
    Metadata(String),
}

pub(crate) fn meta<T>(msg: impl Into<String>) -> Result<T, XdsError> {
    Err(XdsError::Metadata(msg.into()))
}

/// The XDS `hash` of a document: SHA-1, lower-case hex (ITI TF-3 §4.2.3.2.11).
pub fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh random (version 4) UUID, lower case, without `urn:uuid:`.
pub fn new_uuid(rng: &mut impl rand_core::CryptoRng) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    format_uuid(b, 4)
}

/// A UUID derived from a name (SHA-256, "custom" version 8): stable ids for the sub-objects
/// (classifications, external identifiers) of an object, without a random source.
pub fn derived_uuid(name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    format_uuid(b, 8)
}

/// 16 bytes as a lower-case `8-4-4-4-12` UUID, with the version nibble set to `version` and
/// the RFC 4122 variant bits.
pub fn format_uuid(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The OID `2.25.<decimal of the UUID>` (ITU-T X.667) for a UUID string; `None` if it is not a
/// UUID. Used for `uniqueId`s (§5.3), at most 44 characters.
pub fn uuid_oid(uuid: &str) -> Option<String> {
    let u = uuid.strip_prefix("urn:uuid:").unwrap_or(uuid);
    if !is_uuid(u) {
        return None;
    }
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    let n = u128::from_str_radix(&hex, 16).ok()?;
    Some(format!("2.25.{n}"))
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `urn:uuid:` followed by a UUID.
pub fn is_urn_uuid(s: &str) -> bool {
    s.strip_prefix("urn:uuid:").is_some_and(is_uuid)
}

/// An OID as XDS wants it for uniqueIds: `[0-2](.(0|[1-9][0-9]*))+`, at most 64 characters.
pub fn is_oid(s: &str) -> bool {
    if s.len() > 64 {
        return false;
    }
    let mut arcs = s.split('.');
    let Some(first) = arcs.next() else {
        return false;
    };
    if !matches!(first, "0" | "1" | "2") {
        return false;
    }
    let mut n = 0;
    for a in arcs {
        n += 1;
        if a.is_empty()
            || !a.bytes().all(|b| b.is_ascii_digit())
            || (a.len() > 1 && a.starts_with('0'))
        {
            return false;
        }
    }
    n >= 1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn oids_and_uuids() {
        assert!(is_oid("1.2.276.0.76.4.8"));
        assert!(is_oid("2.25.0"));
        for bad in [
            "",
            "3.1",
            "1",
            "1.",
            "1..2",
            "1.02",
            "1.a",
            &format!("1.{}", "1".repeat(70)),
        ] {
            assert!(!is_oid(bad), "{bad}");
        }
        let o = uuid_oid("urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff").unwrap();
        assert!(is_oid(&o) && o.len() <= 44, "{o}");
        assert_eq!(
            uuid_oid("00000000-0000-0000-0000-000000000001").unwrap(),
            "2.25.1"
        );
        assert!(uuid_oid("nope").is_none());
        let d = derived_uuid("x");
        assert!(is_uuid(&d) && d.as_bytes()[14] == b'8', "{d}");
        assert_eq!(d, derived_uuid("x"));
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}
