//! `epa-desktop`: the desktop client of epad.
//!
//! The Slint event loop runs on the main thread and owns the view model ([`Controller`]). A
//! tokio runtime on other threads runs the one task that owns the daemon connection (Watch
//! snapshot + deltas, reconnect with backoff) and the daemon calls the screens make; every
//! result is posted back to the event loop. Closing the window keeps the tray icon; a second
//! launch (also the OS URL handler with a deep link) hands over to the running window.

#![deny(unsafe_code)]

use std::cell::RefCell;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;

use epa_gui::args::{self, Exit};
use epa_gui::backend::DaemonBackend;
use epa_gui::connection::{self, Status, Ui, UiClosed};
use epa_gui::controller::{Controller, Env, Job, Msg, Tasks};
use epa_gui::instance::{self, Request};
use epa_gui::ui::{MainWindow, Theme, Tray};
use epa_gui::view;
use epa_ipc::autostart::Autostart;
use epa_ipc::i18n::Lang;
use epa_ipc::types::EpaPhase;
use epa_ipc::{DaemonClient, Endpoint};
use slint::ComponentHandle;

thread_local! {
    static CONTROLLER: RefCell<Option<Rc<RefCell<Controller>>>> = const { RefCell::new(None) };
    static TRAY: RefCell<Option<Tray>> = const { RefCell::new(None) };
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(Exit::Help) => {
            print_stdout(args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(Exit::Version) => {
            print_stdout(concat!("epa-desktop ", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Err(Exit::Usage(problem)) => {
            eprintln!("epa-desktop: {problem}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let lang = Lang::detect(args.lang.as_deref());
    match run(args, lang) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("epa-desktop: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Like `println!`, but a closed pipe (`epa-desktop --help | head -1`) is no panic.
fn print_stdout(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Hands a message to the controller on the UI thread (from any thread).
fn post(msg: Msg) {
    let _ = slint::invoke_from_event_loop(move || deliver(msg));
}

fn deliver(msg: Msg) {
    let ctrl = CONTROLLER.with(|c| c.borrow().clone());
    let Some(ctrl) = ctrl else { return };
    let Ok(mut c) = ctrl.try_borrow_mut() else {
        // The controller is at work further up this stack: deliver after it.
        post(msg);
        return;
    };
    c.update(msg);
    drop(c);
    sync_tray(&ctrl.borrow());
}

/// The tray shows where things stand: gesperrt / entsperrt / angemeldet.
fn sync_tray(ctrl: &Controller) {
    let lang = ctrl.lang;
    let unlocked = ctrl.user().is_some();
    let logged_in = ctrl.epa_phase() == Some(EpaPhase::LoggedIn);
    let text = if logged_in {
        lang.pick("bei der ePA angemeldet", "logged in to the ePA")
    } else if unlocked {
        lang.pick("entsperrt", "unlocked")
    } else {
        lang.pick("gesperrt", "locked")
    };
    TRAY.with(|t| {
        if let Some(tray) = t.borrow().as_ref() {
            tray.set_state_text(text.into());
            tray.set_unlocked(unlocked);
            tray.set_logged_in(logged_in);
        }
    });
}

struct RuntimeTasks(tokio::runtime::Handle);

impl Tasks for RuntimeTasks {
    fn spawn(&self, job: Job) {
        self.0.spawn(async move { post(job.await) });
    }

    fn poster(&self) -> Arc<dyn Fn(Msg) + Send + Sync> {
        Arc::new(post)
    }
}

/// The connection task reports here: statuses go to the controller, the client to the backend.
struct WindowUi {
    backend: Arc<DaemonBackend>,
}

impl Ui for WindowUi {
    fn show(&self, status: Status) -> Result<(), UiClosed> {
        slint::invoke_from_event_loop(move || deliver(Msg::Status(status))).map_err(|_| UiClosed)
    }

    fn client(&self, client: Option<DaemonClient>) {
        if let Ok(mut slot) = self.backend.slot().lock() {
            *slot = client;
        }
    }
}

/// Opens a file or https URL with the desktop's handler, never through a shell.
fn open_with_system(target: &str) -> std::io::Result<()> {
    epa_ipc::present::system_open(std::ffi::OsStr::new(target))
        .spawn()
        .map(|_| ())
}

/// Text size from the desktop (GNOME's text scaling reaches us as GDK_DPI_SCALE) or our own
/// variable; the display's scale factor is applied by Slint itself.
fn text_scale() -> f32 {
    ["EPA_DESKTOP_TEXT_SCALE", "GDK_DPI_SCALE"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter_map(|v| v.trim().parse::<f32>().ok())
        .find(|s| (0.5..=3.0).contains(s))
        .unwrap_or(1.0)
}

fn run(args: args::Args, lang: Lang) -> Result<(), String> {
    let endpoint = match args.socket.clone() {
        Some(path) => Ok(Endpoint::at(path)),
        None => Endpoint::default_for_user(),
    };
    let instance_path = endpoint
        .as_ref()
        .ok()
        .map(|e| instance::socket_path(e.path()));
    let request = match args.url.clone() {
        Some(url) => Request::OpenUrl(url),
        None => Request::Focus,
    };
    // A window is already open: hand over and leave.
    if let Some(path) = &instance_path
        && let Ok(true) = instance::hand_over(path, &request)
    {
        return Ok(());
    }

    let window = MainWindow::new().map_err(|e| {
        format!(
            "{}: {e}",
            lang.pick(
                "Das Fenster lässt sich nicht öffnen",
                "cannot open the window"
            )
        )
    })?;
    window.global::<Theme>().set_scale(text_scale());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("epa-desktop-io")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let backend = Arc::new(DaemonBackend::default());
    let runtime_dir = endpoint
        .as_ref()
        .map(|e| e.dir().to_owned())
        .unwrap_or_else(|_| std::env::temp_dir());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let save_dir = home
        .as_ref()
        .map(|h| h.join("Downloads"))
        .filter(|d| d.is_dir())
        .or(home)
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let env = Env {
        now: Box::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        }),
        open_dir: runtime_dir.join("gui-open"),
        save_dir,
        opener: Box::new(open_with_system),
        chooser: Arc::new(epa_gui::chooser::PortalChooser),
    };
    let ctrl = Controller::new(
        &window,
        backend.clone(),
        Rc::new(RuntimeTasks(runtime.handle().clone())),
        env,
        lang,
    );
    ctrl.borrow_mut().lang_from_args = args.lang.is_some();
    CONTROLLER.with(|c| *c.borrow_mut() = Some(ctrl.clone()));

    match endpoint {
        Ok(endpoint) => {
            let autostart = (!args.no_autostart).then(Autostart::default);
            let ui = WindowUi { backend };
            runtime.spawn(connection::run(endpoint, autostart, lang, ui));
        }
        Err(e) => {
            let message = view::endpoint_problem(e, lang);
            ctrl.borrow_mut().update(Msg::Status(Status::Disconnected {
                message,
                retry_in_secs: None,
            }));
        }
    }
    if let Some(url) = args.url {
        ctrl.borrow_mut().update(Msg::DeepLink(url));
    }

    if let Some(path) = &instance_path {
        let weak = window.as_weak();
        let listening = instance::listen(path, move |req| {
            let weak = weak.clone();
            let _ = slint::invoke_from_event_loop(move || {
                if let Some(w) = weak.upgrade() {
                    let _ = w.show();
                }
                if let Request::OpenUrl(url) = req {
                    deliver(Msg::DeepLink(url));
                }
            });
        });
        if let Err(e) = listening {
            eprintln!("epa-desktop: a second launch cannot reach this window: {e}");
        }
    }

    // The tray: without a StatusNotifier host Slint logs the failure and carries on.
    let tray = Tray::new().ok();
    if let Some(tray) = &tray {
        let w = window.as_weak();
        tray.on_open(move || {
            if let Some(w) = w.upgrade() {
                let _ = w.show();
            }
        });
        let c = Rc::downgrade(&ctrl);
        tray.on_lock(move || {
            if let Some(c) = c.upgrade()
                && let Ok(mut ctrl) = c.try_borrow_mut()
            {
                ctrl.lock();
                ctrl.render();
                sync_tray(&ctrl);
            }
        });
        let c = Rc::downgrade(&ctrl);
        tray.on_logout(move || {
            if let Some(c) = c.upgrade()
                && let Ok(mut ctrl) = c.try_borrow_mut()
            {
                ctrl.epa_logout();
                ctrl.render();
            }
        });
        tray.on_quit(|| {
            let _ = slint::quit_event_loop();
        });
        let _ = tray.show();
    }
    TRAY.with(|t| *t.borrow_mut() = tray);
    sync_tray(&ctrl.borrow());

    // Countdowns (QR code, device code, lockout) tick once a second.
    let ticker = slint::Timer::default();
    ticker.start(
        slint::TimerMode::Repeated,
        std::time::Duration::from_secs(1),
        || deliver(Msg::Tick),
    );

    ctrl.borrow_mut().render();
    window.show().map_err(|e| e.to_string())?;
    // Closing the window only hides it (the default); the tray's "Beenden" ends the program.
    slint::run_event_loop_until_quit().map_err(|e| e.to_string())?;
    if let Some(path) = &instance_path {
        let _ = std::fs::remove_file(path);
    }
    CONTROLLER.with(|c| *c.borrow_mut() = None);
    TRAY.with(|t| *t.borrow_mut() = None);
    drop(window);
    runtime.shutdown_background();
    Ok(())
}
