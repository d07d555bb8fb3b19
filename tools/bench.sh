#!/usr/bin/env bash
# The hot-path bench (issue 14): AWS calls, serial stages and billed capacity per request
# type, counted by a recording proxy in front of the emulator (tools/py/recording_proxy.py),
# the cost of 1M requests at list prices from those counts, and the emulator's own figures
# as data grows. Prints one table; not part of the test command.
#   bash tools/bench.sh [--release]   (--release: everything built with the release profile, so
#                                      durations, cold starts and sizes mean something)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PROFILE=debug
[[ "${1:-}" == --release ]] && PROFILE=release
ensure_python_tools
log "building ($PROFILE)"
# The gateway and CLI, and every function's own binary with the hello-world baseline.
CRATES=(-p koppel-local -p koppel-admin -p hello)
for f in authorize tokens endpoints webhook-dispatch dsr connectors cases; do CRATES+=(-p "$f"); done
if [[ $PROFILE == release ]]; then
  cargo build --quiet --release "${CRATES[@]}"
else
  cargo build --quiet "${CRATES[@]}"
fi
BIN="target/$PROFILE"

BENCH="$STATE/bench-calls"
mkdir -p "$BENCH"
stop_stack_on_exit
PROXY_PID=""
trap 'stop_pids "$PROXY_PID"; stop_stack' EXIT

start_emulator "$(free_port)" "$BENCH/emulator.log"
EMULATOR_URL="$AWS_ENDPOINT_URL"
PROXY_PORT="$(free_port)"
"$VENV/bin/python" tools/py/recording_proxy.py --listen "$PROXY_PORT" --to "$EMULATOR_URL" \
  >"$BENCH/proxy.log" 2>&1 &
PROXY_PID=$!
export AWS_ENDPOINT_URL="http://127.0.0.1:$PROXY_PORT"
for _ in $(seq 1 50); do curl -fs -o /dev/null "$AWS_ENDPOINT_URL/__calls" && break; sleep 0.2; done

# A busy partner's limit, above what the bench sends in a minute: no request of it may be a
# 429, and the authorizer's rate-limit claims grow as they would for such a partner.
RATE_LIMIT=1000
PARAMS=(--param DefaultRateLimit=$RATE_LIMIT)
eval "$("$BIN/koppel-local" "${PARAMS[@]}" env)"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
"$BIN/koppel-admin" --json demo --base-url "$BASE" --out "$BENCH/demo.json" >/dev/null
# JSON log lines, as the functions write them in Lambda: the bytes the cost model bills.
KOPPEL_LOG_FORMAT=json "$BIN/koppel-local" "${PARAMS[@]}" serve --listen "127.0.0.1:$PORT" \
  >"$BENCH/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_for_gateway "$BASE" "$GATEWAY_PID"

log "cold start, warm CPU and size of every function ($PROFILE)"
# Straight to the emulator: the proxy's own latency is not the function's.
AWS_ENDPOINT_URL="$EMULATOR_URL" "$VENV/bin/python" tools/py/bench_init.py --bin-dir "$BIN" \
  --demo "$BENCH/demo.json" --koppel-local "$BIN/koppel-local" --param "DefaultRateLimit=$RATE_LIMIT" \
  --json-out "$BENCH/init.json"

"$VENV/bin/python" tools/py/bench_calls.py --base-url "$BASE" --demo "$BENCH/demo.json" \
  --proxy "$AWS_ENDPOINT_URL" --profile "$PROFILE" --rate-limit "$RATE_LIMIT" \
  --init-figures "$BENCH/init.json"

log "webhook delivery throughput ($PROFILE)"
if [[ $PROFILE == release ]]; then
  cargo bench --quiet -p koppel-e2e --bench webhook_throughput
else
  # A harness-less bench target runs its main in the test profile too.
  cargo test --quiet -p koppel-e2e --bench webhook_throughput
fi

log "emulator as data grows (100,000 items)"
"$VENV/bin/python" tools/py/bench_emulator.py --items 100000 --transactions 50
