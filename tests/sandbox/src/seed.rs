//! Seed data: Aktensysteme, insurers, insurants (with GesundheitsID code, e-mail and record
//! state). The default fixture ships with the sandbox; `--seed FILE` replaces it.

use std::collections::{BTreeMap, HashSet};

use epa_protocol::kvnr::Kvnr;
use serde::{Deserialize, Serialize};

pub const DEFAULT_SEED: &str = include_str!("../seed/default.json");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    pub aktensysteme: Vec<AktensystemSeed>,
    pub insurers: Vec<InsurerSeed>,
    pub insurants: Vec<InsurantSeed>,
    /// Healthcare institutions that author and read documents.
    #[serde(default)]
    pub practices: Vec<PracticeSeed>,
    /// Documents in the records (XDS registry + repository).
    #[serde(default)]
    pub documents: Vec<DocumentSeed>,
    /// Who may act for whom ("Vertretung für Angehörige"); the entitlement service that grants
    /// them in the record builds on this.
    #[serde(default)]
    pub representations: Vec<RepresentationSeed>,
}

/// `representative` acts for `insurant` (both KVNRs of the seed; the insurant has a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepresentationSeed {
    pub insurant: String,
    pub representative: String,
}

/// A healthcare institution (practice, MVZ, hospital) as XDS author and audit actor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeSeed {
    pub telematik_id: String,
    pub name: String,
    /// Profession OID of the institution, e.g. 1.2.276.0.76.4.50 (Betriebsstätte Arzt).
    pub profession_oid: String,
    /// The physician named as authorPerson.
    pub doctor: DoctorSeed,
    /// healthcareFacilityTypeCode (system 1.3.6.1.4.1.19376.3.276.1.5.2), e.g. PRA, MVZ.
    pub facility_type_code: String,
    /// practiceSettingCode (system 1.3.6.1.4.1.19376.3.276.1.5.4), e.g. ALLG, LABO.
    pub practice_setting_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorSeed {
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    pub prefix: String,
}

/// Who put a seeded document into the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploaderSeed {
    /// The insurant (clients show it as "von mir").
    Insurant,
    /// A practice of `practices`, by TelematikID.
    Practice(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSeed {
    pub kvnr: String,
    pub title: String,
    #[serde(default)]
    pub comments: Option<String>,
    /// One of the files built into the sandbox (seed/documents/).
    pub file: String,
    pub mime_type: String,
    /// creationTime, RFC 3339 UTC (`2025-03-19T09:14:00Z`).
    pub created: String,
    pub uploaded_by: UploaderSeed,
    /// Category (static folder code, system 1.2.276.0.76.5.512).
    pub category: String,
    /// classCode (system 1.3.6.1.4.1.19376.3.276.1.5.8).
    pub class_code: String,
    /// typeCode (system 1.3.6.1.4.1.19376.3.276.1.5.9).
    pub type_code: String,
    /// Institutions that read the document: audit events for the record's access log.
    #[serde(default)]
    pub read_by: Vec<AccessSeed>,
    /// Title of the dynamic folder (one pregnancy, one DiGA, …) the document is filed in; the
    /// folder is created with the first document that names it.
    #[serde(default)]
    pub dynamic_folder: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSeed {
    /// TelematikID of a practice of `practices`.
    pub practice: String,
    /// RFC 3339 UTC.
    pub at: String,
}

/// Unix time of `YYYY-MM-DDThh:mm:ssZ`.
pub fn parse_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    epa_protocol::xds::rim::unix_from_dtm(&digits)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AktensystemSeed {
    pub id: String,
    pub host: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsurerSeed {
    pub name: String,
    /// Path segment of this insurer's IDP issuer.
    pub idp: String,
    /// Where this insurer's records live.
    pub aktensystem: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsurantSeed {
    pub kvnr: String,
    pub given_name: String,
    pub family_name: String,
    pub insurer: String,
    pub gesundheitsid_code: String,
    pub email: String,
    pub record: Option<RecordSeed>,
}

/// Record states of the Information Service (gemSpec_Aktensystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordStatus {
    Initialized,
    Activated,
    Suspended,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSeed {
    pub status: RecordStatus,
    /// Consent decisions of class "healthCareProcess": function id → "permit" | "deny".
    pub consent: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed is not valid JSON for the sandbox: {0}")]
    Json(#[from] serde_json::Error),
    #[error("seed: {0}")]
    Invalid(String),
}

impl Seed {
    pub fn default_seed() -> Result<Self, SeedError> {
        Self::parse(DEFAULT_SEED)
    }

    /// Parses and cross-checks: valid and unique KVNRs, known insurers and Aktensysteme, 6-digit
    /// GesundheitsID codes, consent decisions permit/deny.
    pub fn parse(text: &str) -> Result<Self, SeedError> {
        let seed: Seed = serde_json::from_str(text)?;
        let bad = |m: String| Err(SeedError::Invalid(m));
        if seed.aktensysteme.is_empty() {
            return bad("no Aktensystem".into());
        }
        let systems: HashSet<&str> = seed.aktensysteme.iter().map(|a| a.id.as_str()).collect();
        for i in &seed.insurers {
            if !systems.contains(i.aktensystem.as_str()) {
                return bad(format!(
                    "insurer {} names unknown Aktensystem {}",
                    i.name, i.aktensystem
                ));
            }
        }
        let mut kvnrs = HashSet::new();
        for p in &seed.insurants {
            let k = Kvnr::parse(&p.kvnr)
                .map_err(|e| SeedError::Invalid(format!("insurant {}: {e}", p.kvnr)))?;
            if k.as_str() != p.kvnr {
                return bad(format!(
                    "insurant {}: write the KVNR normalised ({k})",
                    p.kvnr
                ));
            }
            if !kvnrs.insert(p.kvnr.as_str()) {
                return bad(format!("insurant {} appears twice", p.kvnr));
            }
            if seed.insurer(&p.insurer).is_none() {
                return bad(format!(
                    "insurant {} names unknown insurer {}",
                    p.kvnr, p.insurer
                ));
            }
            if p.gesundheitsid_code.len() != 6
                || !p.gesundheitsid_code.bytes().all(|b| b.is_ascii_digit())
            {
                return bad(format!(
                    "insurant {}: the GesundheitsID code must be 6 digits",
                    p.kvnr
                ));
            }
            if let Some(r) = &p.record
                && let Some((f, d)) = r
                    .consent
                    .iter()
                    .find(|(_, d)| *d != "permit" && *d != "deny")
            {
                return bad(format!(
                    "insurant {}: consent {f} = {d:?}, expected permit or deny",
                    p.kvnr
                ));
            }
        }
        seed.check_documents()?;
        seed.check_representations()?;
        Ok(seed)
    }

    fn check_representations(&self) -> Result<(), SeedError> {
        for r in &self.representations {
            let what = format!("representation {} for {}", r.representative, r.insurant);
            if r.insurant == r.representative {
                return Err(SeedError::Invalid(format!(
                    "{what}: nobody represents themselves"
                )));
            }
            match self.insurants.iter().find(|p| p.kvnr == r.insurant) {
                Some(p) if p.record.is_some() => {}
                _ => {
                    return Err(SeedError::Invalid(format!(
                        "{what}: no insurant with a record"
                    )));
                }
            }
            if !self.insurants.iter().any(|p| p.kvnr == r.representative) {
                return Err(SeedError::Invalid(format!(
                    "{what}: unknown representative"
                )));
            }
        }
        Ok(())
    }

    /// Practices and documents: unique TelematikIDs, documents in existing ACTIVATED-or-not
    /// records, built-in files, known categories and MIME types, valid times.
    fn check_documents(&self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        let mut tids = HashSet::new();
        for p in &self.practices {
            if p.telematik_id.is_empty() || !tids.insert(p.telematik_id.as_str()) {
                return bad(format!(
                    "practice {:?}: empty or repeated TelematikID",
                    p.name
                ));
            }
            if !epa_protocol::xds::is_oid(&p.profession_oid) {
                return bad(format!(
                    "practice {}: profession_oid is no OID",
                    p.telematik_id
                ));
            }
        }
        for d in &self.documents {
            let what = format!("document {:?} of {}", d.title, d.kvnr);
            match self.insurants.iter().find(|p| p.kvnr == d.kvnr) {
                Some(p) if p.record.is_some() => {}
                _ => return bad(format!("{what}: no insurant with a record")),
            }
            if d.title.trim().is_empty() {
                return bad(format!("{what}: empty title"));
            }
            if crate::xds::seed_file(&d.file).is_none() {
                return bad(format!("{what}: unknown file {:?}", d.file));
            }
            if !crate::xds::MIME_TYPES.contains(&d.mime_type.as_str()) {
                return bad(format!("{what}: MIME type {:?} not allowed", d.mime_type));
            }
            if !crate::xds::CATEGORIES.contains(&d.category.as_str()) {
                return bad(format!("{what}: unknown category {:?}", d.category));
            }
            // Only these categories have one folder per case (gemSpec_Aktensystem, §5.6).
            if d.dynamic_folder.is_some()
                && !matches!(d.category.as_str(), "pregnancy_childbirth" | "diga")
            {
                return bad(format!(
                    "{what}: dynamic folders exist only in pregnancy_childbirth and diga"
                ));
            }
            if d.class_code.is_empty() || d.type_code.is_empty() {
                return bad(format!("{what}: class_code and type_code are required"));
            }
            if parse_utc(&d.created).is_none() {
                return bad(format!("{what}: created must be YYYY-MM-DDThh:mm:ssZ"));
            }
            if let UploaderSeed::Practice(t) = &d.uploaded_by
                && !tids.contains(t.as_str())
            {
                return bad(format!("{what}: unknown practice {t}"));
            }
            for r in &d.read_by {
                if !tids.contains(r.practice.as_str()) || parse_utc(&r.at).is_none() {
                    return bad(format!(
                        "{what}: read_by needs a known practice and a UTC time"
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn insurer(&self, name: &str) -> Option<&InsurerSeed> {
        self.insurers.iter().find(|i| i.name == name)
    }

    /// The Aktensystem that holds `insurant`'s record.
    pub fn aktensystem_of(&self, insurant: &InsurantSeed) -> Option<&str> {
        self.insurer(&insurant.insurer)
            .map(|i| i.aktensystem.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_shipped_seed_is_valid_and_covers_every_record_state() {
        let s = Seed::default_seed().unwrap();
        assert_eq!(s.aktensysteme.len(), 2);
        assert_eq!(
            s.insurers
                .iter()
                .filter(|i| i.name.starts_with("AOK"))
                .count(),
            11
        );
        let states: HashSet<_> = s
            .insurants
            .iter()
            .map(|i| i.record.as_ref().map(|r| r.status))
            .collect();
        for st in [
            None,
            Some(RecordStatus::Initialized),
            Some(RecordStatus::Activated),
            Some(RecordStatus::Suspended),
        ] {
            assert!(states.contains(&st), "{st:?}");
        }
    }

    #[test]
    fn broken_seeds_are_refused_with_the_reason() {
        let mut s: serde_json::Value = serde_json::from_str(DEFAULT_SEED).unwrap();
        s["insurants"][0]["kvnr"] = "X110411676".into();
        let e = Seed::parse(&s.to_string()).err().unwrap().to_string();
        assert!(e.contains("X110411676"), "{e}");
        let mut s: serde_json::Value = serde_json::from_str(DEFAULT_SEED).unwrap();
        s["insurants"][1]["insurer"] = "Nowhere BKK".into();
        assert!(
            Seed::parse(&s.to_string())
                .err()
                .unwrap()
                .to_string()
                .contains("unknown insurer")
        );
        assert!(Seed::parse("{}").is_err());
        let mut s: serde_json::Value = serde_json::from_str(DEFAULT_SEED).unwrap();
        s["representations"][0]["insurant"] = "E082462818".into();
        let e = Seed::parse(&s.to_string()).err().unwrap().to_string();
        assert!(e.contains("no insurant with a record"), "{e}");
        s["representations"][0]["insurant"] = "A526018157".into();
        assert!(
            Seed::parse(&s.to_string()).is_err(),
            "nobody represents themselves"
        );
    }

    #[test]
    fn seeded_documents_are_checked() {
        let s = Seed::default_seed().unwrap();
        assert!(s.documents.iter().any(|d| d.title == "Demo PDF"));
        for (field, value, msg) in [
            ("file", "nope.pdf", "unknown file"),
            ("category", "secret", "unknown category"),
            ("mime_type", "text/html", "not allowed"),
            ("created", "2025-03-19", "created must be"),
            ("kvnr", "E082462818", "no insurant with a record"),
        ] {
            let mut s: serde_json::Value = serde_json::from_str(DEFAULT_SEED).unwrap();
            s["documents"][0][field] = value.into();
            let e = Seed::parse(&s.to_string()).err().unwrap().to_string();
            assert!(e.contains(msg), "{field}: {e}");
        }
        let mut s: serde_json::Value = serde_json::from_str(DEFAULT_SEED).unwrap();
        s["documents"][0]["uploaded_by"] = serde_json::json!({"practice": "9-nobody"});
        assert!(
            Seed::parse(&s.to_string())
                .err()
                .unwrap()
                .to_string()
                .contains("unknown practice")
        );
        assert_eq!(parse_utc("1970-01-01T00:01:00Z"), Some(60));
        assert_eq!(parse_utc("2025-02-30T00:00:00Z"), None);
    }
}
