#!/usr/bin/env bash
# Runs Koppel on this machine: installs and starts the AWS emulator, creates what
# template.yaml declares, seeds a demo workspace, and serves every route on 127.0.0.1 and
# [::1]. Ctrl-C stops everything it started.
#   KOPPEL_PORT=3000 (default)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PORT="${KOPPEL_PORT:-3000}"
ensure_python_tools
log "building (first time: a few minutes)"
cargo build --quiet -p koppel-local -p koppel-admin

stop_stack_on_exit "stopped"

EMULATOR_PORT="$(free_port)"
log "starting the AWS emulator (moto) on 127.0.0.1:$EMULATOR_PORT"
start_emulator "$EMULATOR_PORT" "$STATE/emulator.log"

log "creating the resources template.yaml declares"
# Local use: webhooks may go to receivers on this machine (loopback only).
STACK_PARAMS=(--param WebhookAllowLoopback=true)
eval "$(target/debug/koppel-local "${STACK_PARAMS[@]}" env)"
target/debug/koppel-admin demo --base-url "http://127.0.0.1:$PORT" --out "$STATE/demo.json" >"$STATE/demo.txt"

target/debug/koppel-local "${STACK_PARAMS[@]}" serve --listen "127.0.0.1:$PORT" --listen "[::1]:$PORT" &
GATEWAY_PID=$!
wait_for_gateway "http://127.0.0.1:$PORT" "$GATEWAY_PID"

cat "$STATE/demo.txt"
log "Documentation: http://127.0.0.1:$PORT/docs (Authorize with a token above, try any operation, copy its curl line); the OpenAPI document: http://127.0.0.1:$PORT/openapi.json"
log "Mail it sends (OTP codes): $AWS_ENDPOINT_URL/koppel/mail (?to=<address>)"
log "Koppel is running on http://127.0.0.1:$PORT (and http://[::1]:$PORT). Ctrl-C stops it."
wait "$GATEWAY_PID"
