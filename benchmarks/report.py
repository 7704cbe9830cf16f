"""Turns a results JSON written by run.py into the markdown report and the
PNG chart.  run.py calls it; it can also be rerun on any results file:

    python3 benchmarks/report.py benchmarks/results/latest.json            # markdown to stdout
    python benchmarks/report.py --chart out.png benchmarks/results/latest.json  # needs matplotlib

The markdown part needs only the standard library."""

import argparse
import json
import statistics
import sys

# Display names and order of the rows.
CLIENT_LABELS = [
    ("cpython", "curlmulti-multi", "curlmulti CurlMulti loop"),
    ("cpython", "curlmulti-async", "curlmulti AsyncCurlMulti"),
    ("cpython", "curlmulti-multi-buffer", "curlmulti CurlMulti loop, Buffer sink"),
    ("cpython", "curlmulti-async-buffer", "curlmulti AsyncCurlMulti, Buffer sink"),
    ("cpython", "curlmulti-async-pydriver", "curlmulti AsyncCurlMulti, Python driver"),
    ("cpython", "curlmulti-async-buffer-pydriver", "curlmulti AsyncCurlMulti, Python driver, Buffer sink"),
    ("cpython", "pycurl-multi", "pycurl CurlMulti loop"),
    ("cpython", "pycurl-async", "pycurl AsyncCurlMulti"),
    ("cpython", "aiohttp", "aiohttp"),
    ("cpython", "httpx", "httpx (async, HTTP/1.1)"),
    ("cpython", "crawl-curlmulti", "curlmulti.crawl Session (crawl cell)"),
    ("cpython", "crawl-aiohttp", "aiohttp crawler (crawl cell)"),
    ("pypy", "curlmulti-multi", "curlmulti CurlMulti loop"),
    ("pypy", "curlmulti-async", "curlmulti AsyncCurlMulti"),
    ("pypy", "curlmulti-multi-buffer", "curlmulti CurlMulti loop, Buffer sink"),
    ("pypy", "curlmulti-async-buffer", "curlmulti AsyncCurlMulti, Buffer sink"),
    ("pypy", "curlmulti-async-pydriver", "curlmulti AsyncCurlMulti, Python driver"),
    ("pypy", "curlmulti-async-buffer-pydriver", "curlmulti AsyncCurlMulti, Python driver, Buffer sink"),
    ("pypy", "pycurl-multi", "pycurl CurlMulti loop"),
    ("pypy", "pycurl-async", "pycurl AsyncCurlMulti"),
    ("pypy", "aiohttp", "aiohttp"),
    ("pypy", "httpx", "httpx (async, HTTP/1.1)"),
    ("pypy", "crawl-curlmulti", "curlmulti.crawl Session (crawl cell)"),
    ("pypy", "crawl-aiohttp", "aiohttp crawler (crawl cell)"),
    ("native", "c-libcurl", "C, libcurl multi API"),
    ("native", "curl-cli", "curl --parallel (CLI)"),
]
INTERP_LABELS = {"cpython": "CPython", "pypy": "PyPy", "native": "native"}


def key(interp, client):
    return "%s/%s" % (interp, client)


def row_label(interp, client):
    for i, c, label in CLIENT_LABELS:
        if i == interp and c == client:
            return "%s: %s" % (INTERP_LABELS[interp], label) if interp != "native" else label
    return "%s: %s" % (INTERP_LABELS.get(interp, interp), client)


def row_order(results):
    present = {(r["interp"], r["client"]) for r in results["runs"]}
    present |= {tuple(k.split("/", 1)) for k in results.get("unavailable", {})}
    order = [(i, c) for i, c, _ in CLIENT_LABELS if (i, c) in present]
    order += sorted(present - set(order))
    return order


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(results):
    """Medians per (interp, client, cell) over the successful repetitions."""
    groups = {}
    for r in results["runs"]:
        groups.setdefault((r["interp"], r["client"], r["cell"]), []).append(r)
    summary = {}
    for (interp, client, cell), runs in groups.items():
        good = [r for r in runs if r.get("ok_run")]
        s = {"reps": len(runs), "good_reps": len(good),
             "failures": [r.get("error") or r.get("unavailable") for r in runs if not r.get("ok_run")]}
        unavail = [r.get("unavailable") for r in runs if r.get("unavailable")]
        if unavail and not good:
            s["unavailable"] = unavail[0]
        if good:
            s["rps"] = median([r["requests"] / r["wall_s"] for r in good])
            s["cpu_per_1k"] = median([r["cpu_s"] / r["requests"] * 1000.0 for r in good])
            s["sys_share"] = median([r["cpu_sys_s"] / r["cpu_s"] for r in good
                                     if r.get("cpu_sys_s") is not None and r.get("cpu_s")])
            s["mbps"] = median([r["bytes"] / r["wall_s"] / 1e6 for r in good])
            s["peak_rss_mib"] = median([r["peak_rss_kib"] / 1024.0 for r in good])
            s["requests"] = median([r["requests"] for r in good])
            if good[0].get("mode") == "hold":
                s["kib_per_transfer"] = median([
                    (r["peak_rss_kib"] - r["baseline_rss_kib"]) / float(r["requests"]) for r in good
                    if r.get("baseline_rss_kib") is not None])
                s["held_at_once"] = median([r.get("held_at_once") for r in good])
        summary[key(interp, client) + "@" + cell] = s
    return summary


def get(summary, interp, client, cell):
    return summary.get(key(interp, client) + "@" + cell)


def fmt(x, digits=3):
    if x is None:
        return "—"
    if x >= 1000:
        return "{:,.0f}".format(x)
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    if x >= 1:
        return "%.2f" % x
    return ("%." + str(digits) + "f") % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f×" % (a / b)


def status(s):
    if s is None:
        return "not run"
    if "unavailable" in s:
        return "unavailable"
    if s.get("good_reps", 0) == 0:
        return "failed"
    return None


def headline_table(results, summary):
    cells = results["cells"]
    lines = ["| client | " + " | ".join(c["label"] for c in cells) + " |",
             "|---|" + "---:|" * len(cells)]
    for interp, client in row_order(results):
        row = []
        for c in cells:
            s = get(summary, interp, client, c["id"])
            st = status(s)
            row.append(st if st else fmt(s["cpu_per_1k"]))
        lines.append("| %s | %s |" % (row_label(interp, client), " | ".join(row)))
    return lines


def cell_table(results, summary, cell):
    hold = cell.get("mode") == "hold"
    head = ["client", "req/s", "CPU s / 1k req", "of which kernel", "MB/s", "peak RSS MiB"]
    if hold:
        head += ["KiB / transfer in flight", "held at once"]
    head += ["CPU vs pycurl", "CPU vs C", "req/s vs C"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    c_ref = get(summary, "native", "c-libcurl", cell["id"])
    for interp, client in row_order(results):
        s = get(summary, interp, client, cell["id"])
        st = status(s)
        if st:
            reason = ""
            if s and s.get("unavailable"):
                reason = " (%s)" % s["unavailable"]
            elif s and s.get("failures"):
                reason = " (%s)" % str(s["failures"][0])[:80]
            lines.append("| %s | %s%s |%s" % (row_label(interp, client), st, reason,
                                               " |" * (len(head) - 2)))
            continue
        ref_interp = interp if interp != "native" else "cpython"
        p_ref = get(summary, ref_interp, "pycurl-multi", cell["id"])
        p_cpu = p_ref.get("cpu_per_1k") if p_ref and not status(p_ref) else None
        c_cpu = c_ref.get("cpu_per_1k") if c_ref and not status(c_ref) else None
        c_rps = c_ref.get("rps") if c_ref and not status(c_ref) else None
        share = s.get("sys_share")
        row = [row_label(interp, client), fmt(None if hold else s["rps"]), fmt(s["cpu_per_1k"]),
               "—" if share is None else "%.0f %%" % (100 * share),
               fmt(None if hold else s["mbps"]), fmt(s["peak_rss_mib"])]
        if hold:
            row += [fmt(s.get("kib_per_transfer")), fmt(s.get("held_at_once"))]
        row += [ratio(s["cpu_per_1k"], p_cpu), ratio(s["cpu_per_1k"], c_cpu),
                "—" if hold else ratio(s["rps"], c_rps)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


# Issue 5's targets: (what, interp, client, reference client on the same
# interpreter, which cells, figure, bound).  "cpu": CPU per request, ratio
# at most bound; "mbps": MB/s, ratio at least bound; "mem": KiB per transfer
# in flight, ratio at most bound.
_SMALL = ("1k-",)
_MID = ("64k-",)
TARGETS = [
    ("CPython: CurlMulti loop <= 1.0x pycurl", "cpython", "curlmulti-multi", "pycurl-multi",
     _SMALL + _MID, "cpu", 1.0),
    ("CPython: AsyncCurlMulti <= 0.6x pycurl AsyncCurlMulti", "cpython", "curlmulti-async",
     "pycurl-async", _SMALL + _MID, "cpu", 0.6),
    ("CPython: AsyncCurlMulti <= 0.5x pycurl AsyncCurlMulti (native core)", "cpython",
     "curlmulti-async", "pycurl-async", _SMALL + _MID, "cpu", 0.5),
    ("CPython: AsyncCurlMulti <= 0.5x aiohttp", "cpython", "curlmulti-async", "aiohttp",
     _SMALL + _MID, "cpu", 0.5),
    ("PyPy: CurlMulti loop <= 0.7x pycurl, 1 KiB", "pypy", "curlmulti-multi", "pycurl-multi",
     _SMALL, "cpu", 0.7),
    ("PyPy: CurlMulti loop <= 0.5x pycurl, 64 KiB", "pypy", "curlmulti-multi", "pycurl-multi",
     _MID, "cpu", 0.5),
    ("PyPy: CurlMulti loop with a Buffer sink <= 0.5x pycurl, 64 KiB", "pypy",
     "curlmulti-multi-buffer", "pycurl-multi", _MID, "cpu", 0.5),
    ("CPython: AsyncCurlMulti with a Buffer sink <= 0.5x aiohttp", "cpython", "curlmulti-async-buffer",
     "aiohttp", _SMALL + _MID, "cpu", 0.5),
    ("PyPy: AsyncCurlMulti <= 0.4x aiohttp", "pypy", "curlmulti-async", "aiohttp",
     _SMALL + _MID, "cpu", 0.4),
    ("CPython: 64 MiB >= 2x pycurl's MB/s (same script, BytesIO)", "cpython", "curlmulti-multi",
     "pycurl-multi", ("64m-",), "mbps", 2.0),
    ("CPython: 64 MiB >= 2x pycurl's MB/s (Buffer sink)", "cpython", "curlmulti-multi-buffer",
     "pycurl-multi", ("64m-",), "mbps", 2.0),
    ("PyPy: 64 MiB >= 2x pycurl's MB/s (same script, BytesIO)", "pypy", "curlmulti-multi",
     "pycurl-multi", ("64m-",), "mbps", 2.0),
    ("PyPy: 64 MiB >= 2x pycurl's MB/s (Buffer sink)", "pypy", "curlmulti-multi-buffer",
     "pycurl-multi", ("64m-",), "mbps", 2.0),
    ("CPython: memory per transfer in flight <= pycurl", "cpython", "curlmulti-multi",
     "pycurl-multi", ("hold-",), "mem", 1.0),
    ("CPython: AsyncCurlMulti memory per transfer in flight <= pycurl's", "cpython",
     "curlmulti-async", "pycurl-async", ("hold-",), "mem", 1.0),
    ("PyPy: memory per transfer in flight <= pycurl", "pypy", "curlmulti-multi", "pycurl-multi",
     ("hold-",), "mem", 1.0),
    # The crawl cell: curlmulti.crawl against the same crawler on aiohttp (client_crawl.py).
    ("CPython: crawl toolkit ahead of aiohttp in CPU per request", "cpython", "crawl-curlmulti",
     "crawl-aiohttp", ("crawl-",), "cpu", 1.0),
    ("PyPy: crawl toolkit ahead of aiohttp in CPU per request", "pypy", "crawl-curlmulti",
     "crawl-aiohttp", ("crawl-",), "cpu", 1.0),
]
_FIGURE = {"cpu": "cpu_per_1k", "mbps": "mbps", "mem": "kib_per_transfer"}


def targets_table(results, summary):
    """Each target's ratio per cell, and for CPU targets two more figures from
    the C client on libcurl's multi API in the same cell (C: the cost of
    libcurl and the kernel, which no binding can remove): the best ratio a
    binding could reach (C / reference, a binding that costs nothing), and the
    ratio of the overheads, (client - C) / (reference - C)."""
    lines = ["| target | measured ratio per cell | best possible (C ÷ reference) | overhead ratio | met |",
             "|---|---|---|---|---|"]
    for what, interp, client, ref, prefixes, figure, bound in TARGETS:
        parts, floors, overheads, verdicts = [], [], [], []
        for cell in results["cells"]:
            if not cell["id"].startswith(prefixes):
                continue
            s, r = get(summary, interp, client, cell["id"]), get(summary, interp, ref, cell["id"])
            a = s.get(_FIGURE[figure]) if s and not status(s) else None
            b = r.get(_FIGURE[figure]) if r and not status(r) else None
            if a is None or b is None or b <= 0:
                parts.append("%s —" % cell["label"])
                continue
            x = a / b
            parts.append("%s %.2f×" % (cell["label"], x))
            verdicts.append(x >= bound if figure == "mbps" else x <= bound)
            c = get(summary, "native", "c-libcurl", cell["id"])
            c = c.get("cpu_per_1k") if figure == "cpu" and c and not status(c) else None
            if c is not None:
                floors.append("%s %.2f×" % (cell["label"], c / b))
            if c is not None and b > c:
                overheads.append("%s %.2f×" % (cell["label"], max(a - c, 0.0) / (b - c)))
        if not verdicts:
            met = "not measured"
        elif all(verdicts):
            met = "yes"
        else:
            met = "no (%d of %d cells)" % (verdicts.count(False), len(verdicts))
        lines.append("| %s | %s | %s | %s | %s |" % (what, ", ".join(parts) or "—", ", ".join(floors) or "—",
                                                 ", ".join(overheads) or "—", met))
    return lines


def markdown(results):
    summary = summarize(results)
    m = results["machine"]
    p = results["params"]
    out = []
    out.append("Benchmark run of %s, %s mode, %d repetition(s), interleaved; medians shown." % (
        m.get("date", "?"), "quick" if p.get("quick") else "full", p.get("reps", 0)))
    out.append("")
    out.append("**Client CPU seconds (user+sys) per 1,000 requests** (lower is better; the headline figure):")
    out.append("")
    out += headline_table(results, summary)
    out.append("")
    out.append("**Targets** (issue 5; ratios of the medians above, same run, same interpreter. The C "
               "client's CPU is the cost of libcurl and the kernel that no binding can remove: 'best "
               "possible' is the ratio a binding that cost nothing would reach, 'overhead ratio' compares "
               "what the two clients add to it):")
    out.append("")
    out += targets_table(results, summary)
    out.append("")
    for cell in results["cells"]:
        out.append("#### %s" % cell["title"])
        out.append("")
        out += cell_table(results, summary, cell)
        out.append("")
    out.append("Notes:")
    out.append("")
    out += ["- " + n for n in results.get("notes", [])]
    out.append("")
    out.append("Machine and versions:")
    out.append("")
    for k in ("date", "cpu", "cores", "memory", "kernel", "os", "libcurl", "nginx", "gcc", "curl",
              "cpython", "pypy", "repo_commit", "total_run_seconds"):
        if k in m:
            out.append("- %s: %s" % (k, m[k]))
    for venv, pkgs in sorted(m.get("packages", {}).items()):
        out.append("- packages (%s): %s" % (venv, ", ".join("%s %s" % kv for kv in sorted(pkgs.items()))))
    out.append("")
    return "\n".join(out)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    summary = summarize(results)
    cells = results["cells"]
    rows = [r for r in row_order(results)]
    palette = plt.get_cmap("tab20").colors
    colors = {r: palette[i % len(palette)] for i, r in enumerate(rows)}
    ncols = 4
    nrows = (len(cells) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 0.32 * len(rows) * nrows + 1.6 * nrows),
                             squeeze=False)
    for ax, cell in zip(axes.flat, cells):
        labels, values, cols = [], [], []
        for r in rows:
            s = get(summary, r[0], r[1], cell["id"])
            if s and not status(s):
                labels.append(row_label(*r))
                values.append(s["cpu_per_1k"])
                cols.append(colors[r])
        y = list(range(len(labels)))[::-1]
        ax.barh(y, values, color=cols)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_title(cell["label"], fontsize=9)
        ax.set_xlabel("client CPU s per 1,000 requests (log)", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        for yy, v in zip(y, values):
            ax.text(v, yy, " " + fmt(v), va="center", fontsize=6)
        ax.xaxis.set_minor_formatter(NullFormatter())
        if values:
            lo, hi = min(values) / 1.5, max(values) * 4
            ax.set_xlim(lo, max(hi, lo * 12))  # at least one full decade: readable ticks
    for ax in list(axes.flat)[len(cells):]:
        ax.axis("off")
    fig.suptitle("curlmulti benchmark: client CPU per 1,000 requests (lower is better), %s" %
                 results["machine"].get("date", ""), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--chart", help="write the PNG chart here (needs matplotlib)")
    a = p.parse_args()
    with open(a.results) as f:
        results = json.load(f)
    if a.chart:
        chart(results, a.chart)
    else:
        sys.stdout.write(markdown(results))


if __name__ == "__main__":
    main()
