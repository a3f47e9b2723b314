#!/usr/bin/env bash
# What a second sessiond instance buys: two release instances on one PostgreSQL database and
# one Redis, behind nginx (from Debian), against nginx in front of one of them, so nginx's own
# cost is in both numbers. Token checks and refreshes, alternated (one, two, one, two).
#
#   bench/lb.sh            # writes bench/results/lb.md (and lb.tsv)
#
# Settings (environment): BENCH_DURATION (10) seconds per run, BENCH_CONNECTIONS (64),
# BENCH_THREADS (2), BENCH_ROUNDS (2) alternated pairs per scenario, BENCH_POSTGRES_URL
# (postgres://root@127.0.0.1:5432), BENCH_REDIS_URL (redis://127.0.0.1:6379),
# BENCH_PORT_BASE (18440): instances BASE and BASE+1, nginx BASE+10 (both) and BASE+11 (one).
# Installs nginx (nginx-light) and wrk with apt-get when missing. Everything listens on
# 127.0.0.1 and is stopped on exit.
set -euo pipefail
export LC_ALL=C

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
RESULTS="$BENCH_DIR/results"
DURATION="${BENCH_DURATION:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
ROUNDS="${BENCH_ROUNDS:-2}"
PG_SERVER="${BENCH_POSTGRES_URL:-postgres://root@127.0.0.1:5432}"
REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
BASE="${BENCH_PORT_BASE:-18440}"
PORT_A=$BASE
PORT_B=$((BASE + 1))
PORT_BOTH=$((BASE + 10))
PORT_ONE=$((BASE + 11))
ADMIN_KEY="bench-admin-key-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DB="sessiond_lb_$(date +%s)_$$"
WORK="$(mktemp -d /tmp/sessiond-lb.XXXXXX)"
SESSIOND_BIN="$ROOT/target/release/sessiond"
SEED_BIN="$BENCH_DIR/target/release/seed"
PIDS=()
DB_CREATED=0

log() { printf '[lb %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FATAL: $*"
    exit 1
}
cleanup() {
    local status=$?
    set +e
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    [ -f "$WORK/nginx.pid" ] && kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null
    [ "$DB_CREATED" = 1 ] && timeout 30 dropdb --if-exists --maintenance-db="$PG_SERVER/postgres" "$DB"
    if [ $status -ne 0 ]; then log "work folder kept: $WORK"; else rm -rf "$WORK"; fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    log "installing $* (apt-get)"
    as_root timeout 600 apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$@" >/dev/null
}
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || apt_install nginx-light
[ -x "$NGINX" ] || NGINX="$(command -v nginx)" || die "no nginx after installing it"
command -v wrk >/dev/null || apt_install wrk
timeout 10 psql "$PG_SERVER/postgres" -qtAc 'select 1' >/dev/null 2>&1 ||
    die "PostgreSQL does not answer at $PG_SERVER"

log "building sessiond (release) and the bench binaries"
(cd "$ROOT" && timeout 3600 cargo build --release -q -p sessiond) || die "sessiond build failed"
(cd "$BENCH_DIR" && timeout 3600 cargo build --release -q -p seed) || die "seed build failed"

timeout 30 createdb --maintenance-db="$PG_SERVER/postgres" "$DB" || die "createdb failed"
DB_CREATED=1

start_instance() { # NAME PORT
    env SESSIOND_BIND="127.0.0.1:$2" SESSIOND_DATA_DIR="$WORK/$1" \
        SESSIOND_DATABASE_URL="$PG_SERVER/$DB" SESSIOND_REDIS_URL="$REDIS_URL" \
        SESSIOND_REDIS_PREFIX="lb$$:" SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" \
        SESSIOND_RATE_LIMITS__ENABLED=false SESSIOND_CLEANUP_INTERVAL=0s \
        SESSIOND_ACCESS_TOKEN_TTL=2h SESSIOND_LOG_FORMAT=json \
        "$SESSIOND_BIN" serve >>"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    local i
    for i in $(seq 1 300); do
        curl -sf --max-time 1 -o /dev/null "http://127.0.0.1:$2/readyz" && return 0
        sleep 0.2
    done
    tail -n 20 "$WORK/$1.log" >&2
    die "instance $1 did not become ready"
}
start_instance a "$PORT_A"
start_instance b "$PORT_B"
INSTANCES=("${PIDS[@]}")

# nginx: worker per core, keep-alive connections to the upstreams, nothing logged.
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream both { server 127.0.0.1:$PORT_A; server 127.0.0.1:$PORT_B; keepalive 128; }
    upstream one { server 127.0.0.1:$PORT_A; keepalive 128; }
    server {
        listen 127.0.0.1:$PORT_BOTH;
        location / { proxy_pass http://both; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
    server {
        listen 127.0.0.1:$PORT_ONE;
        location / { proxy_pass http://one; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
"$NGINX" -c "$WORK/nginx.conf" -p "$WORK/nginx" -g 'daemon on;' || die "nginx did not start"
for _ in $(seq 1 50); do [ -s "$WORK/nginx.pid" ] && break; sleep 0.1; done
curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$PORT_BOTH/readyz" || die "nginx does not proxy"

seed() { # N ACCESS_OUT REFRESH_OUT
    SESSIOND_ADMIN_API_KEY="$ADMIN_KEY" SEED_CONCURRENCY=32 SEED_DEADLINE_SECS=900 \
        timeout 960 "$SEED_BIN" sessions "http://127.0.0.1:$PORT_BOTH" "$@" 2>>"$WORK/seed.log" ||
        die "seeding failed (see $WORK/seed.log)"
}
log "seeding 1000 sessions for token checks, and refresh tokens for each refresh run"
seed 1000 "$WORK/access.txt" "$WORK/check-refresh.txt"
for r in $(seq 1 "$ROUNDS"); do
    seed 10000 "$WORK/r-one-$r.access" "$WORK/r-one-$r.txt"
    seed 10000 "$WORK/r-both-$r.access" "$WORK/r-both-$r.txt"
done

# CPU ticks of the instances, nginx's processes, and the machine's other work.
ticks() { for p in "$@"; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0; done | awk '{ t += $1 } END { print t + 0 }'; }
nginx_pids() { pgrep -f "nginx: (master|worker)" | tr '\n' ' '; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; } # user nice system irq softirq
HZ="$(getconf CLK_TCK)"

TSV="$RESULTS/lb.tsv"
mkdir -p "$RESULTS"
printf 'scenario\ttarget\tround\trps\tp50_us\tp99_us\tnon2xx\terrors\tcores_sessiond\tcores_nginx\tcores_other\n' >"$TSV"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"

run() { # SCENARIO TARGET ROUND PORT SCRIPT ARGS...
    local scenario=$1 target=$2 round=$3 port=$4 script=$5
    shift 5
    local out="$WORK/wrk-$scenario-$target-$round.txt" s0 n0 b0 t0 s1 n1 b1 t1
    s0=$(ticks "${INSTANCES[@]}")
    n0=$(ticks $(nginx_pids))
    b0=$(busy)
    t0=$(date +%s.%N)
    timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
        -s "$BENCH_DIR/wrk/$script" "http://127.0.0.1:$port" -- "$@" >"$out" 2>&1 ||
        die "wrk failed: $(cat "$out")"
    t1=$(date +%s.%N)
    s1=$(ticks "${INSTANCES[@]}")
    n1=$(ticks $(nginx_pids))
    b1=$(busy)
    local line
    line="$(grep '^BENCH_RESULT' "$out" | tail -n 1)"
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    local errors=$(($(get err_connect) + $(get err_read) + $(get err_write) + $(get err_timeout)))
    local cores
    cores="$(awk -v s="$((s1 - s0))" -v n="$((n1 - n0))" -v b="$((b1 - b0))" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v hz="$HZ" \
        'BEGIN { printf "%.2f\t%.2f\t%.2f", s / hz / t, n / hz / t, (b - s - n) / hz / t }')"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$target" "$round" "$(get rps)" \
        "$(get p50_us)" "$(get p99_us)" "$(get non2xx)" "$errors" "$cores" >>"$TSV"
    log "  $scenario via nginx to $target, round $round: $(get rps) req/s, p99 $(get p99_us) µs, non-2xx $(get non2xx)"
}

for r in $(seq 1 "$ROUNDS"); do
    for target in one both; do
        port=$PORT_ONE
        [ $target = both ] && port=$PORT_BOTH
        wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$BENCH_DIR/wrk/header-get.lua" \
            "http://127.0.0.1:$port" -- "$WORK/access.txt" Authorization "Bearer " >/dev/null 2>&1 || true
        run check "$target" "$r" "$port" header-get.lua "$WORK/access.txt" Authorization "Bearer "
    done
done
for r in $(seq 1 "$ROUNDS"); do
    for target in one both; do
        port=$PORT_ONE
        [ $target = both ] && port=$PORT_BOTH
        run refresh "$target" "$r" "$port" refresh.lua "$WORK/r-$target-$r.txt" "$THREADS"
    done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$TSV" "$RESULTS/lb.md" "$(nproc)" "$DURATION" "$CONNECTIONS" "$THREADS" \
    "$(cd "$ROOT" && git rev-parse --short HEAD)" "$LOAD_START" "$LOAD_END" "$("$NGINX" -v 2>&1 | sed 's/.*: //')" <<'PY'
import csv, statistics, sys, datetime
tsv, md, cores, duration, conns, threads, commit, load0, load1, nginx = sys.argv[1:]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
names = {"check": "token check (GET /v1/session)", "refresh": "refresh (POST /v1/token/refresh)"}
out = [
    "# Two sessiond instances behind nginx (PostgreSQL + Redis)",
    "",
    f"Measured {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC on {cores} cores; sessiond at {commit}, {nginx}. "
    f"wrk: {duration} s per run, {conns} connections, {threads} threads, through nginx (keep-alive "
    "upstream connections) to one instance or to both (round robin), alternated one, two, one, two. "
    "Both instances share one PostgreSQL database and one Redis; nginx, wrk, PostgreSQL and Redis "
    f"run on the same {cores} cores. Load average (1, 5, 15 min): {load0} at the start, {load1} at the end.",
    "",
    "| scenario | nginx → | round | req/s | p50 | p99 | non-2xx | cores: sessiond · nginx · rest |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: |",
]
def ms(us):
    us = float(us)
    return f"{us / 1000:.2f} ms" if us < 10000 else f"{us / 1000:.1f} ms"
for r in rows:
    out.append(f"| {names[r['scenario']]} | {'1 instance' if r['target'] == 'one' else '2 instances'} | {r['round']} | "
               f"{float(r['rps']):,.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | {r['non2xx']} | "
               f"{r['cores_sessiond']} · {r['cores_nginx']} · {r['cores_other']} |")
out.append("")
for s in ("check", "refresh"):
    one = [float(r["rps"]) for r in rows if r["scenario"] == s and r["target"] == "one"]
    two = [float(r["rps"]) for r in rows if r["scenario"] == s and r["target"] == "both"]
    if one and two:
        ratios = [b / a for a, b in zip(one, two)]
        out.append(f"- {names[s]}: two instances ÷ one = " + ", ".join(f"{x:.2f}" for x in ratios)
                   + f" (pairs); median {statistics.median(ratios):.2f}.")
out.append("- Cores: CPU time over the run ÷ its length; *rest* is everything else the machine did (user, system and interrupt time): wrk, PostgreSQL, Redis, the kernel's loopback work and any other process.")
out.append("")
out.append("Produced by `bench/lb.sh` (see bench/README.md).")
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
log "wrote $RESULTS/lb.md"
