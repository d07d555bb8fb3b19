#!/usr/bin/env bash
# Benchmark of the streamed CSV export: imports N cases (default 100,000) into a fresh
# local stack, downloads the CSV through the gateway, and prints time, size and the
# gateway's memory before and during the export (flat memory is the point). Not part of
# the test command.
#   bash tools/bench-export.sh [N]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

N="${1:-100000}"
ensure_python_tools
log "building"
cargo build --quiet -p koppel-local -p koppel-admin

BENCH="$STATE/bench"
mkdir -p "$BENCH"
stop_stack_on_exit

start_emulator "$(free_port)" "$BENCH/emulator.log"
eval "$(target/debug/koppel-local env)"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
target/debug/koppel-admin --json demo --base-url "$BASE" --out "$BENCH/demo.json" >/dev/null
WS="$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["workspace_id"])' "$BENCH/demo.json")"
PAT="$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["users"]["owner"]["pat"])' "$BENCH/demo.json")"

"$VENV/bin/python" - "$N" >"$BENCH/cases.jsonl" <<'EOF'
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({
        "case_type": "Melding openbare ruimte",
        "subject": f"Melding {i}: losliggende stoeptegel, \"Dorpsstraat\" {i % 200}",
        "status": ["open", "in_progress", "closed"][i % 3],
        "result": "Afgehandeld" if i % 3 == 2 else None,
        "department": "Openbare ruimte",
        "requester": {"name": f"Bewoner {i}", "email": f"bewoner{i}@example.org"},
        "attributes": {"nummer": i, "spoed": i % 10 == 0},
    }))
EOF
log "importing $N cases"
start=$(date +%s.%N)
target/debug/koppel-admin case import --workspace "$WS" --file "$BENCH/cases.jsonl"
import_s=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')

target/debug/koppel-local serve --listen "127.0.0.1:$PORT" >"$BENCH/gateway.log" 2>&1 &
GATEWAY_PID=$!
wait_for_gateway "$BASE" "$GATEWAY_PID"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$GATEWAY_PID/status"; }
before=$(rss)

log "exporting"
(
  while kill -0 "$GATEWAY_PID" 2>/dev/null; do rss; sleep 0.2; done
) >"$BENCH/rss.txt" &
SAMPLER=$!
read -r secs bytes status < <(curl -s -o "$BENCH/cases.csv" -w '%{time_total} %{size_download} %{http_code}\n' \
  -H "Authorization: Bearer $PAT" "$BASE/v1/cases/export.csv")
kill "$SAMPLER" 2>/dev/null || true
peak=$(sort -n "$BENCH/rss.txt" | tail -1)
rows=$(( $("$VENV/bin/python" -c 'import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=""))))' "$BENCH/cases.csv") - 1 ))

awk -v n="$N" -v i="$import_s" -v st="$status" -v r="$rows" -v b="$bytes" -v s="$secs" \
  -v m0="$before" -v m1="$peak" 'BEGIN {
    printf "\ncases imported:    %d in %.1f s\n", n, i
    printf "export:            HTTP %s, %d rows, %.1f MB in %.1f s (%.0f rows/s)\n", st, r, b / 1e6, s, r / s
    printf "gateway memory:    %.1f MB before, %.1f MB peak during the export\n", m0 / 1024, m1 / 1024
  }'
