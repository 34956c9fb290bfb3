#!/usr/bin/env bash
# Per-user install of epa-desktop on Linux: binaries, systemd user units, desktop files, the
# epa-desktop: URL handler, icon, AppStream metainfo, shell completions and man pages.
# Everything it writes is listed in a manifest that uninstall.sh removes again.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: packaging/install.sh --user [--prefix DIR] [--bin-dir DIR] [--no-gui] [--no-socket] [--no-enable]

  --user        install for the current user only (the only mode; system packages: the .deb)
  --prefix DIR  binaries to DIR/bin, man pages to DIR/share/man [default: ~/.local]
  --bin-dir DIR copy epad, epa, epa-sandbox (and epa-desktop) from DIR instead of building
                them with `cargo build --release`
  --no-gui      leave out the desktop application (epa-desktop); the URL handler then runs
                `epa open-url`
  --no-socket   enable epad.service (starts at login) instead of epad.socket (starts epad on
                the first connection)
  --no-enable   install the systemd units without enabling or starting them

Desktop files, icon, metainfo and completions go to $XDG_DATA_HOME (~/.local/share), the
systemd units to $XDG_CONFIG_HOME/systemd/user (~/.config/systemd/user), wherever --prefix is.
EOF
}

die() { echo "install.sh: $*" >&2; exit 1; }
note() { echo "install.sh: $*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/packaging"
APP_ID="de.epa_desktop.EpaDesktop"
HANDLER="$APP_ID.UrlHandler.desktop"

user=0 prefix="" bin_dir="" gui=1 socket=1 enable=1
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=1 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift ;;
    --prefix=*) prefix="${1#*=}" ;;
    --bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a directory"; bin_dir="$2"; shift ;;
    --bin-dir=*) bin_dir="${1#*=}" ;;
    --no-gui) gui=0 ;;
    --no-socket) socket=0 ;;
    --no-enable) enable=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[ "$user" = 1 ] || { usage >&2; die "only per-user installs are supported: pass --user"; }
[ -n "${HOME:-}" ] && [ "${HOME#/}" != "$HOME" ] || die "HOME must be an absolute path"

# Paths end up in systemd units and desktop files, whose quoting rules differ: allow none of
# the characters that would need quoting there (spaces, quotes, backslash, $, %, `).
check_path() {
  case "$2" in
    /*) ;;
    *) die "$1 must be an absolute path: $2" ;;
  esac
  case "$2" in
    *[[:space:]\"\'\\\$%\`]*) die "$1 contains a space or one of \" ' \\ \$ % \`, which systemd units and desktop files cannot take unquoted: $2" ;;
  esac
}

xdg_dir() { # $1 = value of the variable, $2 = default; relative values are ignored (XDG spec)
  case "$1" in /*) echo "$1" ;; *) echo "$2" ;; esac
}

prefix="${prefix:-$HOME/.local}"
prefix="${prefix%/}"
DATA="$(xdg_dir "${XDG_DATA_HOME:-}" "$HOME/.local/share")"
CONFIG="$(xdg_dir "${XDG_CONFIG_HOME:-}" "$HOME/.config")"
check_path --prefix "$prefix"
check_path XDG_DATA_HOME "$DATA"
check_path XDG_CONFIG_HOME "$CONFIG"

BINDIR="$prefix/bin"
MANDIR="$prefix/share/man/man1"
MANIFEST_DIR="$prefix/lib/epa-desktop"
MANIFEST="$MANIFEST_DIR/install-manifest"
APPS="$DATA/applications"
UNITS="$CONFIG/systemd/user"

# --- the binaries: copied, or built here -------------------------------------------------
if [ -z "$bin_dir" ]; then
  command -v cargo >/dev/null || die "cargo not found: install Rust, or pass --bin-dir DIR"
  pkgs=(-p epa-daemon -p epa-cli -p epa-sandbox)
  [ "$gui" = 1 ] && pkgs+=(-p epa-gui)
  note "building: cargo build --release --locked ${pkgs[*]}"
  (cd "$ROOT" && cargo build --release --locked "${pkgs[@]}")
  bin_dir="${CARGO_TARGET_DIR:-$ROOT/target}/release"
  case "$bin_dir" in /*) ;; *) bin_dir="$ROOT/$bin_dir" ;; esac
fi
for b in epad epa epa-sandbox; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing or not executable"
done
if [ "$gui" = 1 ] && [ ! -x "$bin_dir/epa-desktop" ]; then
  note "$bin_dir/epa-desktop not found: installing without the desktop application"
  gui=0
fi

# --- install helpers: every file and every directory we create goes into the manifest ------
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
entries="$STAGE/entries"
: >"$entries"

mkdirs() { # creates $1 and missing parents (0755), recording the ones that were new
  local d="$1" missing=()
  while [ ! -d "$d" ]; do missing=("$d" "${missing[@]}"); d="$(dirname "$d")"; done
  for d in "${missing[@]}"; do
    mkdir -m 0755 "$d"
    echo "d $d" >>"$entries"
  done
}

put() { # put SRC DEST MODE: atomic replace (a running epad keeps its old binary)
  mkdirs "$(dirname "$2")"
  cp "$1" "$2.tmp.$$"
  chmod "$3" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
  echo "f $2" >>"$entries"
}

# Checks that a sed rewrite really happened (a template line that changed would otherwise
# install a unit or desktop file pointing at the wrong place).
render() { # render SRC DEST EXPECTED_LINE sed-args...
  local src="$1" dest="$2" expect="$3"
  shift 3
  sed "$@" "$src" >"$dest"
  grep -qxF -- "$expect" "$dest" || die "rendering $src failed (no line '$expect')"
}

# --- binaries ------------------------------------------------------------------------------
bins=(epad epa epa-sandbox)
[ "$gui" = 1 ] && bins+=(epa-desktop)
for b in "${bins[@]}"; do put "$bin_dir/$b" "$BINDIR/$b" 0755; done

# --- systemd user units --------------------------------------------------------------------
render "$PKG/linux/epad.service" "$STAGE/epad.service" "ExecStart=$BINDIR/epad" \
  -e "s|^ExecStart=/usr/bin/epad\$|ExecStart=$BINDIR/epad|"
put "$STAGE/epad.service" "$UNITS/epad.service" 0644
put "$PKG/linux/epad.socket" "$UNITS/epad.socket" 0644

# --- desktop files, icon, metainfo ---------------------------------------------------------
if [ "$gui" = 1 ]; then
  handler_exec="$BINDIR/epa-desktop %u"
  render "$PKG/linux/$APP_ID.desktop" "$STAGE/$APP_ID.desktop" "Exec=$BINDIR/epa-desktop" \
    -e "s|^Exec=epa-desktop\$|Exec=$BINDIR/epa-desktop|" \
    -e "s|^TryExec=epa-desktop\$|TryExec=$BINDIR/epa-desktop|"
  put "$STAGE/$APP_ID.desktop" "$APPS/$APP_ID.desktop" 0644
  put "$PKG/linux/icons/$APP_ID.svg" "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg" 0644
  put "$PKG/linux/$APP_ID.metainfo.xml" "$DATA/metainfo/$APP_ID.metainfo.xml" 0644
else
  # Without the GUI the CLI forwards the login link to the daemon itself.
  handler_exec="$BINDIR/epa open-url -- %u"
fi
render "$PKG/linux/$HANDLER" "$STAGE/$HANDLER" "Exec=$handler_exec" \
  -e "s|^Exec=epa-desktop %u\$|Exec=$handler_exec|"
put "$STAGE/$HANDLER" "$APPS/$HANDLER" 0644

# --- completions and man pages, generated by the installed epa itself ----------------------
"$BINDIR/epa" completions bash >"$STAGE/epa.bash"
"$BINDIR/epa" completions zsh >"$STAGE/_epa"
"$BINDIR/epa" completions fish >"$STAGE/epa.fish"
put "$STAGE/epa.bash" "$DATA/bash-completion/completions/epa" 0644
put "$STAGE/_epa" "$DATA/zsh/site-functions/_epa" 0644
put "$STAGE/epa.fish" "$DATA/fish/vendor_completions.d/epa.fish" 0644
"$BINDIR/epa" completions --man-dir "$STAGE/man"
for page in "$STAGE"/man/*.1; do put "$page" "$MANDIR/$(basename "$page")" 0644; done

# --- the manifest (merged with an earlier install's) ---------------------------------------
mkdirs "$MANIFEST_DIR"
{ [ -f "$MANIFEST" ] && cat "$MANIFEST"; cat "$entries"; echo "f $MANIFEST"; } | sort -u >"$STAGE/manifest"
cp "$STAGE/manifest" "$MANIFEST"
chmod 0644 "$MANIFEST"

# --- desktop integration -------------------------------------------------------------------
if command -v update-desktop-database >/dev/null; then
  update-desktop-database "$APPS" || note "update-desktop-database failed (not fatal)"
else
  note "update-desktop-database not found (desktop-file-utils): the desktop picks the files up later"
fi
if command -v xdg-mime >/dev/null; then
  xdg-mime default "$HANDLER" x-scheme-handler/epa-desktop ||
    note "xdg-mime failed: register by hand with: xdg-mime default $HANDLER x-scheme-handler/epa-desktop"
else
  note "xdg-mime not found (xdg-utils): register by hand with: xdg-mime default $HANDLER x-scheme-handler/epa-desktop"
fi

# --- the service ---------------------------------------------------------------------------
unit=epad.socket other=epad.service
[ "$socket" = 1 ] || { unit=epad.service other=epad.socket; }
if [ "$enable" = 0 ]; then
  note "units installed, not enabled: systemctl --user enable --now $unit"
elif ! command -v systemctl >/dev/null; then
  note "systemctl not found: epa starts epad on demand instead"
elif ! systemctl --user daemon-reload; then
  note "no systemd user manager reachable: enable later with: systemctl --user enable --now $unit"
else
  # A running epad (from systemd or started by epa) would keep the socket path: stop it first.
  systemctl --user stop epad.socket epad.service || true
  "$BINDIR/epa" --no-autostart daemon stop >/dev/null 2>&1 || true
  systemctl --user disable "$other" || true
  systemctl --user enable --now "$unit" || note "could not enable $unit: see systemctl --user status $unit"
fi

echo "epa-desktop installed: binaries in $BINDIR, manifest $MANIFEST"
case ":${PATH:-}:" in
  *":$BINDIR:"*) ;;
  *) echo "note: $BINDIR is not in PATH; add it to use epa from a shell" ;;
esac
echo "zsh: add $DATA/zsh/site-functions to fpath for completions"
