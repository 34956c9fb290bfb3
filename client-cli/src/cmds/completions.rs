//! `epa completions SHELL` and `epa completions --man` / `--man-dir DIR`: shell completions and
//! man pages, generated from the command line definition itself so they never go stale. They
//! need no daemon; packaging/install.sh and the .deb build call them.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::output::{CliError, Output};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// Shell: bash, zsh, fish, elvish, powershell.
    #[arg(value_enum, value_name = "SHELL", required_unless_present_any = ["man", "man_dir"])]
    shell: Option<Shell>,
    /// Die Handbuchseite epa(1) im roff-Format ausgeben / print the man page epa(1) (roff).
    #[arg(long, conflicts_with_all = ["shell", "man_dir"])]
    man: bool,
    /// Alle Handbuchseiten (epa.1, epa-user.1, …) nach DIR schreiben / write every man page
    /// (epa.1, epa-user.1, …) to DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "shell")]
    man_dir: Option<PathBuf>,
}

/// Shown as an extra section of epa(1): what `--help` leaves out.
const MAN_EXTRA: &str = "\
Exit codes / Rückgabewerte: 0 ok; 1 other error; 2 usage (the command line is wrong); \
3 daemon unreachable or incompatible; 4 locked / not logged in; 5 backend unavailable.

Files / Dateien: the daemon epad listens on $XDG_RUNTIME_DIR/epa-desktop/epad.sock (a private \
directory, socket mode 0600); local users and their encrypted vaults live in \
~/.local/share/epa-desktop. `epa` starts epad when no daemon answers (unless --no-autostart); \
with the systemd user units installed, epad.socket starts it instead.

Shell completions: `epa completions bash|zsh|fish|elvish|powershell`.";

pub fn run(args: &CompletionsArgs, out: &Output) -> Result<(), CliError> {
    let mut cmd = crate::Cli::command();
    if let Some(dir) = &args.man_dir {
        return write_man_pages(cmd.after_long_help(MAN_EXTRA), dir, out);
    }
    let mut text = Vec::new();
    match args.shell {
        Some(shell) => clap_complete::generate(shell, &mut cmd, "epa", &mut text),
        None => man_page(cmd.after_long_help(MAN_EXTRA))
            .render(&mut text)
            .map_err(|e| not_written(out, "stdout", &e))?,
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&text).and_then(|()| stdout.flush()) {
        // `epa completions --man | head`: the reader has all it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|e| not_written(out, "stdout", &e)),
    }
}

fn man_page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).manual("epa-desktop")
}

fn write_man_pages(cmd: clap::Command, dir: &Path, out: &Output) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| not_written(out, &dir.display().to_string(), &e))?;
    clap_mangen::generate_to(cmd, dir).map_err(|e| not_written(out, &dir.display().to_string(), &e))
}

fn not_written(out: &Output, target: &str, e: &std::io::Error) -> CliError {
    out.input_error(
        "FILE_NOT_WRITTEN",
        &format!("{target} konnte nicht geschrieben werden: {e}"),
        &format!("could not write {target}: {e}"),
        "Zielverzeichnis und freien Speicherplatz prüfen.",
        "Check the target directory and the free space.",
    )
}
