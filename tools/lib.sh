# Shared by tools/run-local.sh, tools/test.sh and tools/bench-export.sh: Python tools, the
# emulator, the gateway, stopping them.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.koppel"
VENV="$STATE/venv"
mkdir -p "$STATE"

# Static credentials and a region: the SDK must never look for instance metadata here.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=eu-west-1
export AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the pinned Python tools once; re-installs when requirements.txt changes.
ensure_python_tools() {
  local req="$ROOT/tools/py/requirements.txt" stamp="$VENV/.requirements"
  if [[ -x "$VENV/bin/python" ]] && cmp -s "$req" "$stamp"; then return; fi
  log "installing moto and cfn-lint into .koppel/venv"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
}

# Debian's Chromium and tests/browser's pinned playwright-core, for the browser test of
# /docs: installed when missing, playwright-core again when its lockfile changes.
ensure_browser_tools() {
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Debian's chromium (apt-get)"
    $sudo timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo timeout 900 apt-get install -y -qq chromium >/dev/null
  fi
  local dir="$ROOT/tests/browser"
  local stamp="$dir/node_modules/.koppel-package-lock.json"
  if [[ -d "$dir/node_modules/playwright-core" ]] && cmp -s "$dir/package-lock.json" "$stamp"; then return; fi
  log "installing playwright-core into tests/browser/node_modules (npm ci)"
  (cd "$dir" && timeout 600 npm ci --no-audit --no-fund --silent)
  cp "$dir/package-lock.json" "$stamp"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts the emulator on 127.0.0.1:$1 and waits (bounded) until it answers.
start_emulator() {
  local port="$1" logfile="$2"
  # moto's server, with DynamoDB requests serialised as real DynamoDB isolates them.
  "$VENV/bin/python" "$ROOT/tools/py/emulator.py" -H 127.0.0.1 -p "$port" >"$logfile" 2>&1 &
  EMULATOR_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null "$AWS_ENDPOINT_URL/moto-api/"; then return; fi
    kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$logfile" >&2; echo "emulator died" >&2; return 1; }
    sleep 0.2
  done
  echo "emulator did not start within 20 s" >&2
  return 1
}

# Waits (bounded) until the gateway at $1 answers; a 401 on /v1/me means it is up.
wait_for_gateway() {
  local url="$1" pid="$2"
  for _ in $(seq 1 150); do
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/me")" == 401 ]]; then return; fi
    kill -0 "$pid" 2>/dev/null || { echo "the gateway exited" >&2; return 1; }
    sleep 0.2
  done
  echo "the gateway did not answer within 30 s" >&2
  return 1
}

# Kills the processes whose pids are given, and waits for them (bounded).
stop_pids() {
  local pid
  for pid in "$@"; do [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    [[ -n "$pid" ]] || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

# Stops the emulator, and the gateway once the script sets $GATEWAY_PID, when the script
# exits (Ctrl-C: with 130); logs $1 after, when given.
stop_stack_on_exit() {
  GATEWAY_PID=""
  STOPPED_MESSAGE="${1:-}"
  trap stop_stack EXIT
  trap 'exit 130' INT TERM
}
stop_stack() {
  trap - EXIT INT TERM
  stop_pids "$GATEWAY_PID" "${EMULATOR_PID:-}"
  if [[ -n "$STOPPED_MESSAGE" ]]; then log "$STOPPED_MESSAGE"; fi
}
