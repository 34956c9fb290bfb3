//! The versioned legal texts shipped with epa-desktop: terms of use (Nutzungsbedingungen),
//! usage notes (Nutzungshinweise), privacy statement (Datenschutzerklärung) and legal notice
//! (Impressum), in German (the primary language) and English.
//!
//! The texts are Markdown files under `daemon/legal/{de,en}/<kind id>.md`, compiled into the
//! binary. Each body starts with the line `Version <TERMS_VERSION>` and carries no top-level
//! heading (clients show [`LegalText::title`] themselves). All four texts share one version:
//! when any of them changes in substance, bump [`TERMS_VERSION`] and the version line in every
//! file (a test enforces the latter); users are then asked to accept the new terms.

/// Version of the legal texts, in particular of the terms of use the user must accept.
pub const TERMS_VERSION: &str = "2026-11";

/// Language of a legal text. German is authoritative; English is a courtesy translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegalLang {
    De,
    En,
}

/// Which legal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegalKind {
    /// Nutzungsbedingungen — the text the user accepts.
    TermsOfUse,
    /// Nutzungshinweise.
    UsageNotes,
    /// Datenschutzerklärung.
    PrivacyStatement,
    /// Impressum.
    Imprint,
}

impl LegalKind {
    /// All kinds, in the order [`legal_texts`] returns them.
    pub const ALL: [LegalKind; 4] = [
        LegalKind::TermsOfUse,
        LegalKind::UsageNotes,
        LegalKind::PrivacyStatement,
        LegalKind::Imprint,
    ];

    /// Stable identifier used on the wire and as the file name.
    pub fn id(self) -> &'static str {
        match self {
            LegalKind::TermsOfUse => "terms_of_use",
            LegalKind::UsageNotes => "usage_notes",
            LegalKind::PrivacyStatement => "privacy_statement",
            LegalKind::Imprint => "imprint",
        }
    }
}

/// One legal text in one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegalText {
    pub kind: LegalKind,
    pub title: &'static str,
    pub version: &'static str,
    /// Markdown, starting with the line `Version <version>`.
    pub body: &'static str,
}

/// One legal text in `lang`.
pub fn legal_text(lang: LegalLang, kind: LegalKind) -> LegalText {
    let (title, body) = match (lang, kind) {
        (LegalLang::De, LegalKind::TermsOfUse) => (
            "Nutzungsbedingungen",
            include_str!("../legal/de/terms_of_use.md"),
        ),
        (LegalLang::De, LegalKind::UsageNotes) => (
            "Nutzungshinweise",
            include_str!("../legal/de/usage_notes.md"),
        ),
        (LegalLang::De, LegalKind::PrivacyStatement) => (
            "Datenschutzerklärung",
            include_str!("../legal/de/privacy_statement.md"),
        ),
        (LegalLang::De, LegalKind::Imprint) => {
            ("Impressum", include_str!("../legal/de/imprint.md"))
        }
        (LegalLang::En, LegalKind::TermsOfUse) => {
            ("Terms of use", include_str!("../legal/en/terms_of_use.md"))
        }
        (LegalLang::En, LegalKind::UsageNotes) => {
            ("Usage notes", include_str!("../legal/en/usage_notes.md"))
        }
        (LegalLang::En, LegalKind::PrivacyStatement) => (
            "Privacy statement",
            include_str!("../legal/en/privacy_statement.md"),
        ),
        (LegalLang::En, LegalKind::Imprint) => {
            ("Legal notice", include_str!("../legal/en/imprint.md"))
        }
    };
    LegalText {
        kind,
        title,
        version: TERMS_VERSION,
        body,
    }
}

/// All four legal texts in `lang`, in the order of [`LegalKind::ALL`].
pub fn legal_texts(lang: LegalLang) -> [LegalText; 4] {
    LegalKind::ALL.map(|kind| legal_text(lang, kind))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const LANGS: [LegalLang; 2] = [LegalLang::De, LegalLang::En];

    #[test]
    fn both_languages_have_all_four_texts_in_order() {
        for lang in LANGS {
            let texts = legal_texts(lang);
            let kinds: Vec<LegalKind> = texts.iter().map(|t| t.kind).collect();
            assert_eq!(kinds, LegalKind::ALL, "{lang:?}");
            for text in texts {
                assert!(!text.title.is_empty(), "{lang:?} {:?}", text.kind);
                assert!(!text.body.trim().is_empty(), "{lang:?} {:?}", text.kind);
                assert_eq!(text.version, TERMS_VERSION, "{lang:?} {:?}", text.kind);
                assert_eq!(text, legal_text(lang, text.kind));
            }
        }
    }

    #[test]
    fn titles_are_as_specified() {
        let titles = |lang| legal_texts(lang).map(|t| t.title);
        assert_eq!(
            titles(LegalLang::De),
            [
                "Nutzungsbedingungen",
                "Nutzungshinweise",
                "Datenschutzerklärung",
                "Impressum"
            ]
        );
        assert_eq!(
            titles(LegalLang::En),
            [
                "Terms of use",
                "Usage notes",
                "Privacy statement",
                "Legal notice"
            ]
        );
    }

    #[test]
    fn ids_are_stable_and_unique() {
        let ids = LegalKind::ALL.map(LegalKind::id);
        assert_eq!(
            ids,
            [
                "terms_of_use",
                "usage_notes",
                "privacy_statement",
                "imprint"
            ]
        );
    }

    #[test]
    fn bodies_carry_the_version_line_and_no_title_heading() {
        let version_line = format!("Version {TERMS_VERSION}");
        for lang in LANGS {
            for text in legal_texts(lang) {
                let first = text.body.lines().next().unwrap_or_default();
                assert_eq!(first, version_line, "{lang:?} {:?}", text.kind);
                assert!(
                    !text.body.lines().any(|l| l.starts_with("# ")),
                    "{lang:?} {:?} has a top-level heading",
                    text.kind
                );
            }
        }
    }

    #[test]
    fn german_texts_are_german_and_differ_from_english() {
        let de = legal_texts(LegalLang::De);
        let en = legal_texts(LegalLang::En);
        for (d, e) in de.iter().zip(en.iter()) {
            assert_eq!(d.kind, e.kind);
            assert_ne!(d.body, e.body, "{:?}", d.kind);
            assert!(
                d.body.chars().any(|c| "äöüÄÖÜß".contains(c)),
                "German {:?} has no umlauts",
                d.kind
            );
            assert!(
                !e.body.chars().any(|c| "äöüÄÖÜ".contains(c)) || e.body.contains("für alle"),
                "English {:?} looks German",
                e.kind
            );
        }
    }

    #[test]
    fn texts_are_concise_and_free_of_placeholders() {
        for lang in LANGS {
            for text in legal_texts(lang) {
                let words = text.body.split_whitespace().count();
                assert!(
                    (120..=450).contains(&words),
                    "{lang:?} {:?}: {words} words",
                    text.kind
                );
                for marker in ["TODO", "XXX", "TBD", "example.invalid", "lorem", "[", "<"] {
                    assert!(
                        !text.body.contains(marker),
                        "{lang:?} {:?} contains {marker:?}",
                        text.kind
                    );
                }
            }
        }
    }

    #[test]
    fn key_statements_are_present() {
        let de = legal_texts(LegalLang::De);
        let en = legal_texts(LegalLang::En);
        let [de_terms, _, de_privacy, de_imprint] = de;
        let [en_terms, _, en_privacy, en_imprint] = en;
        assert!(
            de_imprint
                .body
                .contains("Kontakt: über den Issue-Tracker des Projekts")
        );
        assert!(
            en_imprint
                .body
                .contains("Contact: via the project's issue tracker")
        );
        for body in [
            de_terms.body,
            en_terms.body,
            de_imprint.body,
            en_imprint.body,
        ] {
            assert!(body.contains("EUPL-1.2"));
        }
        assert!(de_terms.body.contains("kein Medizinprodukt"));
        assert!(en_terms.body.contains("not a medical device"));
        assert!(de_privacy.body.contains("keine Telemetrie"));
        assert!(en_privacy.body.contains("no telemetry"));
    }
}
