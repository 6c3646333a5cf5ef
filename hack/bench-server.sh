#!/usr/bin/env bash
# Starts a coffer server on bbolt (static seal, plain HTTP on loopback, no
# audit device) from the binary BIN on PORT, initialises it, runs
# `coffer bench -workers 32 -value-size 1024 SCENARIO...` against it and
# stops it. Used for the figures of docs/benchmarks.md ("coffer bench
# against coffer server"); run it with two binaries, alternating, to
# compare builds on a shared machine.
#
#   hack/bench-server.sh /tmp/coffer 28471 health kv-read
set -euo pipefail
BIN=${1:?usage: bench-server.sh BIN PORT [SCENARIO...]}
PORT=${2:?usage: bench-server.sh BIN PORT [SCENARIO...]}
shift 2
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(health kv-read kv-write kv-mixed transit-encrypt)
D=$(mktemp -d)
trap 'kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; rm -rf "$D"' EXIT
mkdir -p "$D/data"
cat > "$D/coffer.hcl" <<HCL
listener "tcp" {
  address     = "127.0.0.1:$PORT"
  tls_disable = true
}
storage "bolt" {
  path = "$D/data/coffer.db"
}
seal "static" {
  key_file = "$D/seal.key"
}
log_level = "warn"
HCL
"$BIN" operator generate-seal-key -out "$D/seal.key" >/dev/null
"$BIN" server -config "$D/coffer.hcl" > "$D/server.log" 2>&1 &
SP=$!
export COFFER_ADDR=http://127.0.0.1:$PORT
for _ in $(seq 100); do
  if "$BIN" status >/dev/null 2>&1 || [ $? -eq 2 ]; then break; fi
  sleep 0.1
done
COFFER_TOKEN=$("$BIN" operator init -recovery-shares 1 -recovery-threshold 1 -format=json |
  sed -n 's/.*"root_token": *"\([^"]*\)".*/\1/p')
export COFFER_TOKEN
"$BIN" bench -workers 32 -value-size 1024 "${SCENARIOS[@]}"
