//! A small, deterministic test PKI for the simulator and tests: root → component CA →
//! VAU signing certificate (Admission extension with `oid_epa_vau`), plus OCSP responses.
//! Every certificate says `TEST-ONLY`; nothing here is fit for production.

use core::fmt::Display;
use core::str::FromStr;
use core::time::Duration;

use der::asn1::{BitString, Null, ObjectIdentifier, OctetString};
use der::{DateTime, Decode, Encode};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{self, Builder, CertificateBuilder};
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{
    AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};
use x509_cert::time::{Time, Validity};

use super::EPA_VAU_OID;
use super::asn1::{
    AdmissionSyntax, Admissions, BasicOcspResponse, CertId, CertStatus, ECDSA_WITH_SHA256,
    ID_ADMISSION, ID_KP_OCSP_SIGNING, ID_PKIX_OCSP_BASIC, ID_SHA256, OcspResponse,
    OcspResponseStatus, OcspTime, OcspVersion, ProfessionInfo, ResponderId, ResponseBytes,
    ResponseData, RevokedInfo, SingleResponse,
};

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
const YEAR: u64 = 365 * DAY;

const ROOT_NAME: &str = "CN=GEM.RCA-EPA-DESKTOP TEST-ONLY,OU=Zentrale Root-CA der Telematikinfrastruktur,O=gematik GmbH NOT-VALID,C=DE";
const CA_NAME: &str = "CN=GEM.KOMP-CA-EPA-DESKTOP TEST-ONLY,OU=Komponenten-CA der Telematikinfrastruktur,O=gematik GmbH NOT-VALID,C=DE";
const VAU_NAME: &str =
    "CN=epa-desktop VAU-Aktensystem TEST-ONLY,O=epa-desktop Simulator NOT-VALID,C=DE";
const OCSP_NAME: &str =
    "CN=epa-desktop OCSP-Signer TEST-ONLY,O=epa-desktop Simulator NOT-VALID,C=DE";
/// professionItem of a VAU certificate (gemSpec_PKI).
const VAU_PROFESSION_ITEM: &str = "ePA vertrauenswürdige Ausführungsumgebung";
/// The role put into a signer issued `with_role_oid = false`: some other TI role.
const OTHER_ROLE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.276.0.76.4.258");

/// A small test PKI: root → component CA ("GEM.KOMP-CA… TEST-ONLY") → VAU signing
/// certificate with the Admission extension carrying `OID_EPA_VAU`; plus OCSP responses.
///
/// The methods panic only on impossible inputs (times past year 9999, a `cert_der` that is not
/// a certificate); they are meant for simulators and tests.
#[derive(Debug, Clone)]
pub struct TestPki {
    root_key: SigningKey,
    root_der: Vec<u8>,
    ca_key: SigningKey,
    ca_der: Vec<u8>,
    ca_cert: Certificate,
}

/// A VAU signing certificate and its key.
#[derive(Debug, Clone)]
pub struct VauSigner {
    pub cert_der: Vec<u8>,
    pub key: SigningKey,
}

impl VauSigner {
    /// SHA-256 of the DER certificate (`cert_hash` in M2).
    pub fn cert_hash(&self) -> [u8; 32] {
        sha256(&self.cert_der)
    }
}

impl TestPki {
    /// Root (valid now−1 h … now+20 y) and component CA (now−1 h … now+10 y). Deterministic for
    /// a given `rng` state: keys and serial numbers come from it, signatures are RFC 6979.
    pub fn generate(rng: &mut impl CryptoRng, now_unix: u64) -> Self {
        let root_key = SigningKey::generate_from_rng(rng);
        let root_name = name(ROOT_NAME);
        let root = issue(
            Profile {
                subject: root_name.clone(),
                issuer: root_name.clone(),
                extensions: ca_extensions(),
            },
            SerialNumber::generate(rng),
            validity(
                now_unix.saturating_sub(HOUR),
                now_unix.saturating_add(20 * YEAR),
            ),
            root_key.verifying_key(),
            &root_key,
        );
        let ca_key = SigningKey::generate_from_rng(rng);
        let ca_cert = issue(
            Profile {
                subject: name(CA_NAME),
                issuer: root_name,
                extensions: vec![
                    ext(
                        true,
                        &BasicConstraints {
                            ca: true,
                            path_len_constraint: Some(0),
                        },
                    ),
                    ext(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
                ],
            },
            SerialNumber::generate(rng),
            validity(
                now_unix.saturating_sub(HOUR),
                now_unix.saturating_add(10 * YEAR),
            ),
            ca_key.verifying_key(),
            &root_key,
        );
        Self {
            root_key,
            root_der: must(root.to_der(), "encode root"),
            ca_key,
            ca_der: must(ca_cert.to_der(), "encode CA"),
            ca_cert,
        }
    }

    /// DER of the self-signed root (the trust anchor for `CertVerification::Strict`).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// DER of the component CA (`CertData::ca`).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// A cross certificate in which this PKI's root certifies `other`'s root key (subject =
    /// `other`'s root name), valid now−1 h … now+10 y: an `rca_chain` entry leading from this
    /// root to `other`'s CA.
    pub fn cross_certify(
        &self,
        other: &TestPki,
        rng: &mut impl CryptoRng,
        now_unix: u64,
    ) -> Vec<u8> {
        let other_root = must(Certificate::from_der(&other.root_der), "other root");
        let own_root = must(Certificate::from_der(&self.root_der), "own root");
        let cross = issue(
            Profile {
                subject: other_root.tbs_certificate().subject().clone(),
                issuer: own_root.tbs_certificate().subject().clone(),
                extensions: ca_extensions(),
            },
            SerialNumber::generate(rng),
            validity(
                now_unix.saturating_sub(HOUR),
                now_unix.saturating_add(10 * YEAR),
            ),
            other.root_key.verifying_key(),
            &self.root_key,
        );
        must(cross.to_der(), "encode cross certificate")
    }

    /// A VAU signing certificate (valid now−1 h … now+1 y, key usage digitalSignature). With
    /// `with_role_oid = false` the Admission extension carries another role instead of
    /// `oid_epa_vau` (for negative tests).
    pub fn issue_vau_signer(
        &self,
        rng: &mut impl CryptoRng,
        now_unix: u64,
        with_role_oid: bool,
    ) -> VauSigner {
        let key = SigningKey::generate_from_rng(rng);
        let role = if with_role_oid {
            EPA_VAU_OID
        } else {
            OTHER_ROLE_OID
        };
        let admission = AdmissionSyntax {
            admission_authority: None,
            contents_of_admissions: vec![Admissions {
                admission_authority: None,
                naming_authority: None,
                profession_infos: vec![ProfessionInfo {
                    naming_authority: None,
                    profession_items: vec![DirectoryString::Utf8String(
                        VAU_PROFESSION_ITEM.to_owned(),
                    )],
                    profession_oids: Some(vec![role]),
                    registration_number: None,
                    add_profession_info: None,
                }],
            }],
        };
        let cert = issue(
            Profile {
                subject: name(VAU_NAME),
                issuer: self.ca_cert.tbs_certificate().subject().clone(),
                extensions: vec![
                    ext(
                        true,
                        &BasicConstraints {
                            ca: false,
                            path_len_constraint: None,
                        },
                    ),
                    ext(true, &KeyUsage(KeyUsages::DigitalSignature.into())),
                    must(
                        (ID_ADMISSION, false, &admission).to_extension(&Name::default(), &[]),
                        "admission extension",
                    ),
                ],
            },
            SerialNumber::generate(rng),
            validity(now_unix.saturating_sub(HOUR), now_unix.saturating_add(YEAR)),
            key.verifying_key(),
            &self.ca_key,
        );
        VauSigner {
            cert_der: must(cert.to_der(), "encode VAU certificate"),
            key,
        }
    }

    /// A basic OCSP response signed by the CA itself: *good* or *revoked* for `cert_der`,
    /// `producedAt` = `thisUpdate` = `produced_at_unix`, no `nextUpdate`, CertID with SHA-256.
    ///
    /// # Panics
    /// If `cert_der` is not a DER certificate.
    pub fn ocsp_response(
        &self,
        cert_der: &[u8],
        status_good: bool,
        produced_at_unix: u64,
    ) -> Vec<u8> {
        self.build_ocsp(cert_der, status_good, produced_at_unix, &self.ca_key, None)
    }

    /// Like [`TestPki::ocsp_response`], but signed by a fresh delegated responder certificate
    /// the CA issues (valid around `produced_at_unix`) and embedded in the response. With
    /// `with_ocsp_signing_eku = false` the responder lacks `id-kp-OCSPSigning` and the response
    /// must be refused.
    pub fn ocsp_response_delegated(
        &self,
        rng: &mut impl CryptoRng,
        cert_der: &[u8],
        status_good: bool,
        produced_at_unix: u64,
        with_ocsp_signing_eku: bool,
    ) -> Vec<u8> {
        let key = SigningKey::generate_from_rng(rng);
        let mut extensions = vec![ext(true, &KeyUsage(KeyUsages::DigitalSignature.into()))];
        if with_ocsp_signing_eku {
            extensions.push(ext(false, &ExtendedKeyUsage(vec![ID_KP_OCSP_SIGNING])));
        }
        let responder = issue(
            Profile {
                subject: name(OCSP_NAME),
                issuer: self.ca_cert.tbs_certificate().subject().clone(),
                extensions,
            },
            SerialNumber::generate(rng),
            validity(
                produced_at_unix.saturating_sub(DAY),
                produced_at_unix.saturating_add(YEAR),
            ),
            key.verifying_key(),
            &self.ca_key,
        );
        self.build_ocsp(
            cert_der,
            status_good,
            produced_at_unix,
            &key,
            Some(responder),
        )
    }

    fn build_ocsp(
        &self,
        cert_der: &[u8],
        status_good: bool,
        produced_at_unix: u64,
        signer: &SigningKey,
        responder: Option<Certificate>,
    ) -> Vec<u8> {
        let cert = must(
            Certificate::from_der(cert_der),
            "certificate for the OCSP response",
        );
        let ca_tbs = self.ca_cert.tbs_certificate();
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: ID_SHA256,
                parameters: None,
            },
            issuer_name_hash: octets(&sha256(&must(ca_tbs.subject().to_der(), "CA name"))),
            issuer_key_hash: octets(&sha256(
                ca_tbs
                    .subject_public_key_info()
                    .subject_public_key
                    .raw_bytes(),
            )),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        };
        let cert_status = if status_good {
            CertStatus::Good(Null)
        } else {
            CertStatus::Revoked(RevokedInfo {
                revocation_time: OcspTime(produced_at_unix.saturating_sub(HOUR)),
                revocation_reason: None,
            })
        };
        // byKey: SHA-1 of the responder's public key bits (RFC 6960 §4.2.1).
        let responder_key = signer.verifying_key().to_sec1_point(false);
        let key_hash = sha1::Sha1::digest(responder_key.as_bytes());
        let data = ResponseData {
            version: OcspVersion::V1,
            responder_id: ResponderId::ByKey(octets(&key_hash)),
            produced_at: OcspTime(produced_at_unix),
            responses: vec![SingleResponse {
                cert_id,
                cert_status,
                this_update: OcspTime(produced_at_unix),
                next_update: None,
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let tbs = must(data.to_der(), "encode ResponseData");
        let signature: DerSignature = signer.sign(&tbs);
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            signature: must(
                BitString::from_bytes(signature.as_bytes()),
                "signature bits",
            ),
            certs: responder.map(|c| vec![c]),
        };
        let response = OcspResponse {
            response_status: OcspResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: ID_PKIX_OCSP_BASIC,
                response: octets(&must(basic.to_der(), "encode BasicOCSPResponse")),
            }),
        };
        must(response.to_der(), "encode OCSPResponse")
    }
}

/// Certificate profile: fixed names and extensions, plus SKI/AKI.
struct Profile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> builder::Result<Vec<Extension>> {
        let mut extensions = self.extensions.clone();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(SubjectKeyIdentifier::try_from(issuer_spk)?.0),
            ..Default::default()
        };
        extensions.push((false, &ski).to_extension(&self.subject, &[])?);
        extensions.push((false, &aki).to_extension(&self.subject, &[])?);
        Ok(extensions)
    }
}

fn issue(
    profile: Profile,
    serial: SerialNumber,
    validity: Validity,
    subject_key: &p256::ecdsa::VerifyingKey,
    issuer_key: &SigningKey,
) -> Certificate {
    let spki = must(
        SubjectPublicKeyInfoOwned::from_key(subject_key),
        "subject key",
    );
    let builder = must(
        CertificateBuilder::new(profile, serial, validity, spki),
        "certificate builder",
    );
    must(
        builder.build::<_, DerSignature>(issuer_key),
        "sign certificate",
    )
}

/// What every CA certificate of the test PKI carries: CA basic constraints and cert/CRL signing.
fn ca_extensions() -> Vec<Extension> {
    vec![
        ext(
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        ),
        ext(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)),
    ]
}

fn ext<T>(critical: bool, value: &T) -> Extension
where
    T: der::oid::AssociatedOid + Encode,
{
    must(
        (critical, value).to_extension(&Name::default(), &[]),
        "extension",
    )
}

fn name(s: &str) -> Name {
    must(Name::from_str(s), "name")
}

fn validity(not_before: u64, not_after: u64) -> Validity {
    let time = |t: u64| {
        must(
            DateTime::from_unix_duration(Duration::from_secs(t)),
            "certificate time",
        )
    };
    Validity::new(Time::from(time(not_before)), Time::from(time(not_after)))
}

fn octets(bytes: &[u8]) -> OctetString {
    must(OctetString::new(bytes), "octet string")
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(data));
    out
}

/// The test PKI's operations cannot fail for valid inputs; a failure is a programming error.
fn must<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("TestPki: {what}: {e}"),
    }
}
