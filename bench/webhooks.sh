#!/usr/bin/env bash
# What the event outbox and webhook delivery cost the writes that make events: anonymous
# sessions (one `session.created` event and one delivery row each) and refreshes (no event
# by default; one each with `record_refresh_events`), with webhooks off and on, in
# alternating pairs on one machine, so the ratios compare runs minutes apart.
#
#   bench/webhooks.sh                 # SQLite; BENCH_DURATION (10) s per run, BENCH_PAIRS (2)
#   BENCH_BACKEND=postgres bench/webhooks.sh
#
# "on" means: one endpoint taking every event, served by a local receiver that answers 204
# (a Python ThreadingHTTPServer), so each instance also signs and posts every event while
# it serves. Writes bench/results/webhooks.md. Needs what bench/run.sh needs (it builds
# the release binary and the bench's seed binary the same way).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="$BENCH_DIR/results"
WRK_DIR="$BENCH_DIR/wrk"
DURATION="${BENCH_DURATION:-10}"
PAIRS="${BENCH_PAIRS:-2}"
BACKEND="${BENCH_BACKEND:-sqlite}"
POSTGRES_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_PORT:-18470}"
RECEIVER_PORT=$((PORT + 1))
ADMIN_KEY="bench-admin-key-0123456789abcdef0123456789abcdef"
SECRET="whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMhIQ=="
SESSIOND_BIN="$ROOT/target/release/sessiond"
SEED_BIN="$BENCH_DIR/target/release/seed"
WORK="$(mktemp -d /tmp/sessiond-webhooks-bench.XXXXXX)"
PIDS=()

log() { printf '[webhooks-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || die "wrk is missing (bench/run.sh installs it)"
log "building sessiond and the seed binary (release)"
(cd "$ROOT" && cargo build --release -q -p sessiond) || die "sessiond build failed"
(cd "$BENCH_DIR" && cargo build --release -q -p seed) || die "seed build failed"

# The receiver: answers every POST with 204, on threads.
python3 - "$RECEIVER_PORT" <<'PY' >"$WORK/receiver.log" 2>&1 &
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
PIDS+=($!)

cat >"$WORK/on.toml" <<EOF
[webhooks]
poll_interval = "200ms"
[webhooks.endpoints.bench]
url = "http://127.0.0.1:$RECEIVER_PORT/hook"
secret = "$SECRET"
EOF
: >"$WORK/off.toml"

start() { # MODE (off|on) RECORD_REFRESHES (true|false)
    local mode=$1 refreshes=$2 data="$WORK/data-$RANDOM"
    local database=()
    if [ "$BACKEND" = postgres ]; then
        local db="webhooks_bench_$RANDOM"
        createdb -h 127.0.0.1 -U postgres "$db" || die "createdb failed"
        database=(SESSIOND_DATABASE_URL="$POSTGRES_URL/$db")
    fi
    mkdir -p "$data"
    env SESSIOND_BIND="127.0.0.1:$PORT" SESSIOND_DATA_DIR="$data" \
        SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" SESSIOND_RATE_LIMITS__ENABLED=false \
        SESSIOND_CLEANUP_INTERVAL=0s SESSIOND_ACCESS_TOKEN_TTL=2h SESSIOND_LOG_FORMAT=json \
        SESSIOND_RECORD_REFRESH_EVENTS="$refreshes" "${database[@]}" \
        "$SESSIOND_BIN" --config "$WORK/$mode.toml" serve >>"$WORK/sessiond.log" 2>&1 &
    SESSIOND_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 20 "$WORK/sessiond.log" >&2
    die "sessiond did not start"
}

stop() {
    kill "$SESSIOND_PID" 2>/dev/null || true
    wait "$SESSIOND_PID" 2>/dev/null || true
}

# wrk's result line: "rps p99_us"
measure() { # SCRIPT ARGS...
    local script=$1
    shift
    wrk -t2 -c64 -d"${DURATION}s" --timeout 10s -s "$WRK_DIR/$script" \
        "http://127.0.0.1:$PORT" -- "$@" 2>/dev/null |
        sed -n 's/^BENCH_RESULT.* rps=\([0-9.]*\) .* p99_us=\([0-9]*\) .*/\1 \2/p'
}

pending() {
    curl -sf "http://127.0.0.1:$PORT/metrics" |
        awk '/^sessiond_webhook_backlog\{/ { s += $2 } END { print s + 0 }'
}

ROWS="$WORK/rows.tsv"
: >"$ROWS"
run() { # SCENARIO MODE REFRESHES
    local scenario=$1 mode=$2 refreshes=$3 result
    start "$mode" "$refreshes"
    case "$scenario" in
    anonymous) result="$(measure anonymous.lua)" ;;
    refresh)
        SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" SEED_CONCURRENCY=32 \
            "$SEED_BIN" sessions "http://127.0.0.1:$PORT" 20000 "$WORK/access.txt" \
            "$WORK/refresh.txt" 1000 2>>"$WORK/seed.log" || die "seeding failed"
        result="$(measure refresh.lua "$WORK/refresh.txt" 2)"
        ;;
    esac
    local left
    left="$(pending)"
    log "  $scenario, webhooks $mode (record refreshes: $refreshes): $result req/s · p99 µs; deliveries pending at the end: $left"
    printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$mode" "$refreshes" "$result" "$left" >>"$ROWS"
    stop
}

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$PAIRS"); do
    run anonymous off false
    run anonymous on false
    run refresh off false
    run refresh on false
    run refresh on true
done

python3 - "$ROWS" "$RESULTS/webhooks.md" "$BACKEND" "$DURATION" "$PAIRS" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import sys, statistics
rows_path, out, backend, duration, pairs, load = sys.argv[1:]
runs = {}
for line in open(rows_path):
    scenario, mode, refreshes, result, _pending = line.rstrip("\n").split("\t")
    rps, p99 = (result.split() + ["0", "0"])[:2]
    runs.setdefault((scenario, mode, refreshes), []).append((float(rps), float(p99)))
def med(key, i):
    vals = [r[i] for r in runs.get(key, [])]
    return statistics.median(vals) if vals else 0.0
lines = [
    "# What events and webhooks cost the writes",
    "",
    f"`bench/webhooks.sh` on {backend}: wrk, 64 connections, 2 threads, {duration} s a run, {pairs} alternating pairs; medians. Load average at the end: {load}.",
    "\"on\": one endpoint taking every event, a local receiver answering 204, so the same 2 cores also sign and post each event.",
    "",
    "| scenario | webhooks | req/s | p99 ms | ÷ off |",
    "| --- | --- | ---: | ---: | ---: |",
]
for scenario, title in [("anonymous", "anonymous session (one event each)"), ("refresh", "refresh")]:
    base = med((scenario, "off", "false"), 0)
    for mode, refreshes, label in [("off", "false", "off"), ("on", "false", "on"), ("on", "true", "on, every refresh an event")]:
        key = (scenario, mode, refreshes)
        if key not in runs:
            continue
        rps = med(key, 0)
        ratio = f"{rps / base:.2f}" if base else "–"
        lines.append(f"| {title} | {label} | {rps:.0f} | {med(key, 1) / 1000:.1f} | {ratio} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
