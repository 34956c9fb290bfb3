//! "Als PDF speichern": one PDF out of several documents of the record.
//!
//! A cover page (or several) lists title, author and date of every document; then every document
//! follows: the pages of a PDF as they are, an image on a page of its own scaled to fit A4, plain
//! text wrapped and paginated. krilla writes everything this module draws itself (cover, images,
//! text, placeholders) with an embedded DejaVu Sans (umlauts, ß, and far beyond); lopdf then
//! splices the pages of the PDF documents in between.
//!
//! Input comes from the record and is untrusted: nothing here panics on it. A document that cannot
//! be read (damaged PDF, broken image, unsupported type) becomes a placeholder page "Dieses
//! Dokument konnte nicht eingefügt werden: <Titel>" and an [`ExportWarning`]; the export goes on.
//! Third-party parsers run behind `catch_unwind` as a last line of defence.
//! Fuzz-worthy: [`export`] with arbitrary `bytes` and `mime_type` (lopdf, the image decoders and
//! krilla's JPEG header parser see raw input).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use epa_protocol::xds::rim::{civil_from_days, days_from_civil};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Size, Transform};
use krilla::image::Image;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::{Data, Document, SerializeSettings};
use lopdf::{Dictionary, Object, ObjectId};

/// The fonts ship inside the binary: exports must look the same on every machine and must not
/// depend on what a system has installed (license: daemon/assets/fonts/LICENSE-DejaVu.txt).
static FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// A4 in PostScript points.
const PAGE_W: f32 = 595.276;
const PAGE_H: f32 = 841.89;
/// 20 mm.
const MARGIN: f32 = 56.69;
const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN;

const COVER_TITLE: &str = "Dokumente aus der elektronischen Patientenakte";
const PLACEHOLDER_PREFIX: &str = "Dieses Dokument konnte nicht eingefügt werden:";

/// Text documents longer than this are cut (25 MB of text would be ~10,000 pages).
const MAX_TEXT_PAGES: usize = 500;
/// Decoded raster images larger than this are refused instead of exhausting memory.
const MAX_IMAGE_ALLOC: u64 = 512 * 1024 * 1024;
const MAX_IMAGE_SIDE: u32 = 30_000;
/// A PDF with more pages than this is not merged (keeps the export bounded).
const MAX_PDF_PAGES: usize = 5_000;

/// One document to put into the export.
#[derive(Debug, Clone)]
pub struct ExportItem {
    pub title: String,
    pub author: String,
    /// Creation date (seconds since the epoch); shown as dd.mm.yyyy, German time.
    pub created_unix: u64,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

/// The finished PDF and what could not go into it.
#[derive(Debug, Clone)]
pub struct Export {
    pub pdf: Vec<u8>,
    /// Number of pages of `pdf`.
    pub pages: usize,
    /// One entry per document that became a placeholder page (or was shortened).
    pub warnings: Vec<ExportWarning>,
}

/// A document that is not (fully) in the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportWarning {
    /// Index into the `items` given to [`export`].
    pub index: usize,
    pub title: String,
    pub problem: ExportProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportProblem {
    /// The PDF could not be read (damaged, or not a PDF at all).
    DamagedPdf,
    /// The PDF is encrypted with a password.
    EncryptedPdf,
    /// The image could not be decoded.
    DamagedImage,
    /// The image is larger than the export accepts.
    ImageTooLarge,
    /// The type cannot be shown in a PDF (e.g. DICOM, ZIP).
    UnsupportedType,
    /// Very long text or PDF: only the beginning is in the export.
    Truncated,
}

impl ExportProblem {
    /// German, like the rest of the export (the daemon may translate for its clients).
    pub fn text_de(self) -> &'static str {
        match self {
            ExportProblem::DamagedPdf => "Die PDF-Datei ist beschädigt oder keine PDF-Datei.",
            ExportProblem::EncryptedPdf => "Die PDF-Datei ist mit einem Kennwort geschützt.",
            ExportProblem::DamagedImage => "Das Bild ist beschädigt.",
            ExportProblem::ImageTooLarge => "Das Bild ist zu groß.",
            ExportProblem::UnsupportedType => {
                "Dieser Dokumenttyp kann nicht als PDF dargestellt werden."
            }
            ExportProblem::Truncated => "Das Dokument ist zu lang und wurde gekürzt.",
        }
    }

    pub fn text_en(self) -> &'static str {
        match self {
            ExportProblem::DamagedPdf => "The PDF file is damaged or not a PDF file.",
            ExportProblem::EncryptedPdf => "The PDF file is password-protected.",
            ExportProblem::DamagedImage => "The image is damaged.",
            ExportProblem::ImageTooLarge => "The image is too large.",
            ExportProblem::UnsupportedType => "This document type cannot be shown in a PDF.",
            ExportProblem::Truncated => "The document is too long and was shortened.",
        }
    }
}

impl std::fmt::Display for ExportWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "„{}“: {}", self.title, self.problem.text_de())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("no documents to export")]
    Empty,
    #[error("the embedded font could not be loaded")]
    Font,
    #[error("creating the PDF failed: {0}")]
    Create(String),
    #[error("merging the PDF pages failed: {0}")]
    Merge(String),
}

/// Builds the export. Errors only for an empty list or a bug on our side: damaged input documents
/// become placeholder pages plus a warning.
pub fn export(items: &[ExportItem]) -> Result<Export, PdfError> {
    if items.is_empty() {
        return Err(PdfError::Empty);
    }
    let fonts = Fonts::load()?;
    let mut warnings = Vec::new();

    // 1. Read every document (untrusted) into something that cannot fail later.
    let mut parts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let prepared = catch_unwind(AssertUnwindSafe(|| prepare(item, &fonts)))
            .unwrap_or(Prepared::Failed(ExportProblem::UnsupportedType));
        match &prepared {
            Prepared::Failed(problem) => warnings.push(ExportWarning {
                index,
                title: item.title.clone(),
                problem: *problem,
            }),
            Prepared::Text {
                truncated: true, ..
            }
            | Prepared::Pdf {
                truncated: true, ..
            } => warnings.push(ExportWarning {
                index,
                title: item.title.clone(),
                problem: ExportProblem::Truncated,
            }),
            _ => {}
        }
        parts.push(prepared);
    }

    // 2. Page numbers for the cover's "Seite" column.
    let rows: Vec<CoverRow> = items
        .iter()
        .map(|item| CoverRow::layout(item, &fonts))
        .collect();
    let cover_pages = paginate_cover(&rows);
    let mut next_page = cover_pages.len() + 1;
    let mut start_pages = Vec::with_capacity(parts.len());
    for part in &parts {
        start_pages.push(next_page);
        next_page += part.page_count();
    }

    // 3. Everything we draw ourselves, in one krilla document.
    let drawn = catch_unwind(AssertUnwindSafe(|| {
        draw(items, &parts, &rows, &cover_pages, &start_pages, &fonts)
    }))
    .map_err(|_| PdfError::Create("panic while drawing".into()))??;

    // 4. Splice the PDF documents' pages in.
    let pdf = catch_unwind(AssertUnwindSafe(|| merge(drawn, parts)))
        .map_err(|_| PdfError::Merge("panic while merging".into()))??;
    Ok(Export {
        pdf,
        pages: next_page - 1,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// Fonts and text measuring

struct FontFace {
    krilla: Font,
    face: ttf_parser::Face<'static>,
}

impl FontFace {
    fn load(bytes: &'static [u8]) -> Result<Self, PdfError> {
        let krilla = Font::new(Data::from(bytes), 0).ok_or(PdfError::Font)?;
        let face = ttf_parser::Face::parse(bytes, 0).map_err(|_| PdfError::Font)?;
        Ok(FontFace { krilla, face })
    }

    fn has(&self, c: char) -> bool {
        self.face.glyph_index(c).is_some()
    }

    /// Advance width of `c` at `size` pt (no kerning: the wrap width keeps a small reserve).
    fn advance(&self, c: char, size: f32) -> f32 {
        let upem = f32::from(self.face.units_per_em().max(1));
        let units = self
            .face
            .glyph_index(c)
            .or_else(|| self.face.glyph_index('\u{FFFD}'))
            .and_then(|g| self.face.glyph_hor_advance(g))
            .unwrap_or(0);
        f32::from(units) * size / upem
    }

    fn width(&self, s: &str, size: f32) -> f32 {
        s.chars().map(|c| self.advance(c, size)).sum()
    }
}

struct Fonts {
    regular: FontFace,
    bold: FontFace,
}

impl Fonts {
    fn load() -> Result<Self, PdfError> {
        Ok(Fonts {
            regular: FontFace::load(FONT_REGULAR)?,
            bold: FontFace::load(FONT_BOLD)?,
        })
    }
}

/// Makes a string drawable: no control characters, tabs as spaces, and characters the font lacks
/// as U+FFFD (krilla would draw an invisible .notdef glyph).
fn clean(s: &str, font: &FontFace) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            // Zero-width and bidi controls confuse the naive shaper and are invisible anyway.
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {}
            '\u{FEFF}' => {}
            c if font.has(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Greedy wrap at spaces; words longer than a line are broken anywhere. Keeps indentation.
fn wrap(line: &str, font: &FontFace, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut current_w = 0.0;
    // Byte index in `current` just after the last space, and the width up to there.
    let mut last_space: Option<(usize, f32)> = None;
    for c in line.chars() {
        let w = font.advance(c, size);
        if current_w + w > width && !current.is_empty() {
            if c == ' ' {
                // The line is full right at a space: break here, drop the space.
                lines.push(std::mem::take(&mut current).trim_end().to_string());
                current_w = 0.0;
                last_space = None;
                continue;
            }
            match last_space {
                Some((at, w_at)) if at < current.len() => {
                    let rest = current.split_off(at);
                    lines.push(current.trim_end().to_string());
                    current = rest;
                    current_w -= w_at;
                }
                _ => {
                    lines.push(std::mem::take(&mut current).trim_end().to_string());
                    current_w = 0.0;
                }
            }
            last_space = None;
        }
        current.push(c);
        current_w += w;
        if c == ' ' {
            last_space = Some((current.len(), current_w));
        }
    }
    lines.push(current.trim_end().to_string());
    lines
}

/// Cuts `s` to `width` with an ellipsis.
fn ellipsize(s: &str, font: &FontFace, size: f32, width: f32) -> String {
    if font.width(s, size) <= width {
        return s.to_string();
    }
    let ell = font.advance('…', size);
    let mut out = String::new();
    let mut w = 0.0;
    for c in s.chars() {
        let cw = font.advance(c, size);
        if w + cw + ell > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.trim_end().to_string() + "…"
}

// ---------------------------------------------------------------------------------------------
// Dates

/// dd.mm.yyyy in German civil time (CET/CEST, EU rules since 1996).
pub fn format_date_de(unix: u64) -> String {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX / 2);
    let (y, _, _) = civil_from_days(secs.div_euclid(86_400));
    let offset = if in_eu_summer_time(secs, y) {
        7_200
    } else {
        3_600
    };
    let (y, m, d) = civil_from_days((secs + offset).div_euclid(86_400));
    format!("{d:02}.{m:02}.{y:04}")
}

/// EU summer time: from the last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC.
fn in_eu_summer_time(secs: i64, year: i64) -> bool {
    let start = last_sunday(year, 3) * 86_400 + 3_600;
    let end = last_sunday(year, 10) * 86_400 + 3_600;
    secs >= start && secs < end
}

/// Days since the epoch of the last Sunday of `month` (31-day months only: March, October).
fn last_sunday(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month, 31);
    // 1970-01-01 was a Thursday: weekday 0 = Sunday is (days + 4) mod 7.
    last - (last + 4).rem_euclid(7)
}

// ---------------------------------------------------------------------------------------------
// Reading the documents

enum Prepared {
    Pdf {
        doc: Box<lopdf::Document>,
        pages: Vec<ObjectId>,
        truncated: bool,
    },
    Image(Image),
    Text {
        pages: Vec<Vec<String>>,
        truncated: bool,
    },
    Failed(ExportProblem),
}

impl Prepared {
    fn page_count(&self) -> usize {
        match self {
            Prepared::Pdf { pages, .. } => pages.len(),
            Prepared::Text { pages, .. } => pages.len().max(1),
            Prepared::Image(_) | Prepared::Failed(_) => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pdf,
    Jpeg,
    Png,
    Tiff,
    Text { latin1: bool },
    Unsupported,
}

fn classify(mime_type: &str, bytes: &[u8]) -> Kind {
    let lower = mime_type.to_ascii_lowercase();
    let mut parts = lower.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let latin1 = parts.any(|p| {
        let p = p.trim();
        p == "charset=iso-8859-1" || p == "charset=latin1" || p == "charset=windows-1252"
    });
    match essence {
        "application/pdf" => Kind::Pdf,
        "image/jpeg" | "image/jpg" | "image/pjpeg" => Kind::Jpeg,
        "image/png" => Kind::Png,
        "image/tiff" | "image/tif" => Kind::Tiff,
        e if e.starts_with("text/") => Kind::Text { latin1 },
        // The metadata is not always right (octet-stream, empty): look at the content.
        _ => sniff(bytes),
    }
}

fn sniff(bytes: &[u8]) -> Kind {
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        Kind::Pdf
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Kind::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Kind::Tiff
    } else if std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\0')) {
        Kind::Text { latin1: false }
    } else {
        Kind::Unsupported
    }
}

fn prepare(item: &ExportItem, fonts: &Fonts) -> Prepared {
    match classify(&item.mime_type, &item.bytes) {
        Kind::Pdf => prepare_pdf(&item.bytes),
        Kind::Jpeg => match Image::from_jpeg(Data::from(item.bytes.clone()), true) {
            // krilla embeds JPEGs as they are; from_jpeg has checked the header already.
            Ok(image) if image.size().0 > 0 && image.size().1 > 0 => {
                if image.size().0 > MAX_IMAGE_SIDE || image.size().1 > MAX_IMAGE_SIDE {
                    Prepared::Failed(ExportProblem::ImageTooLarge)
                } else {
                    Prepared::Image(image)
                }
            }
            _ => Prepared::Failed(ExportProblem::DamagedImage),
        },
        Kind::Png => decode_raster(&item.bytes, image::ImageFormat::Png),
        Kind::Tiff => decode_raster(&item.bytes, image::ImageFormat::Tiff),
        Kind::Text { latin1 } => prepare_text(&item.bytes, latin1, fonts),
        Kind::Unsupported => Prepared::Failed(ExportProblem::UnsupportedType),
    }
}

/// PNG and TIFF are decoded here rather than by krilla: krilla decodes lazily in `finish`, where a
/// broken image would fail the whole export.
fn decode_raster(bytes: &[u8], format: image::ImageFormat) -> Prepared {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => {
            let rgba = img.to_rgba8();
            let (w, h) = rgba.dimensions();
            if w == 0 || h == 0 {
                return Prepared::Failed(ExportProblem::DamagedImage);
            }
            Prepared::Image(Image::from_rgba8(rgba.into_raw(), w, h))
        }
        Err(image::ImageError::Limits(_)) => Prepared::Failed(ExportProblem::ImageTooLarge),
        Err(_) => Prepared::Failed(ExportProblem::DamagedImage),
    }
}

fn prepare_pdf(bytes: &[u8]) -> Prepared {
    let Ok(mut doc) = lopdf::Document::load_mem(bytes) else {
        return Prepared::Failed(ExportProblem::DamagedPdf);
    };
    if doc.is_encrypted() && doc.encryption_state.is_none() {
        return Prepared::Failed(ExportProblem::EncryptedPdf);
    }
    let mut seen = HashSet::new();
    let mut pages: Vec<ObjectId> = doc.page_iter().filter(|id| seen.insert(*id)).collect();
    if pages.is_empty() {
        return Prepared::Failed(ExportProblem::DamagedPdf);
    }
    let truncated = pages.len() > MAX_PDF_PAGES;
    pages.truncate(MAX_PDF_PAGES);
    for &page in &pages {
        flatten_inherited(&mut doc, page);
    }
    Prepared::Pdf {
        doc: Box::new(doc),
        pages,
        truncated,
    }
}

/// Text lines per page and the geometry of text pages.
const TEXT_SIZE: f32 = 10.0;
const TEXT_LEADING: f32 = 13.0;
const HEADER_H: f32 = 24.0;

fn text_lines_per_page() -> usize {
    ((PAGE_H - 2.0 * MARGIN - HEADER_H) / TEXT_LEADING).floor() as usize
}

fn prepare_text(bytes: &[u8], latin1: bool, fonts: &Fonts) -> Prepared {
    let text: String = match (latin1, std::str::from_utf8(bytes)) {
        (false, Ok(s)) => s.to_string(),
        // German text files that are not UTF-8 are almost always Latin-1/Windows-1252.
        _ => bytes.iter().map(|&b| char::from(b)).collect(),
    };
    let per_page = text_lines_per_page().max(1);
    let max_lines = per_page * MAX_TEXT_PAGES;
    let mut lines = Vec::new();
    let mut truncated = false;
    'outer: for raw in text.lines() {
        for line in wrap(
            &clean(raw, &fonts.regular),
            &fonts.regular,
            TEXT_SIZE,
            CONTENT_W - 2.0,
        ) {
            if lines.len() >= max_lines {
                truncated = true;
                break 'outer;
            }
            lines.push(line);
        }
    }
    let pages = lines.chunks(per_page).map(<[String]>::to_vec).collect();
    Prepared::Text { pages, truncated }
}

// ---------------------------------------------------------------------------------------------
// Cover

const COVER_SIZE: f32 = 9.5;
const COVER_LEADING: f32 = 12.0;
const COVER_PAD: f32 = 4.0;
const COVER_MAX_LINES: usize = 3;
/// Column x offsets (relative to the left margin) and widths: Nr., Titel, Autor, Datum, Seite.
const COLS: [(f32, f32); 5] = [
    (0.0, 24.0),
    (26.0, 218.0),
    (248.0, 136.0),
    (388.0, 58.0),
    (452.0, 29.0),
];
const COVER_HEAD_Y: f32 = MARGIN + 90.0;

struct CoverRow {
    title: Vec<String>,
    author: Vec<String>,
    date: String,
}

impl CoverRow {
    fn layout(item: &ExportItem, fonts: &Fonts) -> Self {
        let cell = |s: &str, width: f32| {
            let text = clean(s, &fonts.regular);
            let mut lines = wrap(&text, &fonts.regular, COVER_SIZE, width);
            if lines.len() > COVER_MAX_LINES {
                lines.truncate(COVER_MAX_LINES);
                if let Some(last) = lines.last_mut() {
                    *last = ellipsize(&(last.clone() + " …"), &fonts.regular, COVER_SIZE, width);
                }
            }
            lines
        };
        CoverRow {
            title: cell(&item.title, COLS[1].1),
            author: cell(&item.author, COLS[2].1),
            date: format_date_de(item.created_unix),
        }
    }

    fn height(&self) -> f32 {
        let lines = self.title.len().max(self.author.len()).max(1);
        lines as f32 * COVER_LEADING + 2.0 * COVER_PAD
    }
}

/// Row indices per cover page.
fn paginate_cover(rows: &[CoverRow]) -> Vec<Vec<usize>> {
    let first_top = COVER_HEAD_Y + COVER_LEADING + 2.0 * COVER_PAD;
    let next_top = MARGIN + COVER_LEADING + 2.0 * COVER_PAD;
    let bottom = PAGE_H - MARGIN;
    let mut pages = vec![Vec::new()];
    let mut y = first_top;
    for (i, row) in rows.iter().enumerate() {
        let h = row.height();
        if y + h > bottom && pages.last().is_some_and(|p: &Vec<usize>| !p.is_empty()) {
            pages.push(Vec::new());
            y = next_top;
        }
        if let Some(page) = pages.last_mut() {
            page.push(i);
        }
        y += h;
    }
    pages
}

// ---------------------------------------------------------------------------------------------
// Drawing (krilla)

/// The krilla output and, per part, the indices of its pages in that output.
struct Drawn {
    pdf: Vec<u8>,
    cover_pages: usize,
    part_pages: Vec<Vec<usize>>,
}

fn gray(v: u8) -> Fill {
    Fill {
        paint: rgb::Color::new(v, v, v).into(),
        ..Fill::default()
    }
}

fn a4() -> Result<PageSettings, PdfError> {
    PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| PdfError::Create("page size".into()))
}

fn text_at(
    s: &mut krilla::surface::Surface<'_>,
    font: &FontFace,
    size: f32,
    x: f32,
    y: f32,
    t: &str,
) {
    if !t.is_empty() {
        s.draw_text(
            Point::from_xy(x, y),
            font.krilla.clone(),
            size,
            t,
            false,
            TextDirection::LeftToRight,
        );
    }
}

fn hline(s: &mut krilla::surface::Surface<'_>, y: f32, width: f32, shade: u8) {
    let mut pb = PathBuilder::new();
    pb.move_to(MARGIN, y);
    pb.line_to(MARGIN + CONTENT_W, y);
    if let Some(path) = pb.finish() {
        s.set_fill(None);
        s.set_stroke(Some(Stroke {
            paint: rgb::Color::new(shade, shade, shade).into(),
            width,
            ..Stroke::default()
        }));
        s.draw_path(&path);
        s.set_stroke(None);
        s.set_fill(Some(Fill::default()));
    }
}

/// Title · author · date above every page we draw for a document, so a printout stays legible.
fn page_header(s: &mut krilla::surface::Surface<'_>, item: &ExportItem, fonts: &Fonts) {
    let f = &fonts.regular;
    let date = format_date_de(item.created_unix);
    let right = format!("{} · {}", clean(&item.author, f), date);
    let right_w = f.width(&right, 8.0).min(CONTENT_W * 0.45);
    let right = ellipsize(&right, f, 8.0, right_w);
    let title = ellipsize(&clean(&item.title, f), f, 8.0, CONTENT_W - right_w - 12.0);
    s.set_fill(Some(gray(90)));
    text_at(s, f, 8.0, MARGIN, MARGIN - 14.0, &title);
    text_at(
        s,
        f,
        8.0,
        MARGIN + CONTENT_W - f.width(&right, 8.0),
        MARGIN - 14.0,
        &right,
    );
    s.set_fill(Some(Fill::default()));
    hline(s, MARGIN - 9.0, 0.5, 170);
}

fn draw(
    items: &[ExportItem],
    parts: &[Prepared],
    rows: &[CoverRow],
    cover_pages: &[Vec<usize>],
    start_pages: &[usize],
    fonts: &Fonts,
) -> Result<Drawn, PdfError> {
    let settings = SerializeSettings {
        // No structure tree: the merged pages of other PDFs could not be part of it anyway.
        enable_tagging: false,
        xmp_metadata: false,
        ..SerializeSettings::default()
    };
    let mut doc = Document::new_with(settings);
    doc.set_metadata(
        krilla::metadata::Metadata::new()
            .title(COVER_TITLE.to_string())
            .language("de".to_string())
            .creator("epa-desktop".to_string()),
    );
    let mut page_index = 0usize;

    // Cover.
    let total = items.len();
    for (n, rows_here) in cover_pages.iter().enumerate() {
        let mut page = doc.start_page_with(a4()?);
        let mut s = page.surface();
        let mut y;
        if n == 0 {
            text_at(
                &mut s,
                &fonts.bold,
                16.0,
                MARGIN,
                MARGIN + 16.0,
                COVER_TITLE,
            );
            let sub = format!(
                "{} {} · erstellt am {}",
                total,
                if total == 1 { "Dokument" } else { "Dokumente" },
                format_date_de(now_unix()),
            );
            s.set_fill(Some(gray(80)));
            text_at(&mut s, &fonts.regular, 10.0, MARGIN, MARGIN + 40.0, &sub);
            s.set_fill(Some(Fill::default()));
            y = COVER_HEAD_Y;
        } else {
            y = MARGIN;
        }
        // Table head.
        let heads = ["Nr.", "Titel", "Autor", "Datum", "Seite"];
        for (i, h) in heads.iter().enumerate() {
            text_at(
                &mut s,
                &fonts.bold,
                COVER_SIZE,
                MARGIN + COLS[i].0,
                y + COVER_PAD + COVER_SIZE,
                h,
            );
        }
        y += COVER_LEADING + 2.0 * COVER_PAD;
        hline(&mut s, y, 0.8, 60);
        for &r in rows_here {
            let (Some(row), Some(start)) = (rows.get(r), start_pages.get(r)) else {
                continue;
            };
            let base = y + COVER_PAD + COVER_SIZE;
            let cols = [
                vec![format!("{}", r + 1)],
                row.title.clone(),
                row.author.clone(),
                vec![row.date.clone()],
                vec![format!("{start}")],
            ];
            for (i, lines) in cols.iter().enumerate() {
                for (l, line) in lines.iter().enumerate() {
                    let ly = base + l as f32 * COVER_LEADING;
                    text_at(
                        &mut s,
                        &fonts.regular,
                        COVER_SIZE,
                        MARGIN + COLS[i].0,
                        ly,
                        line,
                    );
                }
            }
            y += row.height();
            hline(&mut s, y, 0.4, 190);
        }
        s.finish();
        page.finish();
        page_index += 1;
    }

    // Our pages of every non-PDF part.
    let mut part_pages = Vec::with_capacity(parts.len());
    for (item, part) in items.iter().zip(parts) {
        let mut mine = Vec::new();
        match part {
            Prepared::Pdf { .. } => {}
            Prepared::Image(image) => {
                let mut page = doc.start_page_with(a4()?);
                let mut s = page.surface();
                page_header(&mut s, item, fonts);
                draw_fitted(&mut s, image);
                s.finish();
                page.finish();
                mine.push(page_index);
                page_index += 1;
            }
            Prepared::Text { pages, .. } => {
                let empty = vec![Vec::new()];
                let pages = if pages.is_empty() { &empty } else { pages };
                for lines in pages {
                    let mut page = doc.start_page_with(a4()?);
                    let mut s = page.surface();
                    page_header(&mut s, item, fonts);
                    for (l, line) in lines.iter().enumerate() {
                        let y =
                            MARGIN + HEADER_H - TEXT_LEADING + TEXT_SIZE + l as f32 * TEXT_LEADING;
                        text_at(&mut s, &fonts.regular, TEXT_SIZE, MARGIN, y, line);
                    }
                    s.finish();
                    page.finish();
                    mine.push(page_index);
                    page_index += 1;
                }
            }
            Prepared::Failed(problem) => {
                let mut page = doc.start_page_with(a4()?);
                let mut s = page.surface();
                page_header(&mut s, item, fonts);
                let f = &fonts.regular;
                let mut y = MARGIN + 60.0;
                let msg = format!("{PLACEHOLDER_PREFIX} {}", clean(&item.title, f));
                for line in wrap(&msg, &fonts.bold, 13.0, CONTENT_W) {
                    text_at(&mut s, &fonts.bold, 13.0, MARGIN, y, &line);
                    y += 18.0;
                }
                y += 8.0;
                s.set_fill(Some(gray(70)));
                for line in wrap(problem.text_de(), f, 11.0, CONTENT_W) {
                    text_at(&mut s, f, 11.0, MARGIN, y, &line);
                    y += 15.0;
                }
                s.set_fill(Some(Fill::default()));
                s.finish();
                page.finish();
                mine.push(page_index);
                page_index += 1;
            }
        }
        part_pages.push(mine);
    }

    let pdf = doc
        .finish()
        .map_err(|e| PdfError::Create(format!("{e:?}")))?;
    Ok(Drawn {
        pdf,
        cover_pages: cover_pages.len(),
        part_pages,
    })
}

/// The image as large as fits below the header, centred, aspect ratio kept.
fn draw_fitted(s: &mut krilla::surface::Surface<'_>, image: &Image) {
    let (w, h) = image.size();
    let (w, h) = (w.max(1) as f32, h.max(1) as f32);
    let box_w = CONTENT_W;
    let box_h = PAGE_H - 2.0 * MARGIN - 6.0;
    let scale = (box_w / w).min(box_h / h);
    let (dw, dh) = (w * scale, h * scale);
    let Some(size) = Size::from_wh(dw.max(0.1), dh.max(0.1)) else {
        return;
    };
    let x = MARGIN + (box_w - dw) / 2.0;
    let y = MARGIN + 6.0;
    s.push_transform(&Transform::from_translate(x, y));
    s.draw_image(image.clone(), size);
    s.pop();
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Merging (lopdf)

const INHERITABLE: [&[u8]; 4] = [b"Resources", b"MediaBox", b"CropBox", b"Rotate"];

/// Copies the attributes a page inherits from its page-tree ancestors into the page itself: it
/// gets a new parent when it is spliced into the export.
fn flatten_inherited(doc: &mut lopdf::Document, page: ObjectId) {
    let Ok(dict) = doc.get_dictionary(page) else {
        return;
    };
    let mut missing: Vec<&[u8]> = INHERITABLE
        .iter()
        .copied()
        .filter(|k| !dict.has(k))
        .collect();
    let mut found: Vec<(&[u8], Object)> = Vec::new();
    let mut parent = dict.get(b"Parent").and_then(Object::as_reference).ok();
    let mut visited = HashSet::new();
    while let Some(id) = parent {
        if missing.is_empty() || !visited.insert(id) || visited.len() > 64 {
            break;
        }
        let Ok(node) = doc.get_dictionary(id) else {
            break;
        };
        missing.retain(|k| match node.get(k) {
            Ok(v) => {
                found.push((k, v.clone()));
                false
            }
            Err(_) => true,
        });
        parent = node.get(b"Parent").and_then(Object::as_reference).ok();
    }
    if missing.contains(&&b"MediaBox"[..]) {
        // Required; a page without one is shown as A4 by us.
        found.push((
            b"MediaBox",
            Object::Array(vec![0.into(), 0.into(), PAGE_W.into(), PAGE_H.into()]),
        ));
    }
    if let Ok(dict) = doc.get_dictionary_mut(page) {
        for (k, v) in found {
            dict.set(k, v);
        }
    }
}

/// Every object reachable from `roots`, not following references to page-tree nodes or the
/// catalog (those stay behind; the pages get our tree).
fn reachable(doc: &lopdf::Document, roots: &[ObjectId]) -> Vec<ObjectId> {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut order = Vec::new();
    let mut queue: VecDeque<ObjectId> = roots.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let Some(obj) = doc.objects.get(&id) else {
            continue;
        };
        let is_tree_node = match obj {
            Object::Dictionary(d) => matches!(d.get_type(), Ok(b"Pages") | Ok(b"Catalog")),
            _ => false,
        };
        if is_tree_node {
            continue;
        }
        order.push(id);
        let mut refs = Vec::new();
        collect_refs(obj, &mut refs, 0);
        queue.extend(refs.into_iter().filter(|r| !seen.contains(r)));
    }
    order
}

/// lopdf bounds the nesting of parsed objects; the depth check here is a second guard.
fn collect_refs(obj: &Object, out: &mut Vec<ObjectId>, depth: usize) {
    if depth > 256 {
        return;
    }
    match obj {
        Object::Reference(id) => out.push(*id),
        Object::Array(a) => a.iter().for_each(|o| collect_refs(o, out, depth + 1)),
        Object::Dictionary(d) => d.iter().for_each(|(_, o)| collect_refs(o, out, depth + 1)),
        Object::Stream(s) => s
            .dict
            .iter()
            .for_each(|(_, o)| collect_refs(o, out, depth + 1)),
        _ => {}
    }
}

/// Rewrites references through `map`; references to objects left behind become null.
fn remap(obj: &mut Object, map: &HashMap<ObjectId, ObjectId>, depth: usize) {
    if depth > 256 {
        return;
    }
    match obj {
        Object::Reference(id) => match map.get(id) {
            Some(new) => *id = *new,
            None => *obj = Object::Null,
        },
        Object::Array(a) => a.iter_mut().for_each(|o| remap(o, map, depth + 1)),
        Object::Dictionary(d) => d.iter_mut().for_each(|(_, o)| remap(o, map, depth + 1)),
        Object::Stream(s) => s
            .dict
            .iter_mut()
            .for_each(|(_, o)| remap(o, map, depth + 1)),
        _ => {}
    }
}

fn merge(drawn: Drawn, parts: Vec<Prepared>) -> Result<Vec<u8>, PdfError> {
    let merr = |e: lopdf::Error| PdfError::Merge(e.to_string());
    let mut out = lopdf::Document::load_mem(&drawn.pdf).map_err(merr)?;
    let own_pages: Vec<ObjectId> = out.page_iter().collect();
    for &p in &own_pages {
        flatten_inherited(&mut out, p);
    }
    let tree = out
        .catalog()
        .and_then(|c| c.get(b"Pages"))
        .and_then(Object::as_reference)
        .map_err(merr)?;
    let own = |i: usize| {
        own_pages
            .get(i)
            .copied()
            .ok_or_else(|| PdfError::Merge("page missing in the drawn document".into()))
    };

    let mut kids = Vec::new();
    for i in 0..drawn.cover_pages {
        kids.push(own(i)?);
    }
    for (part, mine) in parts.into_iter().zip(drawn.part_pages) {
        match part {
            Prepared::Pdf { doc, pages, .. } => {
                let ids = reachable(&doc, &pages);
                let mut map = HashMap::with_capacity(ids.len());
                for id in &ids {
                    out.max_id += 1;
                    map.insert(*id, (out.max_id, 0));
                }
                let mut doc = *doc;
                for id in ids {
                    if let (Some(mut obj), Some(new)) = (doc.objects.remove(&id), map.get(&id)) {
                        remap(&mut obj, &map, 0);
                        out.objects.insert(*new, obj);
                    }
                }
                kids.extend(pages.iter().filter_map(|p| map.get(p).copied()));
            }
            _ => {
                for i in mine {
                    kids.push(own(i)?);
                }
            }
        }
    }

    for &kid in &kids {
        if let Ok(page) = out.get_dictionary_mut(kid) {
            page.set("Parent", Object::Reference(tree));
        }
    }
    let count = i64::try_from(kids.len()).map_err(|_| PdfError::Merge("too many pages".into()))?;
    let mut node = Dictionary::new();
    node.set("Type", Object::Name(b"Pages".to_vec()));
    node.set("Count", Object::Integer(count));
    node.set(
        "Kids",
        Object::Array(kids.into_iter().map(Object::Reference).collect()),
    );
    out.objects.insert(tree, Object::Dictionary(node));
    out.prune_objects();
    out.compress();
    let mut pdf = Vec::new();
    out.save_to(&mut pdf)
        .map_err(|e| PdfError::Merge(e.to_string()))?;
    Ok(pdf)
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn item(title: &str, mime: &str, bytes: Vec<u8>) -> ExportItem {
        ExportItem {
            title: title.to_string(),
            author: "Dr. Müller".to_string(),
            created_unix: 1_700_000_000, // 14.11.2023 23:13 CET
            mime_type: mime.to_string(),
            bytes,
        }
    }

    /// A small PDF of `pages` pages with text, made with krilla like any producer would.
    fn sample_pdf(pages: usize, marker: &str) -> Vec<u8> {
        let fonts = Fonts::load().unwrap();
        let mut doc = Document::new();
        for i in 0..pages {
            let mut page = doc.start_page_with(PageSettings::from_wh(300.0, 400.0).unwrap());
            let mut s = page.surface();
            text_at(
                &mut s,
                &fonts.regular,
                12.0,
                20.0,
                40.0,
                &format!("{marker} {}", i + 1),
            );
            s.finish();
            page.finish();
        }
        doc.finish().unwrap()
    }

    fn sample_png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn sample_tiff(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, _| image::Rgb([x as u8, 0, 0]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Tiff).unwrap();
        out.into_inner()
    }

    fn long_text() -> String {
        let mut s = String::new();
        for i in 0..150 {
            s.push_str(&format!(
                "Zeile {i}: Größenänderung der Übersicht, Maß für Äpfel und Öl — {}\n",
                "lorem ipsum dolor sit amet ".repeat(i % 7)
            ));
        }
        s
    }

    fn text_of(pdf: &[u8], page: u32) -> String {
        let doc = lopdf::Document::load_mem(pdf).unwrap();
        doc.extract_text(&[page]).unwrap()
    }

    fn page_count(pdf: &[u8]) -> usize {
        lopdf::Document::load_mem(pdf).unwrap().get_pages().len()
    }

    #[test]
    fn pages_of_cover_pdf_image_and_long_text() {
        let text = long_text();
        let expected_text_pages =
            match prepare_text(text.as_bytes(), false, &Fonts::load().unwrap()) {
                Prepared::Text { pages, .. } => pages.len(),
                _ => panic!("text not prepared"),
            };
        assert!(expected_text_pages >= 2, "the text must span pages");
        let items = vec![
            item(
                "Arztbrief Kardiologie",
                "application/pdf",
                sample_pdf(2, "Befundseite"),
            ),
            item("Röntgenbild Thorax", "image/png", sample_png(400, 300)),
            item("Notizen zur Übergröße", "text/plain", text.into_bytes()),
        ];
        let export = export(&items).unwrap();
        assert!(export.warnings.is_empty(), "{:?}", export.warnings);
        let expected = 1 + 2 + 1 + expected_text_pages;
        assert_eq!(export.pages, expected);
        assert_eq!(page_count(&export.pdf), expected);
        // The merged PDF pages keep their own size and content.
        let doc = lopdf::Document::load_mem(&export.pdf).unwrap();
        let pages = doc.get_pages();
        let second = doc.get_dictionary(pages[&2]).unwrap();
        let mb = second.get(b"MediaBox").unwrap().as_array().unwrap();
        assert_eq!(mb[2].as_float().unwrap(), 300.0);
        assert!(doc.extract_text(&[2]).unwrap().contains("Befundseite 1"));
        assert!(doc.extract_text(&[3]).unwrap().contains("Befundseite 2"));
    }

    #[test]
    fn cover_lists_titles_authors_dates_and_umlauts_are_extractable() {
        let items = vec![
            item(
                "Entlassbrief Ärztin Weiß",
                "application/pdf",
                sample_pdf(1, "x"),
            ),
            item(
                "Laborwerte Größe/Gewicht",
                "text/plain",
                "Blutzucker: ÄÖÜäöüß €\n".into(),
            ),
        ];
        let export = export(&items).unwrap();
        let cover = text_of(&export.pdf, 1);
        assert!(cover.contains(COVER_TITLE), "{cover}");
        assert!(cover.contains("Entlassbrief Ärztin Weiß"), "{cover}");
        assert!(cover.contains("Laborwerte Größe/Gewicht"), "{cover}");
        assert!(cover.contains("Dr. Müller"), "{cover}");
        assert!(cover.contains("14.11.2023"), "{cover}");
        let text_page = text_of(&export.pdf, 3);
        assert!(text_page.contains("Blutzucker: ÄÖÜäöüß €"), "{text_page}");
    }

    #[test]
    fn corrupt_pdf_becomes_a_placeholder_page() {
        let mut broken = sample_pdf(2, "kaputt");
        broken.truncate(broken.len() / 3);
        broken[200..260].fill(b'#');
        let items = vec![
            item("Gutes Bild", "image/png", sample_png(20, 20)),
            item("Kaputter Befund", "application/pdf", broken),
            item("Kein PDF", "application/pdf", b"hello".to_vec()),
        ];
        let export = export(&items).unwrap();
        assert_eq!(export.pages, 4);
        assert_eq!(page_count(&export.pdf), 4);
        let page = text_of(&export.pdf, 3);
        assert!(page.contains(PLACEHOLDER_PREFIX), "{page}");
        assert!(page.contains("Kaputter Befund"), "{page}");
        assert_eq!(
            export.warnings,
            vec![
                ExportWarning {
                    index: 1,
                    title: "Kaputter Befund".into(),
                    problem: ExportProblem::DamagedPdf
                },
                ExportWarning {
                    index: 2,
                    title: "Kein PDF".into(),
                    problem: ExportProblem::DamagedPdf
                },
            ]
        );
    }

    #[test]
    fn broken_images_and_unknown_types_become_placeholders() {
        let mut png = sample_png(50, 50);
        png.truncate(60);
        let items = vec![
            item("PNG kaputt", "image/png", png),
            item(
                "JPEG kaputt",
                "image/jpeg",
                vec![0xFF, 0xD8, 0xFF, 0x00, 0x01],
            ),
            item("TIFF kaputt", "image/tiff", b"II*\0garbage".to_vec()),
            item("TIFF gut", "image/tiff", sample_tiff(30, 10)),
            item("Binär", "application/dicom", vec![0, 1, 2, 0xFF, 0xFE]),
        ];
        let export = export(&items).unwrap();
        assert_eq!(export.pages, 6);
        let problems: Vec<_> = export
            .warnings
            .iter()
            .map(|w| (w.index, w.problem))
            .collect();
        assert_eq!(
            problems,
            vec![
                (0, ExportProblem::DamagedImage),
                (1, ExportProblem::DamagedImage),
                (2, ExportProblem::DamagedImage),
                (4, ExportProblem::UnsupportedType),
            ]
        );
    }

    #[test]
    fn long_cover_spills_onto_more_pages() {
        let items: Vec<_> = (0..120)
            .map(|i| {
                item(
                    &format!("Dokument Nummer {i}"),
                    "text/plain",
                    b"kurz".to_vec(),
                )
            })
            .collect();
        let export = export(&items).unwrap();
        let cover_pages = export.pages - 120;
        assert!(cover_pages >= 2, "{cover_pages}");
        assert_eq!(page_count(&export.pdf), export.pages);
        let last_cover = text_of(&export.pdf, cover_pages as u32);
        assert!(last_cover.contains("Dokument Nummer 119"), "{last_cover}");
    }

    #[test]
    fn empty_export_is_an_error() {
        assert!(matches!(export(&[]), Err(PdfError::Empty)));
    }

    #[test]
    fn latin1_text_and_sniffing() {
        let latin1 = vec![0x47, 0x72, 0xF6, 0xDF, 0x65]; // "Größe" in ISO-8859-1
        let items = vec![item("alt", "text/plain", latin1)];
        let export = export(&items).unwrap();
        assert!(text_of(&export.pdf, 2).contains("Größe"));
        assert_eq!(classify("", b"%PDF-1.7"), Kind::Pdf);
        assert_eq!(classify("Image/PNG", b""), Kind::Png);
        assert_eq!(
            classify("text/plain; charset=ISO-8859-1", b""),
            Kind::Text { latin1: true }
        );
    }

    #[test]
    fn german_dates() {
        assert_eq!(format_date_de(0), "01.01.1970");
        // 2024-03-31 00:30 UTC is 01:30 CET; 2024-06-30 22:30 UTC is 00:30 CEST on 1 July.
        assert_eq!(format_date_de(1_711_845_000), "31.03.2024");
        assert_eq!(format_date_de(1_719_786_600), "01.07.2024");
        // 2023-12-31 23:30 UTC is already 2024 in Germany.
        assert_eq!(format_date_de(1_704_065_400), "01.01.2024");
        let _ = format_date_de(u64::MAX); // must not panic
    }

    #[test]
    fn wrapping_keeps_words_and_breaks_long_ones() {
        let fonts = Fonts::load().unwrap();
        let lines = wrap(
            "aaa bbb ccc",
            &fonts.regular,
            10.0,
            fonts.regular.width("aaa bbb", 10.0) + 0.1,
        );
        assert_eq!(lines, vec!["aaa bbb", "ccc"]);
        let long = "x".repeat(500);
        let lines = wrap(&long, &fonts.regular, 10.0, 100.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), long);
        assert_eq!(clean("a\tb\u{7}c\u{202E}", &fonts.regular), "a    bc");
    }

    #[test]
    fn garbage_never_panics() {
        // A tiny deterministic fuzz pass (a real fuzz target is worth adding).
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let pdf = sample_pdf(1, "f");
        let png = sample_png(8, 8);
        let mut items = Vec::new();
        for i in 0..24 {
            let (mime, mut bytes) = match i % 3 {
                0 => ("application/pdf", pdf.clone()),
                1 => ("image/png", png.clone()),
                _ => ("text/plain", "Grüße\n".repeat(20).into_bytes()),
            };
            for _ in 0..(1 + next() % 8) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            items.push(item(&format!("f{i}"), mime, bytes));
        }
        let export = export(&items).unwrap();
        assert_eq!(page_count(&export.pdf), export.pages);
    }
}
