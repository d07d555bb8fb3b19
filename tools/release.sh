#!/usr/bin/env bash
# The release path. Not part of the test command.
#
#   bash tools/release.sh           arm64 release binaries of every function with cargo-lambda
#                                   and zig, their sizes printed (needs the aarch64 standard
#                                   library: `rustup target add aarch64-unknown-linux-gnu`)
#   bash tools/release.sh --check   what `sam build` does for a deployment, for x86_64
#                                   (`Architecture=x86_64`: only the host's standard library
#                                   is needed), into .koppel/sam-check so a later `sam deploy`
#                                   never picks it up; shows the bootstrap of every function
#
# Both install the pinned tools into .koppel/release-venv first. To run `sam build` and
# `sam deploy` yourself (README, "Deploying"), put that venv on PATH as printed at the end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

mode=release
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: tools/release.sh [--check]" >&2; exit 2 ;;
esac

RELEASE_VENV="$STATE/release-venv"
# cargo-lambda finds zig through `python3 -m ziglang` of the Python first on PATH.
RELEASE_TOOLS=(cargo-lambda==1.9.2 ziglang==0.17.0 aws-sam-cli==1.170.0)
stamp="$RELEASE_VENV/.tools"
if [[ ! -x "$RELEASE_VENV/bin/cargo-lambda" || "$(cat "$stamp" 2>/dev/null)" != "${RELEASE_TOOLS[*]}" ]]; then
  log "installing ${RELEASE_TOOLS[*]} into .koppel/release-venv"
  python3 -m venv "$RELEASE_VENV"
  "$RELEASE_VENV/bin/pip" install --quiet --disable-pip-version-check "${RELEASE_TOOLS[@]}"
  echo "${RELEASE_TOOLS[*]}" >"$stamp"
fi
export PATH="$RELEASE_VENV/bin:$PATH"
# No usage reports from this machine.
export SAM_CLI_TELEMETRY=0

# Every function as template.yaml names it, with the binary it runs.
functions() {
  "$VENV/bin/python" - <<'EOF'
from cfnlint.decode import cfn_yaml
t = cfn_yaml.load("template.yaml")
for name, r in t["Resources"].items():
    if r["Type"] == "AWS::Serverless::Function":
        print(name, r["Metadata"]["BuildProperties"]["Binary"])
EOF
}

describe() {
  printf '%-26s %-18s %9d bytes  %s\n' "$1" "$2" "$(stat -c %s "$3")" "$(file -b "$3" | cut -d, -f1-2)"
}

start=$(date +%s)
if [[ "$mode" == check ]]; then
  ensure_python_tools
  out="$STATE/sam-check"
  rm -rf "$out/build"
  log "sam build --beta-features, Architecture=x86_64, into .koppel/sam-check/build"
  # MailFrom has no default; the build does not use it, a deployment chooses its own.
  sam build --beta-features --template-file template.yaml \
    --build-dir "$out/build" --cache-dir "$out/cache" \
    --parameter-overrides Architecture=x86_64 MailFrom=release-check@koppel.invalid
  log "built in $(( $(date +%s) - start )) s"
  missing=0
  while read -r fn bin; do
    f="$out/build/$fn/bootstrap"
    if [[ -f "$f" ]]; then describe "$fn" "$bin" "$f"; else echo "$fn: no bootstrap in $out/build/$fn" >&2; missing=1; fi
  done < <(functions)
  [[ "$missing" == 0 ]] || exit 1
  grep -q 'x86_64' "$out/build/template.yaml" || { echo "the built template is not x86_64" >&2; exit 1; }
else
  rustup target add aarch64-unknown-linux-gnu >/dev/null
  # Every function crate, and nothing from tools/.
  packages=()
  for dir in functions/*/; do packages+=(-p "$(basename "$dir")"); done
  log "cargo lambda build --release --arm64 ${packages[*]}"
  cargo lambda build --release --arm64 "${packages[@]}"
  log "built in $(( $(date +%s) - start )) s"
  while read -r fn bin; do describe "$fn" "$bin" "target/lambda/$bin/bootstrap"; done < <(functions)
fi

log "to run sam yourself: export PATH=\"$RELEASE_VENV/bin:\$PATH\""
