//! `epa-desktop-screens OUT_DIR`: renders every screen of epa-desktop headless (software
//! renderer, no display needed) with realistic fake data, one PNG per screen, for review.

#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use epa_gui::connection::Status;
use epa_gui::controller::Msg;
use epa_gui::fixtures::Harness;
use epa_gui::ui::Screen;
use epa_ipc::i18n::{Lang, UserMessage};
use epa_ipc::types::EpaPhase;
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};
use slint::{ComponentHandle, PhysicalSize};

const WIDTH: u32 = 1180;
const HEIGHT: u32 = 780;

/// A platform whose windows are plain pixel buffers.
struct Offscreen;

impl Platform for Offscreen {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        let w = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
        w.set_size(PhysicalSize::new(WIDTH, HEIGHT));
        Ok(w)
    }
}

fn save(h: &Harness, dir: &Path, name: &str) -> Result<(), String> {
    h.ctrl.borrow_mut().render();
    slint::platform::update_timers_and_animations();
    let shot = h
        .window
        .window()
        .take_snapshot()
        .map_err(|e| format!("{name}: snapshot failed: {e}"))?;
    let path = dir.join(format!("{name}.png"));
    image::save_buffer(
        &path,
        shot.as_bytes(),
        shot.width(),
        shot.height(),
        image::ExtendedColorType::Rgba8,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn harness(name: &str, lang: Lang) -> Result<Harness, String> {
    Harness::new(name, lang).map_err(|e| format!("{name}: {e}"))
}

fn run(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    slint::platform::set_platform(Box::new(Offscreen)).map_err(|e| e.to_string())?;

    for lang in [Lang::De, Lang::En] {
        let suffix = if lang == Lang::En { "-en" } else { "" };
        let shot = |h: &Harness, name: &str| save(h, dir, &format!("{name}{suffix}"));

        let h = harness("login", lang)?;
        shot(&h, "01-anmelden")?;
        if lang == Lang::En {
            // The English set stops after a few screens: enough to review the translation.
            h.login();
            shot(&h, "05-uebersicht")?;
            h.enter_epa(EpaPhase::LoggedIn);
            shot(&h, "13-dokumente")?;
            continue;
        }
        h.backend
            .with(|s| s.users.push(("jonas".into(), "noch-ein-Kennwort".into())));
        h.connect();
        shot(&h, "01b-anmelden-zwei-benutzer")?;
        h.app().set_login_user("maria".into());
        h.app().set_login_password("falsch".into());
        h.ctrl.borrow_mut().login();
        h.settle();
        shot(&h, "02-anmelden-fehler")?;

        let h = harness("create", lang)?;
        h.ctrl.borrow_mut().go(Screen::CreateUser);
        h.app().set_new_user("Maria Muster".into());
        h.app().set_new_password("sicheres-Kennwort".into());
        h.app().set_new_password2("sicheres-Kennw".into());
        h.settle();
        shot(&h, "03-benutzer-anlegen")?;

        let h = harness("terms", lang)?;
        h.backend.with(|s| s.terms_accepted = false);
        h.login();
        shot(&h, "04-nutzungsbedingungen")?;

        let h = harness("main", lang)?;
        h.login();
        shot(&h, "05-uebersicht")?;

        h.enter_epa(EpaPhase::NoProfile);
        h.app().set_insurer_index(7);
        h.app().set_kvnr("X110411676".into());
        h.settle();
        shot(&h, "06-epa-verbinden-pruefziffer")?;
        h.app().set_kvnr("X110411675".into());
        h.settle();
        shot(&h, "07-epa-verbinden")?;

        h.ctrl.borrow_mut().go(Screen::Overview);
        h.enter_epa(EpaPhase::AwaitingIdentApp);
        shot(&h, "08-ident-app")?;

        h.update(Msg::DeepLink(
            "epa-desktop://auth/callback?code=abc&state=Zk3q9".into(),
        ));
        shot(&h, "09-geraet-freischalten")?;
        h.app().set_device_code("654321".into());
        h.ctrl.borrow_mut().confirm_code();
        h.settle();
        h.app().set_device_code("12345".into());
        h.settle();
        shot(&h, "10-geraet-freischalten-falsch")?;
        for _ in 0..2 {
            h.app().set_device_code("000000".into());
            h.ctrl.borrow_mut().confirm_code();
            h.settle();
        }
        shot(&h, "11-geraet-gesperrt")?;

        h.ctrl.borrow_mut().go(Screen::Overview);
        h.enter_epa(EpaPhase::ReloginRequired);
        shot(&h, "12-erneut-anmelden")?;

        h.ctrl.borrow_mut().go(Screen::Overview);
        h.enter_epa(EpaPhase::LoggedIn);
        h.ctrl.borrow_mut().toggle_doc(4);
        h.ctrl.borrow_mut().toggle_doc(5);
        h.settle();
        shot(&h, "13-dokumente")?;

        h.app().set_filter_open(true);
        h.app().set_search("befund".into());
        h.ctrl.borrow_mut().search_edited("befund");
        h.app().set_f_pdf(true);
        h.app().set_f_from("01.01.2025".into());
        h.app().set_f_to("31.12.2024".into());
        h.ctrl.borrow_mut().apply_filter();
        h.settle();
        shot(&h, "14-dokumente-filter")?;
        h.app().set_f_to("".into());
        h.ctrl.borrow_mut().reset_filter();
        h.app().set_search("".into());
        h.ctrl.borrow_mut().search_edited("");
        h.app().set_filter_open(false);
        h.ctrl.borrow_mut().sort_by(1);
        h.settle();
        shot(&h, "15-dokumente-nach-titel")?;

        h.ctrl.borrow_mut().toggle_doc(0);
        h.ctrl.borrow_mut().toggle_doc(2);
        h.ctrl.borrow_mut().export_pdf();
        h.settle();
        shot(&h, "16-als-pdf-speichern")?;
        h.ctrl.borrow_mut().file_cancel();
        h.ctrl.borrow_mut().add_document();
        h.settle();
        shot(&h, "17-dokument-hinzufuegen")?;
        h.ctrl.borrow_mut().file_cancel();
        h.ctrl.borrow_mut().delete_doc(0);
        h.settle();
        shot(&h, "18-loeschen-bestaetigen")?;
        h.ctrl.borrow_mut().confirm_no();

        h.ctrl.borrow_mut().open_profile();
        h.settle();
        shot(&h, "19-profil")?;

        h.ctrl.borrow_mut().go(Screen::Knowledge);
        h.settle();
        shot(&h, "20-gesundheitswissen")?;
        h.app().set_article(1);
        shot(&h, "21-gesundheitswissen-artikel")?;
        h.app().set_article(-1);

        h.ctrl.borrow_mut().go(Screen::Representation);
        h.settle();
        shot(&h, "22-vertretung")?;

        h.ctrl.borrow_mut().show_legal("privacy");
        h.settle();
        shot(&h, "23-datenschutz")?;

        let h = harness("offline", lang)?;
        h.update(Msg::Status(Status::Disconnected {
            message: UserMessage {
                text: "Der ePA-Dienst (epad) läuft nicht (/run/user/1000/epa-desktop/epad.sock)."
                    .into(),
                hint: "Die Verbindung wird automatisch neu aufgebaut.".into(),
            },
            retry_in_secs: Some(4),
        }));
        shot(&h, "24-keine-verbindung")?;

        let h = harness("link", lang)?;
        h.update(Msg::DeepLink("epa-desktop://evil/callback?code=1".into()));
        shot(&h, "25-link-abgewiesen")?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: epa-desktop-screens OUT_DIR");
        return ExitCode::from(2);
    };
    match run(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("epa-desktop-screens: {e}");
            ExitCode::FAILURE
        }
    }
}
