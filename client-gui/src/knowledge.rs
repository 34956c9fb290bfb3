//! "Gesundheitswissen": short articles on using the ePA, shipped with the program so they are
//! readable offline. Written for this project; German first, English alongside.

use epa_ipc::i18n::Lang;

pub struct Article {
    pub title: &'static str,
    pub summary: &'static str,
    pub body: &'static str,
}

const DE: &[Article] = &[
    Article {
        title: "Was ist die ePA?",
        summary: "Die elektronische Patientenakte sammelt Ihre Gesundheitsdaten an einem Ort.",
        body: "Die elektronische Patientenakte (ePA) ist ein persönlicher, digitaler Ordner für Ihre Gesundheitsdaten. Seit 2025 richten die gesetzlichen Krankenkassen sie für alle Versicherten ein, die nicht widersprochen haben („ePA für alle“).\n\nIn der ePA können zum Beispiel Befunde, Arztbriefe, Laborwerte und eine Übersicht Ihrer verordneten Medikamente liegen. Praxen, Krankenhäuser und Apotheken, die Sie behandeln, können Dokumente einstellen und lesen. Sie selbst können mit diesem Programm Ihre Dokumente ansehen, speichern und eigene Dokumente hinzufügen.\n\nDie Nutzung ist freiwillig. Die Daten liegen verschlüsselt bei einem Betreiber in Deutschland; Ihre Krankenkasse kann die medizinischen Inhalte nicht lesen.",
    },
    Article {
        title: "Wer darf meine Dokumente sehen?",
        summary: "Zugriff haben Praxen, die Sie behandeln – und Sie können ihn einschränken.",
        body: "Wenn Sie in einer Praxis Ihre Gesundheitskarte einlesen lassen, darf diese Praxis für eine begrenzte Zeit auf Ihre ePA zugreifen: Arztpraxen und Krankenhäuser in der Regel 90 Tage, Apotheken 3 Tage.\n\nSie behalten die Kontrolle: Einzelne Dokumente können Sie in der Dokumentenansicht „verbergen“. Verborgene Dokumente sehen Praxen nicht mehr, Sie selbst schon. Die Spalte „Zugriffe“ zeigt, wie oft ein Dokument abgerufen wurde.\n\nDokumente, die Sie nicht mehr in der Akte haben möchten, können Sie endgültig löschen. Das lässt sich nicht rückgängig machen – speichern Sie vorher eine Kopie, wenn Sie das Dokument behalten möchten.",
    },
    Article {
        title: "Eigene Dokumente hinzufügen",
        summary: "Alte Befunde oder Impfnachweise selbst in die ePA laden.",
        body: "Sie können eigene Dokumente in Ihre ePA laden, zum Beispiel ältere Befunde auf Papier, die Sie eingescannt haben, oder einen Impfnachweis.\n\nMöglich sind PDF-Dateien, Bilder (JPEG, PNG, TIFF) und einfache Textdateien bis 25 MB. Wählen Sie einen klaren Titel, etwa „Röntgenbefund Knie 2023“, damit Sie und Ihre Praxis das Dokument später schnell finden. Von Ihnen hochgeladene Dokumente erscheinen in der Spalte „Autor“ als „von mir“.\n\nTipp: Mehrere Dokumente können Sie auswählen und mit „Als PDF speichern“ in einer Datei zusammenfassen, etwa für einen Arzttermin.",
    },
    Article {
        title: "Sicher anmelden",
        summary: "GesundheitsID, Ident-App und ein gut geschützter PC.",
        body: "Für die Anmeldung an der ePA brauchen Sie die GesundheitsID Ihrer Krankenkasse und deren Ident-App auf Ihrem Smartphone. Beim ersten Mal schalten Sie zusätzlich diesen PC frei: Dafür erhalten Sie einen Bestätigungscode per E-Mail.\n\nSchützen Sie Ihren PC mit einer Bildschirmsperre und einem sicheren Kennwort. Ihr lokaler Benutzer in diesem Programm hat ein eigenes Kennwort; geben Sie es nicht weiter. Wenn Sie den PC verlassen, sperren Sie das Programm über „Profil“ oder das Symbol im Infobereich.\n\nSeien Sie misstrauisch bei E-Mails oder Anrufen, die nach Ihrem GesundheitsID-Code oder Ihrem Kennwort fragen: Ihre Krankenkasse fragt danach nie.",
    },
    Article {
        title: "Widerspruch und Ihre Rechte",
        summary: "Sie entscheiden, ob und wie Sie die ePA nutzen.",
        body: "Sie können der ePA jederzeit bei Ihrer Krankenkasse widersprechen. Dann wird Ihre Akte mit allen Inhalten gelöscht. Auch einzelnen Funktionen, etwa der Medikationsübersicht, können Sie widersprechen.\n\nSie können außerdem festlegen, dass bestimmte Praxen keinen Zugriff erhalten, und eine Person Ihres Vertrauens als Vertretung benennen, die Ihre ePA für Sie verwaltet.\n\nFragen zur ePA beantwortet Ihre Krankenkasse. Unabhängige Informationen bietet auch das Bundesministerium für Gesundheit.",
    },
];

const EN: &[Article] = &[
    Article {
        title: "What is the ePA?",
        summary: "The electronic patient record keeps your health data in one place.",
        body: "The electronic patient record (ePA) is a personal, digital folder for your health data. Since 2025 the statutory health insurers set it up for every insured person who has not objected (\"ePA für alle\").\n\nIt can hold findings, doctors' letters, lab results and an overview of your prescribed medication. Practices, hospitals and pharmacies treating you can add and read documents. With this program you can view and save your documents and add your own.\n\nUsing it is voluntary. The data is stored encrypted by an operator in Germany; your insurer cannot read the medical contents.",
    },
    Article {
        title: "Who may see my documents?",
        summary: "Practices treating you have access – and you can restrict it.",
        body: "When a practice reads your health card, it may access your ePA for a limited time: doctors' practices and hospitals usually for 90 days, pharmacies for 3 days.\n\nYou stay in control: you can \"hide\" single documents in the documents view. Practices no longer see hidden documents; you still do. The \"Accesses\" column shows how often a document was retrieved.\n\nDocuments you no longer want in the record can be deleted for good. This cannot be undone – save a copy first if you want to keep it.",
    },
    Article {
        title: "Adding your own documents",
        summary: "Upload old findings or vaccination records yourself.",
        body: "You can add your own documents to your ePA, for example older paper findings you scanned, or a vaccination record.\n\nPDF files, images (JPEG, PNG, TIFF) and plain text files up to 25 MB are accepted. Choose a clear title such as \"X-ray knee 2023\" so you and your practice find it quickly. Documents you uploaded show \"by me\" as their author.\n\nTip: select several documents and use \"Save as PDF\" to combine them into one file, for example for an appointment.",
    },
    Article {
        title: "Logging in safely",
        summary: "GesundheitsID, ident app and a well-protected PC.",
        body: "To log in to the ePA you need your insurer's GesundheitsID and its ident app on your smartphone. The first time you also register this PC: you receive a confirmation code by e-mail.\n\nProtect your PC with a screen lock and a strong password. Your local user in this program has its own password; do not share it. When you leave the PC, lock the program via \"Profile\" or the tray icon.\n\nBe suspicious of e-mails or calls asking for your GesundheitsID code or your password: your insurer never asks for them.",
    },
    Article {
        title: "Objection and your rights",
        summary: "You decide whether and how you use the ePA.",
        body: "You can object to the ePA at your insurer at any time. Your record and all its contents are then deleted. You can also object to single functions such as the medication overview.\n\nYou can also decide that certain practices get no access, and name a person you trust as a representative who manages your ePA for you.\n\nYour insurer answers questions about the ePA. The Federal Ministry of Health also offers independent information.",
    },
];

pub fn articles(lang: Lang) -> &'static [Article] {
    match lang {
        Lang::De => DE,
        Lang::En => EN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_articles() {
        assert_eq!(DE.len(), EN.len());
        assert!(DE.len() >= 3);
        for a in DE.iter().chain(EN) {
            assert!(!a.title.is_empty() && !a.summary.is_empty() && a.body.len() > 200);
        }
    }
}
