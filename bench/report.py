#!/usr/bin/env python3
"""Renders the benchmark's results (standard library only).

    report.py RESULTS_DIR

reads RESULTS_DIR/latest.tsv + latest.facts (the main run) and, when present,
scale.tsv + scale.facts (bench/run.sh scale) and users.tsv + users.facts (the admin user
list, bench/run.sh users), and writes RESULTS_DIR/latest.md (tables) and
RESULTS_DIR/latest.svg (bar chart of req/s per scenario of the main run, drawn by hand).
"""

import html
import math
import os
import sys

COLUMNS = ["section", "scenario", "backend", "rps", "p50_us", "p99_us", "non2xx", "errors",
           "requests", "note", "rss_mib", "cpu"]


def read_rows(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t") + [""] * len(COLUMNS)
            row = dict(zip(COLUMNS, parts[: len(COLUMNS)]))
            for key in ("rps", "p50_us", "p99_us"):
                row[key] = float(row[key] or 0)
            row["rss_mib"] = float(row["rss_mib"]) if row["rss_mib"] else 0.0
            for key in ("non2xx", "errors", "requests"):
                row[key] = int(float(row[key] or 0))
            rows.append(row)
    return rows


def read_facts(path):
    facts = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if "=" in line:
                    key, value = line.rstrip("\n").split("=", 1)
                    facts[key] = value
    return facts


def ms(us):
    if us <= 0:
        return "–"
    if us < 10_000:
        return f"{us / 1000:.2f} ms"
    if us < 100_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1000:.0f} ms"


def mib(x):
    return f"{float(x):,.0f} MiB" if x else "–"


def rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def is_ceiling(row):
    return row["backend"].startswith("ceiling")


def is_raw(row):
    return row["backend"].startswith("raw")


def other_cores(row):
    """The "other" figure of the cpu column: cores used by processes not in the run."""
    try:
        return float(row["cpu"].split(" · ")[3].split()[0])
    except (IndexError, ValueError):
        return 0.0


def cpu(row):
    return row["cpu"].split(" (")[0] if row["cpu"] else "–"


def problems(row):
    out = []
    if other_cores(row) >= 0.2:
        out.append(f"⚠ other processes used {other_cores(row):.2f} cores during the run")
    if row["non2xx"]:
        out.append(f"{row['non2xx']:,} non-2xx")
    if row["errors"]:
        out.append(f"{row['errors']:,} socket errors/timeouts")
    if row["note"]:
        out.append(row["note"])
    return "; ".join(out)


def main_table(rows):
    ceiling = next((r for r in rows if is_ceiling(r) and r["rps"] > 0), None)
    lines = [
        "| scenario | backend | req/s | p50 | p99 | req/s ÷ ceiling | p99 ÷ ceiling p99 "
        "| server peak RSS | cores: server · db · wrk · other | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: | --- |",
    ]
    for r in rows:
        if ceiling and not is_raw(r) and r["rps"] > 0:
            x = r["rps"] / ceiling["rps"]
            ratio = f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"
            p99 = f"{r['p99_us'] / ceiling['p99_us']:.1f}×" if ceiling["p99_us"] else "–"
        else:
            ratio = p99 = "–"
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {rate(r['rps'])} | {ms(r['p50_us'])} "
            f"| {ms(r['p99_us'])} | {ratio} | {p99} | {mib(r['rss_mib'])} | {cpu(r)} | {problems(r)} |"
        )
    return lines


def scale_section(rows, facts):
    out = ["", "## Scale (SQLite)", ""]
    if facts.get("date"):
        out.append(f"Measured {facts['date']}; {facts.get('settings', '')}.")
        out.append("")
    out += [
        "| measurement | req/s | p50 | p99 | sessiond peak RSS | cores: server · db · wrk · other | notes |",
        "| --- | ---: | ---: | ---: | ---: | :---: | --- |",
    ]
    for r in rows:
        out.append(f"| {r['scenario']} | {rate(r['rps'])} | {ms(r['p50_us'])} | {ms(r['p99_us'])} "
                   f"| {mib(r['rss_mib'])} | {cpu(r)} | {problems(r)} |")
    out.append("")
    inserted = int(facts.get("purge_rows_inserted", "0") or 0)
    secs = float(facts.get("purge_seconds", "0") or 0)
    deleted = int(facts.get("purge_deleted", "0") or 0)
    status = facts.get("purge_status", "none")
    if status == "200":
        speed = f" ({deleted / secs:,.0f} rows/s)" if secs > 0 else ""
        out.append(f"- Purge (`POST /v1/admin/cleanup`) of {inserted:,} ended sessions: "
                   f"**{secs:,.1f} s**, deleted {deleted:,}{speed}, "
                   f"{facts.get('remaining_sessions', '?')} sessions left; "
                   f"a live session still answers {facts.get('live_after_purge', '?')} afterwards.")
    else:
        out.append(f"- Purge (`POST /v1/admin/cleanup`) of {inserted:,} ended sessions **did not "
                   f"complete**: curl ended with `{status}` after {secs:,.0f} s; "
                   f"{facts.get('remaining_sessions', '?')} sessions were left.")
    if facts.get("purge_progress"):
        out.append(f"- Sessions left while the purge ran (seconds since it started): "
                   f"{facts['purge_progress']}.")
    if facts.get("sessiond_died"):
        out.append(f"- ⚠ {facts['sessiond_died']}.")
    try:
        during = next(r for r in rows if "during the purge" in r["scenario"])
        window = float(facts.get("settings", "duration 0").split()[1])
        if status == "200" and secs < window:
            out.append(f"- The purge ended after {secs:.1f} s of the {window:.0f} s load window: "
                       "the \"during the purge\" row mixes purge and after-purge traffic.")
        del during
    except (StopIteration, ValueError, IndexError):
        pass
    if "bulk_insert_seconds" in facts:
        out.append(f"- The ended rows were inserted straight into the SQLite file "
                   f"({facts['bulk_insert_seconds']} s for the big batch); data folder "
                   f"{facts.get('db_mib', '?')} MiB.")
    out.append(f"- Peak RSS of sessiond (VmHWM): {facts.get('startup_rss_mib', '?')} MiB after "
               f"starting on the big database, **{facts.get('peak_rss_mib', '?')} MiB** at the end "
               f"(after the checks and the purge).")
    return out


def users_section(rows, facts):
    n = int(facts.get("users", "0") or 0)
    out = ["", f"## Admin user list at {n:,} users (`GET /v1/admin/users`)", ""]
    if facts.get("date"):
        out.append(f"Measured {facts['date']}; {facts.get('settings', '')}; sessiond at "
                   f"{facts.get('commit', '?')}. Load average (1, 5, 15 min): "
                   f"{facts.get('load_start', '?')} at the start, {facts.get('load_end', '?')} "
                   f"at the end (the machine is shared: read the *other* cores and ⚠ marks).")
        out.append("")
    out += [
        "| scenario | backend | req/s | p50 | p99 | sessiond peak RSS | cores: server · db · wrk · other | notes |",
        "| --- | --- | ---: | ---: | ---: | ---: | :---: | --- |",
    ]
    first = {}
    for r in rows:
        first.setdefault(r["scenario"], len(first))
    for r in sorted(rows, key=lambda r: (first[r["scenario"]], r["backend"] != "sqlite")):
        out.append(f"| {r['scenario']} | {r['backend']} | {rate(r['rps'])} | {ms(r['p50_us'])} "
                   f"| {ms(r['p99_us'])} | {mib(r['rss_mib'])} | {cpu(r)} | {problems(r)} |")
    out.append("")
    out.append("- The users went straight into the stores with SQL while sessiond was stopped "
               "(ids are UUIDv7 in creation order over three years; emails "
               "`user<7 digits>@<3 domains>` with numbers unrelated to the id order; names "
               "`<one of 20 first names> <n>`; 10 % inactive): "
               + ", ".join(f"{facts[k]} s on {k.split('.', 1)[1]}"
                           for k in facts if k.startswith("bulk_seconds."))
               + " (PostgreSQL with VACUUM ANALYZE); stores "
               + ", ".join(f"{facts[k]} MiB on {k.split('.', 1)[1]}"
                           for k in facts if k.startswith("db_mib."))
               + ".")
    out.append("- Each row: wrk with the admin key cycling through the scenario's paths (1 000 "
               "cursors from the middle of the id order, 1 000 existing addresses, else one "
               "path). The note says what the first path answers and its *alone* latency: the "
               "median of 5 requests one after the other on an idle server, i.e. the query's "
               "own cost; p50/p99 under wrk include the queue of its connections.")
    out.append("- wrk counts only requests that completed within the run: where one request "
               "takes seconds, a run completes few of them and its p99 understates the wait; "
               "non-2xx answers there are `503` (the PostgreSQL pool's 3 s acquire timeout, "
               "all its connections busy with slow searches).")
    out.append("- On PostgreSQL the *db* cores are the postgres processes alive at both ends of "
               "the run: a backend that sessiond closes mid-run (it closes a connection whose "
               "statement did not finish when the request is dropped) takes its CPU time with "
               "it, and that time lands in *other*, so a ⚠ on a slow PostgreSQL row can be "
               "sessiond's own load.")
    rss = {k.split(".", 1)[1]: v for k, v in facts.items() if k.startswith("peak_rss_mib.")}
    if rss:
        out.append("- sessiond's peak RSS (VmHWM) after its scenarios: "
                   + ", ".join(f"{v} MiB on {k}" for k, v in rss.items()) + ".")
    out.append("- Query plans and each query timed alone in the database's shell: "
               "[`users-plans.txt`](users-plans.txt).")
    if facts.get("step_seconds"):
        out.append(f"- The whole step (inserts, plans, runs) took {facts['step_seconds']} s.")
    if "skipped" in facts:
        out.append(f"- Skipped: {facts['skipped']}.")
    return out


def markdown(rows, facts, scale_rows, scale_facts, users_rows=(), users_facts=None):
    out = ["# sessiond HTTP load benchmark: latest results", ""]
    if rows:
        out.append(f"Machine: {facts.get('nproc', '?')} cores ({facts.get('cpu', '?')}), "
                   f"{facts.get('memory', '?')}, {facts.get('kernel', '?')}. "
                   f"Date: {facts.get('date', '?')}. sessiond at {facts.get('commit', '?')}, "
                   f"{facts.get('rustc', '')}, {facts.get('wrk', 'wrk')}.")
        out.append("")
        out.append(f"Load: {facts.get('settings', '?')}; wrk runs on the same 2 cores as the "
                   "server, so every number includes the load generator's share of the CPU. "
                   "Latencies are wrk's (from request written to response read).")
        out.append("")
        out += main_table(rows)
        out.append("")
        out.append("![req/s per scenario](latest.svg)")
        out.append("")
        notes = []
        sizes = {k.split(".", 1)[1]: v for k, v in facts.items() if k.startswith("whoami_bytes.")}
        if sizes:
            notes.append("Whoami answer (`GET /v1/session`): "
                         + ", ".join(f"{v} bytes on {k}" for k, v in sizes.items())
                         + f"; the ceiling answers a static body of the same size"
                         + (f", tower-sessions-ref {facts['tower_whoami_bytes']} bytes"
                            if "tower_whoami_bytes" in facts else "")
                         + (f", the FastAPI reference {facts['fastapi_whoami_bytes']} bytes"
                            if "fastapi_whoami_bytes" in facts else "")
                         + ".")
        notes.append("Cores: CPU time over the measured run divided by its length, for the "
                     "server (with its worker processes, for uvicorn), the database processes "
                     "(PostgreSQL and Redis; SQLite runs inside "
                     "sessiond), the load generator (wrk; for argon2-rate the binary itself) and "
                     "everything else on the machine (from /proc/stat); the machine has "
                     f"{facts.get('nproc', '?')}. A row where other processes used 0.2 cores "
                     "or more is flagged: its numbers are low.")
        notes.append("p99 ÷ ceiling p99 is the weakest column: the ceiling and wrk together keep "
                     "both cores busy, so the ceiling's p99 is mostly scheduling delay, and a "
                     "ratio below 1 does not mean a faster tail than the ceiling.")
        notes.append("Server peak RSS is the server process's VmHWM (from /proc) right after "
                     "that row's run: a high-water mark, so it only grows down a backend's rows.")
        seeds = {k.split(".", 1)[1]: v for k, v in facts.items()
                 if k.startswith("seed_rate_admin_sessions.")}
        regs = {k.split(".", 1)[1]: v for k, v in facts.items()
                if k.startswith("seed_rate_registrations.")}
        if seeds:
            notes.append("Seeding (32 concurrent clients, not wrk): `POST /v1/admin/sessions` "
                         + ", ".join(f"{v}/s on {k}" for k, v in seeds.items())
                         + ("; registrations (`POST /v1/users`, 16 concurrent) "
                            + ", ".join(f"{v}/s on {k}" for k, v in regs.items()) if regs else "")
                         + ".")
        if "skipped" in facts:
            notes.append(f"Skipped: {facts['skipped']}.")
        for n in notes:
            out.append(f"- {n}")
    if scale_rows or scale_facts:
        out += scale_section(scale_rows, scale_facts)
    if users_rows or users_facts:
        out += users_section(users_rows, users_facts or {})
    out.append("")
    out.append("Produced by `bench/run.sh` (see bench/README.md).")
    return "\n".join(out) + "\n"


def svg(rows):
    bars = [r for r in rows if r["rps"] > 0]
    if not bars:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">no results</text></svg>\n'
    palette = {"sqlite": "#4C78A8", "postgres": "#F58518", "ceiling": "#54A24B",
               "tower": "#B279A2", "FastAPI": "#E45756", "raw": "#9D755D"}

    def color(backend):
        for key, c in palette.items():
            if backend.startswith(key):
                return c
        return "#888888"

    label_w, chart_w, bar_h, gap, top = 490, 520, 18, 6, 50
    width = label_w + chart_w + 110
    height = top + len(bars) * (bar_h + gap) + 50
    hi = max(r["rps"] for r in bars)
    lo = 1.0
    decades = max(1, math.ceil(math.log10(hi)))

    def x_of(v):
        v = max(v, lo)
        return label_w + chart_w * math.log10(v) / decades

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="22" font-size="15" font-weight="bold">sessiond load benchmark: '
           f'requests per second (log scale; argon2id: hashes per second)</text>']
    for d in range(0, decades + 1):
        x = label_w + chart_w * d / decades
        out.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{height - 40}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 25}" text-anchor="middle" fill="#555">'
                   f'{10 ** d:,}</text>')
    for i, r in enumerate(bars):
        y = top + i * (bar_h + gap)
        label = f"{r['scenario']} · {r['backend']}"
        if len(label) > 68:
            label = label[:66] + "…"
        out.append(f'<text x="{label_w - 8}" y="{y + bar_h - 5}" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        x_end = x_of(r["rps"])
        out.append(f'<rect x="{label_w}" y="{y}" width="{max(1.0, x_end - label_w):.1f}" '
                   f'height="{bar_h}" fill="{color(r["backend"])}"/>')
        out.append(f'<text x="{x_end + 5:.1f}" y="{y + bar_h - 5}" fill="#222">{rate(r["rps"])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def grouped(rows):
    """Rows grouped by scenario (in order of first appearance), the ceiling first in its
    group, then SQLite, PostgreSQL, the other references."""
    first = {}
    for r in rows:
        first.setdefault(r["scenario"], len(first))
    rank = {"ceiling": 0, "sqlite": 1, "postgres": 2, "tower": 3, "FastAPI": 4, "raw": 5}

    def key(r):
        b = next((v for k, v in rank.items() if r["backend"].startswith(k)), 6)
        return (first[r["scenario"]], b)

    return sorted(rows, key=key)


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    rows = grouped(read_rows(os.path.join(results, "latest.tsv")))
    facts = read_facts(os.path.join(results, "latest.facts"))
    scale_rows = read_rows(os.path.join(results, "scale.tsv"))
    scale_facts = read_facts(os.path.join(results, "scale.facts"))
    users_rows = read_rows(os.path.join(results, "users.tsv"))
    users_facts = read_facts(os.path.join(results, "users.facts"))
    with open(os.path.join(results, "latest.md"), "w", encoding="utf-8") as f:
        f.write(markdown(rows, facts, scale_rows, scale_facts, users_rows, users_facts))
    with open(os.path.join(results, "latest.svg"), "w", encoding="utf-8") as f:
        f.write(svg(rows))


if __name__ == "__main__":
    main()
