#!/usr/bin/env bash
# Builds the release Lambda binaries (arm64, provided.al2023) with cargo-lambda and zig,
# and prints their stripped sizes. Not part of the test command.
# Deploy afterwards with: sam build --beta-features && sam deploy --guided
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

RELEASE_VENV="$STATE/release-venv"
if [[ ! -x "$RELEASE_VENV/bin/cargo-lambda" ]]; then
  log "installing cargo-lambda and zig into .koppel/release-venv"
  python3 -m venv "$RELEASE_VENV"
  "$RELEASE_VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.17.0
fi
export PATH="$RELEASE_VENV/bin:$PATH"
rustup target add aarch64-unknown-linux-gnu >/dev/null

# Every function crate, and nothing from tools/.
packages=()
for dir in functions/*/; do packages+=(-p "$(basename "$dir")"); done

log "cargo lambda build --release --arm64 ${packages[*]}"
start=$(date +%s)
cargo lambda build --release --arm64 "${packages[@]}"
log "built in $(( $(date +%s) - start )) s"

for f in target/lambda/*/bootstrap; do
  printf '%-12s %8d bytes  %s\n' "$(basename "$(dirname "$f")")" "$(stat -c %s "$f")" "$(file -b "$f" | cut -d, -f1-2)"
done
