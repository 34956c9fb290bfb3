//! Headless tests of the window with Slint's testing backend: navigation, the forms'
//! validation and error display, the document table, the device-code screen. They drive the
//! real .slint UI through its accessibility interface (as a screen reader would) against the
//! fake daemon of `fixtures`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use slint::{ComponentHandle, Model};

use crate::connection::Status;
use crate::controller::Msg;
use crate::fixtures::{Harness, NOW};
use crate::ui::Screen;
use epa_ipc::i18n::{Lang, UserMessage};
use epa_ipc::types::{EpaPhase, SortColumn};

fn harness(tag: &str) -> Harness {
    i_slint_backend_testing::init_no_event_loop();
    Harness::new(tag, Lang::De).expect("window")
}

fn find(h: &Harness, label: &str, role: AccessibleRole) -> Option<ElementHandle> {
    ElementHandle::find_by_accessible_label(&h.window, label)
        .find(|e| e.accessible_role() == Some(role))
}

fn element(h: &Harness, label: &str, role: AccessibleRole) -> ElementHandle {
    find(h, label, role).unwrap_or_else(|| panic!("no {role:?} labelled {label:?}"))
}

/// Presses a button (or link) the way assistive technology does.
fn press(h: &Harness, label: &str) {
    element(h, label, AccessibleRole::Button).invoke_accessible_default_action();
    h.settle();
}

fn enabled(h: &Harness, label: &str) -> bool {
    element(h, label, AccessibleRole::Button)
        .accessible_enabled()
        .unwrap_or(false)
}

fn type_into(h: &Harness, label: &str, text: &str) {
    element(h, label, AccessibleRole::TextInput).set_accessible_value(text);
    h.settle();
}

fn screen(h: &Harness) -> Screen {
    h.app().get_screen()
}

fn message(h: &Harness) -> (i32, String) {
    let m = h.app().get_message();
    (m.kind, m.text.to_string())
}

fn titles(h: &Harness) -> Vec<String> {
    let docs = h.app().get_docs();
    (0..docs.row_count())
        .filter_map(|i| docs.row_data(i))
        .map(|d| d.title.to_string())
        .collect()
}

fn login(h: &Harness) {
    type_into(h, "Benutzername", "maria");
    type_into(h, "Kennwort", "sicheres-Kennwort-1");
    press(h, "Anmelden");
    h.connect();
}

#[test]
fn a_watch_update_from_before_the_unlock_does_not_end_the_session() {
    let h = harness("race");
    type_into(&h, "Kennwort", "sicheres-Kennwort-1");
    press(&h, "Anmelden");
    assert_eq!(screen(&h), Screen::Overview);
    // Still in flight from before the unlock: "maria" locked.
    h.backend.with(|s| s.unlocked = false);
    h.connect();
    assert_eq!(screen(&h), Screen::Overview);
    // Once the stream showed the unlock, a lock is real.
    h.backend.with(|s| s.unlocked = true);
    h.connect();
    h.backend.with(|s| s.unlocked = false);
    h.connect();
    assert_eq!(screen(&h), Screen::Login);
}

#[test]
fn login_overview_profile_and_back() {
    let h = harness("nav");
    assert_eq!(screen(&h), Screen::Login);
    // The guide's links and hint are there.
    for link in [
        "Neuen lokalen Benutzer anlegen",
        "Noch keine ePA vorhanden?",
        "Nutzungshinweise",
        "Datenschutzerklärung",
        "Impressum",
    ] {
        assert!(find(&h, link, AccessibleRole::Button).is_some(), "{link}");
    }
    login(&h);
    assert_eq!(screen(&h), Screen::Overview);
    assert_eq!(
        h.app().get_login_password(),
        "",
        "the password does not linger"
    );
    for tile in [
        "Elektronische Patientenakte (ePA)",
        "Vertretung für Angehörige",
        "Gesundheitswissen",
    ] {
        assert!(find(&h, tile, AccessibleRole::Button).is_some(), "{tile}");
    }
    press(&h, "Profil");
    assert_eq!(screen(&h), Screen::Profile);
    assert_eq!(h.app().get_gui_version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(h.app().get_daemon_version(), "0.1.0");
    press(&h, "Zurück");
    assert_eq!(screen(&h), Screen::Overview);
    press(&h, "Gesundheitswissen");
    assert_eq!(screen(&h), Screen::Knowledge);
    assert!(h.app().get_articles().row_count() >= 3);
    press(&h, "Zurück");
    press(&h, "Vertretung für Angehörige");
    assert_eq!(screen(&h), Screen::Representation);
    press(&h, "Zurück");
    // "Zurück" on the overview locks the local user.
    press(&h, "Zurück");
    assert_eq!(screen(&h), Screen::Login);
    assert!(!h.backend.with(|s| s.unlocked));
}

#[test]
fn login_errors_are_shown() {
    let h = harness("login-err");
    type_into(&h, "Kennwort", "");
    press(&h, "Anmelden");
    assert_eq!(message(&h).0, 3);
    assert!(message(&h).1.contains("Benutzername und Kennwort"));
    type_into(&h, "Kennwort", "falsch");
    press(&h, "Anmelden");
    let (kind, text) = message(&h);
    assert_eq!(kind, 3);
    assert!(!text.is_empty());
    assert_eq!(screen(&h), Screen::Login);
    // The message can be dismissed.
    press(&h, "Meldung schließen");
    assert_eq!(message(&h).0, 0);
}

#[test]
fn create_user_shows_rules_live_and_records_the_terms() {
    let h = harness("create");
    press(&h, "Neuen lokalen Benutzer anlegen");
    assert_eq!(screen(&h), Screen::CreateUser);
    assert!(!enabled(&h, "Benutzer anlegen"));
    type_into(&h, "Benutzername", "anna");
    type_into(&h, "Kennwort", "kurz");
    let rules = h.app().get_new_rules();
    let ok: Vec<bool> = (0..rules.row_count())
        .filter_map(|i| rules.row_data(i))
        .map(|r| r.ok)
        .collect();
    assert_eq!(ok, [true, false, true, false, false]);
    type_into(&h, "Kennwort", "ein-langes-Kennwort");
    type_into(&h, "Kennwort wiederholen", "ein-langes-Kennwort");
    assert!(!enabled(&h, "Benutzer anlegen"), "terms not yet accepted");
    element(
        &h,
        "Ich habe die Nutzungsbedingungen zur Kenntnis genommen und akzeptiere sie.",
        AccessibleRole::Checkbox,
    )
    .invoke_accessible_default_action();
    h.settle();
    assert!(enabled(&h, "Benutzer anlegen"));
    press(&h, "Benutzer anlegen");
    assert_eq!(screen(&h), Screen::Overview);
    assert_eq!(h.app().get_user_name(), "anna");
    assert!(h.backend.with(|s| s.terms_accepted));
}

#[test]
fn a_taken_name_is_reported() {
    let h = harness("taken");
    press(&h, "Neuen lokalen Benutzer anlegen");
    type_into(&h, "Benutzername", "maria");
    type_into(&h, "Kennwort", "ein-langes-Kennwort");
    type_into(&h, "Kennwort wiederholen", "ein-langes-Kennwort");
    h.app().set_new_terms(true);
    h.settle();
    press(&h, "Benutzer anlegen");
    assert_eq!(screen(&h), Screen::CreateUser);
    assert_eq!(message(&h).0, 3);
}

#[test]
fn terms_must_be_accepted_first() {
    let h = harness("terms");
    h.backend.with(|s| s.terms_accepted = false);
    login(&h);
    assert_eq!(screen(&h), Screen::Terms);
    assert_eq!(h.app().get_legal_title(), "Nutzungsbedingungen");
    press(&h, "Akzeptieren");
    assert_eq!(screen(&h), Screen::Overview);
    assert!(h.backend.with(|s| s.terms_accepted));
}

#[test]
fn legal_texts_open_and_return() {
    let h = harness("legal");
    press(&h, "Impressum");
    assert_eq!(screen(&h), Screen::Legal);
    assert_eq!(h.app().get_legal_title(), "Impressum");
    press(&h, "Zurück");
    assert_eq!(screen(&h), Screen::Login);
}

#[test]
fn connect_checks_the_kvnr_live_and_leads_to_the_qr_code() {
    let h = harness("connect");
    login(&h);
    press(&h, "Elektronische Patientenakte (ePA)");
    assert_eq!(screen(&h), Screen::Connect);
    let insurers = h.app().get_insurers();
    assert!(insurers.row_count() >= 11);
    assert!(
        (0..insurers.row_count())
            .filter_map(|i| insurers.row_data(i))
            .filter(|n| n.starts_with("AOK"))
            .count()
            >= 11
    );
    type_into(&h, "Versichertennummer (KVNR)", "X110411676");
    assert_eq!(h.app().get_kvnr_state(), 2);
    assert!(h.app().get_kvnr_check().contains("Prüfziffer"));
    type_into(&h, "Versichertennummer (KVNR)", "X1104");
    assert_eq!(h.app().get_kvnr_state(), 0);
    type_into(&h, "Versichertennummer (KVNR)", "x110411675");
    assert_eq!(h.app().get_kvnr_state(), 1);
    assert!(!enabled(&h, "Weiter"), "no insurer chosen yet");
    h.app().set_insurer_index(7);
    h.settle();
    assert!(enabled(&h, "Weiter"));
    press(&h, "Weiter");
    assert_eq!(screen(&h), Screen::Ident);
    assert!(
        h.backend
            .with(|s| s.calls.contains(&"start_login".to_owned()))
    );
    assert!(h.app().get_login_url().starts_with("https://"));
    assert!(
        find(
            &h,
            "QR-Code für die Anmeldung mit der Ident-App",
            AccessibleRole::Image
        )
        .is_some()
    );
    assert_eq!(h.app().get_login_expires(), "QR-Code gültig noch 4:32 Min.");
    press(&h, "Im Browser öffnen");
    assert_eq!(h.opened.borrow().len(), 1);
    assert!(h.opened.borrow()[0].starts_with("https://"));
}

#[test]
fn device_code_screen_counts_tries_and_time() {
    let h = harness("device");
    login(&h);
    h.enter_epa(EpaPhase::AwaitingIdentApp);
    h.update(Msg::DeepLink(
        "epa-desktop://auth/callback?code=abc&state=s1".into(),
    ));
    assert_eq!(screen(&h), Screen::Device);
    assert_eq!(h.app().get_tries_left(), "Noch 3 Versuche");
    assert_eq!(h.app().get_code_expires(), "Code gültig noch 9:43 Min.");
    assert_eq!(h.app().get_masked_addresses(), "m***@e***.de");
    type_into(&h, "Bestätigungscode", "12");
    assert!(!enabled(&h, "Bestätigen"));
    type_into(&h, "Bestätigungscode", "654321");
    assert!(enabled(&h, "Bestätigen"));
    press(&h, "Bestätigen");
    assert_eq!(message(&h).0, 3);
    assert_eq!(h.app().get_tries_left(), "Noch 2 Versuche");
    assert_eq!(h.app().get_device_code(), "", "a wrong code is cleared");
    for _ in 0..3 {
        type_into(&h, "Bestätigungscode", "000000");
        press(&h, "Bestätigen");
    }
    let lockout = h.app().get_lockout();
    assert!(lockout.contains("01.06.2025 10:15"), "{lockout}");
    assert!(lockout.contains("15:00"), "{lockout}");
    type_into(&h, "Bestätigungscode", "123456");
    assert!(!enabled(&h, "Bestätigen"), "locked out");
}

#[test]
fn the_right_code_leads_to_the_relogin_and_the_documents() {
    let h = harness("relogin");
    login(&h);
    h.enter_epa(EpaPhase::DeviceCodeSent);
    type_into(&h, "Bestätigungscode", "123 456");
    press(&h, "Bestätigen");
    assert_eq!(screen(&h), Screen::Ident);
    assert!(h.app().get_relogin());
    assert!(find(&h, "Erneut anmelden", AccessibleRole::Text).is_some());
    h.update(Msg::DeepLink(
        "epa-desktop://auth/callback?code=abc&state=s2".into(),
    ));
    assert_eq!(screen(&h), Screen::Documents);
    assert_eq!(titles(&h).len(), 8);
}

#[test]
fn documents_sort_by_every_column() {
    let h = harness("sort");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    assert_eq!(screen(&h), Screen::Documents);
    assert_eq!(titles(&h)[0], "Medikationsplan", "newest first");
    assert_eq!(h.app().get_sort_column(), 4);
    assert!(
        find(
            &h,
            "Erstelldatum, absteigend sortiert",
            AccessibleRole::Button
        )
        .is_some()
    );
    press(&h, "Titel");
    let q = h.backend.with(|s| s.queries.last().cloned()).unwrap();
    assert_eq!((q.sort, q.descending), (SortColumn::Title, false));
    assert_eq!(titles(&h)[0], "Arztbrief Kardiologie");
    press(&h, "Titel, aufsteigend sortiert");
    assert_eq!(titles(&h)[0], "röntgenaufnahme");
    assert!(h.app().get_sort_desc());
    for (label, col) in [
        ("Typ", SortColumn::Type),
        ("Autor", SortColumn::Author),
        ("Zugriffe", SortColumn::Accesses),
    ] {
        press(&h, label);
        let q = h.backend.with(|s| s.queries.last().cloned()).unwrap();
        assert_eq!((q.sort, q.descending), (col, false), "{label}");
    }
    assert_eq!(titles(&h)[0], "image001", "fewest accesses first (stable)");
    press(&h, "Erstelldatum");
    let q = h.backend.with(|s| s.queries.last().cloned()).unwrap();
    assert_eq!((q.sort, q.descending), (SortColumn::Created, true));
}

#[test]
fn documents_search_select_and_export() {
    let h = harness("select");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    assert!(!enabled(&h, "Als PDF speichern"), "nothing selected");
    element(&h, "Auswählen: Demo PDF", AccessibleRole::Checkbox).invoke_accessible_default_action();
    h.settle();
    element(
        &h,
        "Auswählen: Laborbefund Blutbild",
        AccessibleRole::Checkbox,
    )
    .invoke_accessible_default_action();
    h.settle();
    assert_eq!(h.app().get_selected_count(), 2);
    assert!(!h.app().get_all_selected());
    assert!(h.app().get_docs_status().contains("2 ausgewählt"));
    assert!(enabled(&h, "Als PDF speichern"));
    press(&h, "Als PDF speichern");
    assert_eq!(h.app().get_file_dialog(), 2);
    let path = std::path::PathBuf::from(h.app().get_file_path().to_string());
    let _ = std::fs::remove_file(&path);
    press(&h, "Speichern");
    assert_eq!(h.app().get_file_dialog(), 0);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with("%PDF"));
    assert!(
        written.contains("d6") && written.contains("d3"),
        "{written}"
    );
    assert_eq!(message(&h).0, 2);
    // Never overwritten: the dialog stays and says why.
    press(&h, "Als PDF speichern");
    press(&h, "Speichern");
    assert_eq!(h.app().get_file_dialog(), 2);
    assert!(h.app().get_file_error().contains("gibt es schon"));
    press(&h, "Abbrechen");
    let _ = std::fs::remove_file(&path);

    element(&h, "Alle auswählen", AccessibleRole::Checkbox).invoke_accessible_default_action();
    h.settle();
    assert!(h.app().get_all_selected());
    assert_eq!(h.app().get_selected_count(), 8);

    type_into(&h, "Suche nach Titel oder Autor", "labor");
    assert_eq!(titles(&h), ["Laborbefund Blutbild"]);
    assert_eq!(
        h.app().get_selected_count(),
        1,
        "hidden rows leave the selection"
    );
    type_into(&h, "Suche nach Titel oder Autor", "xyz");
    assert!(titles(&h).is_empty());
    assert!(
        find(
            &h,
            "Keine Dokumente passen zu Suche und Filter.",
            AccessibleRole::Text
        )
        .is_some()
    );
}

#[test]
fn documents_open_hide_and_delete_with_confirmation() {
    let h = harness("actions");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    press(&h, "Öffnen: Demo PDF");
    assert_eq!(h.opened.borrow().len(), 1);
    assert!(h.opened.borrow()[0].ends_with("Demo PDF.pdf"));
    press(&h, "Verbergen: Demo PDF");
    assert!(
        h.backend
            .with(|s| s.documents.iter().any(|d| d.id == "d3" && d.hidden))
    );
    assert!(find(&h, "Einblenden: Demo PDF", AccessibleRole::Button).is_some());
    press(&h, "Löschen: Demo PDF");
    assert!(h.app().get_confirm_open());
    assert!(h.app().get_confirm_text().contains("Demo PDF"));
    press(&h, "Abbrechen");
    assert!(!h.app().get_confirm_open());
    assert_eq!(titles(&h).len(), 8);
    press(&h, "Löschen: Demo PDF");
    press(&h, "Endgültig löschen");
    assert_eq!(titles(&h).len(), 7);
    assert!(!titles(&h).contains(&"Demo PDF".to_owned()));
    press(&h, "Abmelden");
    assert_eq!(screen(&h), Screen::Overview);
    assert_eq!(h.ctrl.borrow().epa_phase(), Some(EpaPhase::LoggedOut));
}

#[test]
fn adding_a_document_checks_the_file_and_uploads_it() {
    let h = harness("add");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    press(&h, "Dokument hinzufügen");
    assert_eq!(h.app().get_file_dialog(), 3);
    let dir = std::path::PathBuf::from(h.app().get_file_path().to_string());
    type_into(&h, "Datei", &dir.join("fehlt.pdf").to_string_lossy());
    press(&h, "Hinzufügen");
    assert_eq!(h.app().get_file_dialog(), 3, "stays open");
    assert!(h.app().get_file_error().contains("lässt sich nicht lesen"));
    let file = dir.join("Impfnachweis 2024.txt");
    std::fs::write(&file, "Tetanus 2024").unwrap();
    type_into(&h, "Datei", &file.to_string_lossy());
    press(&h, "Hinzufügen");
    assert_eq!(h.app().get_file_dialog(), 0);
    assert_eq!(message(&h).0, 2);
    assert!(
        titles(&h).contains(&"Impfnachweis 2024".to_owned()),
        "title from the file name"
    );
    press(&h, "Dokument hinzufügen");
    type_into(&h, "Datei", &file.to_string_lossy());
    type_into(&h, "Titel", "Tetanus-Impfung");
    press(&h, "Hinzufügen");
    assert!(titles(&h).contains(&"Tetanus-Impfung".to_owned()));
    let _ = std::fs::remove_file(&file);
}

/// The directory `fixtures::test_env` gives the harness `tag` (downloads, uploads).
fn test_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("epa-gui-{tag}-{}", std::process::id()))
}

#[test]
fn the_system_file_dialog_is_used_for_save_export_and_add() {
    use crate::chooser::{Ask, Choice};
    let h = harness("chooser");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    let dir = test_dir("chooser");

    // "Speichern": the suggested name is the safe name; the chosen path is written.
    let saved = dir.join("gewählt.pdf");
    let _ = std::fs::remove_file(&saved);
    h.chooser.answer(Choice::Chosen(saved.clone()));
    press(&h, "Speichern: Demo PDF");
    assert_eq!(h.app().get_file_dialog(), 0, "no in-app field");
    assert!(std::fs::read(&saved).unwrap().starts_with(b"%PDF"));
    assert_eq!(message(&h).0, 2);
    assert!(matches!(
        &h.chooser.asked()[0],
        Ask::Save { name, dir: d, .. } if name == "Demo PDF.pdf" && d == &dir
    ));

    // "Als PDF speichern" into a chosen path; a second time into the same path is refused.
    element(&h, "Auswählen: Demo PDF", AccessibleRole::Checkbox).invoke_accessible_default_action();
    h.settle();
    let pdf = dir.join("Auszug.pdf");
    let _ = std::fs::remove_file(&pdf);
    h.chooser.answer(Choice::Chosen(pdf.clone()));
    press(&h, "Als PDF speichern");
    let written = std::fs::read(&pdf).unwrap();
    assert!(written.starts_with(b"%PDF"));
    h.chooser.answer(Choice::Chosen(pdf.clone()));
    press(&h, "Als PDF speichern");
    let (kind, text) = message(&h);
    assert_eq!(kind, 3);
    assert!(text.contains("gibt es schon"), "{text}");
    assert_eq!(std::fs::read(&pdf).unwrap(), written, "never overwritten");
    assert_eq!(h.app().get_file_dialog(), 0);

    // "Dokument hinzufügen": the filter offers the record's types; then the title is asked,
    // starting from the file's name (no "dialog not available" note this time); a file that
    // cannot be read is reported there.
    let file = dir.join("Allergiepass.txt");
    std::fs::write(&file, "Penicillin").unwrap();
    h.chooser.answer(Choice::Chosen(file.clone()));
    press(&h, "Dokument hinzufügen");
    assert!(matches!(
        h.chooser.asked().last(),
        Some(Ask::Open { filter, .. }) if filter.1.iter().any(|e| e == "pdf")
            && filter.1.iter().any(|e| e == "TIFF")
    ));
    assert_eq!(h.app().get_file_dialog(), 3);
    assert!(h.app().get_file_from_system());
    let hint =
        "Der Dateidialog des Systems ist nicht verfügbar. Bitte geben Sie den Pfad hier ein.";
    assert!(find(&h, hint, AccessibleRole::Text).is_none());
    assert_eq!(h.app().get_add_title(), "Allergiepass");
    assert_eq!(h.app().get_file_path(), file.to_string_lossy().as_ref());
    h.app().set_add_title("Allergiepass 2025".into());
    press(&h, "Hinzufügen");
    assert_eq!(h.app().get_file_dialog(), 0);
    assert_eq!(message(&h).0, 2);
    assert!(titles(&h).contains(&"Allergiepass 2025".to_owned()));
    h.chooser.answer(Choice::Chosen(dir.join("fehlt.pdf")));
    press(&h, "Dokument hinzufügen");
    press(&h, "Hinzufügen");
    assert!(h.app().get_file_error().contains("lässt sich nicht lesen"));
    press(&h, "Abbrechen");
    assert_eq!(h.app().get_file_dialog(), 0);
    for f in [saved, pdf, file] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn a_cancelled_file_dialog_changes_nothing() {
    use crate::chooser::Choice;
    let h = harness("cancel");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    element(&h, "Auswählen: Demo PDF", AccessibleRole::Checkbox).invoke_accessible_default_action();
    h.settle();
    let before = (message(&h), titles(&h));
    let files = || std::fs::read_dir(test_dir("cancel")).unwrap().count();
    let count = files();
    for action in [
        "Speichern: Demo PDF",
        "Als PDF speichern",
        "Dokument hinzufügen",
    ] {
        h.chooser.answer(Choice::Cancelled);
        press(&h, action);
        assert_eq!(h.app().get_file_dialog(), 0, "{action}");
        assert!(!h.app().get_busy(), "{action}");
    }
    assert_eq!(h.chooser.asked().len(), 3);
    assert_eq!((message(&h), titles(&h)), before);
    assert_eq!(files(), count, "nothing written");
}

#[test]
fn without_a_system_dialog_the_path_field_opens_with_a_hint() {
    use crate::chooser::Choice;
    let h = harness("nodialog");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    h.chooser
        .answer(Choice::Unavailable("no session bus".into()));
    press(&h, "Speichern: Demo PDF");
    assert_eq!(h.app().get_file_dialog(), 1);
    assert!(
        h.app().get_file_path().ends_with("Demo PDF.pdf"),
        "prefilled with the safe name"
    );
    let hint =
        "Der Dateidialog des Systems ist nicht verfügbar. Bitte geben Sie den Pfad hier ein.";
    assert!(find(&h, hint, AccessibleRole::Text).is_some());
    press(&h, "Abbrechen");
    assert_eq!(h.app().get_file_dialog(), 0);
    // Nothing prepared answers "unavailable" too: the same for "Dokument hinzufügen".
    press(&h, "Dokument hinzufügen");
    assert_eq!(h.app().get_file_dialog(), 3);
    assert!(find(&h, hint, AccessibleRole::Text).is_some());
}

#[test]
fn document_filter_validates_dates() {
    let h = harness("filter");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    h.app().set_filter_open(true);
    h.settle();
    type_into(&h, "erstellt von (TT.MM.JJJJ)", "31.02.2025");
    press(&h, "Anwenden");
    assert!(h.app().get_filter_error().contains("TT.MM.JJJJ"));
    type_into(&h, "erstellt von (TT.MM.JJJJ)", "01.06.2025");
    type_into(&h, "erstellt bis (TT.MM.JJJJ)", "01.01.2025");
    press(&h, "Anwenden");
    assert!(h.app().get_filter_error().contains("Startdatum"));
    type_into(&h, "erstellt von (TT.MM.JJJJ)", "01.05.2025");
    type_into(&h, "erstellt bis (TT.MM.JJJJ)", "31.05.2025");
    element(&h, "Typ PDF", AccessibleRole::Checkbox).invoke_accessible_default_action();
    press(&h, "Anwenden");
    assert_eq!(h.app().get_filter_error(), "");
    assert!(h.app().get_filter_active());
    assert_eq!(
        titles(&h),
        ["Laborbefund Blutbild", "Arztbrief Kardiologie"]
    );
    let q = h.backend.with(|s| s.queries.last().cloned()).unwrap();
    assert_eq!(q.mime_types, ["application/pdf"]);
    assert_eq!(
        q.created_to_unix.map(|t| t % 86_400),
        Some(86_399),
        "whole last day"
    );
    press(&h, "Zurücksetzen");
    assert!(!h.app().get_filter_active());
    assert_eq!(titles(&h).len(), 8);
}

#[test]
fn malformed_deep_links_are_refused_visibly() {
    let h = harness("links");
    login(&h);
    h.enter_epa(EpaPhase::AwaitingIdentApp);
    h.update(Msg::DeepLink(
        "epa-desktop://auth/callback?code=x&state=y&extra=1".into(),
    ));
    let (kind, text) = message(&h);
    assert_eq!(kind, 3);
    assert!(text.starts_with("Dieser Link wurde abgewiesen"), "{text}");
    h.update(Msg::DeepLink("https://example.org/".into()));
    assert!(message(&h).1.contains("kein epa-desktop://-Link"));
    assert!(
        !h.backend
            .with(|s| s.calls.contains(&"complete_login".to_owned()))
    );
    assert_eq!(screen(&h), Screen::Ident);
}

#[test]
fn the_banner_follows_the_connection_and_a_lost_session_returns_to_login() {
    let h = harness("banner");
    assert!(h.app().get_connected());
    login(&h);
    h.update(Msg::Status(Status::Disconnected {
        message: UserMessage {
            text: "weg".into(),
            hint: String::new(),
        },
        retry_in_secs: Some(2),
    }));
    assert!(!h.app().get_connected());
    assert!(h.app().get_banner().contains("neuer Versuch in 2 s"));
    // The daemon restarted: our user is locked there, so the window goes back to "Anmelden".
    h.backend.with(|s| s.unlocked = false);
    h.connect();
    assert!(h.app().get_connected());
    assert_eq!(screen(&h), Screen::Login);
    assert_eq!(message(&h).0, 1);
    assert!(!enabled(&h, "Anmelden") || h.app().get_connected());
}

#[test]
fn the_watch_stream_leads_the_journey() {
    let h = harness("watch");
    login(&h);
    h.enter_epa(EpaPhase::AwaitingIdentApp);
    // The daemon noticed the approval itself (no browser link): the phase changes via Watch.
    h.backend
        .with(|s| s.epa = crate::fixtures::epa_state(EpaPhase::DeviceCodeSent));
    let mut state = epa_ipc::types::DaemonState {
        users: vec![epa_ipc::types::LocalUser {
            username: "maria".into(),
            unlocked: true,
        }],
        ..Default::default()
    };
    state
        .epa_phases
        .insert("maria".into(), "DEVICE_CODE_SENT".into());
    h.update(Msg::Status(Status::Connected {
        info: Box::new(epa_ipc::types::DaemonInfo {
            daemon_version: "0.1.0".into(),
            protocol_version: 1,
            environment: "demo".into(),
            uptime_ms: 1,
            pid: 1,
            environment_info: None,
        }),
        state,
    }));
    assert_eq!(screen(&h), Screen::Device);
    assert_eq!(h.app().get_code_expires(), "Code gültig noch 9:43 Min.");
    let _ = NOW;
}

#[test]
fn english_is_selectable() {
    let h = harness("english");
    login(&h);
    press(&h, "Profil");
    h.app().invoke_set_english(true);
    h.settle();
    assert!(h.app().get_english());
    assert!(find(&h, "Back", AccessibleRole::Button).is_some());
    assert!(find(&h, "Lock", AccessibleRole::Button).is_some());
    assert_eq!(
        h.app()
            .get_articles()
            .row_data(0)
            .map(|a| a.title.to_string())
            .as_deref(),
        Some("What is the ePA?")
    );
    assert_eq!(
        h.backend
            .with(|s| s.preferences.get("gui.lang").cloned())
            .as_deref(),
        Some("en"),
        "the choice is kept"
    );
    // Next time (the program started in German again), the user's choice comes back.
    press(&h, "Lock");
    h.ctrl.borrow_mut().set_language(Lang::De);
    h.settle();
    assert!(!h.app().get_english());
    login(&h);
    assert!(h.app().get_english());
    // `--lang` wins over the stored choice.
    press(&h, "Back");
    h.ctrl.borrow_mut().set_language(Lang::De);
    h.ctrl.borrow_mut().lang_from_args = true;
    h.settle();
    login(&h);
    assert!(!h.app().get_english());
    assert!(find(&h, "Profil", AccessibleRole::Button).is_some());
}

/// Every text of the .slint files has an English translation.
#[test]
fn every_text_is_translated() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let po = std::fs::read_to_string(dir.join("translations/en/LC_MESSAGES/epa-gui.po")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir.join("ui")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "slint") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for part in text.split("@tr(\"").skip(1) {
            let Some(end) = part.find('"') else { continue };
            let id = &part[..end];
            if !po.contains(&format!("msgid \"{id}\"\nmsgstr \"")) {
                missing.push(id.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "no English text for {missing:?}");
}

fn key(h: &Harness, k: slint::platform::Key) {
    use slint::platform::WindowEvent;
    let text: slint::SharedString = k.into();
    h.window
        .window()
        .dispatch_event(WindowEvent::KeyPressed { text: text.clone() });
    h.window
        .window()
        .dispatch_event(WindowEvent::KeyReleased { text });
    h.settle();
}

/// The login screen works with the keyboard alone: Tab moves through the fields and the link,
/// Enter follows the link.
#[test]
fn the_keyboard_reaches_the_link() {
    use slint::platform::Key;
    let h = harness("keys");
    h.window
        .window()
        .dispatch_event(slint::platform::WindowEvent::WindowActiveChanged(true));
    // user name, password, then the link "Neuen lokalen Benutzer anlegen"
    for _ in 0..3 {
        key(&h, Key::Tab);
    }
    key(&h, Key::Return);
    assert_eq!(screen(&h), Screen::CreateUser);
}

/// Escape closes the confirmation (its focus starts on "Abbrechen", the safe choice).
#[test]
fn escape_cancels_the_delete_confirmation() {
    use slint::platform::Key;
    let h = harness("escape");
    login(&h);
    h.enter_epa(EpaPhase::LoggedIn);
    h.window
        .window()
        .dispatch_event(slint::platform::WindowEvent::WindowActiveChanged(true));
    press(&h, "Löschen: Demo PDF");
    assert!(h.app().get_confirm_open());
    key(&h, Key::Escape);
    assert!(!h.app().get_confirm_open());
    assert_eq!(titles(&h).len(), 8, "nothing deleted");
}
