//! The system's file dialogs ("Dokument hinzufügen", "Speichern", "Als PDF speichern"), behind
//! a trait so the headless tests answer them without a desktop. [`PortalChooser`] is the real
//! one: `rfd`, which on Linux asks the XDG Desktop Portal over D-Bus (no GTK).
//!
//! A dialog that cannot be shown ([`Choice::Unavailable`]) makes the view model fall back to
//! its in-app path field; it never blocks the UI thread (the future runs on the tokio side).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// What the view model wants chosen. Titles and filter names come translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// An existing file to read ("Dokument hinzufügen").
    Open {
        title: String,
        dir: PathBuf,
        /// Filter label and the extensions it allows (without dot).
        filter: (String, Vec<String>),
    },
    /// Where to write a new file; `name` is the suggestion.
    Save {
        title: String,
        dir: PathBuf,
        name: String,
    },
}

/// How a dialog ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Chosen(PathBuf),
    /// The person closed the dialog: nothing happens.
    Cancelled,
    /// No dialog could be shown (why, for the log): the in-app path field takes over.
    Unavailable(String),
}

pub type ChoiceFut = Pin<Box<dyn Future<Output = Choice> + Send>>;

pub trait FileChooser: Send + Sync {
    fn choose(&self, ask: Ask) -> ChoiceFut;
}

/// Always unavailable: the in-app path field only (tests, screenshots).
#[derive(Debug, Default)]
pub struct NoChooser;

impl FileChooser for NoChooser {
    fn choose(&self, _ask: Ask) -> ChoiceFut {
        Box::pin(async { Choice::Unavailable("no file dialog configured".into()) })
    }
}

/// The native dialogs through `rfd`.
#[derive(Debug, Default)]
pub struct PortalChooser;

impl FileChooser for PortalChooser {
    fn choose(&self, ask: Ask) -> ChoiceFut {
        Box::pin(async move {
            // rfd answers "no portal" and "cancelled" alike (None), so ask first whether a
            // dialog can be shown at all.
            if let Err(why) = dialog_available().await {
                return Choice::Unavailable(why);
            }
            let picked = match ask {
                Ask::Open { title, dir, filter } => {
                    rfd::AsyncFileDialog::new()
                        .set_title(title)
                        .set_directory(dir)
                        .add_filter(filter.0, &filter.1)
                        .pick_file()
                        .await
                }
                Ask::Save { title, dir, name } => {
                    rfd::AsyncFileDialog::new()
                        .set_title(title)
                        .set_directory(dir)
                        .set_file_name(name)
                        .save_file()
                        .await
                }
            };
            match picked {
                Some(handle) => Choice::Chosen(handle.path().to_owned()),
                None => Choice::Cancelled,
            }
        })
    }
}

/// The portal's well-known name and object.
#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
const PORTAL: (&str, &str) = (
    "org.freedesktop.portal.Desktop",
    "/org/freedesktop/portal/desktop",
);

/// Whether the session bus has a portal with a file chooser (reading its `version` also
/// starts a D-Bus-activated portal). Without a session bus (headless CI, SSH) this fails fast.
#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
async fn dialog_available() -> Result<(), String> {
    let probe = async {
        let conn = zbus::Connection::session().await?;
        let props = zbus::fdo::PropertiesProxy::builder(&conn)
            .destination(PORTAL.0)?
            .path(PORTAL.1)?
            .build()
            .await?;
        let iface = zbus::names::InterfaceName::try_from("org.freedesktop.portal.FileChooser")?;
        props.get(iface, "version").await?;
        Ok::<(), zbus::Error>(())
    };
    // A hanging bus must not leave the person waiting for a dialog that never comes.
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("no file chooser portal: {e}")),
        Err(_) => Err("the file chooser portal did not answer".into()),
    }
}

/// macOS and Windows always have their system dialogs.
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
async fn dialog_available() -> Result<(), String> {
    Ok(())
}

/// A stand-in for the tests: answers every dialog with the next prepared choice and records
/// what was asked.
#[derive(Debug, Default)]
pub struct FakeChooser {
    pub answers: std::sync::Mutex<std::collections::VecDeque<Choice>>,
    pub asked: std::sync::Mutex<Vec<Ask>>,
}

impl FakeChooser {
    /// Prepares the answer to the next dialog.
    pub fn answer(&self, choice: Choice) {
        if let Ok(mut a) = self.answers.lock() {
            a.push_back(choice);
        }
    }

    pub fn asked(&self) -> Vec<Ask> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl FileChooser for FakeChooser {
    fn choose(&self, ask: Ask) -> ChoiceFut {
        if let Ok(mut a) = self.asked.lock() {
            a.push(ask);
        }
        // Nothing prepared: like a machine without a desktop session.
        let choice = self
            .answers
            .lock()
            .ok()
            .and_then(|mut a| a.pop_front())
            .unwrap_or_else(|| Choice::Unavailable("no answer prepared".into()));
        Box::pin(async move { choice })
    }
}
