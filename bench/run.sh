#!/usr/bin/env bash
# sessiond HTTP load benchmark, one command:
#
#   bench/run.sh          # the scenarios on SQLite and PostgreSQL(+Redis), and the references
#   bench/run.sh scale    # token checks with 10k / 1M stored sessions, purge of 1M (SQLite),
#                         # then the admin user list at 1M users (the `users` step)
#   bench/run.sh users    # the admin user list/search at 1M users, SQLite and PostgreSQL
#   bench/run.sh all      # main, then scale (with users)
#
# Writes bench/results/latest.md and latest.svg. Settings (environment):
#   BENCH_DURATION (10)      seconds per wrk run      BENCH_WARMUP (2)   seconds of warm-up
#   BENCH_CONNECTIONS (64)   BENCH_THREADS (2)        wrk connections and threads
#   BENCH_REFRESH_SEED (20000) refresh tokens seeded  BENCH_LOGIN_USERS (300) users registered
#   BENCH_POSTGRES_URL (postgres://root@127.0.0.1:5432)  server for a fresh database; "skip" skips
#   BENCH_REDIS_URL (redis://127.0.0.1:6379)         "skip" skips Redis
#   BENCH_PORT_BASE (18420)  sessiond, ceiling, tower-sessions-ref, fastapi-ref: BASE, +1, +2, +3
#   BENCH_PYTHON (python3)   for the FastAPI reference; "skip" skips it
#   BENCH_SCALE_ROWS (1000000) ended sessions in the big scale step
#   BENCH_USERS_ROWS (1000000) users of the users step (at most 10 000 000)
#   BENCH_USERS_CONNECTIONS (16) wrk connections of the users step
#   BENCH_QUIET_WAIT (60)    seconds to wait, before each run, for other processes to go quiet
#   BENCH_PURGE_TIMEOUT (3600) seconds the scale purge may take
#   BENCH_KEEP=1             keep the work folder (logs, data) under /tmp
# Every server listens on 127.0.0.1 only, every wait and run has a time limit, and every
# server this script starts is stopped on exit.
set -euo pipefail
export LC_ALL=C # numbers from `times`, awk and printf with a dot

MODE="${1:-main}"
case "$MODE" in main | scale | users | all) ;; *)
    echo "usage: $0 [main|scale|users|all]" >&2
    exit 2
    ;;
esac

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
RESULTS="$BENCH_DIR/results"
WRK_DIR="$BENCH_DIR/wrk"

DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
CHECK_SESSIONS=1000
REFRESH_SEED="${BENCH_REFRESH_SEED:-20000}"
LOGIN_USERS="${BENCH_LOGIN_USERS:-300}"
PG_SERVER="${BENCH_POSTGRES_URL:-postgres://root@127.0.0.1:5432}"
REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
PORT_BASE="${BENCH_PORT_BASE:-18420}"
PORT_SESSIOND=$PORT_BASE
PORT_CEILING=$((PORT_BASE + 1))
PORT_TOWER=$((PORT_BASE + 2))
PORT_FASTAPI=$((PORT_BASE + 3))
SCALE_ROWS="${BENCH_SCALE_ROWS:-1000000}"
SCALE_SMALL_ROWS=9000 # + the 1000 live sessions = 10 000 stored
USERS_ROWS="${BENCH_USERS_ROWS:-1000000}"
USERS_CONNECTIONS="${BENCH_USERS_CONNECTIONS:-16}"
PASSWORD="bench-password-not-secret"
ADMIN_KEY="bench-admin-key-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TAG="$(date +%s)-$$"

WORK="$(mktemp -d /tmp/sessiond-bench.XXXXXX)"
SESSIOND_BIN="$ROOT/target/release/sessiond"
BENCH_BIN="$BENCH_DIR/target/release"

PIDS=()
PG_DBS=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FATAL: $*"
    exit 1
}

cleanup() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    for db in "${PG_DBS[@]}"; do
        timeout 30 dropdb --if-exists --maintenance-db="$PG_SERVER/postgres" "$db" 2>/dev/null
    done
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $status -ne 0 ]; then
        log "work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process this script started: SIGTERM, up to 15 s to drain, then SIGKILL.
stop_pid() {
    local pid=$1 kept=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
    PIDS=("${kept[@]}")
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# Waits (at most $2 seconds) until URL $1 answers 2xx, failing if process $3 died.
wait_http() {
    local url=$1 limit=$2 pid=$3
    local deadline=$((SECONDS + limit))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -sf --max-time 1 -o /dev/null "$url" && return 0
        sleep 0.2
    done
    return 1
}

port_free() { ! curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    log "installing $* (apt-get)"
    as_root timeout 600 apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$@" >/dev/null
}

install_tools() {
    command -v wrk >/dev/null || apt_install wrk
    command -v curl >/dev/null || apt_install curl
    command -v python3 >/dev/null || apt_install python3
    if [ "$MODE" != main ]; then command -v sqlite3 >/dev/null || apt_install sqlite3; fi
    return 0
}

build() {
    log "building sessiond (release) in the main workspace"
    (cd "$ROOT" && timeout 3600 cargo build --release -q -p sessiond) || die "sessiond build failed"
    # The users step needs none of the bench binaries (its rows go in with SQL, wrk drives).
    [ "$MODE" = users ] && return 0
    log "building the bench binaries (bench/ workspace)"
    (cd "$BENCH_DIR" && timeout 3600 cargo build --release -q) || die "bench build failed"
}

# ---------------------------------------------------------------------------------------
# Results: one TSV row per measurement, one key=value line per fact; report.py renders.
# ---------------------------------------------------------------------------------------
TSV=""
FACTS=""

fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }

row() { # section scenario backend rps p50_us p99_us non2xx errors requests note rss_mib cpu
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$TSV"
}

# CPU accounting, so a row says when something else was using the machine (another
# build, another benchmark): machine busy time from /proc/stat (user, nice, system: the
# kernel's interrupt work for loopback traffic is the run's own and left out), the server's
# from /proc/<pid>/stat, the database's (every postgres and redis-server process: they
# work for the server under test) likewise, the load generator's from `times`; "other" is
# what is left.
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4, $9 }' /proc/stat; } # busy steal
# CPU ticks of a process and its children (a server may fork workers: uvicorn --workers).
proc_cpu() {
    if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then
        local p
        for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
            sed 's/.*) //' "/proc/$p/stat" 2>/dev/null
        done | awk '{ t += $12 + $13 } END { print t + 0 }'
    else
        echo 0
    fi
}
# CPU ticks of the database processes (PostgreSQL, Redis), summed.
db_cpu() {
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk '$2 == "(postgres)" || $2 == "(redis-server)" { sub(/^.*\) /, ""); split($0, f, " "); t += f[12] + f[13] } END { print t + 0 }'
}

# Waits (at most BENCH_QUIET_WAIT seconds, default 60) until the rest of the machine uses
# less than a fifth of a core, so that a shared machine's other work (a build, a test
# run) does not land in the numbers. Runs anyway afterwards; the row then says so.
wait_quiet() {
    local limit=${BENCH_QUIET_WAIT:-60} start=$SECONDS b0 b1 p0 p1 busy
    while :; do
        read -r b0 _ < <(cpu_busy)
        p0=$(proc_cpu "${RSS_PID:-}")
        sleep 1
        read -r b1 _ < <(cpu_busy)
        p1=$(proc_cpu "${RSS_PID:-}")
        busy=$(((b1 - b0) - (p1 - p0)))
        [ $((busy * 5)) -lt "$CLK_TCK" ] && return 0
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            log "  the machine is still busy ($((busy * 100 / CLK_TCK)) % of a core used by others): measuring anyway"
            return 0
        fi
        [ $((SECONDS - start)) -lt 2 ] && log "  waiting up to ${limit}s for the machine to be quiet ($((busy * 100 / CLK_TCK)) % of a core used by others)"
        sleep 2
    done
}

# measure OUT CMD...: runs CMD with stdout+stderr to OUT, returns its status, and sets
# CPU_NOTE to "server · db · client · other (steal …)" in cores over the run.
CPU_NOTE=""
measure() {
    local out=$1
    shift
    local b0 s0 b1 s1 p0 p1 d0 d1 t0 t1 rc=0
    read -r b0 s0 < <(cpu_busy)
    p0=$(proc_cpu "${RSS_PID:-}")
    d0=$(db_cpu)
    t0=$(date +%s.%N)
    (
        "$@" >"$out" 2>&1
        rc=$?
        times >"$out.times"
        exit $rc
    ) || rc=$?
    t1=$(date +%s.%N)
    read -r b1 s1 < <(cpu_busy)
    p1=$(proc_cpu "${RSS_PID:-}")
    d1=$(db_cpu)
    local fig srv db cl ot st
    fig="$(awk -v b0="$b0" -v b1="$b1" -v s0="$s0" -v s1="$s1" -v p0="$p0" -v p1="$p1" \
        -v d0="$d0" -v d1="$d1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '
        NR == 2 { split($1, u, /[ms]/); split($2, y, /[ms]/); client = u[1] * 60 + u[2] + y[1] * 60 + y[2] }
        END {
            t = t1 - t0; if (t <= 0) t = 1
            srv = (p1 - p0) / hz; db = (d1 - d0) / hz
            other = (b1 - b0) / hz - srv - db - client; if (other < 0) other = 0
            printf "%.2f %.2f %.2f %.2f %.2f\n", srv / t, db / t, client / t, other / t, (s1 - s0) / hz / t
        }' "$out.times" 2>/dev/null)" || fig="0 0 0 0 0"
    read -r srv db cl ot st <<<"$fig"
    [ -n "${RSS_PID:-}" ] || srv="–"
    CPU_NOTE="$srv · $db · $cl · $ot (steal $st)"
    return $rc
}

# log_digest FILE OFFSET: the most frequent ERROR/WARN lines of sessiond's JSON log after
# OFFSET, as "N × message: error".
log_digest() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null || true
import collections, json, sys
counts = collections.Counter()
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    for raw in f:
        try:
            e = json.loads(raw)
        except ValueError:
            continue
        if e.get("level") in ("ERROR", "WARN") and e.get("target") != "tower_http::trace::on_failure":
            counts[e.get("message", "?") + (": " + str(e["error"]) if "error" in e else "")] += 1
print("; ".join(f"{n:,} × {m}" for m, n in counts.most_common(2)))
PY
}

# run_wrk SECTION SCENARIO BACKEND URL SCRIPT [ARGS...]: warm-up (unless WARM=0), then one
# measured run; appends a row.
run_wrk() {
    local section=$1 scenario=$2 backend=$3 url=$4 script=$5
    shift 5
    local out
    out="$WORK/wrk-$(echo "$scenario-$backend" | tr -c 'a-zA-Z0-9-' _).txt"
    if [ "${WARM:-1}" = 1 ] && [ "$WARMUP" -gt 0 ]; then
        timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout 10s \
            -s "$WRK_DIR/$script" "$url" -- "$@" >/dev/null 2>&1 || true
    fi
    log "wrk: $scenario on $backend (${DURATION}s, $CONNECTIONS connections, $THREADS threads)"
    wait_quiet
    local log_from=0
    if [ -n "${SERVER_LOG:-}" ]; then log_from=$(stat -c %s "$SERVER_LOG" 2>/dev/null || echo 0); fi
    if ! measure "$out" timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" \
        -d"${DURATION}s" --timeout 10s -s "$WRK_DIR/$script" "$url" -- "$@"; then
        log "wrk failed for $scenario on $backend:"
        cat "$out" >&2
        row "$section" "$scenario" "$backend" 0 0 0 0 0 0 "wrk failed" "" ""
        return 0
    fi
    local line note
    line="$(grep '^BENCH_RESULT' "$out" | tail -n 1)" || true
    note="$(grep '^BENCH_NOTE' "$out" | sed 's/^BENCH_NOTE //' | tail -n 1)" || true
    # ROW_NOTE (set by the caller for one run) goes first in the row's note.
    if [ -n "${ROW_NOTE:-}" ]; then note="$ROW_NOTE${note:+; $note}"; fi
    if [ -z "$line" ]; then
        row "$section" "$scenario" "$backend" 0 0 0 0 0 0 "no result line" "" ""
        return 0
    fi
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    local errors=$(($(get err_connect) + $(get err_read) + $(get err_write) + $(get err_timeout)))
    if [ "$(get requests)" = 0 ]; then
        note="${note:+$note; }no request completed within the run"
    fi
    # When requests failed, say what the server logged about it.
    if { [ "$(get non2xx)" != 0 ] || [ "$(get requests)" = 0 ]; } && [ -n "${SERVER_LOG:-}" ]; then
        local digest
        digest="$(log_digest "$SERVER_LOG" "$log_from")"
        [ -n "$digest" ] && note="${note:+$note; }server log: $digest"
    fi
    # The server's peak RSS so far (VmHWM), when RSS_PID names it.
    local rss=""
    if [ -n "${RSS_PID:-}" ]; then rss="$(peak_rss_mib "$RSS_PID")"; fi
    row "$section" "$scenario" "$backend" "$(get rps)" "$(get p50_us)" "$(get p99_us)" \
        "$(get non2xx)" "$errors" "$(get requests)" "$note" "$rss" "$CPU_NOTE"
    log "  $(get rps) req/s, p50 $(get p50_us) µs, p99 $(get p99_us) µs, non-2xx $(get non2xx), socket errors $errors; cores server · db · wrk · other: $CPU_NOTE"
}

# ---------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------
SESSIOND_PID=""
RSS_PID=""
SERVER_LOG=""

# start_sessiond LABEL DATA_DIR [VAR=value...]
start_sessiond() {
    local label=$1 data=$2
    shift 2
    port_free "$PORT_SESSIOND" || die "port $PORT_SESSIOND is taken (set BENCH_PORT_BASE)"
    mkdir -p "$data"
    env SESSIOND_BIND="127.0.0.1:$PORT_SESSIOND" \
        SESSIOND_DATA_DIR="$data" \
        SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" \
        SESSIOND_RATE_LIMITS__ENABLED=false \
        SESSIOND_CLEANUP_INTERVAL=0s \
        SESSIOND_ACCESS_TOKEN_TTL=2h \
        SESSIOND_LOG_FORMAT=json \
        "$@" "$SESSIOND_BIN" serve >>"$WORK/sessiond-$label.log" 2>&1 &
    SESSIOND_PID=$!
    RSS_PID=$SESSIOND_PID
    SERVER_LOG="$WORK/sessiond-$label.log"
    PIDS+=("$SESSIOND_PID")
    wait_http "http://127.0.0.1:$PORT_SESSIOND/readyz" 60 "$SESSIOND_PID" ||
        {
            tail -n 30 "$WORK/sessiond-$label.log" >&2
            die "sessiond ($label) did not become ready within 60 s"
        }
    log "sessiond ($label) ready, pid $SESSIOND_PID"
}

# Peak RSS (VmHWM) of a running process, with its children's, in MiB.
peak_rss_mib() {
    local p
    for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
        cat "/proc/$p/status" 2>/dev/null
    done | awk '/^VmHWM:/ { t += $2 } END { printf "%.1f", t / 1024 }'
}

stop_sessiond() {
    [ -n "$SESSIOND_PID" ] && stop_pid "$SESSIOND_PID"
    SESSIOND_PID=""
    RSS_PID=""
    SERVER_LOG=""
}

seed_sessions() { # N ACCESS_OUT REFRESH_OUT [USERS]
    SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" SEED_CONCURRENCY=32 SEED_DEADLINE_SECS=900 \
        timeout 960 "$BENCH_BIN/seed" sessions "http://127.0.0.1:$PORT_SESSIOND" "$@" \
        2>>"$WORK/seed.log" || die "seeding $1 sessions failed (see $WORK/seed.log)"
    tail -n 1 "$WORK/seed.log" | sed 's/^/  /' >&2
}

seed_users() { # N OUT
    # Registration hashes a password (argon2id) on a bounded pool: stay under its queue.
    SEED_CONCURRENCY=16 SEED_DEADLINE_SECS=600 timeout 660 "$BENCH_BIN/seed" users \
        "http://127.0.0.1:$PORT_SESSIOND" "$1" "$PASSWORD" "$2" "$TAG" \
        2>>"$WORK/seed.log" || die "registering $1 users failed (see $WORK/seed.log)"
    tail -n 1 "$WORK/seed.log" | sed 's/^/  /' >&2
}

seed_rate() { sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' "$WORK/seed.log" | tail -n 1; }

# All five scenarios against the running sessiond.
sessiond_scenarios() {
    local backend=$1 url="http://127.0.0.1:$PORT_SESSIOND" dir="$WORK/$1"
    mkdir -p "$dir"
    log "seeding $CHECK_SESSIONS sessions for token checks ($backend)"
    seed_sessions "$CHECK_SESSIONS" "$dir/access.txt" "$dir/check-refresh.txt"
    log "seeding $REFRESH_SEED sessions for refreshes ($backend)"
    seed_sessions "$REFRESH_SEED" "$dir/refresh-access.txt" "$dir/refresh.txt" 1000
    fact "seed_rate_admin_sessions.$backend" "$(seed_rate)"
    log "registering $LOGIN_USERS users for password logins ($backend)"
    seed_users "$LOGIN_USERS" "$dir/emails.txt"
    fact "seed_rate_registrations.$backend" "$(seed_rate)"

    local first
    first="$(head -n 1 "$dir/access.txt")"
    local size
    size="$(curl -sf --max-time 5 "$url/v1/session" -H "authorization: Bearer $first" | wc -c)"
    [ "$size" -gt 0 ] || die "GET /v1/session with a seeded token failed ($backend)"
    fact "whoami_bytes.$backend" "$size"
    WHOAMI_BYTES=${WHOAMI_BYTES:-$size}

    run_wrk main "token check (GET /v1/session)" "$backend" "$url" header-get.lua \
        "$dir/access.txt" Authorization "Bearer "
    run_wrk main "forward-auth check (GET /v1/auth/check)" "$backend" "$url" header-get.lua \
        "$dir/access.txt" Authorization "Bearer " /v1/auth/check
    run_wrk main "token validate (POST /v1/token/validate)" "$backend" "$url" validate.lua \
        "$dir/access.txt"
    run_wrk main "introspection (POST /v1/introspect)" "$backend" "$url" introspect.lua \
        "$dir/access.txt" "$ADMIN_KEY"
    WARM=0 run_wrk main "refresh (POST /v1/token/refresh)" "$backend" "$url" refresh.lua \
        "$dir/refresh.txt" "$THREADS"
    WARM=0 run_wrk main "anonymous session (POST /v1/sessions/anonymous)" "$backend" "$url" anonymous.lua
    WARM=0 run_wrk main "password login (POST /v1/auth/password)" "$backend" "$url" login.lua \
        "$dir/emails.txt" "$PASSWORD"
    fact "peak_rss_mib.$backend" "$(peak_rss_mib "$SESSIOND_PID")"
}

postgres_reachable() {
    [ "$PG_SERVER" != skip ] && command -v psql >/dev/null &&
        timeout 10 psql "$PG_SERVER/postgres" -qtAc 'select 1' >/dev/null 2>&1
}

redis_reachable() {
    [ "$REDIS_URL" != skip ] || return 1
    local hostport=${REDIS_URL#redis://}
    hostport=${hostport%%/*}
    local host=${hostport%:*} port=${hostport##*:}
    timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG" 2>/dev/null
}

machine_facts() {
    fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
    fact nproc "$(nproc)"
    fact cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    fact memory "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    fact kernel "$(uname -sr)"
    fact wrk "$(wrk -v 2>&1 | head -n 1 | cut -c1-60)"
    fact rustc "$(rustc --version)"
    fact commit "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates/ with uncommitted changes)')"
    fact settings "duration ${DURATION} s, warm-up ${WARMUP} s, ${CONNECTIONS} connections, ${THREADS} wrk threads"
}

# What a Python team would write instead: FastAPI + PyJWT (HS256) under uvicorn with one
# worker per core, installed from PyPI into a virtualenv in the work folder. Skipped, with
# a line saying why, when Python or PyPI is not there.
fastapi_reference() {
    local python="${BENCH_PYTHON:-python3}" venv="$WORK/fastapi-venv" dir="$BENCH_DIR/fastapi-ref"
    if [ "$python" = skip ] || ! command -v "$python" >/dev/null; then
        log "no Python ($python): skipping the FastAPI reference"
        return 0
    fi
    log "installing the FastAPI reference into $venv (PyPI)"
    if ! timeout 600 "$python" -m venv "$venv" >>"$WORK/fastapi.log" 2>&1 ||
        ! timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check \
            -r "$dir/requirements.txt" >>"$WORK/fastapi.log" 2>&1; then
        log "could not install the FastAPI reference (see $WORK/fastapi.log): skipping it"
        return 0
    fi
    local secret
    secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    REF_JWT_SECRET="$secret" "$venv/bin/python" "$dir/mint.py" "$CHECK_SESSIONS" >"$WORK/fastapi-tokens.txt" ||
        die "minting tokens for the FastAPI reference failed"
    port_free "$PORT_FASTAPI" || die "port $PORT_FASTAPI is taken"
    (cd "$dir" && PYTHONDONTWRITEBYTECODE=1 REF_JWT_SECRET="$secret" REF_BODY_BYTES="$WHOAMI_BYTES" exec "$venv/bin/uvicorn" app:app \
        --host 127.0.0.1 --port "$PORT_FASTAPI" --workers "$(nproc)" --no-access-log --log-level warning) \
        >>"$WORK/fastapi.log" 2>&1 &
    local fastapi=$!
    PIDS+=("$fastapi")
    local url="http://127.0.0.1:$PORT_FASTAPI/v1/session" first
    first="$(head -n 1 "$WORK/fastapi-tokens.txt")"
    local t0=$SECONDS
    while ! curl -sf --max-time 1 -o /dev/null "$url" -H "authorization: Bearer $first"; do
        kill -0 "$fastapi" 2>/dev/null || die "the FastAPI reference exited: $(tail -n 5 "$WORK/fastapi.log")"
        [ $((SECONDS - t0)) -lt 60 ] || die "the FastAPI reference did not start"
        sleep 0.5
    done
    fact "fastapi_whoami_bytes" "$(curl -s --max-time 5 "$url" -H "authorization: Bearer $first" | wc -c)"
    RSS_PID=$fastapi
    run_wrk main "token check (GET /v1/session)" "FastAPI + PyJWT (uvicorn, $(nproc) workers)" \
        "http://127.0.0.1:$PORT_FASTAPI" header-get.lua "$WORK/fastapi-tokens.txt" Authorization "Bearer "
    stop_pid "$fastapi"
    RSS_PID=""
}

# ---------------------------------------------------------------------------------------
# main: scenarios on each backend, and the references
# ---------------------------------------------------------------------------------------
run_main() {
    TSV="$RESULTS/latest.tsv"
    FACTS="$RESULTS/latest.facts"
    : >"$TSV"
    : >"$FACTS"
    rm -f "$RESULTS/scale.tsv" "$RESULTS/scale.facts" "$RESULTS/users.tsv" "$RESULTS/users.facts" \
        "$RESULTS/users-plans.txt"
    machine_facts

    # SQLite, fresh data folder.
    start_sessiond sqlite "$WORK/sqlite-data"
    sessiond_scenarios sqlite
    stop_sessiond

    # The ceiling: the same request, a static body of the same size.
    port_free "$PORT_CEILING" || die "port $PORT_CEILING is taken"
    "$BENCH_BIN/ceiling" "$PORT_CEILING" "$WHOAMI_BYTES" >"$WORK/ceiling.log" 2>&1 &
    local ceiling=$!
    RSS_PID=$ceiling
    PIDS+=("$ceiling")
    wait_http "http://127.0.0.1:$PORT_CEILING/v1/session" 30 "$ceiling" || die "ceiling did not start"
    run_wrk main "token check (GET /v1/session)" "ceiling (static axum)" \
        "http://127.0.0.1:$PORT_CEILING" header-get.lua "$WORK/sqlite/access.txt" Authorization "Bearer "
    stop_pid "$ceiling"
    RSS_PID=""

    # tower-sessions with its Redis store (or its memory store without Redis).
    local store="memory" label="tower-sessions (memory)"
    if redis_reachable; then
        store="$REDIS_URL"
        label="tower-sessions (Redis)"
    else
        log "Redis not reachable at $REDIS_URL: tower-sessions-ref uses its MemoryStore"
    fi
    port_free "$PORT_TOWER" || die "port $PORT_TOWER is taken"
    "$BENCH_BIN/tower-sessions-ref" "$PORT_TOWER" "$store" >"$WORK/tower.log" 2>&1 &
    local tower=$!
    RSS_PID=$tower
    PIDS+=("$tower")
    local t0=$SECONDS
    while ! curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$PORT_TOWER/v1/session"; do
        kill -0 "$tower" 2>/dev/null || die "tower-sessions-ref exited: $(tail -n 5 "$WORK/tower.log")"
        [ $((SECONDS - t0)) -lt 30 ] || die "tower-sessions-ref did not start"
        sleep 0.2
    done
    curl -sf --max-time 120 -X POST "http://127.0.0.1:$PORT_TOWER/seed?n=$CHECK_SESSIONS" \
        >"$WORK/cookies.txt" || die "seeding tower-sessions-ref failed"
    [ "$(wc -l <"$WORK/cookies.txt")" -eq "$CHECK_SESSIONS" ] || die "tower-sessions-ref seeded too few sessions"
    local probe
    probe="$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_TOWER/v1/session" \
        -H "cookie: $(head -n 1 "$WORK/cookies.txt")")"
    [ "$probe" = 200 ] || die "tower-sessions-ref rejected a seeded session ($probe)"
    fact "tower_whoami_bytes" "$(curl -s --max-time 5 "http://127.0.0.1:$PORT_TOWER/v1/session" \
        -H "cookie: $(head -n 1 "$WORK/cookies.txt")" | wc -c)"
    run_wrk main "token check (GET /v1/session)" "$label" \
        "http://127.0.0.1:$PORT_TOWER" header-get.lua "$WORK/cookies.txt" Cookie ""
    fact "peak_rss_mib.$label" "$(peak_rss_mib "$tower")"
    stop_pid "$tower"
    RSS_PID=""

    fastapi_reference

    # Raw argon2id rate at the OWASP parameters, all cores.
    log "argon2-rate: raw argon2id hashes/s on $(nproc) threads for ${DURATION}s"
    local argon
    wait_quiet
    measure "$WORK/argon2.txt" timeout $((DURATION + 120)) "$BENCH_BIN/argon2-rate" "$DURATION" ||
        die "argon2-rate failed"
    argon="$(grep '^ARGON2_RESULT' "$WORK/argon2.txt")" || die "argon2-rate printed no result"
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$argon"; }
    row main "argon2id hash, m=19456 KiB t=2 p=1 (no HTTP)" "raw, $(get threads) threads" \
        "$(get rate)" "$(get p50_us)" "$(get p99_us)" 0 0 "$(get hashes)" "hashes/s; latency per hash" "" "$CPU_NOTE"
    log "  $(get rate) hashes/s"

    # PostgreSQL (fresh database) + Redis.
    if postgres_reachable; then
        local db="sessiond_bench_${TAG//-/_}"
        timeout 30 createdb --maintenance-db="$PG_SERVER/postgres" "$db" || die "createdb $db failed"
        PG_DBS+=("$db")
        local backend="postgres" extra=()
        if redis_reachable; then
            backend="postgres+redis"
            extra=(SESSIOND_REDIS_URL="$REDIS_URL")
        else
            log "Redis not reachable at $REDIS_URL: PostgreSQL alone"
        fi
        start_sessiond "$backend" "$WORK/pg-data" SESSIOND_DATABASE_URL="$PG_SERVER/$db" "${extra[@]}"
        sessiond_scenarios "$backend"
        stop_sessiond
    else
        log "PostgreSQL not reachable at $PG_SERVER: skipped"
        fact "skipped" "PostgreSQL not reachable at $PG_SERVER"
    fi
}

# ---------------------------------------------------------------------------------------
# scale: SQLite with many stored sessions, and the purge of a million ended ones
# ---------------------------------------------------------------------------------------

# bulk_rows DB FIRST COUNT: COUNT sessions that ended long ago (revoked, expired and idle
# for over a year), inserted straight into the SQLite file while sessiond is stopped.
bulk_rows() {
    local db=$1 first=$2 count=$3
    local now_ms=$(($(date +%s) * 1000))
    local day=86400000
    timeout 900 sqlite3 "$db" >/dev/null <<SQL || die "bulk insert failed"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE n(x) AS (SELECT $first UNION ALL SELECT x + 1 FROM n WHERE x < $first + $count - 1)
INSERT INTO sessions (id, user_id, auth_method, created_at, last_active_at, expires_at,
                      revoked_at, revoked_reason, device_id, user_agent, ip, label, data)
SELECT printf('00000000-0000-7000-8000-%012d', x), NULL, 'anon',
       $now_ms - 400 * $day - x, $now_ms - 390 * $day - x, $now_ms - 370 * $day - x,
       $now_ms - 380 * $day - x, 'logout', NULL, 'bulk', '127.0.0.1', NULL, NULL
FROM n;
COMMIT;
SQL
}

run_scale() {
    TSV="$RESULTS/scale.tsv"
    FACTS="$RESULTS/scale.facts"
    : >"$TSV"
    : >"$FACTS"
    fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
    fact settings "duration ${DURATION} s, warm-up ${WARMUP} s, ${CONNECTIONS} connections, ${THREADS} wrk threads"
    local data="$WORK/scale-data" dir="$WORK/scale" url="http://127.0.0.1:$PORT_SESSIOND"
    local db="$data/sessiond.db"
    mkdir -p "$dir"

    # Schema first (sessiond's own migrations), then the ended rows, then the live sessions.
    SESSIOND_DATA_DIR="$data" SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" timeout 60 "$SESSIOND_BIN" migrate \
        >>"$WORK/sessiond-scale.log" 2>&1 || die "sessiond migrate failed"
    [ -f "$db" ] || die "no SQLite file at $db after migrate"
    log "inserting $SCALE_SMALL_ROWS ended sessions"
    bulk_rows "$db" 1 "$SCALE_SMALL_ROWS"
    start_sessiond scale "$data"
    log "seeding $CHECK_SESSIONS live sessions"
    seed_sessions "$CHECK_SESSIONS" "$dir/access.txt" "$dir/refresh.txt"
    local stored
    stored=$((SCALE_SMALL_ROWS + CHECK_SESSIONS))
    run_wrk scale "token check, $stored stored sessions" sqlite "$url" header-get.lua \
        "$dir/access.txt" Authorization "Bearer "
    stop_sessiond

    log "inserting $SCALE_ROWS more ended sessions"
    local t0
    t0=$(date +%s.%N)
    bulk_rows "$db" $((SCALE_SMALL_ROWS + 1)) "$SCALE_ROWS"
    fact bulk_insert_seconds "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
    stored=$((SCALE_SMALL_ROWS + SCALE_ROWS + CHECK_SESSIONS))
    fact db_mib "$(du -sm "$data" | cut -f1)"
    start_sessiond scale "$data"
    fact startup_rss_mib "$(peak_rss_mib "$SESSIOND_PID")"
    run_wrk scale "token check, $stored stored sessions" sqlite "$url" header-get.lua \
        "$dir/access.txt" Authorization "Bearer "

    # The purge (all ended rows) while token checks run.
    log "purging $((SCALE_SMALL_ROWS + SCALE_ROWS)) ended sessions (POST /v1/admin/cleanup) under load"
    local purge_limit=${BENCH_PURGE_TIMEOUT:-3600} started=$SECONDS
    (curl -s --max-time "$purge_limit" -X POST "$url/v1/admin/cleanup" \
        -H "authorization: Bearer $ADMIN_KEY" -o "$dir/purge.json" -w '%{http_code} %{time_total}\n' \
        >"$dir/purge.status" 2>&1 || echo "curl-failed $?" >>"$dir/purge.status") &
    local purge=$!
    PIDS+=("$purge")
    WARM=0 run_wrk scale "token check during the purge" sqlite "$url" header-get.lua \
        "$dir/access.txt" Authorization "Bearer "
    # Wait for the purge, noting every minute how many sessions are left (the rate is part of
    # the answer when it is slow).
    local progress="" next=60 left
    while kill -0 "$purge" 2>/dev/null && [ $((SECONDS - started)) -lt $((purge_limit + 30)) ]; do
        sleep 1
        if [ $((SECONDS - started)) -ge $next ]; then
            left="$(timeout 20 sqlite3 "$db" 'select count(*) from sessions' 2>/dev/null || echo '?')"
            progress="${progress:+$progress, }$((SECONDS - started)) s: $left"
            log "  purge running, $((SECONDS - started)) s: $left sessions left"
            next=$((next + 60))
        fi
    done
    wait "$purge" 2>/dev/null || true
    local status="" seconds="" deleted=""
    read -r status seconds <"$dir/purge.status" || true
    if [ -f "$dir/purge.json" ]; then
        deleted="$(sed -n 's/.*"deleted":\([0-9]*\).*/\1/p' "$dir/purge.json")" || true
    fi
    log "  purge: HTTP ${status:-?} after ${seconds:-?} s, deleted ${deleted:-?}"
    if ! kill -0 "$SESSIOND_PID" 2>/dev/null; then
        log "  sessiond is gone (killed from outside the script?): see $WORK/sessiond-scale.log"
        fact sessiond_died "sessiond (pid $SESSIOND_PID) was no longer running after the purge"
    fi
    fact purge_progress "${progress:-}"
    fact purge_status "${status:-none}"
    fact purge_seconds "${seconds:-0}"
    fact purge_deleted "${deleted:-0}"
    fact purge_rows_inserted $((SCALE_SMALL_ROWS + SCALE_ROWS))
    fact remaining_sessions "$(timeout 60 sqlite3 "$db" 'select count(*) from sessions' 2>/dev/null || echo '?')"
    fact peak_rss_mib "$(peak_rss_mib "$SESSIOND_PID")"
    # Live sessions still answer after the purge.
    local code
    code="$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$url/v1/session" \
        -H "authorization: Bearer $(head -n 1 "$dir/access.txt")")"
    fact live_after_purge "$code"
    stop_sessiond
}

# ---------------------------------------------------------------------------------------
# users: the admin user list and search (GET /v1/admin/users) with 1 000 000 users,
# on SQLite and on PostgreSQL
# ---------------------------------------------------------------------------------------

# The generated users, the same rows in both stores. Row x (1..N) was created at
# USERS_START + x * USERS_STEP ms (spread over the three years before the run), its id is
# a UUIDv7 of that instant (so id order, the list's order, is creation order), its email
# user<7 digits>@<example.com | example.org | mail.example.net> with the number
# (x * 7919 + 13) mod N (a permutation: email order and id order are unrelated, as in life),
# its name "<one of 20 first names> <x>", 10 % are inactive (x mod 10 = 7), 75 % verified,
# and each has an argon2id hash string of the real length.
USERS_START=0
USERS_STEP=0
users_clock() {
    local span=$((3 * 365 * 86400000))
    USERS_START=$(($(date +%s) * 1000 - span))
    USERS_STEP=$((span / USERS_ROWS))
}
USERS_HASH='$argon2id$v=19$m=19456,t=2,p=1$YmVuY2gtc2FsdC1ub3Qtc2VjcmV0$3q2+7wH8l4nLq0bX0yGQm2m1s9o3fJQdKXz0uQq9Zl8'
FIRST_NAMES="(0, 'Olivia'), (1, 'Liam'), (2, 'Emma'), (3, 'Noah'), (4, 'Amelia'), (5, 'Oliver'),
  (6, 'Ava'), (7, 'Elijah'), (8, 'Sophia'), (9, 'Mateo'), (10, 'Isabella'), (11, 'Lucas'),
  (12, 'Mia'), (13, 'Levi'), (14, 'Charlotte'), (15, 'Ethan'), (16, 'Harper'), (17, 'James'),
  (18, 'Luna'), (19, 'Aiden')"

# bulk_users_sqlite DB: the users straight into the SQLite file, sessiond stopped.
bulk_users_sqlite() {
    timeout 1800 sqlite3 "$1" >/dev/null <<SQL || die "bulk insert of users (SQLite) failed"
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
CREATE TEMP TABLE first_names (i INTEGER PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO first_names (i, name) VALUES $FIRST_NAMES;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $USERS_ROWS),
r AS (SELECT x, $USERS_START + x * $USERS_STEP AS t, (x * 7919 + 13) % $USERS_ROWS AS e FROM n)
INSERT INTO users (id, email, name, password_hash, active, created_at, updated_at,
                   mobile, profile, email_verified)
SELECT substr(printf('%012x', t), 1, 8) || '-' || substr(printf('%012x', t), 9, 4)
         || '-7' || printf('%03x', x % 4096) || '-8' || printf('%03x', (x / 4096) % 4096)
         || '-' || printf('%012x', x),
       printf('user%07d@', e) || CASE x % 3 WHEN 0 THEN 'example.com' WHEN 1 THEN 'example.org'
                                            ELSE 'mail.example.net' END,
       f.name || ' ' || x,
       '$USERS_HASH',
       CASE WHEN x % 10 = 7 THEN 0 ELSE 1 END, t, t, NULL, NULL,
       CASE WHEN x % 4 = 0 THEN 0 ELSE 1 END
FROM r JOIN first_names f ON f.i = r.x % 20;
COMMIT;
SQL
}

# bulk_users_postgres URL: the same users with INSERT … SELECT FROM generate_series, then
# VACUUM ANALYZE (what autovacuum does shortly after such a load).
bulk_users_postgres() {
    timeout 1800 psql "$1" -q -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "bulk insert of users (PostgreSQL) failed"
SET synchronous_commit = off;
BEGIN;
CREATE TEMP TABLE first_names (i int PRIMARY KEY, name text NOT NULL);
INSERT INTO first_names (i, name) VALUES $FIRST_NAMES;
INSERT INTO users (id, email, name, password_hash, active, created_at, updated_at,
                   mobile, profile, email_verified)
SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || lpad(to_hex(x % 4096), 3, '0')
          || '-8' || lpad(to_hex((x / 4096) % 4096), 3, '0') || '-' || lpad(to_hex(x), 12, '0'))::uuid,
       'user' || lpad(e::text, 7, '0') || '@'
         || (ARRAY['example.com', 'example.org', 'mail.example.net'])[x % 3 + 1],
       f.name || ' ' || x,
       '$USERS_HASH',
       x % 10 <> 7,
       timestamptz 'epoch' + t * interval '1 millisecond',
       timestamptz 'epoch' + t * interval '1 millisecond',
       NULL, NULL,
       x % 4 <> 0
FROM (SELECT x, t, lpad(to_hex(t), 12, '0') AS h, (x * 7919 + 13) % $USERS_ROWS AS e
      FROM (SELECT x::bigint AS x, $USERS_START + x::bigint * $USERS_STEP AS t
            FROM generate_series(1, $USERS_ROWS) AS g (x)) AS s) AS r
JOIN first_names f ON f.i = r.x % 20;
COMMIT;
VACUUM ANALYZE users;
SQL
}

# The scenarios: name, then the file of paths wrk cycles through (made by users_paths).
USERS_SCENARIOS=(
    "first page (limit=50)|first"
    "deep page (cursor from the middle, limit=50)|deep"
    "exact email (email=…)|email"
    "email prefix, 100 match (q=user00001)|q-many"
    "name prefix, 5 % match (q=olivia)|q-name"
    "email prefix, 10 match (q=user099999)|q-few"
    "prefix that matches none (q=nobody)|q-none"
    "inactive only (active=false, limit=50)|inactive"
)

# users_paths DB DIR: the path files, from the SQLite file (both stores hold the same rows).
users_paths() {
    local db=$1 dir=$2 mid=$((USERS_ROWS / 2)) every=$((USERS_ROWS / 1000))
    local base=/v1/admin/users
    mkdir -p "$dir"
    echo "$base?limit=50" >"$dir/first.txt"
    # 1 000 cursors (ids) from the middle of the id order: each page starts half-way.
    timeout 60 sqlite3 "$db" "SELECT '$base?limit=50&cursor=' || id FROM users
        WHERE rowid > $mid - 500 ORDER BY rowid LIMIT 1000" >"$dir/deep.txt"
    # 1 000 existing addresses from all over the table.
    timeout 60 sqlite3 "$db" "SELECT '$base?email=' || replace(email, '@', '%40') FROM users
        WHERE rowid % $((every > 0 ? every : 1)) = 0 LIMIT 1000" >"$dir/email.txt"
    echo "$base?q=user00001" >"$dir/q-many.txt"
    echo "$base?q=olivia" >"$dir/q-name.txt"
    echo "$base?q=user099999" >"$dir/q-few.txt"
    echo "$base?q=nobody" >"$dir/q-none.txt"
    echo "$base?active=false&limit=50" >"$dir/inactive.txt"
    local f
    for f in deep email; do
        [ -s "$dir/$f.txt" ] || die "no $f paths from $db"
    done
}

# Waits (at most 30 s) until sessiond and the database processes use less than a tenth of
# a core: requests of the previous scenario that wrk gave up on may still be running.
wait_server_idle() {
    local start=$SECONDS p0 p1 d0 d1
    while [ $((SECONDS - start)) -lt 30 ]; do
        p0=$(proc_cpu "${RSS_PID:-}")
        d0=$(db_cpu)
        sleep 1
        p1=$(proc_cpu "${RSS_PID:-}")
        d1=$(db_cpu)
        [ $(((p1 - p0 + d1 - d0) * 10)) -lt "$CLK_TCK" ] && return 0
    done
    log "  sessiond or the database still busy after 30 s"
}

# users_answer URL FILE: what the first path of FILE answers ("N users, more" or "N users,
# last page") and the median time of 5 such requests one after the other on an idle
# server, as the row's note: the check that each scenario asks what it says, and its
# latency without a queue.
users_answer() {
    local url=$1 file=$2 out="$WORK/users-probe.json" times=() i t
    wait_server_idle
    for i in 1 2 3 4 5; do
        t="$(curl -s --max-time 60 -o "$out" -w '%{http_code} %{time_total}' \
            -H "authorization: Bearer $ADMIN_KEY" "$url$(head -n 1 "$file")")" || {
            echo "probe failed"
            return 0
        }
        times+=("$t")
    done
    python3 -c '
import json, statistics, sys
codes = [t.split()[0] for t in sys.argv[2:]]
secs = [float(t.split()[1]) for t in sys.argv[2:]]
if any(c != "200" for c in codes):
    print("probe answered " + ", ".join(codes))
    sys.exit()
page = json.load(open(sys.argv[1]))
n = len(page["users"])
unit = "user" if n == 1 else "users"
more = "more" if page.get("next_cursor") else "last page"
print(f"answers {n} {unit}, {more}; alone {statistics.median(secs) * 1000:.0f} ms (median of 5)")
' "$out" "${times[@]}" 2>/dev/null || echo "probe: unreadable answer"
}

# users_scenarios BACKEND DIR: every scenario with wrk against the running sessiond.
users_scenarios() {
    local backend=$1 dir=$2 url="http://127.0.0.1:$PORT_SESSIOND" s name file note
    local CONNECTIONS=$USERS_CONNECTIONS
    for s in "${USERS_SCENARIOS[@]}"; do
        name=${s%%|*}
        file="$dir/${s##*|}.txt"
        note="$(users_answer "$url" "$file")"
        log "  $name on $backend: $note"
        ROW_NOTE="$note" run_wrk users "$name" "$backend" "$url" admin-get.lua "$ADMIN_KEY" "$file"
    done
    fact "peak_rss_mib.$backend" "$(peak_rss_mib "$SESSIOND_PID")"
}

# The list query as sessiond runs it (crates/sessiond-store/src/{sqlite,postgres}/mod.rs,
# list_users; keep in step), for the query plans written to results/users-plans.txt.
USERS_COLUMNS="u.id AS u_id, u.email AS u_email, u.name AS u_name, u.active AS u_active, u.created_at AS u_created_at, u.mobile AS u_mobile, u.profile AS u_profile, u.email_verified AS u_email_verified"
SQLITE_LIST="SELECT $USERS_COLUMNS FROM users u WHERE (?1 IS NULL OR u.email = ?1) AND (?2 IS NULL OR (u.email >= ?2 AND u.email < ?3) OR (lower(u.name) >= ?2 AND lower(u.name) < ?3)) AND (?4 IS NULL OR u.active = ?4) AND (?5 IS NULL OR u.id > ?5) ORDER BY u.id LIMIT ?6"
PG_LIST="SELECT $USERS_COLUMNS FROM users u WHERE (\$1::text IS NULL OR u.email = \$1) AND (\$2::text IS NULL OR u.email LIKE \$2 OR lower(u.name) LIKE \$2) AND (\$3::boolean IS NULL OR u.active = \$3) AND (\$4::uuid IS NULL OR u.id > \$4) ORDER BY u.id LIMIT \$5"

# users_plans_sqlite DB DIR: SQLite plans a statement once, whatever its parameters, so
# one plan serves every scenario (from the sqlite3 shell, whose SQLite may be older than
# the one built into sessiond); then each scenario's query timed alone in the shell.
users_plans_sqlite() {
    local db=$1 dir=$2 cursor email label binds
    cursor="$(sed -n '1s/.*cursor=//p' "$dir/deep.txt")"
    email="$(sed -n '1s/.*email=//p' "$dir/email.txt" | sed 's/%40/@/')"
    echo "== SQLite $(sqlite3 --version | cut -d' ' -f1) (sqlite3 shell), $USERS_ROWS users, no ANALYZE (sessiond runs none)"
    echo
    echo "$SQLITE_LIST"
    echo
    echo "EXPLAIN QUERY PLAN (one plan for all scenarios):"
    timeout 60 sqlite3 "$db" "EXPLAIN QUERY PLAN $SQLITE_LIST"
    echo
    echo "Each scenario's query alone in the shell (LIMIT 51: sessiond asks one more than the page):"
    while IFS='|' read -r label binds; do
        printf '  %-16s ' "$label"
        printf '.parameter init\n%b\n.parameter set ?6 51\n.timer on\nSELECT count(*) FROM (%s);\n' \
            "$binds" "$SQLITE_LIST" | timeout 300 sqlite3 "$db" 2>&1 | tr '\n' ' ' |
            sed 's/ *Run Time: real \([0-9.]*\).*/ rows in \1 s/'
        echo
    done <<LIST
first page|
deep page|.parameter set ?5 '$cursor'
exact email|.parameter set ?1 '$email'
q=user00001|.parameter set ?2 'user00001'\n.parameter set ?3 "'user00001'||char(1114111)"
q=olivia|.parameter set ?2 'olivia'\n.parameter set ?3 "'olivia'||char(1114111)"
q=user099999|.parameter set ?2 'user099999'\n.parameter set ?3 "'user099999'||char(1114111)"
q=nobody|.parameter set ?2 'nobody'\n.parameter set ?3 "'nobody'||char(1114111)"
active=false|.parameter set ?4 0
LIST
    echo
}

# users_plans_postgres DB_URL DIR: for each scenario, EXPLAIN ANALYZE of the prepared
# statement (as sqlx prepares it) with a custom plan (the values planned in), and with the
# plan a pooled sessiond connection has once it ran the first page five times (PostgreSQL
# then compares its generic plan's cost with the custom plans' and may keep the generic).
users_plans_postgres() {
    local dburl=$1 dir=$2 cursor email label args mode
    cursor="$(sed -n '1s/.*cursor=//p' "$dir/deep.txt")"
    email="$(sed -n '1s/.*email=//p' "$dir/email.txt" | sed 's/%40/@/')"
    echo "== PostgreSQL $(timeout 30 psql -X "$dburl" -tAc 'show server_version' | cut -d' ' -f1), $USERS_ROWS users, after VACUUM ANALYZE"
    echo
    echo "PREPARE list (text, text, boolean, uuid, bigint) AS $PG_LIST"
    while IFS='|' read -r label args; do
        for mode in custom pooled; do
            echo
            if [ $mode = custom ]; then
                echo "-- $label, custom plan: EXPLAIN (ANALYZE, BUFFERS) EXECUTE list ($args)"
            else
                echo "-- $label, after five first pages on the connection (plan_cache_mode auto): the same EXECUTE"
            fi
            timeout 300 psql -X -q "$dburl" 2>&1 <<SQL | grep -v '^$'
PREPARE list (text, text, boolean, uuid, bigint) AS $PG_LIST;
$(if [ $mode = custom ]; then
                echo "SET plan_cache_mode = force_custom_plan;"
            else
                printf '\\o /dev/null\n'
                for _ in 1 2 3 4 5 6; do echo "EXECUTE list (NULL, NULL, NULL, NULL, 51);"; done
                printf '\\o\n'
            fi)
EXPLAIN (ANALYZE, BUFFERS) EXECUTE list ($args);
SQL
        done
    done <<LIST
first page|NULL, NULL, NULL, NULL, 51
deep page|NULL, NULL, NULL, '$cursor', 51
exact email|'$email', NULL, NULL, NULL, 51
q=user00001|NULL, 'user00001%', NULL, NULL, 51
q=olivia|NULL, 'olivia%', NULL, NULL, 51
q=user099999|NULL, 'user099999%', NULL, NULL, 51
q=nobody|NULL, 'nobody%', NULL, NULL, 51
active=false|NULL, NULL, false, NULL, 51
LIST
    echo
}

secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

run_users() {
    TSV="$RESULTS/users.tsv"
    FACTS="$RESULTS/users.facts"
    : >"$TSV"
    : >"$FACTS"
    [ "$USERS_ROWS" -ge 2000 ] && [ "$USERS_ROWS" -le 10000000 ] ||
        die "BENCH_USERS_ROWS must be between 2000 and 10000000 (emails have 7 digits)"
    local began=$SECONDS t0
    fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
    fact nproc "$(nproc)"
    fact commit "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- crates 2>/dev/null || echo ' (crates/ with uncommitted changes)')"
    fact settings "duration ${DURATION} s, warm-up ${WARMUP} s, ${USERS_CONNECTIONS} connections, ${THREADS} wrk threads"
    fact users "$USERS_ROWS"
    fact load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
    users_clock
    local data="$WORK/users-sqlite-data" dir="$WORK/users" plans="$WORK/users-plans.txt"
    local db="$data/sessiond.db"
    : >"$plans"

    # SQLite: schema, users straight into the file, then sessiond.
    SESSIOND_DATA_DIR="$data" SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" timeout 60 "$SESSIOND_BIN" migrate \
        >>"$WORK/sessiond-users-sqlite.log" 2>&1 || die "sessiond migrate (SQLite) failed"
    [ -f "$db" ] || die "no SQLite file at $db after migrate"
    log "inserting $USERS_ROWS users into SQLite"
    t0=$(date +%s.%N)
    bulk_users_sqlite "$db"
    fact bulk_seconds.sqlite "$(secs_since "$t0")"
    fact db_mib.sqlite "$(du -sm "$data" | cut -f1)"
    log "  in $(secs_since "$t0") s"
    users_paths "$db" "$dir"
    users_plans_sqlite "$db" "$dir" >>"$plans" 2>&1
    start_sessiond users-sqlite "$data"
    users_scenarios sqlite "$dir"
    stop_sessiond

    # PostgreSQL: a fresh database, sessiond's migrations, the same users.
    if postgres_reachable; then
        local pgdb="sessiond_users_${TAG//-/_}"
        timeout 30 createdb --maintenance-db="$PG_SERVER/postgres" "$pgdb" || die "createdb $pgdb failed"
        PG_DBS+=("$pgdb")
        local dburl="$PG_SERVER/$pgdb"
        SESSIOND_DATA_DIR="$WORK/users-pg-data" SESSIOND_DATABASE_URL="$dburl" SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" \
            timeout 60 "$SESSIOND_BIN" migrate >>"$WORK/sessiond-users-postgres.log" 2>&1 ||
            die "sessiond migrate (PostgreSQL) failed"
        log "inserting $USERS_ROWS users into PostgreSQL"
        t0=$(date +%s.%N)
        bulk_users_postgres "$dburl"
        fact bulk_seconds.postgres "$(secs_since "$t0")"
        fact db_mib.postgres "$(timeout 30 psql -X "$dburl" -tAc 'select pg_database_size(current_database()) / 1048576')"
        log "  in $(secs_since "$t0") s (with VACUUM ANALYZE)"
        # The path files came from the SQLite rows: the same ids and addresses must be here.
        local cursor email
        cursor="$(sed -n '1s/.*cursor=//p' "$dir/deep.txt")"
        email="$(sed -n '1s/.*email=//p' "$dir/email.txt" | sed 's/%40/@/')"
        [ "$(timeout 30 psql -X "$dburl" -tAc "select count(*) from users where id = '$cursor' or email = '$email'")" = 2 ] ||
            die "PostgreSQL does not hold the same users as SQLite"
        users_plans_postgres "$dburl" "$dir" >>"$plans" 2>&1
        start_sessiond users-postgres "$WORK/users-pg-data" SESSIOND_DATABASE_URL="$dburl"
        users_scenarios postgres "$dir"
        stop_sessiond
    else
        log "PostgreSQL not reachable at $PG_SERVER: skipped"
        fact skipped "PostgreSQL not reachable at $PG_SERVER"
    fi
    cp "$plans" "$RESULTS/users-plans.txt"
    fact load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact step_seconds $((SECONDS - began))
}

# ---------------------------------------------------------------------------------------
mkdir -p "$RESULTS"
install_tools
build
[ -x "$SESSIOND_BIN" ] || die "no sessiond binary at $SESSIOND_BIN"
log "work folder: $WORK"
case "$MODE" in
main) run_main ;;
scale)
    run_scale
    run_users
    ;;
users) run_users ;;
all)
    run_main
    run_scale
    run_users
    ;;
esac
python3 "$BENCH_DIR/report.py" "$RESULTS"
log "wrote $RESULTS/latest.md and $RESULTS/latest.svg"
