#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::DirectoryString;

use super::asn1::{AdmissionSyntax, Admissions, NamingAuthority, ProfessionInfo};
use super::*;

const NOW: u64 = 1_795_000_000;

#[test]
fn oid_constant_matches_string() {
    assert_eq!(EPA_VAU_OID.to_string(), OID_EPA_VAU);
}

fn profession(oids: Option<Vec<ObjectIdentifier>>) -> ProfessionInfo {
    ProfessionInfo {
        naming_authority: None,
        profession_items: vec![DirectoryString::Utf8String("x".into())],
        profession_oids: oids,
        registration_number: None,
        add_profession_info: None,
    }
}

#[test]
fn admission_with_all_optional_fields_round_trips() {
    let vau = EPA_VAU_OID;
    let other = ObjectIdentifier::new_unwrap("1.2.276.0.76.4.50");
    let adm = AdmissionSyntax {
        admission_authority: Some(x509_cert::ext::pkix::name::GeneralName::RegisteredId(other)),
        contents_of_admissions: vec![
            Admissions {
                admission_authority: None,
                naming_authority: Some(NamingAuthority {
                    naming_authority_id: Some(other),
                    naming_authority_url: None,
                    naming_authority_text: Some(DirectoryString::Utf8String("gematik".into())),
                }),
                profession_infos: vec![profession(None), profession(Some(vec![other]))],
            },
            Admissions {
                admission_authority: None,
                naming_authority: None,
                profession_infos: vec![ProfessionInfo {
                    naming_authority: Some(NamingAuthority {
                        naming_authority_id: None,
                        naming_authority_url: None,
                        naming_authority_text: None,
                    }),
                    registration_number: Some(der::asn1::PrintableString::new("12345").unwrap()),
                    add_profession_info: Some(OctetString::new(vec![1, 2]).unwrap()),
                    ..profession(Some(vec![other, vau]))
                }],
            },
        ],
    };
    let der = adm.to_der().unwrap();
    let back = AdmissionSyntax::from_der(&der).unwrap();
    assert_eq!(back, adm);
    assert_eq!(
        back.profession_oids().copied().collect::<Vec<_>>(),
        vec![other, other, vau]
    );
}

#[test]
fn admission_as_written_by_openssl_genconf_decodes() {
    // SEQUENCE { SEQUENCE { SEQUENCE { SEQUENCE { SEQUENCE {
    //   SEQUENCE { UTF8String "ePA vertrauenswürdige Ausführungsumgebung" (doubly UTF-8
    //   encoded by openssl's config reader) }, SEQUENCE { OID 1.2.276.0.76.4.209 } } } } } }
    let der = hex::decode(concat!(
        "3047304530433041303f30310c2f",
        "6550412076657274726175656e7377c383c2bc72646967652041757366c383c2bc6872756e6773756d676562756e67",
        "300a06082a8214004c048151"
    ))
    .unwrap();
    match AdmissionSyntax::from_der(&der) {
        Ok(adm) => assert!(adm.profession_oids().any(|o| *o == EPA_VAU_OID)),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn role_check_reads_the_extension_of_a_test_certificate() {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let with = pki.issue_vau_signer(&mut rng, NOW, true);
    let without = pki.issue_vau_signer(&mut rng, NOW, false);
    let with = Certificate::from_der(&with.cert_der).unwrap();
    let without = Certificate::from_der(&without.cert_der).unwrap();
    x509::check_role(&with, EPA_VAU_OID).unwrap();
    assert!(matches!(
        x509::check_role(&without, EPA_VAU_OID),
        Err(PkiError::MissingRole)
    ));
    // The CA has no Admission extension at all.
    let ca = Certificate::from_der(pki.ca_der()).unwrap();
    assert!(matches!(
        x509::check_role(&ca, EPA_VAU_OID),
        Err(PkiError::MissingRole)
    ));
    assert!(x509::is_ca(&ca));
    assert!(!x509::is_ca(&with));
}

#[test]
fn signed_parts_cover_exactly_the_tbs_and_reject_trailing_bytes() {
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let (tbs, sig) = x509::signed_parts(pki.ca_der()).unwrap();
    let cert = Certificate::from_der(pki.ca_der()).unwrap();
    assert_eq!(tbs, cert.tbs_certificate().to_der().unwrap());
    assert_eq!(sig, cert.signature().raw_bytes());
    let mut longer = pki.ca_der().to_vec();
    longer.push(0);
    assert!(x509::signed_parts(&longer).is_err());
    assert!(matches!(
        x509::parse_cert(&longer, "ca"),
        Err(PkiError::Malformed(_))
    ));
}

#[test]
fn ec_keys_of_other_curves_are_unsupported() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let cert = Certificate::from_der(pki.root_der()).unwrap();
    let mut spki = cert.tbs_certificate().subject_public_key_info().clone();
    spki.algorithm.parameters =
        Some(der::Any::encode_from(&ObjectIdentifier::new_unwrap("1.3.132.0.34")).unwrap());
    assert!(matches!(
        x509::EcKey::from_spki(&spki),
        Err(PkiError::UnsupportedKey(_))
    ));
    spki.algorithm.oid = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    assert!(matches!(
        x509::EcKey::from_spki(&spki),
        Err(PkiError::UnsupportedKey(_))
    ));
}

#[test]
fn certificate_signatures_need_ecdsa_with_sha256() {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let pki = TestPki::generate(&mut rng, NOW);
    let root = x509::parse_cert(pki.root_der(), "root").unwrap();
    let ca = x509::parse_cert(pki.ca_der(), "ca").unwrap();
    assert!(x509::issued_by(&ca, &root));
    assert!(x509::issued_by(&root, &root));
    assert!(!x509::issued_by(&root, &ca));
    let key =
        x509::EcKey::from_spki(root.cert.tbs_certificate().subject_public_key_info()).unwrap();
    let mut alg = ca.cert.signature_algorithm().clone();
    assert!(key.verify(&alg, ca.tbs_der, ca.signature));
    alg.oid = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"); // ecdsa-with-SHA384
    assert!(!key.verify(&alg, ca.tbs_der, ca.signature));
}
