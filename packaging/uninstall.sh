#!/usr/bin/env bash
# Undoes packaging/install.sh --user: stops and disables the units, removes every file in the
# install manifest and the directories the install created (if empty), and the epa-desktop:
# URL handler default. Local users and their vaults (~/.local/share/epa-desktop) stay.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: packaging/uninstall.sh --user [--prefix DIR]

  --user        remove the current user's install (the only mode)
  --prefix DIR  the --prefix given to install.sh [default: ~/.local]

Your local users and their encrypted data (~/.local/share/epa-desktop) are not touched.
EOF
}

die() { echo "uninstall.sh: $*" >&2; exit 1; }
note() { echo "uninstall.sh: $*" >&2; }

HANDLER="de.epa_desktop.EpaDesktop.UrlHandler.desktop"

user=0 prefix=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=1 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix="$2"; shift ;;
    --prefix=*) prefix="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[ "$user" = 1 ] || { usage >&2; die "only per-user installs are supported: pass --user"; }
[ -n "${HOME:-}" ] && [ "${HOME#/}" != "$HOME" ] || die "HOME must be an absolute path"

xdg_dir() { case "$1" in /*) echo "$1" ;; *) echo "$2" ;; esac; }

prefix="${prefix:-$HOME/.local}"
prefix="${prefix%/}"
DATA="$(xdg_dir "${XDG_DATA_HOME:-}" "$HOME/.local/share")"
CONFIG="$(xdg_dir "${XDG_CONFIG_HOME:-}" "$HOME/.config")"
MANIFEST="$prefix/lib/epa-desktop/install-manifest"
APPS="$DATA/applications"
[ -f "$MANIFEST" ] || die "no install found: $MANIFEST is missing (wrong --prefix?)"

# Only files that look like ours: a damaged manifest must not turn this into `rm` anywhere.
# (Directories are only ever rmdir'ed, which leaves a non-empty one alone.)
while read -r kind path; do
  case "$path" in /*) ;; *) die "refusing '$path' from $MANIFEST: not absolute" ;; esac
  case "$path" in *'/../'*|*'/..'|*'/./'*) die "refusing $path from $MANIFEST" ;; esac
  case "$kind" in
    d) ;;
    f) case "$path" in
         "$prefix"/*|"$DATA"/*|"$CONFIG"/*) ;;
         *) die "refusing $path from $MANIFEST: outside $prefix, $DATA and $CONFIG" ;;
       esac ;;
    *) die "unexpected line in $MANIFEST: $kind $path" ;;
  esac
done <"$MANIFEST"

# --- stop the daemon: the units first (a listening epad.socket would start it again) --------
if command -v systemctl >/dev/null; then
  systemctl --user disable --now epad.socket epad.service ||
    note "could not reach the systemd user manager (units not stopped)"
fi
if [ -x "$prefix/bin/epa" ]; then
  "$prefix/bin/epa" --no-autostart daemon stop >/dev/null 2>&1 || true
fi

# --- files, then directories the install created (deepest first, only when empty) ----------
dirs="$(grep '^d ' "$MANIFEST" | cut -c3- | sort -r || true)"
files="$(grep '^f ' "$MANIFEST" | cut -c3- || true)"
printf '%s\n' "$files" | while IFS= read -r f; do if [ -n "$f" ]; then rm -f -- "$f"; fi; done

# The URL handler default that xdg-mime wrote, if it is still ours; an emptied file goes.
mimeapps="$CONFIG/mimeapps.list"
if [ -f "$mimeapps" ]; then
  sed -i -E "/^x-scheme-handler\/epa-desktop=${HANDLER//./\\.};?[[:space:]]*\$/d" "$mimeapps"
  grep -qvE '^[[:space:]]*(\[.*\])?[[:space:]]*$' "$mimeapps" || rm -f -- "$mimeapps"
fi

# A desktop database in a directory the install created is ours alone.
if printf '%s\n' "$dirs" | grep -qxF "$APPS"; then
  rm -f -- "$APPS/mimeinfo.cache"
elif [ -d "$APPS" ] && command -v update-desktop-database >/dev/null; then
  update-desktop-database "$APPS" || note "update-desktop-database failed (not fatal)"
fi

printf '%s\n' "$dirs" | while IFS= read -r d; do
  [ -n "$d" ] && rmdir -- "$d" 2>/dev/null || true
done

if command -v systemctl >/dev/null; then
  systemctl --user daemon-reload || true
fi
echo "epa-desktop removed from $prefix; your local users' data in $DATA/epa-desktop stays"
