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
        Ok(seed)
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
    }
}
