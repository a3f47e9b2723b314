#!/usr/bin/env bash
# The verifier benchmark (clients/VERIFIER-CONFORMANCE.md, "The verifier benchmark"):
#
#   bench/verify.sh                      # every library whose folder is in the checkout
#   BENCH_SECONDS=2 bench/verify.sh      # shorter throughput runs
#
# Builds a release sessiond and the bench workspace's binaries, starts sessiond on SQLite
# (2 h access tokens, a verifier key, rate limits and cleanup off), seeds
# BENCH_VERIFY_REVOKED (100 000) sessions that are revoked but whose tokens are alive, then
# runs each library's bench program against it, one after the other: Rust
# (bench/verify-rust), TypeScript (clients/verify-js/bench/bench.mjs) and Python
# (clients/python/bench/bench.py), the last two only when their folders exist. Each prints
# one JSON line; the table goes to bench/results/verify.md (raw lines: verify.jsonl).
#
# Settings (environment):
#   BENCH_SECONDS (5)            seconds per throughput measurement
#   BENCH_REVOCATIONS (200)      revocations timed per library
#   BENCH_VERIFY_REVOKED (100000) revoked live sessions seeded before the programs run
#   BENCH_PORT_BASE (18420)      sessiond's port
#   BENCH_KEEP=1                 keep the work folder (logs, data) under /tmp
# sessiond listens on 127.0.0.1 only, every wait has a time limit, and it is stopped on exit.
set -euo pipefail
export LC_ALL=C

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
RESULTS="$BENCH_DIR/results"
SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
REVOCATIONS="${BENCH_REVOCATIONS:-200}"
REVOKED="${BENCH_VERIFY_REVOKED:-100000}"
PORT="${BENCH_PORT_BASE:-18420}"
URL="http://127.0.0.1:$PORT"
ADMIN_KEY="bench-admin-key-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
VERIFIER_KEY="bench-verifier-key-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
WORK="$(mktemp -d /tmp/sessiond-verify-bench.XXXXXX)"
SESSIOND_BIN="$ROOT/target/release/sessiond"
BENCH_BIN="$BENCH_DIR/target/release"
LINES="$WORK/results.jsonl"
NOTES="$WORK/notes.txt"
SESSIOND_PID=""

log() { printf '[verify-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FATAL: $*"
    exit 1
}
note() { printf '%s\n' "$*" >>"$NOTES"; }

cleanup() {
    local status=$?
    set +e
    if [ -n "$SESSIOND_PID" ]; then
        kill -TERM "$SESSIOND_PID" 2>/dev/null
        for _ in $(seq 1 150); do
            kill -0 "$SESSIOND_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SESSIOND_PID" 2>/dev/null
        wait "$SESSIOND_PID" 2>/dev/null
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $status -ne 0 ]; then
        log "work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
: >"$LINES"
: >"$NOTES"

log "building sessiond (release) in the main workspace"
(cd "$ROOT" && timeout 3600 cargo build --release -q -p sessiond) || die "sessiond build failed"
log "building seed and verify-rust (bench/ workspace)"
(cd "$BENCH_DIR" && timeout 3600 cargo build --release -q -p seed -p verify-rust) || die "bench build failed"

curl -s --max-time 1 -o /dev/null "$URL/" 2>/dev/null && die "port $PORT is taken (set BENCH_PORT_BASE)"
env SESSIOND_BIND="127.0.0.1:$PORT" \
    SESSIOND_DATA_DIR="$WORK/data" \
    SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" \
    SESSIOND_VERIFIER_API_KEYS="[\"$VERIFIER_KEY\"]" \
    SESSIOND_RATE_LIMITS__ENABLED=false \
    SESSIOND_CLEANUP_INTERVAL=0s \
    SESSIOND_ACCESS_TOKEN_TTL=2h \
    SESSIOND_LOG_FORMAT=json \
    "$SESSIOND_BIN" serve >>"$WORK/sessiond.log" 2>&1 &
SESSIOND_PID=$!
deadline=$((SECONDS + 60))
until curl -sf --max-time 1 -o /dev/null "$URL/readyz"; do
    kill -0 "$SESSIOND_PID" 2>/dev/null || die "sessiond exited: $(tail -n 5 "$WORK/sessiond.log")"
    [ $SECONDS -lt $deadline ] || die "sessiond did not become ready within 60 s"
    sleep 0.2
done
log "sessiond ready on $URL (pid $SESSIOND_PID)"

log "seeding $REVOKED revoked live sessions"
SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" SEED_CONCURRENCY=32 SEED_DEADLINE_SECS=1800 \
    timeout 1860 "$BENCH_BIN/seed" revoked "$URL" "$REVOKED" 1000 2>>"$WORK/seed.log" ||
    die "seeding failed (see $WORK/seed.log)"
SEEDED="$(tail -n 1 "$WORK/seed.log")"
log "  $SEEDED"

# run_program LANGUAGE COMMAND...: one bench program, its JSON line appended.
run_program() {
    local language=$1
    shift
    log "$language: running (${SECONDS_PER_RUN} s per throughput run, $REVOCATIONS revocations)"
    local out="$WORK/$language.out"
    if SESSIOND_URL="$URL" SESSIOND_ADMIN_KEY="$ADMIN_KEY" SESSIOND_VERIFIER_KEY="$VERIFIER_KEY" \
        BENCH_SECONDS="$SECONDS_PER_RUN" BENCH_REVOCATIONS="$REVOCATIONS" \
        timeout 1800 "$@" >"$out" 2>"$WORK/$language.err"; then
        local line
        line="$(grep '^{' "$out" | tail -n 1)"
        [ -n "$line" ] || die "$language printed no JSON line (see $WORK/$language.err)"
        printf '%s\n' "$line" >>"$LINES"
        log "  $line"
    else
        log "$language failed:"
        tail -n 20 "$WORK/$language.err" >&2
        note "$language: the bench program failed ($(tail -n 1 "$WORK/$language.err"))"
    fi
}

# Nothing here waits for a quiet machine (bench/run.sh does): the load average says how
# busy it was when the programs started.
LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
run_program rust "$BENCH_BIN/verify-rust"

JS_DIR="$ROOT/clients/verify-js"
if [ -f "$JS_DIR/bench/bench.mjs" ]; then
    if [ ! -d "$JS_DIR/node_modules" ]; then
        (cd "$JS_DIR" && timeout 900 npm ci --no-audit --no-fund >"$WORK/npm.log" 2>&1) || die "npm ci failed (see $WORK/npm.log)"
    fi
    (cd "$JS_DIR" && timeout 900 npm run build >>"$WORK/npm.log" 2>&1) || die "npm run build failed (see $WORK/npm.log)"
    run_program typescript node "$JS_DIR/bench/bench.mjs"
else
    log "typescript: skipped, clients/verify-js/bench/bench.mjs is not in this checkout"
    note "typescript: skipped (clients/verify-js/bench/bench.mjs not in this checkout)"
fi

PY_DIR="$ROOT/clients/python"
if [ -f "$PY_DIR/bench/bench.py" ]; then
    if [ ! -x "$PY_DIR/.venv/bin/python" ]; then
        (cd "$PY_DIR" && timeout 900 scripts/setup.sh >"$WORK/python-setup.log" 2>&1) || die "clients/python/scripts/setup.sh failed"
    fi
    run_program python "$PY_DIR/.venv/bin/python" "$PY_DIR/bench/bench.py"
else
    log "python: skipped, clients/python/bench/bench.py is not in this checkout"
    note "python: skipped (clients/python/bench/bench.py not in this checkout)"
fi

# Machine facts, as bench/run.sh records them.
FACTS="$WORK/facts.txt"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "memory=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "rustc=$(rustc --version)"
    echo "node=$(node --version 2>/dev/null || echo none)"
    echo "python=$( ([ -x "$PY_DIR/.venv/bin/python" ] && "$PY_DIR/.venv/bin/python" -c 'import platform; print(platform.python_version())') 2>/dev/null || echo none)"
    echo "commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- crates clients bench 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "settings=$SECONDS_PER_RUN s per throughput run, $REVOCATIONS revocations, $REVOKED revoked live sessions seeded (2 h access tokens)"
    echo "seeding=$SEEDED"
    echo "load=$LOAD"
    echo "sessiond_rss_mib=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SESSIOND_PID/status")"
} >"$FACTS"

mkdir -p "$RESULTS"
cp "$LINES" "$RESULTS/verify.jsonl"
python3 - "$LINES" "$FACTS" "$NOTES" "$RESULTS/verify.md" <<'PY'
import json, sys

lines_path, facts_path, notes_path, out_path = sys.argv[1:]
rows = [json.loads(l) for l in open(lines_path) if l.strip()]
facts = dict(l.rstrip("\n").split("=", 1) for l in open(facts_path) if "=" in l)
notes = [l.rstrip("\n") for l in open(notes_path) if l.strip()]

def n(v):
    return f"{v:,.0f}"

def mib(v):
    return f"{v / 1048576:.1f} MiB"

out = ["# sessiond verifier libraries: latest benchmark", ""]
out.append(
    f"Machine: {facts['nproc']} cores ({facts['cpu']}), {facts['memory']}, {facts['kernel']}. "
    f"Date: {facts['date']}. sessiond at {facts['commit']}, {facts['rustc']}, node {facts['node']}, "
    f"Python {facts['python']} (the clients' virtualenv)."
)
out.append("")
out.append(f"Load: {facts['settings']}; sessiond (release, SQLite) and the bench program share the machine. "
           f"Seeding: {facts['seeding']}. sessiond's peak RSS: {facts['sessiond_rss_mib']} MiB. "
           f"Load average (1, 5, 15 min) as the programs started: {facts['load']} "
           f"(on a machine shared with other work the figures vary between runs; re-run on a quiet one).")
out.append("")
out.append("| language | bare checks/s | verifier checks/s | ratio | heap (deny-set + keys) | RSS | denied sessions | revocation p50 | revocation p99 |")
out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
uncached = False
for r in rows:
    language = r["language"]
    if "verifier_uncached_per_s" in r:
        language += " (signature cache on, default 4 096)"
    out.append(
        f"| {language} | {n(r['bare_per_s'])} | {n(r['verifier_per_s'])} | {r['ratio']:.2f} | "
        f"{mib(r['heap_bytes'])} | {mib(r['rss_bytes'])} | {n(r['denied_sessions'])} | "
        f"{r['revocation_p50_ms']:.1f} ms | {r['revocation_p99_ms']:.1f} ms |"
    )
    if "verifier_uncached_per_s" in r:
        uncached = True
        out.append(
            f"| {r['language']} (`signatureCacheSize: 0`) | {n(r['bare_per_s'])} | "
            f"{n(r['verifier_uncached_per_s'])} | {r['ratio_uncached']:.2f} | ″ | ″ | ″ | ″ | ″ |"
        )
out.append("")
if uncached:
    out.append("- TypeScript's default verifier remembers up to 4 096 tokens whose signature passed, "
               "and the benchmark checks one token over and over: its figure is the claims, expiry and "
               "deny-set check without Ed25519. The `signatureCacheSize: 0` row (a second verifier in "
               "the same run, same token, same bare figure) pays the signature on every call like the "
               "other libraries: that is the like-for-like ratio. Heap, RSS and revocation latency "
               "(″) are the default verifier's.")
out.append("- *bare*: the language's usual JWT call with the same Ed25519 key (Rust `jsonwebtoken::decode`, "
           "Node `jose` `jwtVerify`, Python PyJWT `jwt.decode_complete`), checking iss, aud, exp and typ; *verifier*: the "
           "library's `verify` of the same token (signature, claims, staleness, the deny-set). One thread each.")
out.append("- *heap*: the heap difference across the verifier's start (its snapshot of the revocations above); "
           "*RSS*: the whole process's resident set after it.")
out.append("- *revocation*: from before `DELETE /v1/admin/sessions/{id}` to the first refused `verify`, polled every "
           "millisecond (or as fast as the event loop allows), over the runs counted in verify.jsonl.")
if any(r["language"] == "python" for r in rows):
    out.append("- Python: the heap is tracemalloc's count across the start; the RSS is read after "
               "tracemalloc stops, so it still holds what tracemalloc's traces took while the "
               "snapshot loaded (freed, kept by the allocator): it overstates what the verifier "
               "alone leaves resident.")
if len(rows) > 1:
    out.append("- *denied sessions*: the seeded revocations plus those made by the programs that "
               "ran before (`BENCH_REVOCATIONS` each).")
for note in notes:
    out.append(f"- {note}")
open(out_path, "w").write("\n".join(out) + "\n")
PY
log "wrote $RESULTS/verify.md"
cat "$RESULTS/verify.md" >&2
