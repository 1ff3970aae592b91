#!/usr/bin/env bash
# The latency tail an outside client sees (issue 9, point 10): starts a
# cheap local sink and `ferry serve` on a fresh SQLite store with one
# webhook route (api-key scheme) into it, then drives it with wrk (Debian's
# `wrk` package): 1 KiB bodies, 60 s (WRK_SECONDS), at each connection
# count given (default 16 and 64), and prints wrk's latency distribution.
# Run from the repository after `cargo build --release`:
#   scripts/wrk-tail.sh [connections...]     (FERRY_BIN=... for another build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ferry=${FERRY_BIN:-$here/../target/release/ferry}
seconds=${WRK_SECONDS:-60}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for port in 9910 9911; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is in use: stop what listens there first" >&2; exit 1
  fi
done
python3 "$here/wrk-sink.py" 9911 &
cat > "$work/ferry.toml" <<TOML
[server]
listen = "127.0.0.1:9910"
data_dir = "data"

[credentials]
wrk_client = { env = "WRK_CLIENT_KEY" }

[systems.sink]
base_url = "http://127.0.0.1:9911"
# Ingest outruns delivery at c64: every request is to be a real accept
# (fsynced before its 202), not a quick 503 from a full queue.
max_queue = 100000000

[routes.wrk]
source = { kind = "webhook", scheme = "api-key", header = "X-Api-Key", credentials = ["wrk_client"], dedupe = "none" }
destination = { system = "sink", method = "POST", path = "/events" }
TOML
for c in "${@:-16 64}"; do
  for conns in $c; do
    rm -rf "$work/data"
    WRK_CLIENT_KEY=wrk-client-key "$ferry" serve --config "$work/ferry.toml" >"$work/ferry.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:9910/readyz >/dev/null && break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null || { cat "$work/ferry.log" >&2; exit 1; }
    echo "== wrk -t2 -c$conns -d${seconds}s --latency (1 KiB bodies, api-key webhook route, SQLite, $(basename "$ferry"))"
    wrk -t2 -c"$conns" -d"${seconds}s" --latency -s "$here/wrk-post.lua" http://127.0.0.1:9910/in/wrk
    kill -0 "$pid" 2>/dev/null || { echo "ferry exited during the run:" >&2; cat "$work/ferry.log" >&2; exit 1; }
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
