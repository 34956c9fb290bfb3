//! `epa docs ls|get|open|add|rm|hide|unhide|export-pdf|uploads`: the record's documents.
//!
//! Titles come from the record and are untrusted: a file name derived from one is sanitized
//! ([`present::safe_file_name`]) and only ever joined to a directory the user chose; files are created
//! with `create_new` unless `--force`, so nothing is overwritten (nor a planted symlink followed)
//! by accident.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use epa_ipc::i18n::Lang;
use epa_ipc::present;
use epa_ipc::types::{DocumentList, DocumentQuery, DocumentSummary, NewDocument, SortColumn};
use epa_ipc::{ClientError, Download};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::session::{logged_in, session_error, with_session};
use crate::Ctx;
use crate::output::{CliError, Output, clean};

/// Upload limit of the daemon (checked here too, so a huge file is not read into memory).
const MAX_UPLOAD: u64 = 25 * 1024 * 1024;
/// Longest file name we create (bytes; most file systems allow 255).

#[derive(Debug, Subcommand)]
pub enum DocsCmd {
    /// Dokumente auflisten, suchen, filtern, sortieren / list, search, filter, sort documents.
    Ls(LsArgs),
    /// Ein Dokument herunterladen / download a document.
    Get {
        /// Kennung aus `epa docs ls` / id from `epa docs ls`.
        id: String,
        /// Zieldatei oder -verzeichnis [Standard: Titel im aktuellen Verzeichnis] / target file
        /// or directory [default: the title, in the current directory].
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Eine vorhandene Datei überschreiben / overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Ein Dokument mit dem Standardprogramm öffnen / open a document in the system viewer.
    Open {
        /// Kennung aus `epa docs ls` / id from `epa docs ls`.
        id: String,
    },
    /// Ein Dokument hinzufügen (PDF, JPEG, PNG, TIFF, Text; bis 25 MB) / add a document.
    Add {
        /// Die Datei / the file.
        file: PathBuf,
        /// Titel / title.
        #[arg(long)]
        title: String,
        /// Kommentar / comment.
        #[arg(long, default_value = "")]
        comment: String,
        /// Erstelldatum JJJJ-MM-TT [Standard: heute] / creation date YYYY-MM-DD [default: today].
        #[arg(long, value_name = "YYYY-MM-DD|TT.MM.JJJJ", value_parser = parse_date)]
        date: Option<u64>,
    },
    /// Ein Dokument endgültig löschen / delete a document for good.
    Rm {
        /// Kennung aus `epa docs ls` / id from `epa docs ls`.
        id: String,
        /// Ohne Rückfrage / do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Ein Dokument für Praxen verbergen / hide a document from practices.
    Hide { id: String },
    /// Ein verborgenes Dokument wieder freigeben / make a hidden document visible again.
    Unhide { id: String },
    /// Dokumente als ein PDF speichern / save documents as one PDF.
    ExportPdf {
        /// Kennungen aus `epa docs ls` / ids from `epa docs ls`.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Die PDF-Datei / the PDF file.
        #[arg(short, long, value_name = "OUT.pdf")]
        output: PathBuf,
        /// Eine vorhandene Datei überschreiben / overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Warteschlange der Uploads / the upload queue.
    Uploads,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocType {
    Pdf,
    Jpeg,
    Png,
    Tiff,
    Text,
}

impl DocType {
    fn mime(self) -> &'static str {
        match self {
            DocType::Pdf => "application/pdf",
            DocType::Jpeg => "image/jpeg",
            DocType::Png => "image/png",
            DocType::Tiff => "image/tiff",
            DocType::Text => "text/plain",
        }
    }
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// In Titel und Autor suchen / search title and author.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Nur dieser Autor / only this author.
    #[arg(long, value_name = "TEXT")]
    author: Option<String>,
    /// Nur dieser Typ (mehrfach möglich) / only this type (repeatable).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    types: Vec<DocType>,
    /// Nur diese Kategorie, z. B. patient, reports (mehrfach möglich) / only this category.
    #[arg(long, value_name = "C")]
    category: Vec<String>,
    /// Erstellt ab / created from (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD|TT.MM.JJJJ", value_parser = parse_date)]
    from: Option<u64>,
    /// Erstellt bis einschließlich / created until, inclusive (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD|TT.MM.JJJJ", value_parser = parse_date)]
    to: Option<u64>,
    /// Sortierung: created|title|author|type|accesses[:asc|:desc] [Standard: created:desc].
    #[arg(long, value_name = "COL[:desc]", value_parser = parse_sort)]
    sort: Option<(SortColumn, bool)>,
    /// Erst beim Aktensystem nachfragen / ask the Aktensystem first.
    #[arg(long)]
    refresh: bool,
}

/// A date argument (`YYYY-MM-DD` or `TT.MM.JJJJ`) → 00:00 UTC of that day.
pub fn parse_date(s: &str) -> Result<u64, String> {
    present::parse_date(s)
        .ok_or_else(|| format!("kein Datum JJJJ-MM-TT / not a date YYYY-MM-DD: {s:?}"))
}

/// `col` (ascending) or `col:desc` / `col:asc`.
pub fn parse_sort(s: &str) -> Result<(SortColumn, bool), String> {
    let (col, dir) = match s.split_once(':') {
        Some((c, d)) => (c, Some(d)),
        None => (s, None),
    };
    let col = SortColumn::parse(&col.trim().to_ascii_lowercase()).ok_or_else(|| {
        format!(
            "unbekannte Spalte / unknown column {col:?}: created, title, author, type, accesses"
        )
    })?;
    let descending = match dir.map(|d| d.trim().to_ascii_lowercase()) {
        None => false,
        Some(d) if d == "desc" => true,
        Some(d) if d == "asc" => false,
        Some(d) => return Err(format!("asc oder desc / asc or desc, not {d:?}")),
    };
    Ok((col, descending))
}

impl LsArgs {
    fn query(&self) -> DocumentQuery {
        let (sort, descending) = self.sort.unwrap_or((SortColumn::Created, true));
        DocumentQuery {
            query: self.search.clone().unwrap_or_default(),
            author: self.author.clone().unwrap_or_default(),
            mime_types: self.types.iter().map(|t| t.mime().to_owned()).collect(),
            categories: self.category.clone(),
            // `--to` names a day: include all of it.
            created_from_unix: self.from,
            created_to_unix: self.to.map(|t| t + 86_399),
            sort,
            descending,
            refresh: self.refresh,
            ..DocumentQuery::default()
        }
    }
}

fn type_label(mime: &str) -> &'static str {
    match present::extension(mime) {
        "pdf" => "PDF",
        "jpg" => "JPEG",
        "png" => "PNG",
        "tif" => "TIFF",
        "txt" => "Text",
        _ => "?",
    }
}

fn author_label(out: &Output, d: &DocumentSummary) -> String {
    if d.by_me {
        out.t("von mir", "by me").to_owned()
    } else {
        clean(&d.author)
    }
}

/// Cuts to `max` characters with an ellipsis (titles in a table).
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

pub fn table(out: &Output, list: &DocumentList, sort: SortColumn, descending: bool) -> String {
    if list.documents.is_empty() {
        return out.t("Keine Dokumente.", "No documents.").to_owned();
    }
    let arrow = if descending { " ▼" } else { " ▲" };
    let head = |col: SortColumn, de: &str, en: &str| {
        format!("{}{}", out.t(de, en), if col == sort { arrow } else { "" })
    };
    let heads = [
        head(SortColumn::Type, "Typ", "Type"),
        head(SortColumn::Title, "Titel", "Title"),
        head(SortColumn::Author, "Autor", "Author"),
        head(SortColumn::Accesses, "Zugriffe", "Accesses"),
        head(SortColumn::Created, "Erstelldatum", "Created"),
        "ID".to_owned(),
    ];
    let rows: Vec<[String; 6]> = list
        .documents
        .iter()
        .map(|d| {
            let mut title = cut(&clean(&d.title), 48);
            if d.hidden {
                title.push_str(out.t(" (verborgen)", " (hidden)"));
            }
            [
                type_label(&d.mime_type).to_owned(),
                title,
                cut(&author_label(out, d), 32),
                d.accesses.to_string(),
                present::format_date(d.created_unix),
                clean(&d.id),
            ]
        })
        .collect();
    let mut widths = heads.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 6]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| pad(c, w))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut text = vec![line(&heads)];
    text.extend(rows.iter().map(line));
    let shown = list.documents.len();
    let mut foot = match out.lang {
        Lang::De => format!("{shown} von {} Dokumenten", list.total_matching),
        Lang::En => format!("{shown} of {} documents", list.total_matching),
    };
    if list.offline {
        foot.push_str(out.t(
            " · offline: Stand des Zwischenspeichers",
            " · offline: the cached state",
        ));
    }
    text.push(foot);
    text.join("\n")
}

/// A progress bar on stderr when that is a terminal (and not `--json`), else nothing visible.
fn progress(out: &Output, total: u64, what: &str) -> ProgressBar {
    if out.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

async fn download(out: &Output, mut dl: Download, what: &str) -> Result<Vec<u8>, ClientError> {
    let bar = progress(out, dl.total_size, what);
    let mut bytes = Vec::new();
    while let Some(chunk) = dl.next_chunk().await? {
        bytes.extend_from_slice(&chunk);
        bar.set_position(bytes.len() as u64);
    }
    bar.finish_and_clear();
    Ok(bytes)
}

fn io_error(out: &Output, path: &Path, e: &std::io::Error) -> CliError {
    let exists = e.kind() == std::io::ErrorKind::AlreadyExists;
    CliError::Input {
        code: if exists {
            "FILE_EXISTS"
        } else {
            "FILE_NOT_WRITTEN"
        },
        text: match (out.lang, exists) {
            (Lang::De, true) => format!("Die Datei {} gibt es schon.", path.display()),
            (Lang::En, true) => format!("The file {} already exists.", path.display()),
            (Lang::De, false) => format!("{} konnte nicht geschrieben werden: {e}", path.display()),
            (Lang::En, false) => format!("Could not write {}: {e}", path.display()),
        },
        hint: if exists {
            out.t(
                "Mit --force überschreiben oder mit -o einen anderen Namen wählen.",
                "Overwrite with --force or choose another name with -o.",
            )
        } else {
            out.t(
                "Prüfen Sie Pfad und Rechte.",
                "Check the path and permissions.",
            )
        }
        .to_owned(),
        usage: exists,
    }
}

/// Writes `bytes` to `path`: a new file only, unless `force`.
fn write_file(out: &Output, path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f: File = opts.open(path).map_err(|e| io_error(out, path, &e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error(out, path, &e))
}

/// Where `get` writes: `-o FILE` as given, `-o DIR` or nothing → the sanitized title in there.
fn target_path(output: Option<PathBuf>, title: &str, mime: &str) -> PathBuf {
    let name = present::safe_file_name(title, present::extension(mime));
    match output {
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p,
        None => PathBuf::from(name),
    }
}

#[derive(Serialize)]
struct Saved {
    id: String,
    path: PathBuf,
    bytes: u64,
}

#[derive(Serialize)]
struct Done {
    id: String,
    action: &'static str,
}

#[derive(Serialize)]
struct UploadList {
    uploads: Vec<epa_ipc::types::Upload>,
}

fn confirm_delete(out: &Output, id: &str) -> Result<bool, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(out.usage_error(
            "NO_TERMINAL",
            "Kein Terminal für die Rückfrage.",
            "No terminal to ask for confirmation.",
            "Bestätigen Sie mit --yes.",
            "Confirm with --yes.",
        ));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "{}",
        match out.lang {
            Lang::De => format!(
                "Dokument {} endgültig aus der ePA löschen? Das kann nicht rückgängig gemacht werden. [j/N] ",
                clean(id)
            ),
            Lang::En => format!(
                "Delete document {} from the ePA for good? This cannot be undone. [y/N] ",
                clean(id)
            ),
        }
    )
    .and_then(|()| err.flush());
    let mut line = String::new();
    let _ = stdin.lock().read_line(&mut line);
    Ok(matches!(
        line.trim().to_lowercase().as_str(),
        "j" | "ja" | "y" | "yes"
    ))
}

/// A private place for `open`: a fresh 0700 directory inside the daemon's private runtime
/// directory (next to the socket), else the system temp directory.
fn private_dir(ctx: &Ctx) -> std::io::Result<PathBuf> {
    let base = ctx
        .endpoint
        .path()
        .parent()
        .map(|p| p.join("open"))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    // The directory stays: the viewer reads the file after we exit.
    Ok(tempfile::Builder::new()
        .prefix("doc-")
        .tempdir_in(&base)?
        .keep())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub async fn run(ctx: &Ctx, cmd: DocsCmd) -> Result<(), CliError> {
    let out = &ctx.out;
    match cmd {
        DocsCmd::Ls(args) => {
            let query = args.query();
            let list = with_session(ctx, |c| async move { c.list_documents(&query).await }).await?;
            let (sort, desc) = args.sort.unwrap_or((SortColumn::Created, true));
            out.print(&list, || table(out, &list, sort, desc));
        }
        DocsCmd::Get { id, output, force } => {
            let client = logged_in(ctx).await?;
            let (meta, dl) = client
                .get_document(&id)
                .await
                .map_err(|e| session_error(ctx, e))?;
            let path = target_path(output, &meta.title, &meta.mime_type);
            let bytes = download(out, dl, out.t("Herunterladen", "Downloading"))
                .await
                .map_err(|e| session_error(ctx, e))?;
            write_file(out, &path, &bytes, force)?;
            let view = Saved {
                id,
                path,
                bytes: bytes.len() as u64,
            };
            out.print(&view, || {
                format!(
                    "{} {} ({} Bytes)",
                    out.t("Gespeichert:", "Saved:"),
                    view.path.display(),
                    view.bytes
                )
            });
        }
        DocsCmd::Open { id } => {
            let client = logged_in(ctx).await?;
            let (meta, dl) = client
                .get_document(&id)
                .await
                .map_err(|e| session_error(ctx, e))?;
            let bytes = download(out, dl, out.t("Herunterladen", "Downloading"))
                .await
                .map_err(|e| session_error(ctx, e))?;
            let name = present::safe_file_name(&meta.title, present::extension(&meta.mime_type));
            let path = private_dir(ctx)
                .map(|d| d.join(name))
                .and_then(|p| write_private(&p, &bytes).map(|()| p))
                .map_err(|e| io_error(out, Path::new("(temp)"), &e))?;
            if let Err(e) = present::system_open(path.as_os_str()).spawn() {
                out.note(&match out.lang {
                    Lang::De => format!(
                        "Das Standardprogramm konnte nicht gestartet werden ({e}); die Datei liegt in {}.",
                        path.display()
                    ),
                    Lang::En => format!(
                        "Could not start the system viewer ({e}); the file is at {}.",
                        path.display()
                    ),
                });
            }
            let view = Saved {
                id,
                path,
                bytes: bytes.len() as u64,
            };
            out.print(&view, || {
                format!("{} {}", out.t("Geöffnet:", "Opened:"), view.path.display())
            });
        }
        DocsCmd::Add {
            file,
            title,
            comment,
            date,
        } => {
            let read_err = |e: std::io::Error| CliError::Input {
                code: "FILE_UNREADABLE",
                text: match out.lang {
                    Lang::De => format!("{} kann nicht gelesen werden: {e}", file.display()),
                    Lang::En => format!("Cannot read {}: {e}", file.display()),
                },
                hint: out
                    .t(
                        "Prüfen Sie Pfad und Rechte.",
                        "Check the path and permissions.",
                    )
                    .to_owned(),
                usage: true,
            };
            let len = std::fs::metadata(&file).map_err(read_err)?.len();
            if len > MAX_UPLOAD {
                return Err(out.usage_error(
                    "DOCUMENT_TOO_LARGE",
                    "Die Datei ist größer als 25 MB.",
                    "The file is larger than 25 MB.",
                    "Verkleinern Sie sie (z. B. geringere Auflösung) oder teilen Sie sie auf.",
                    "Make it smaller (e.g. lower resolution) or split it.",
                ));
            }
            let content = std::fs::read(&file).map_err(read_err)?;
            let doc = NewDocument {
                title,
                comment,
                created_unix: date,
                file_name: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            let bar = progress(out, content.len() as u64, out.t("Hochladen", "Uploading"));
            let bar2 = bar.clone();
            let added = with_session(ctx, |c| async move {
                c.add_document(&doc, content, move |sent, _| bar2.set_position(sent))
                    .await
            })
            .await;
            bar.finish_and_clear();
            let added = added?;
            out.print(&added, || {
                let mut lines = vec![format!(
                    "{} {} ({})",
                    out.t("Hinzugefügt:", "Added:"),
                    clean(&added.upload_id),
                    clean(&added.detected_mime_type)
                )];
                if added.document.is_none() {
                    lines.push(
                        out.t(
                            "Der Upload steht in der Warteschlange (`epa docs uploads`).",
                            "The upload is queued (`epa docs uploads`).",
                        )
                        .to_owned(),
                    );
                }
                lines.extend(
                    added
                        .hints
                        .iter()
                        .map(|h| format!("{} {}", out.t("Hinweis:", "Note:"), clean(h))),
                );
                lines.join("\n")
            });
        }
        DocsCmd::Rm { id, yes } => {
            if !yes && !confirm_delete(out, &id)? {
                out.note(out.t("Nicht gelöscht.", "Not deleted."));
                return Ok(());
            }
            let id2 = id.clone();
            with_session(ctx, |c| async move { c.delete_document(&id2, true).await }).await?;
            let view = Done {
                id,
                action: "deleted",
            };
            out.print(&view, || {
                format!("{} {}", out.t("Gelöscht:", "Deleted:"), clean(&view.id))
            });
        }
        DocsCmd::Hide { id } => {
            let id2 = id.clone();
            with_session(ctx, |c| async move { c.hide_document(&id2).await }).await?;
            let view = Done {
                id,
                action: "hidden",
            };
            out.print(&view, || {
                format!(
                    "{} {}",
                    out.t("Für Praxen verborgen:", "Hidden from practices:"),
                    clean(&view.id)
                )
            });
        }
        DocsCmd::Unhide { id } => {
            let id2 = id.clone();
            with_session(ctx, |c| async move { c.unhide_document(&id2).await }).await?;
            let view = Done {
                id,
                action: "unhidden",
            };
            out.print(&view, || {
                format!(
                    "{} {}",
                    out.t("Wieder sichtbar:", "Visible again:"),
                    clean(&view.id)
                )
            });
        }
        DocsCmd::ExportPdf { ids, output, force } => {
            // Refuse before the (possibly long) export, not after.
            if !force && output.exists() {
                return Err(io_error(
                    out,
                    &output,
                    &std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
            let client = logged_in(ctx).await?;
            let dl = client
                .export_pdf(&ids)
                .await
                .map_err(|e| session_error(ctx, e))?;
            let bytes = download(out, dl, out.t("PDF erstellen", "Creating PDF"))
                .await
                .map_err(|e| session_error(ctx, e))?;
            write_file(out, &output, &bytes, force)?;
            let view = Saved {
                id: ids.join(","),
                path: output,
                bytes: bytes.len() as u64,
            };
            out.print(&view, || {
                format!(
                    "{} {} ({} Bytes)",
                    out.t("PDF gespeichert:", "PDF saved:"),
                    view.path.display(),
                    view.bytes
                )
            });
        }
        DocsCmd::Uploads => {
            let uploads = with_session(ctx, |c| async move { c.list_uploads().await }).await?;
            let list = UploadList { uploads };
            out.print(&list, || {
                if list.uploads.is_empty() {
                    return out.t("Keine Uploads.", "No uploads.").to_owned();
                }
                list.uploads
                    .iter()
                    .map(|u| {
                        let status = match (u.status.as_str(), out.lang) {
                            ("queued", Lang::De) => "wartet",
                            ("uploading", Lang::De) => "lädt hoch",
                            ("failed", Lang::De) => "fehlgeschlagen",
                            ("done", Lang::De) => "fertig",
                            (s, _) => s,
                        };
                        let mut line = format!(
                            "{}  {}  {}  ({} Bytes)",
                            clean(&u.upload_id),
                            status,
                            clean(&u.title),
                            u.size
                        );
                        if let Some(r) = &u.error_reason {
                            line.push_str(&format!("  [{}]", clean(r)));
                        }
                        line
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_default_target_stays_in_the_chosen_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = target_path(
            Some(dir.path().to_owned()),
            "../../etc/passwd",
            "text/plain",
        );
        assert_eq!(p.parent(), Some(dir.path()));
        assert_eq!(p.file_name().unwrap(), "etc_passwd.txt");
        let p = target_path(None, "a/b", "image/png");
        assert_eq!(p, PathBuf::from("a_b.png"));
        let explicit = dir.path().join("mine.bin");
        assert_eq!(
            target_path(Some(explicit.clone()), "x", "image/png"),
            explicit
        );
    }

    #[test]
    fn files_are_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pdf");
        let out = Output::new(false, Lang::De);
        write_file(&out, &p, b"one", false).unwrap();
        let e = write_file(&out, &p, b"two", false).unwrap_err();
        assert!(matches!(
            e,
            CliError::Input {
                code: "FILE_EXISTS",
                usage: true,
                ..
            }
        ));
        write_file(&out, &p, b"three", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
    }

    #[test]
    fn dates_and_sort_parse() {
        // The dates themselves: epa_ipc::present.
        assert_eq!(parse_date("2024-02-29"), Ok(1_709_164_800));
        assert!(parse_date("heute").unwrap_err().contains("YYYY-MM-DD"));
        assert_eq!(parse_sort("title"), Ok((SortColumn::Title, false)));
        assert_eq!(parse_sort("created:desc"), Ok((SortColumn::Created, true)));
        assert_eq!(
            parse_sort("Accesses:asc"),
            Ok((SortColumn::Accesses, false))
        );
        assert!(parse_sort("size").is_err());
        assert!(parse_sort("title:up").is_err());
    }

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: DocsCmd,
    }

    fn parse(args: &[&str]) -> Result<DocsCmd, clap::Error> {
        T::try_parse_from(std::iter::once("docs").chain(args.iter().copied())).map(|t| t.cmd)
    }

    #[test]
    fn arguments_parse() {
        let DocsCmd::Ls(ls) = parse(&[
            "ls",
            "--search",
            "brief",
            "--type",
            "pdf",
            "--type",
            "png",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-31",
            "--sort",
            "title:desc",
            "--category",
            "reports",
        ])
        .unwrap() else {
            panic!("not ls")
        };
        let q = ls.query();
        assert_eq!(q.query, "brief");
        assert_eq!(q.mime_types, ["application/pdf", "image/png"]);
        assert_eq!(q.categories, ["reports"]);
        assert_eq!(q.created_from_unix, Some(1_704_067_200));
        assert_eq!(q.created_to_unix, Some(1_706_659_200 + 86_399));
        assert_eq!((q.sort, q.descending), (SortColumn::Title, true));
        // Default: newest first.
        let DocsCmd::Ls(ls) = parse(&["ls"]).unwrap() else {
            panic!("not ls")
        };
        assert_eq!(
            (ls.query().sort, ls.query().descending),
            (SortColumn::Created, true)
        );

        assert!(parse(&["ls", "--type", "docx"]).is_err());
        assert!(parse(&["ls", "--from", "31.02.2024"]).is_err());
        assert!(parse(&["ls", "--from", "01/01/2024"]).is_err());
        assert!(parse(&["add", "f.pdf"]).is_err(), "--title is required");
        assert!(matches!(
            parse(&["add", "f.pdf", "--title", "T", "--date", "2024-03-01"]).unwrap(),
            DocsCmd::Add {
                date: Some(1_709_251_200),
                ..
            }
        ));
        assert!(
            parse(&["export-pdf", "-o", "x.pdf"]).is_err(),
            "ids are required"
        );
        assert!(matches!(
            parse(&["export-pdf", "a", "b", "-o", "x.pdf"]).unwrap(),
            DocsCmd::ExportPdf { ids, .. } if ids == ["a", "b"]
        ));
        assert!(matches!(
            parse(&["rm", "X", "--yes"]).unwrap(),
            DocsCmd::Rm { yes: true, .. }
        ));
        assert!(matches!(
            parse(&["get", "X", "-o", "d", "--force"]).unwrap(),
            DocsCmd::Get { force: true, .. }
        ));
    }

    #[test]
    fn the_table_marks_own_uploads_and_the_sort_column() {
        let out = Output::new(false, Lang::De);
        let list = DocumentList {
            documents: vec![DocumentSummary {
                id: "2.25.1".into(),
                title: "Befund\u{1b}[2J".into(),
                author: "ich".into(),
                by_me: true,
                mime_type: "application/pdf".into(),
                created_unix: 1_709_164_800,
                accesses: 3,
                ..DocumentSummary::default()
            }],
            total_matching: 1,
            ..DocumentList::default()
        };
        let t = table(&out, &list, SortColumn::Created, true);
        assert!(t.contains("Erstelldatum ▼"), "{t}");
        assert!(t.contains("von mir"), "{t}");
        assert!(t.contains("29.02.2024"), "{t}");
        assert!(t.contains("Befund?[2J"), "{t}");
        assert!(!t.contains('\u{1b}'));
    }
}
