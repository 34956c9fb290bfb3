//! ASN.1 structures the `x509-cert` crate does not provide: the Common-PKI Admission extension
//! (role OIDs of TI certificates) and the OCSP response (RFC 6960). `x509-ocsp` 0.2 is built
//! on `x509-cert` 0.2 / `der` 0.7 and cannot be mixed with `x509-cert` 0.3, hence our own.

use der::asn1::{Ia5String, Null, ObjectIdentifier, OctetString, PrintableString};
use der::{
    Choice, DateTime, DecodeValue, EncodeValue, Enumerated, FixedTag, Header, Length, Reader,
    Sequence, Tag, Writer,
};
use x509_cert::Certificate;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::{DirectoryString, GeneralName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// `id-isismtt-at-admission` (Common PKI), the extension carrying TI role OIDs.
pub(crate) const ID_ADMISSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.36.8.3.3");
pub(crate) const ID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const BRAINPOOL_P256R1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7");
pub(crate) const ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub(crate) const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
pub(crate) const ID_KP_OCSP_SIGNING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
pub(crate) const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
pub(crate) const ID_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

// ---------------------------------------------------------------------------------------------
// Admission (Common PKI SigG-Profile / gemSpec_PKI)
// ---------------------------------------------------------------------------------------------

/// `AdmissionSyntax ::= SEQUENCE { admissionAuthority GeneralName OPTIONAL,
///                                 contentsOfAdmissions SEQUENCE OF Admissions }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct AdmissionSyntax {
    #[asn1(optional = "true")]
    pub admission_authority: Option<GeneralName>,
    pub contents_of_admissions: Vec<Admissions>,
}

/// `Admissions ::= SEQUENCE { admissionAuthority [0] EXPLICIT GeneralName OPTIONAL,
///   namingAuthority [1] EXPLICIT NamingAuthority OPTIONAL, professionInfos SEQUENCE OF ProfessionInfo }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Admissions {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub admission_authority: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub naming_authority: Option<NamingAuthority>,
    pub profession_infos: Vec<ProfessionInfo>,
}

/// `NamingAuthority ::= SEQUENCE { namingAuthorityId OBJECT IDENTIFIER OPTIONAL,
///   namingAuthorityUrl IA5String OPTIONAL, namingAuthorityText DirectoryString OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct NamingAuthority {
    #[asn1(optional = "true")]
    pub naming_authority_id: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    pub naming_authority_url: Option<Ia5String>,
    #[asn1(optional = "true")]
    pub naming_authority_text: Option<DirectoryString>,
}

/// `ProfessionInfo ::= SEQUENCE { namingAuthority [0] EXPLICIT NamingAuthority OPTIONAL,
///   professionItems SEQUENCE OF DirectoryString, professionOIDs SEQUENCE OF OBJECT IDENTIFIER OPTIONAL,
///   registrationNumber PrintableString OPTIONAL, addProfessionInfo OCTET STRING OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct ProfessionInfo {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub naming_authority: Option<NamingAuthority>,
    pub profession_items: Vec<DirectoryString>,
    #[asn1(optional = "true")]
    pub profession_oids: Option<Vec<ObjectIdentifier>>,
    #[asn1(optional = "true")]
    pub registration_number: Option<PrintableString>,
    #[asn1(optional = "true")]
    pub add_profession_info: Option<OctetString>,
}

impl AdmissionSyntax {
    /// Every profession OID in the extension.
    pub fn profession_oids(&self) -> impl Iterator<Item = &ObjectIdentifier> {
        self.contents_of_admissions
            .iter()
            .flat_map(|a| a.profession_infos.iter())
            .flat_map(|p| p.profession_oids.iter().flatten())
    }
}

// ---------------------------------------------------------------------------------------------
// OCSP (RFC 6960 §4.2.1)
// ---------------------------------------------------------------------------------------------

/// `OCSPResponse ::= SEQUENCE { responseStatus OCSPResponseStatus,
///   responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct OcspResponse {
    pub response_status: OcspResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub response_bytes: Option<ResponseBytes>,
}

#[derive(Enumerated, Copy, Clone, Debug, Eq, PartialEq)]
#[repr(u32)]
pub(crate) enum OcspResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct ResponseBytes {
    pub response_type: ObjectIdentifier,
    pub response: OctetString,
}

/// `BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm
///   AlgorithmIdentifier, signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct BasicOcspResponse {
    pub tbs_response_data: ResponseData,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: der::asn1::BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub certs: Option<Vec<Certificate>>,
}

/// `ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
///   producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
///   responseExtensions [1] EXPLICIT Extensions OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct ResponseData {
    #[asn1(
        context_specific = "0",
        tag_mode = "EXPLICIT",
        default = "Default::default"
    )]
    pub version: OcspVersion,
    pub responder_id: ResponderId,
    pub produced_at: OcspTime,
    pub responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub response_extensions: Option<Extensions>,
}

#[derive(Enumerated, Copy, Clone, Debug, Default, Eq, PartialEq)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub(crate) enum OcspVersion {
    #[default]
    V1 = 0,
}

/// `ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }` (module default: EXPLICIT).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub(crate) enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
///   nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct SingleResponse {
    pub cert_id: CertId,
    pub cert_status: CertStatus,
    pub this_update: OcspTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub next_update: Option<OcspTime>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub single_extensions: Option<Extensions>,
}

/// `CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
///   issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct CertId {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub issuer_name_hash: OctetString,
    pub issuer_key_hash: OctetString,
    pub serial_number: SerialNumber,
}

/// `CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
///   unknown [2] IMPLICIT UnknownInfo }`
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub(crate) enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime,
///   revocationReason [0] EXPLICIT CRLReason OPTIONAL }`
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct RevokedInfo {
    pub revocation_time: OcspTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub revocation_reason: Option<x509_cert::ext::pkix::CrlReason>,
}

/// A GeneralizedTime as seconds since the Unix epoch. Decoding also accepts fractional seconds
/// (`YYYYMMDDHHMMSS.fffZ`, which e.g. BouncyCastle-based responders emit and `der`'s strict
/// `GeneralizedTime` rejects); the fraction is dropped. Encoding is always `YYYYMMDDHHMMSSZ`.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) struct OcspTime(pub u64);

impl FixedTag for OcspTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for OcspTime {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let bytes = reader.read_vec(header.length())?;
        parse_generalized_time(&bytes)
            .map(OcspTime)
            .ok_or_else(|| Tag::GeneralizedTime.value_error().into())
    }
}

impl EncodeValue for OcspTime {
    fn value_len(&self) -> der::Result<Length> {
        Ok(Length::new(15))
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        let dt = DateTime::from_unix_duration(core::time::Duration::from_secs(self.0))?;
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minutes(),
            dt.seconds()
        );
        writer.write(s.as_bytes())
    }
}

/// `YYYYMMDDHHMMSS[.f+]Z` → Unix seconds.
fn parse_generalized_time(bytes: &[u8]) -> Option<u64> {
    let (main, rest) = bytes.split_at_checked(14)?;
    if !main.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match rest {
        [b'Z'] => {}
        [b'.', frac @ .., b'Z'] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    let num = |r: core::ops::Range<usize>| {
        main.get(r)?
            .iter()
            .try_fold(0u16, |acc, d| Some(acc * 10 + u16::from(d - b'0')))
    };
    let year = num(0..4)?;
    let [month, day, hour, min, sec] =
        [4..6, 6..8, 8..10, 10..12, 12..14].map(|r| num(r).and_then(|v| u8::try_from(v).ok()));
    let dt = DateTime::new(year, month?, day?, hour?, min?, sec?).ok()?;
    Some(dt.unix_duration().as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn generalized_time_with_and_without_fraction() {
        assert_eq!(parse_generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(
            parse_generalized_time(b"20240326221614Z"),
            Some(1_711_491_374)
        );
        assert_eq!(
            parse_generalized_time(b"20240326221614.123Z"),
            Some(1_711_491_374)
        );
        assert_eq!(parse_generalized_time(b"20240326221614.Z"), None);
        assert_eq!(parse_generalized_time(b"20240326221614"), None);
        assert_eq!(parse_generalized_time(b"20241326221614Z"), None);
        assert_eq!(parse_generalized_time(b"2024032622161Z"), None);
        let t = OcspTime(1_711_491_374);
        let der = t.to_der().unwrap_or_default();
        assert_eq!(&der[2..], b"20240326221614Z");
        assert_eq!(OcspTime::from_der(&der).ok(), Some(t));
    }
}
