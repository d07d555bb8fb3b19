#!/usr/bin/env bash
# Runs every check and test: template lint, format, clippy, unit tests, then end-to-end
# tests over HTTP against a local stack this script starts (its own emulator and gateway
# on free ports) and stops again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

ensure_python_tools

RESULTS="${KOPPEL_TEST_STATE:-$STATE}/test-results.txt"
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"

# KOPPEL_E2E_ONLY=1 skips lint, clippy and unit tests (for a quick end-to-end re-run while
# working; CI never sets it).
if [[ "${KOPPEL_E2E_ONLY:-}" != 1 ]]; then
log "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml

log "SAM translation of template.yaml (streaming, routes, authorizer, least privilege, outputs)"
"$VENV/bin/python" tools/py/check_sam.py template.yaml --out "$STATE/template.translated.json"
"$VENV/bin/cfn-lint" "$STATE/template.translated.json"
# The check itself: each mistake it exists for, made on purpose, is caught.
"$VENV/bin/python" -m unittest -q tools/py/test_check_sam.py
"$VENV/bin/python" -m unittest -q tools/py/test_contract_test.py
# The emulator's own DynamoDB fixes (tools/py/emulator.py): transactions roll back exactly.
"$VENV/bin/python" -m unittest -q tools/py/test_emulator.py

log "openapi.json against the OpenAPI 3.1 specification (openapi-spec-validator)"
"$VENV/bin/openapi-spec-validator" openapi.json

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "unit tests"
cargo test --workspace --exclude koppel-e2e 2>&1 | tee -a "$RESULTS"

fi

log "building the local stack"
cargo build -p koppel-local -p koppel-admin

log "starting a local stack for the end-to-end tests"
# KOPPEL_TEST_STATE lets two runs (two worktrees or agents) keep their logs and demo apart.
TEST_STATE="${KOPPEL_TEST_STATE:-$STATE/test}"
mkdir -p "$TEST_STATE"
stop_stack_on_exit

start_emulator "$(free_port)" "$TEST_STATE/emulator.log"
# Webhook receivers of the tests listen on 127.0.0.1; retries come after seconds, and a
# subscription failing for 20 s is disabled (no test's receiver fails for that long unless
# it means to).
STACK_PARAMS=(--param WebhookAllowLoopback=true --param WebhookRetrySchedule=1,1,1
  --param WebhookDisableAfterSeconds=20)
eval "$(target/debug/koppel-local "${STACK_PARAMS[@]}" env)"
PORT="$(free_port)"
export KOPPEL_E2E_BASE_URL="http://127.0.0.1:$PORT"
export KOPPEL_E2E_BASE_URL_V6="http://[::1]:$PORT"
export KOPPEL_E2E_ADMIN="$ROOT/target/debug/koppel-admin"
export KOPPEL_E2E_DEMO="$TEST_STATE/demo.json"
# Verifies webhook signatures with the `standardwebhooks` library (tools/py/requirements.txt).
export KOPPEL_E2E_PYTHON="$VENV/bin/python"
"$KOPPEL_E2E_ADMIN" demo --base-url "$KOPPEL_E2E_BASE_URL" --out "$KOPPEL_E2E_DEMO" >/dev/null
# Tests watch events on a tap: the stack's own dispatcher consumes the events queue.
export KOPPEL_E2E_EVENTS_TAP="koppel-e2e-events-tap"
# The outbox sweep runs every few seconds and takes events a few seconds old (a minute
# and 60 s in template.yaml), so the fault test sees it work without waiting a minute.
export KOPPEL_E2E_SCHEDULE_EVERY=2 KOPPEL_E2E_SWEEP_MIN_AGE=5
# The fault test starts a second gateway of its own beside this stack.
export KOPPEL_E2E_LOCAL="$ROOT/target/debug/koppel-local" KOPPEL_E2E_TEMPLATE="$ROOT/template.yaml"
# Every `--param` goes before `serve`: given again after it, they would replace these.
target/debug/koppel-local "${STACK_PARAMS[@]}" --param "OutboxSweepMinAgeSeconds=$KOPPEL_E2E_SWEEP_MIN_AGE" \
  serve --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" \
  --tap-queue "$KOPPEL_E2E_EVENTS_TAP" \
  --schedule-every "$KOPPEL_E2E_SCHEDULE_EVERY" \
  >"$TEST_STATE/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_for_gateway "$KOPPEL_E2E_BASE_URL" "$GATEWAY_PID"

log "end-to-end tests"
# Arguments, if any, narrow the end-to-end run (e.g. `--test webhooks`); CI passes none.
if ! cargo test -p koppel-e2e --no-fail-fast "$@" 2>&1 | tee -a "$RESULTS"; then
  echo "--- last gateway log lines ---" >&2
  tail -n 40 "$TEST_STATE/gateway.log" >&2
  exit 1
fi

# The /docs page in headless Chromium against the same stack (it must still be running).
# A narrowed run (arguments) skips it unless KOPPEL_BROWSER=1; CI passes none.
if [[ $# -eq 0 || "${KOPPEL_BROWSER:-}" == 1 ]]; then
  log "browser test of /docs (headless Chromium)"
  ensure_browser_tools
  BROWSER_TAP="$TEST_STATE/browser.tap"
  if ! KOPPEL_SCREENSHOTS="$STATE/screenshots" timeout 300 node --test --test-timeout=180000 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$BROWSER_TAP" \
      tests/browser/docs.test.mjs; then
    grep -E '^# (pass|fail) ' "$BROWSER_TAP" | sed 's/^# /browser: /' >>"$RESULTS" || true
    echo "--- last gateway log lines ---" >&2
    tail -n 40 "$TEST_STATE/gateway.log" >&2
    exit 1
  fi
  grep -E '^# (pass|fail) ' "$BROWSER_TAP" | sed 's/^# /browser: /' >>"$RESULTS"
  log "screenshots: $STATE/screenshots/docs.png, docs-top.png, docs-problems.png"
fi

# The contract: schemathesis holds the same stack to the committed openapi.json (every
# operation, bounded examples; tools/py/contract_test.py). A narrowed run skips it unless
# KOPPEL_SCHEMATHESIS=1; CI passes none.
if [[ $# -eq 0 || "${KOPPEL_SCHEMATHESIS:-}" == 1 ]]; then
  log "contract test (schemathesis against openapi.json)"
  if ! timeout 1200 "$VENV/bin/python" tools/py/contract_test.py --base-url "$KOPPEL_E2E_BASE_URL" \
      --admin "$KOPPEL_E2E_ADMIN" --demo "$KOPPEL_E2E_DEMO" --out "$TEST_STATE/schemathesis" \
      --results "$RESULTS"; then
    echo "--- last gateway log lines ---" >&2
    tail -n 40 "$TEST_STATE/gateway.log" >&2
    exit 1
  fi
fi

# One closing line over every cargo test run, the browser test and the contract test above.
awk '/^test result:/ { p += $4; f += $6 } /^browser: pass / { p += $3 } /^browser: fail / { f += $3 }
  /^schemathesis: pass / { p += $3 } /^schemathesis: fail / { f += $3 }
  END { printf "koppel: %d passed, %d failed\n", p, f; exit (f > 0) }' "$RESULTS"
