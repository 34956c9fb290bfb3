//! The whole journey through the GUI's view model against a real `epad` and its demo backend:
//! create the local user, connect the ePA, log in with the (simulated) ident app, confirm this
//! PC with the mailed code, log in again, see and export documents, log out, lock. The window
//! is the real .slint UI on Slint's headless testing backend, driven through its accessibility
//! interface; the connection task is the real one (Watch stream included).
//!
//! Needs the `epad` and `epa-sandbox` binaries (built by `cargo test --workspace`, or pointed to
//! with `EPA_BIN_DIR`); without them it says so and skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use epa_gui::backend::DaemonBackend;
use epa_gui::connection::{self, Status, Ui, UiClosed};
use epa_gui::controller::{Controller, Env, Job, Msg, Tasks};
use epa_gui::fixtures::{self, Posted};
use epa_gui::ui::{App, MainWindow, Screen};
use epa_ipc::DaemonClient;
use epa_ipc::i18n::Lang;
use epa_tests::{Demo, MARIA, TestDaemon, TestEnv};
use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use slint::{ComponentHandle, Model};

/// Runs each daemon call on the runtime when the test settles.
struct RtTasks {
    rt: Arc<tokio::runtime::Runtime>,
    jobs: RefCell<VecDeque<Job>>,
    posted: Posted,
}

impl Tasks for RtTasks {
    fn spawn(&self, job: Job) {
        self.jobs.borrow_mut().push_back(job);
    }

    fn poster(&self) -> Arc<dyn Fn(Msg) + Send + Sync> {
        fixtures::poster(&self.posted)
    }
}

/// The connection task's reports, queued for the test thread (the "event loop").
struct TestUi {
    backend: Arc<DaemonBackend>,
    posted: Posted,
    closed: Arc<Mutex<bool>>,
}

impl Ui for TestUi {
    fn show(&self, status: Status) -> Result<(), UiClosed> {
        if *self.closed.lock().unwrap_or_else(PoisonError::into_inner) {
            return Err(UiClosed);
        }
        self.posted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Msg::Status(status));
        Ok(())
    }

    fn client(&self, client: Option<DaemonClient>) {
        *self.backend.slot().lock().unwrap() = client;
    }
}

struct Gui {
    window: MainWindow,
    ctrl: Rc<RefCell<Controller>>,
    tasks: Rc<RtTasks>,
}

impl Gui {
    fn app(&self) -> App<'_> {
        self.window.global::<App>()
    }

    fn settle(&self) {
        loop {
            let posted: Vec<Msg> = std::mem::take(
                &mut *self
                    .tasks
                    .posted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            for m in posted {
                self.ctrl.borrow_mut().update(m);
            }
            let job = self.tasks.jobs.borrow_mut().pop_front();
            let Some(job) = job else { break };
            let msg = self.tasks.rt.block_on(job);
            self.ctrl.borrow_mut().update(msg);
        }
        self.ctrl.borrow_mut().render();
    }

    fn wait(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.settle();
            if done(self) {
                return;
            }
            let m = self.app().get_message();
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen {:?}, message {:?} / {:?}",
                self.app().get_screen(),
                m.text,
                m.hint
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn element(&self, label: &str, role: AccessibleRole) -> ElementHandle {
        ElementHandle::find_by_accessible_label(&self.window, label)
            .find(|e| e.accessible_role() == Some(role))
            .unwrap_or_else(|| panic!("no {role:?} labelled {label:?}"))
    }

    fn press(&self, label: &str) {
        self.element(label, AccessibleRole::Button)
            .invoke_accessible_default_action();
        self.settle();
    }

    fn type_into(&self, label: &str, text: &str) {
        self.element(label, AccessibleRole::TextInput)
            .set_accessible_value(text);
        self.settle();
    }

    fn on(&self, screen: Screen) -> bool {
        self.app().get_screen() == screen
    }
}

fn binaries_present() -> bool {
    std::env::var_os("EPA_BIN_DIR").is_some()
        || ["epad", "epa-sandbox"]
            .iter()
            .all(|b| epa_tests::bin_dir().join(b).is_file())
}

#[test]
fn the_whole_journey_against_a_real_daemon() {
    if !binaries_present() {
        eprintln!(
            "SKIPPED: epad/epa-sandbox not built next to the tests (run `cargo test --workspace` or set EPA_BIN_DIR)"
        );
        return;
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let env = TestEnv::new();
    let _daemon = rt.block_on(TestDaemon::start(&env));
    let probe = rt.block_on(DaemonClient::connect(&env.endpoint)).unwrap();
    let demo = rt.block_on(Demo::of(&probe));

    i_slint_backend_testing::init_no_event_loop();
    let window = MainWindow::new().unwrap();
    let posted = Posted::default();
    let tasks = Rc::new(RtTasks {
        rt: rt.clone(),
        jobs: RefCell::default(),
        posted: posted.clone(),
    });
    let backend = Arc::new(DaemonBackend::default());
    let opened = Rc::new(RefCell::new(Vec::new()));
    let seen = opened.clone();
    let save_dir = env.root.path().join("saved");
    std::fs::create_dir_all(&save_dir).unwrap();
    let ctrl = Controller::new(
        &window,
        backend.clone(),
        tasks.clone(),
        Env {
            now: Box::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            }),
            open_dir: env.run_dir().join("gui-open"),
            save_dir: save_dir.clone(),
            opener: Box::new(move |t| {
                seen.borrow_mut().push(t.to_owned());
                Ok(())
            }),
            // no desktop session in the tests: the in-app path field
            chooser: Arc::new(epa_gui::chooser::NoChooser),
        },
        Lang::De,
    );
    window.show().unwrap();
    let closed = Arc::new(Mutex::new(false));
    rt.spawn(connection::run(
        env.endpoint.clone(),
        None,
        Lang::De,
        TestUi {
            backend,
            posted,
            closed: closed.clone(),
        },
    ));
    let g = Gui {
        window,
        ctrl,
        tasks,
    };

    g.wait("the connection", |g| g.app().get_connected());
    assert_eq!(g.app().get_banner(), "");

    // Neuen lokalen Benutzer anlegen (+ terms)
    g.press("Neuen lokalen Benutzer anlegen");
    g.type_into("Benutzername", "maria");
    g.type_into("Kennwort", "ein-sicheres-Kennwort");
    g.type_into("Kennwort wiederholen", "ein-sicheres-Kennwort");
    g.element(
        "Ich habe die Nutzungsbedingungen zur Kenntnis genommen und akzeptiere sie.",
        AccessibleRole::Checkbox,
    )
    .invoke_accessible_default_action();
    g.settle();
    g.press("Benutzer anlegen");
    g.wait("the overview", |g| g.on(Screen::Overview));

    // ePA verbinden: the daemon's insurers, the KVNR checked live
    g.press("Elektronische Patientenakte (ePA)");
    g.wait("ePA verbinden", |g| {
        g.on(Screen::Connect) && g.app().get_insurers().row_count() >= 11
    });
    let insurers = g.app().get_insurers();
    let aok_plus = (0..insurers.row_count())
        .position(|i| insurers.row_data(i).is_some_and(|n| n.starts_with(MARIA.1)))
        .expect("AOK PLUS offered");
    g.app().set_insurer_index(i32::try_from(aok_plus).unwrap());
    g.type_into("Versichertennummer (KVNR)", MARIA.0);
    assert_eq!(g.app().get_kvnr_state(), 1);
    g.press("Weiter");

    // Anmelden mit der Ident-App: QR code from the daemon's PNG
    g.wait("the QR code", |g| {
        g.on(Screen::Ident) && !g.app().get_login_url().is_empty()
    });
    assert!(g.app().get_qr().size().width > 0, "the QR PNG decodes");
    assert!(!g.app().get_relogin());
    let url = g.app().get_login_url().to_string();
    let link = rt.block_on(demo.approve(&url, MARIA.0, MARIA.2));
    g.ctrl.borrow_mut().update(Msg::DeepLink(link));

    // Gerät freischalten with the mailed code
    g.wait("Gerät freischalten", |g| g.on(Screen::Device));
    // (The daemon cannot name the address yet: a limited session has no E-mail Management.)
    assert!(g.app().get_code_expires().starts_with("Code gültig noch"));
    let code = rt.block_on(demo.confirmation_code(MARIA.3));
    g.type_into("Bestätigungscode", &code);
    g.press("Bestätigen");

    // Erneut anmelden, led by the daemon
    g.wait("Erneut anmelden", |g| {
        g.on(Screen::Ident)
            && g.app().get_relogin()
            && !g.app().get_login_url().is_empty()
            && g.app().get_login_url() != url.as_str()
    });
    let url = g.app().get_login_url().to_string();
    let link = rt.block_on(demo.approve(&url, MARIA.0, MARIA.2));
    g.ctrl.borrow_mut().update(Msg::DeepLink(link));

    // Dokumente
    g.wait("the documents", |g| {
        g.on(Screen::Documents) && g.app().get_docs().row_count() > 0
    });
    let docs = g.app().get_docs();
    let first = docs.row_data(0).unwrap();
    g.press("Titel");
    g.wait("sorted by title", |g| g.app().get_sort_column() == 1);
    g.element(
        &format!("Auswählen: {}", first.title),
        AccessibleRole::Checkbox,
    )
    .invoke_accessible_default_action();
    g.settle();
    assert_eq!(g.app().get_selected_count(), 1);
    g.press("Als PDF speichern");
    g.wait("the path field", |g| g.app().get_file_dialog() == 2);
    let target = std::path::PathBuf::from(g.app().get_file_path().to_string());
    assert!(target.starts_with(&save_dir));
    g.press("Speichern");
    g.wait("the exported PDF", |g| !g.app().get_busy());
    let pdf = std::fs::read(&target).unwrap();
    assert!(pdf.starts_with(b"%PDF"), "an exported PDF");

    // Profil shows this PC among the record's devices
    g.press("Profil");
    g.wait("the devices", |g| g.app().get_devices().row_count() > 0);
    let devices = g.app().get_devices();
    assert!((0..devices.row_count()).any(|i| devices.row_data(i).is_some_and(|d| d.this_device)));

    // Von der ePA abmelden, then lock
    g.press("Von der ePA abmelden");
    g.wait("logged out", |g| {
        g.on(Screen::Overview) && !g.app().get_busy()
    });
    g.press("Zurück");
    assert!(g.on(Screen::Login));
    g.wait("the daemon reports the lock", |g| {
        let c = rt.block_on(DaemonClient::connect(&env.endpoint)).unwrap();
        let users = rt.block_on(c.list_users()).unwrap();
        users.users.iter().all(|u| !u.unlocked) && g.on(Screen::Login)
    });

    *closed.lock().unwrap() = true;
    drop(g);
    if let Ok(rt) = Arc::try_unwrap(rt) {
        rt.shutdown_background();
    }
}
