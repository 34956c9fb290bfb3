#!/usr/bin/env bash
# Builds everything the .deb (cargo-deb, metadata in client-cli/Cargo.toml) ships and generates
# the completions and man pages it lists, then packs it:
#   packaging/deb/prepare.sh            # → target/debian/epa-desktop_<version>_<arch>.deb
# Needs `cargo install cargo-deb`. The GUI build (Slint) takes a few minutes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac

[ "${1:-}" = "--no-build" ] ||
  cargo build --release --locked -p epa-daemon -p epa-cli -p epa-sandbox -p epa-gui

# cargo-deb maps asset paths under target/release/ to the real target directory.
out="$TARGET/release/deb-assets"
rm -rf "$out"
mkdir -p "$out/man"
"$TARGET/release/epa" completions bash >"$out/epa.bash"
"$TARGET/release/epa" completions zsh >"$out/_epa"
"$TARGET/release/epa" completions fish >"$out/epa.fish"
"$TARGET/release/epa" completions --man-dir "$out/man"
gzip -9n "$out"/man/*.1

command -v cargo-deb >/dev/null || { echo "cargo-deb not found: cargo install cargo-deb" >&2; exit 1; }
cargo deb -p epa-cli --no-build
