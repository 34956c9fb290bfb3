//! Command line: `epa-desktop [--socket PATH] [--lang de|en] [--no-autostart] [URL]`.

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = "\
Aufruf / usage: epa-desktop [--socket PATH] [--lang de|en] [--no-autostart] [URL]

  --socket PATH     Socket des ePA-Dienstes / socket of the daemon
                    [Standard / default: $XDG_RUNTIME_DIR/epa-desktop/epad.sock]
  --lang de|en      Sprache / language [Standard / default: aus / from LANG]
  --no-autostart    Den Dienst nicht selbst starten / do not start the daemon
  -h, --help        Diese Hilfe / this help
  -V, --version     Version";

/// What the command line asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub socket: Option<PathBuf>,
    pub lang: Option<String>,
    pub no_autostart: bool,
    /// A link the desktop opened us with (`epa-desktop://auth/callback?…`).
    pub url: Option<String>,
}

/// What to do instead of opening the window.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    Help,
    Version,
    Usage(String),
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, Exit> {
    let mut out = Args::default();
    let mut args = args.into_iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if options_done || !text.starts_with('-') || text == "-" {
            if out.url.replace(text.clone()).is_some() {
                return Err(Exit::Usage(format!("unexpected argument: {text}")));
            }
            continue;
        }
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(OsString::from(v))),
            None => (text.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| Exit::Usage(format!("{name} needs a value")))
        };
        match name.as_str() {
            "--socket" => out.socket = Some(PathBuf::from(value("--socket")?)),
            "--lang" => out.lang = Some(value("--lang")?.to_string_lossy().into_owned()),
            "--no-autostart" if inline.is_none() => out.no_autostart = true,
            "-h" | "--help" => return Err(Exit::Help),
            "-V" | "--version" => return Err(Exit::Version),
            "--" => options_done = true,
            _ => return Err(Exit::Usage(format!("unknown option: {text}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, Exit> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn no_arguments() {
        assert_eq!(p(&[]), Ok(Args::default()));
    }

    #[test]
    fn all_options_both_spellings() {
        let want = Args {
            socket: Some("/tmp/x/epad.sock".into()),
            lang: Some("en".into()),
            no_autostart: true,
            url: Some("epa://open".into()),
        };
        let spaced = [
            "--socket",
            "/tmp/x/epad.sock",
            "--lang",
            "en",
            "--no-autostart",
            "epa://open",
        ];
        assert_eq!(p(&spaced), Ok(want));
        let joined = p(&["epa://open", "--socket=/tmp/x/epad.sock", "--lang=en"]);
        assert!(matches!(joined, Ok(a) if a.lang.as_deref() == Some("en") && a.url.is_some()));
    }

    #[test]
    fn double_dash_ends_options() {
        let a = p(&["--", "--not-an-option"]);
        assert!(matches!(a, Ok(a) if a.url.as_deref() == Some("--not-an-option")));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(matches!(p(&["--socket"]), Err(Exit::Usage(_))));
        assert!(matches!(p(&["--frobnicate"]), Err(Exit::Usage(_))));
        assert!(matches!(p(&["a", "b"]), Err(Exit::Usage(_))));
        assert!(matches!(p(&["--no-autostart=yes"]), Err(Exit::Usage(_))));
        assert_eq!(p(&["--help"]), Err(Exit::Help));
        assert_eq!(p(&["-V"]), Err(Exit::Version));
    }
}
