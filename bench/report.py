"""Targets, the console table and docs/performance.md from a bench/run.py result."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DB_TITLES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
# Sections of docs/performance.md written by hand: carried over when the file is rewritten.
KEPT_SECTIONS = ("Analysis", "Counting under load", "Surges")


def _get(tree: Any, *keys: Any) -> Any:
    for key in keys:
        if not isinstance(tree, dict | list):
            return None
        try:
            tree = tree[key]
        except (KeyError, IndexError, TypeError):
            return None
    return tree


def _export_numbers(export: dict[str, Any]) -> dict[str, Any]:
    """rows/s of the largest export, its ceiling (if export.py measures one), RSS ratio."""
    runs = export.get("runs") or []
    if not runs:
        return {}
    small, large = runs[0], runs[-1]
    out: dict[str, Any] = {"rows_per_s": large.get("rows_per_s"), "rows": large.get("rows")}
    for key, value in large.items():  # a database dump ceiling, however export.py names it
        if ("dump" in key or "ceiling" in key) and "rows_per_s" in key and value:
            out["ceiling_rows_per_s"] = value
    peak_s, peak_l = small.get("rss_peak_during_export_mb"), large.get("rss_peak_during_export_mb")
    if peak_s and peak_l:
        out["rss_ratio"] = round(peak_l / peak_s, 2)
        out["rss_small_mb"], out["rss_large_mb"] = peak_s, peak_l
        out["sizes"] = (small.get("signatures"), large.get("signatures"))
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, evaluated per database (they are set for PostgreSQL)."""
    global NPROC
    NPROC = results["machine"].get("nproc") or 1
    rows: list[dict[str, Any]] = []
    for db, r in results["databases"].items():
        def add(name: str, value: Any, met: bool | None, shown: str, db: str = db) -> None:
            rows.append({"database": db, "target": name, "value": value, "shown": shown,
                         "met": met})

        sps = _get(r, "sign", "signatures_per_s")
        add("sign >= 1,000 signatures/s", sps, None if sps is None else sps >= 1000,
            _num(sps, " /s"))
        pct = _get(r, "sign", "pct_of_baseline")
        add("sign >= 40% of baseline", pct, None if pct is None else pct >= 40, _num(pct, "%"))
        ratio = _get(r, "confirm", "hot_over_spread")
        add("hot confirm >= 80% of spread", ratio, None if ratio is None else ratio >= 0.8,
            _num(None if ratio is None else ratio * 100, "%"))
        pct = _get(r, "count", "alone", "pct_of_baseline")
        add("count.json >= 80% of baseline", pct, None if pct is None else pct >= 80, _num(pct, "%"))
        p99 = _get(r, "count", "while_signing", "latency_ms", "p99")
        add("count.json p99 < 50 ms while signing (direct to gunicorn)", p99,
            None if p99 is None else p99 < 50, _num(p99, " ms"))
        p99 = _get(r, "deployed", "count_while_signing", "latency_ms", "p99")
        add("count.json p99 < 50 ms while signing, as deployed (behind deploy/nginx)", p99,
            None if p99 is None else p99 < 50, _num(p99, " ms"))
        for what in ("count", "page"):
            change = _get(r, "growth", f"{what}_change_pct")
            label = "count.json" if what == "count" else "page"
            sizes = _get(r, "growth", "small", "demand_signatures"), _get(r, "growth", "large", "demand_signatures")
            shown = _num(change, "%", signed=True)
            small_ms = _cpu_ms(_get(r, "growth", "small", what) or {}, "requests")
            large_ms = _cpu_ms(_get(r, "growth", "large", what) or {}, "requests")
            if small_ms and large_ms:
                shown += f" (app CPU per request {small_ms} -> {large_ms} ms)"
            add(f"growth: {label} changes < 10% ({_size(sizes[0])} vs {_size(sizes[1])})", change,
                None if change is None else abs(change) < 10, shown)
            work = _get(r, "growth", "db_work") or {}
            few, many = ((work.get(side) or {}).get(what) for side in ("small", "large"))
            if few is not None and many is not None:
                grown = round((many - few) / few * 100, 1) if few else None
                add(f"growth: {label}'s database work per request changes < 10% "
                    f"({_size(sizes[0])} vs {_size(sizes[1])})", grown,
                    None if grown is None else abs(grown) < 10,
                    f"{few:,} -> {many:,} {work['small']['unit']}")
        ex = _export_numbers(r.get("export") or {})
        rps = ex.get("rows_per_s")
        add(f"export >= 100,000 rows/s ({_size(ex.get('rows'))} rows)", rps,
            None if rps is None else rps >= 100_000, _num(rps, " rows/s"))
        ceiling = ex.get("ceiling_rows_per_s")
        within = None if not (rps and ceiling) else ceiling / rps
        add("export within 3x of the database's own dump", within,
            None if within is None else within <= 3,
            "not measured by bench/export.py" if within is None else f"{within:.1f}x slower")
        rss = ex.get("rss_ratio")
        sizes = ex.get("sizes") or (None, None)
        add(f"export peak RSS {_size(sizes[1])} <= 1.2x {_size(sizes[0])}", rss,
            None if rss is None else rss <= 1.2, _num(rss, "x"))
        errors = r.get("errors_total")
        add("no errors (non-2xx/3xx, timeouts, connection errors)", errors,
            None if errors is None else errors == 0, _num(errors, ""))
    return rows


def _size(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return str(n)


def _num(value: Any, unit: str, signed: bool = False) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and abs(value) < 100:
        text = f"{value:+.1f}" if signed else f"{value:.1f}"
    else:
        text = f"{value:+,.0f}" if signed else f"{value:,.0f}"
    return text + unit


def _cpu(res: dict[str, Any]) -> str:
    share = _get(res, "cpu", "share_of_machine")
    if not share:
        return ""
    return "/".join(f"{share[k] * 100:.0f}"
                    for k in ("app", "postgres", "load_generator", "other", "idle"))


NPROC = 2


def app_cpu_ms(res: dict[str, Any], per: str, nproc: int | None = None) -> float | None:
    """gunicorn CPU ms per request (or per signature) in this workload's window, or None."""
    share = _get(res, "cpu", "share_of_machine", "app")
    wall = _get(res, "cpu", "wall_s")
    n = res.get(per)
    if share is None or not wall or not n:
        return None
    return share * (nproc or NPROC) * wall * 1000 / n


def _cpu_ms(res: dict[str, Any], per: str) -> str:
    ms = app_cpu_ms(res, per)
    return "" if ms is None else f"{ms:.1f}"


def _row(name: str, res: dict[str, Any] | None, *, rate_key: str = "rps", unit: str = "req/s",
         latency: str | None = None, note: str = "", per: str | None = "requests") -> list[str]:
    if not res:
        return [name, "not run", "", "", "", "", "", "", note]
    if "skipped" in res:
        return [name, "skipped", "", "", "", "", "", "", res["skipped"]]
    lat = res.get("latency_ms") or {}
    if latency:
        lat = lat.get(latency) or {}
    pct = res.get("pct_of_baseline")
    return [
        name,
        f"{res.get(rate_key) or 0:,.0f} {unit}",
        "" if pct is None else f"{pct:.0f}%",
        "" if lat.get("p50") is None else f"{lat['p50']:.1f}",
        "" if lat.get("p99") is None else f"{lat['p99']:.1f}",
        str(_get(res, "errors", "total") or 0),
        _cpu(res),
        _cpu_ms(res, per) if per else "",
        note,
    ]


def _rounds(res: dict[str, Any], how: str = "") -> str:
    """"best of 3: a, b, c" for a result kept as the best of several runs."""
    runs = res.get("rounds_rps") or []
    if len(runs) < 2:
        return ""
    return f"best of {len(runs)}{' ' + how if how else ''}: " + ", ".join(f"{x:,.0f}" for x in runs)


def _deployed_rows(dep: dict[str, Any] | None) -> list[list[str]]:
    """count.json while signing once more, both loads through deploy/nginx (TLS)."""
    name = "count.json, 256 pollers while signing, behind nginx"
    if not dep or "skipped" in dep:
        return [_row(name, dep)]
    def nginx_share(res: dict[str, Any]) -> str:
        proxy = _get(res, "cpu", "share_of_machine", "proxy")
        return "" if proxy is None else f"; nginx used {proxy * 100:.0f}% of the machine"

    alone = dep.get("count_alone") or {}
    polled = dep.get("count_while_signing") or {}
    return [_row("count.json, 256 pollers, behind nginx", alone, per=None,
                 note="from nginx's cache, the app idle" + nginx_share(alone)),
            _row(name, polled, per=None, note=dep.get("proxy", "") + nginx_share(polled)),
            _row("  (the sign load meanwhile, behind nginx)", dep.get("sign_during"),
                 rate_key="signatures_per_s", unit="sig/s", latency="post", per=None)]


def rows_for(r: dict[str, Any]) -> list[list[str]]:
    """One database's table rows."""
    base = r.get("baseline") or {}
    rows = [
        _row("baseline (hello), 64 conn", base.get("c64")),
        _row("baseline (hello), 256 conn", base.get("c256"),
             note=_rounds(base.get("c256") or {}, "alternating with count.json")),
    ]
    if base.get("python_c64"):  # only when the sign load ran on the Python client
        rows.append(_row("baseline via the Python client, 64", base.get("python_c64"),
                         note="the sign load's client on hello: its own ceiling"))
    page = r.get("page")
    rows.append(_row("page `/petitions/<slug>`, 64 conn", page,
                     note=f"{page.get('body_bytes', 0):,} bytes of HTML per page"
                     if page and page.get("body_bytes") else ""))
    count = r.get("count") or {}
    rows.append(_row("count.json, 256 pollers", count.get("alone"),
                     note=_rounds(count.get("alone") or {}, "alternating with the baseline")))
    rows.append(_row("count.json, 256 pollers while signing", count.get("while_signing"),
                     per=None))
    sd = count.get("sign_during")
    rows.append(_row("  (the sign load meanwhile)", sd, rate_key="signatures_per_s",
                     unit="sig/s", latency="post", per=None))
    rows.extend(_deployed_rows(r.get("deployed")))
    qr = r.get("qr")
    rows.append(_row("qr.png (cached), 64 conn", qr,
                     note=f"{qr['body_bytes']:,} bytes" if qr and qr.get("body_bytes") else ""))
    sign = r.get("sign")
    note = ""
    if sign:
        flow = _get(sign, "latency_ms", "flow") or {}
        note = f"GET+POST per signature; flow p50/p99 {flow.get('p50')}/{flow.get('p99')} ms"
        if sign.get("pct_of_floor"):
            note += f"; {sign['pct_of_floor']:.0f}% of the framework floor"
        if sign.get("pct_of_python_baseline"):
            note += f"; {sign['pct_of_python_baseline']}% of the Python-client baseline"
        note = "; ".join(x for x in (note, _rounds(sign, "alternating with the floor")) if x)
    rows.append(_row("sign (GET form + POST), 64 clients", sign, rate_key="signatures_per_s",
                     unit="sig/s", latency="post", note=note, per="signatures"))
    floor = r.get("sign_floor")
    if floor:
        rows.append(_row("sign floor: the same load on `bench/floor_app.py`", floor,
                         rate_key="signatures_per_s", unit="sig/s", latency="post",
                         per="signatures",
                         note="; ".join(x for x in (
                             "the framework alone: session, CSRF, form validation, no database",
                             _rounds(floor, "alternating with the app")) if x)))
    confirm = r.get("confirm") or {}
    for layout in ("hot", "spread"):
        rounds = confirm.get("rounds") or []
        if rounds:
            res = dict(rounds[-1][layout])
            res["rps"] = confirm.get(f"{layout}_rps")
            res["pct_of_baseline"] = confirm.get(f"{layout}_pct_of_baseline")
            res["errors"] = {"total": sum(x[layout]["errors"]["total"] for x in rounds)}
            label = "one demand" if layout == "hot" else "64 demands"
            note = ""
            if layout == "hot":
                counts = confirm.get("counts") or {}
                note = (f"hot/spread {confirm.get('hot_over_spread', 0) * 100:.0f}%; "
                        f"counts exact: {counts.get('exact')}; "
                        f"mean of {len(rounds)} round(s), latency of the last")
            rows.append(_row(f"confirm, 64 clients, {label}", res, unit="confirms/s", note=note))
    growth = r.get("growth") or {}
    for label in ("small", "large"):
        g = growth.get(label)
        if not g:
            continue
        n = _size(g["demand_signatures"])
        work = (growth.get("db_work") or {}).get(label) or {}

        def db_note(what: str, work: dict[str, Any] = work) -> str | None:
            if what not in work:
                return None
            return f"database work per request: {work[what]:,} {work['unit']}"

        rows.append(_row(f"growth: count.json, {n} signatures", g["count"],
                         note="; ".join(x for x in (db_note("count"), _rounds(g["count"])) if x)))
        rows.append(_row(f"growth: page, {n} signatures", g["page"],
                         note="; ".join(x for x in (
                             f"{g['database_signatures']:,} rows in signatures", db_note("page"),
                             _rounds(g["page"])) if x)))
    ex = r.get("export") or {}
    for run in ex.get("runs") or []:
        rows.append([f"export CSV, {_size(run.get('signatures'))} signatures",
                     f"{run.get('rows_per_s') or 0:,.0f} rows/s", "", "", "", "0", "", "",
                     f"peak RSS {run.get('rss_peak_during_export_mb')} MB "
                     f"(+{run.get('rss_growth_mb')} MB during the export)" + _dump_note(run)])
    if "skipped" in ex or "error" in ex:
        rows.append(["export", "skipped" if "skipped" in ex else "failed", "", "", "", "", "", "",
                     str(ex.get("skipped") or ex.get("error"))[:200]])
    return rows


def _dump_note(run: dict[str, Any]) -> str:
    """The database's own CSV dump of the same rows, when export.py measured it."""
    if not run.get("dump_rows_per_s"):
        return ""
    note = (f"; database's own dump ({run.get('dump_tool')}): {run['dump_rows_per_s']:,.0f} rows/s,"
            f" export takes {run.get('vs_dump_ratio')}x its time")
    times = run.get("export_s") or []
    if len(times) > 1:  # the best of each is compared
        rows = run.get("rows") or 0
        note += (f"; best of {len(times)}: " + ", ".join(f"{rows / t:,.0f}" for t in times if t)
                 + " rows/s")
    return note


HEADER = ["workload", "throughput", "% of baseline", "p50 ms", "p99 ms", "errors",
          "CPU app/db/load/other/idle %", "app CPU ms per req", "notes"]


def table(results: dict[str, Any]) -> str:
    """Plain-text tables for the console."""
    out = []
    for db, r in results["databases"].items():
        global NPROC
        NPROC = results["machine"].get("nproc") or 1
        rows = [HEADER, *rows_for(r)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
        out.append(f"\n== {DB_TITLES.get(db, db)}: {r.get('version')}")
        for row in rows:
            out.append("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True))
                       + "  " + row[-1])
    out.append("\n== Targets")
    for t in results.get("targets", []):
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        out.append(f"  [{mark:6}] {DB_TITLES.get(t['database'])}: {t['target']}: {t['shown']}")
    return "\n".join(out)


def _md_table(rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _kept(existing: str) -> dict[str, str]:
    """The hand-written sections of the current docs/performance.md, by heading prefix."""
    kept: dict[str, str] = {}
    parts = re.split(r"(?m)^(?=## )", existing)
    for part in parts:
        for name in KEPT_SECTIONS:
            if part.startswith(f"## {name}"):
                kept[name] = part.rstrip() + "\n"
    return kept


def _profile_md(db: str, prof: dict[str, Any]) -> str:
    if not prof or "skipped" in prof:
        return f"{DB_TITLES[db]}: {prof.get('skipped') if prof else 'not run'}.\n"
    total_ms = prof.get("app_cpu_ms_per_signature_while_sampled")
    in_requests = prof["samples_in_requests"] / prof["samples_all"] if prof.get("samples_all") else None
    # the shares are of the samples in requests: of that part of the app's CPU
    per_sig = total_ms * in_requests if total_ms and in_requests else None

    def ms(share: float) -> str:  # the share of the app's CPU per signature, in ms
        return f" | {share * per_sig:.3f}" if per_sig else ""

    head, rule = ("| function | inclusive | ms per signature |", "|---|---|---|") if per_sig else (
        "| function | inclusive |", "|---|---|")
    lines = [f"**{DB_TITLES[db]}** ({prof['samples_in_requests']:,} samples inside requests, "
             f"sign load at {prof.get('signatures_per_s_while_sampled')} sig/s while sampled"
             + (f", the app's CPU {total_ms} ms per signature, {in_requests:.0%} of it in requests"
                if per_sig else "")
             + f"; raw stacks: `{prof['raw']}`). Share of the request handling's Python CPU "
             "with the function on the stack (inclusive)"
             + (", and that share of the app's CPU per signature" if per_sig else "")
             + ":", "", head, rule]
    selected = sorted(prof.get("selected", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    lines += [f"| `{name}` | {share * 100:.1f}%{ms(share)} |" for name, share in selected]
    head = head.replace("inclusive", "self")
    lines += ["", "Top functions by self time:", "", head, rule]
    lines += [f"| `{row['function']}` | {row['share'] * 100:.1f}%{ms(row['share'])} |"
              for row in prof["self"][:12]]
    return "\n".join(lines) + "\n"


def write_docs(results: dict[str, Any], path: Path) -> None:
    """Rewrite docs/performance.md, keeping its hand-written sections."""
    kept = _kept(path.read_text()) if path.exists() else {}
    m = results["machine"]
    g = results["gunicorn"]
    dbs = results["databases"]
    pg_version = _get(dbs, "postgresql", "version") or "not run"
    sqlite_version = _get(dbs, "sqlite", "version") or "not run"
    s = results["settings"]
    out = [
        "# Performance",
        "",
        "Numbers from one `make bench` run; the tables, the targets and the profile below are "
        "written by `bench/run.py --docs`. The sections **Analysis**, **Counting under load** and "
        "**Surges** are written by hand and kept when the file is rewritten.",
        "",
        "## Machine and setup",
        "",
        f"- Run: {results['started']} to {results.get('finished')} UTC, mode `{results['mode']}`.",
        f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB memory, "
        f"Linux {m['kernel']}, Python {m['python']}.",
        f"- PostgreSQL: {pg_version}, same machine, over loopback.",
        f"- SQLite: {sqlite_version.removeprefix('SQLite ')}.",
        f"- Server: gunicorn with the project's `gunicorn.conf.py`: {g.get('workers')} workers x "
        f"{g.get('threads')} threads ({g.get('worker_class')}), "
        + (f"each replaced after about {g['max_requests']:,} requests, " if g.get("max_requests") else "")
        + "access log on (to a file), on a "
        "free port on 127.0.0.1. The baseline is `bench/hello_app.py` (a bare Flask app "
        "returning \"Hello, World!\") under the same config, in the same run, per database. "
        "The sign flow's framework floor is `bench/floor_app.py` under the same config: the "
        "same GET and POST through gunicorn, Flask, Flask-WTF (session, CSRF) and WTForms "
        "(the same fields and library validators, email-validator included) with the page "
        "rendered once as the app does, and no database, encryption, email or other app "
        "work: the ceiling of the sign load with this stack on this machine.",
        f"- Load: separate processes on the same machine over loopback: {results['loaders']['wrk'] or 'no wrk'} "
        "with `bench/wrk/*.lua` for the GET workloads (page, count, qr, confirm, baseline), "
        + ("and for the sign form flow (`sign.lua`: one connection per wrk thread, so each "
           "thread is one supporter at a time with its own cookie)"
           if results["loaders"].get("sign") == "wrk" else
           "`bench/load.py` (asyncio + aiohttp) for the sign form flow")
        + ". Every load is bounded "
        f"in time (GET workloads {s['get_s']} s after {s['warmup_s']} s of untimed warm-up, "
        f"sign {s['sign_s']} s, confirm {s['confirm_s']} s per round) and stops by itself.",
        "- The app runs with `PETITION_RATELIMIT_ENABLED=false` and "
        "`PETITION_MAIL_DELIVERY=worker`: the confirmation email is rendered and written to "
        "the outbox table in the sign transaction exactly as in production, but the SMTP send "
        "(done by `flask outbox-worker` after commit) is not part of the request and not run.",
        "- Nothing is tuned for the benchmark: each signature is a new supporter who GETs the "
        "petition page without a cookie, takes the CSRF token and session cookie from it and "
        "POSTs a valid form (unique email, mixed Unicode names, countries, optional postcode, "
        "consents and `?src=`), with the full validation, CSRF check, encryption, dedup insert "
        "and outbox write; the 303 is not followed. count.json is polled with plain GETs "
        "(browsers send `If-None-Match` and mostly get a cheaper 304). Confirm links come from "
        "pending signatures generated in the database with the app's cipher and token code.",
        "- \"behind nginx\": count.json alone and while signing once more, as deployed: "
        "`deploy/nginx/petition.conf` (TLS on loopback with a throwaway certificate, the "
        "2-second count-poll cache, keep-alive to gunicorn) and `petition-main.conf` (nginx's "
        "workers at priority -5 when the runner is root) in front of a second app server "
        "with `PETITION_PROXY_COUNT=1` and the https public URL; both loads go through nginx. "
        "nginx's CPU is counted apart from \"other\" and named in the note. The "
        "direct-to-gunicorn rows above are the app's own capacity.",
        "- Errors: any response outside 200-399 (for the sign POST anything but 303), any "
        "timeout or connection error; all are counted and shown.",
        "- \"CPU app/db/load/other/idle %\": the share of the whole machine (all CPUs x wall "
        "time) used during that workload by the gunicorn processes, PostgreSQL, the load "
        "generators, anything else running on the machine, and left idle. The load "
        "generators share the 2 CPUs with the server; \"other\" above a few % means the "
        "machine was not quiet and the numbers of that row are low. \"app CPU ms per req\": "
        "the gunicorn processes' CPU time in that window divided by the requests (per "
        "signature for sign, i.e. GET + POST): the cost of one request, which the noise of a "
        "shared machine disturbs much less than the throughput.",
        "",
        "## Commands",
        "",
        "```sh",
        "make bench        # both databases, full size, rewrites this file (about 20-35 minutes)",
        "make bench-quick  # shorter, growth to 100k signatures, does not rewrite this file",
        "make bench-smoke  # a few hundred requests per workload (tests/test_bench.py does the same in `make test`)",
        "python bench/run.py --quick --sign-loader python  # the sign flow from bench/load.py instead of wrk",
        "python bench/report.py bench/results/latest.json --docs   # re-render from saved JSON",
        "python bench/cpu.py [--database-url URL] [--only sign] [--profile confirm] [--redis-url URL]  # CPU ms per request in process (workloads: hello page count count_304 sign floor signed confirm sign_campaign sign_limited)",
        "python bench/instructions.py [--database-url URL --database-url URL2] --only sign  # instructions per request (valgrind; repeatable to 0.01%, for optimising)",
        "python bench/instructions.py --only floor  # the same for the framework floor's sign flow (bench/floor_app.py)",
        "python bench/dbwork.py --database-url URL --path /petitions/<slug>  # the database's own work for one request (blocks / VM instructions)",
        "python bench/rekey.py [--database-url URL] [--sizes 100000,1000000]  # how long `flask rotate-data-key` takes (the downtime of a data key change)",
        "python bench/probe.py [--database-url URL] [-n 1000]  # whether a sign POST's time tells that the address had signed (docs/privacy.md)",
        "python bench/surge.py [--database-url URL] [--visitors 2000,4000,8000]  # thousands of visitors at once through deploy/nginx/, with Debian's and the documented worker_connections (\"Surges\" below)",
        "```",
        "",
        "This run:",
        "",
        "```sh",
        results["command"],
        *[(_get(r, "export", "command") and f"python {_get(r, 'export', 'command')}") or ""
          for r in dbs.values() if _get(r, "export", "command")],
        "```",
        "",
        f"Workloads: concurrency {s['concurrency']} (page, qr, sign, confirm), {s['pollers']} "
        f"count.json pollers; confirm is {s['rounds']} round(s) of {s['links']:,} links per "
        "layout (hot: all on one demand; spread: client i always on demand i of 64); growth "
        f"compares {_size(s['growth'][0])} with {_size(s['growth'][1])} confirmed signatures on "
        "the measured demand: the many-signature side is a second database with the same seed, "
        "bulk-loaded (COPY / one executemany transaction; both then `VACUUM ANALYZE` on "
        "PostgreSQL); each side is served by a freshly started gunicorn with the same config; best of "
        f"{s.get('growth_rounds', 1)} runs of {s.get('growth_s')} s on each side, the runs "
        "alternating between the two servers. \"Database work per request\" on the growth "
        "rows is counted by the database itself for one request with the display cache off "
        "(bench/dbwork.py: buffer blocks the executed plans touch on PostgreSQL, virtual machine "
        "instructions on SQLite): the same on every run, so it shows whether a request's cost "
        "grows with the signatures where the throughput of a shared machine cannot. "
        "Before every measured load the runner waits (at "
        "most 20 s) for the machine to be nearly idle (85% idle over one second). count.json "
        "alone and the baseline at 256 connections are the best of "
        f"{s.get('pair_rounds', 1)} runs each, alternating between the app and the baseline "
        "server (both up), since their ratio is a target; sign and its framework floor the "
        f"same way ({s.get('pair_rounds', 1)} runs each, alternating). Raw JSON: `bench/results/` "
        "(git-ignored).",
        "",
    ]
    global NPROC
    NPROC = m.get("nproc") or 1
    for db, r in dbs.items():
        out += [f"## Results: {DB_TITLES[db]}", "", _md_table(rows_for(r)), ""]
    out += ["## Targets", "",
            "The issue's targets are for PostgreSQL on this 2-core machine, measured in one run; "
            "SQLite is shown alongside.", "",
            "| target | " + " | ".join(DB_TITLES[db] for db in dbs) + " |",
            "|---|" + "---|" * len(dbs)]
    names = list(dict.fromkeys(t["target"] for t in results["targets"]))
    for name in names:
        cells = []
        for db in dbs:
            t = next((t for t in results["targets"] if t["database"] == db and t["target"] == name), None)
            if t is None:
                cells.append("")
                continue
            mark = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
            cells.append(f"{t['shown']} ({mark})")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    profiles = {db: r.get("profile") for db, r in dbs.items() if r.get("profile")}
    if profiles:
        out += ["## Sign profile (py-spy)", "",
                "An extra sign run (same load, not the measured one) sampled with `py-spy record "
                "--subprocesses --gil` on the gunicorn master: only threads holding the GIL are "
                "sampled, so the shares are of Python CPU time, not of waits for the GIL, the "
                "database or the network. The time in C code that releases the GIL (socket "
                "writes, hashing large inputs) is not in them.", ""]
        for db, prof in profiles.items():
            out += [_profile_md(db, prof)]
    out.append(kept.get("Analysis", "## Analysis\n\n(To be written after a full run.)\n"))
    out.append("")
    out.append(kept.get("Counting under load", ""))
    out.append("")
    out.append(kept.get("Surges", ""))
    path.write_text("\n".join(out).rstrip() + "\n")


def main() -> None:
    """Re-render the table (and with --docs docs/performance.md) from a saved result."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("result", type=Path, help="bench/results/*.json")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/performance.md")
    args = parser.parse_args()
    results = json.loads(args.result.read_text())
    root = Path(__file__).resolve().parent.parent
    for r in results["databases"].values():  # re-summarise kept profiles (newer pyspy.py)
        prof = r.get("profile") or {}
        if prof.get("raw") and (root / prof["raw"]).exists():
            import pyspy

            prof.update(pyspy.summarise(root / prof["raw"]))
    results["targets"] = targets(results)
    print(table(results))
    if args.docs:
        write_docs(results, Path(__file__).resolve().parent.parent / "docs" / "performance.md")


if __name__ == "__main__":
    main()
