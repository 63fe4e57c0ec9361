#!/usr/bin/env python3
"""report.py DIR -- medians, ratios and the issue's targets from a bench run.

Reads DIR/setup.csv (rows of the shared harness's bench_setup.sh with
bench_setup.patch, which adds the column down_freed_s; its method "tool"
is nsrouter), DIR/extra.csv (what,n,run,seconds,result) and
DIR/info.txt, and DIR/forwarding/ when run.sh ran bench/forwarding.sh
there (its tables and targets join these). Writes DIR/results.md and, per
shape, DIR/up-SHAPE.dat (N and the median up time of each method, for
gnuplot); prints results.md. Exits 1 when a target failed, 0 otherwise.
Standard library only.
"""
import csv
import os
import statistics
import sys

import fwdreport

ORDER = ["nsrouter", "go4", "go", "batch", "ip", "ipexec", "mininet"]


def med(values):
    xs = []
    for v in values:
        try:
            xs.append(float(v))
        except (TypeError, ValueError):
            pass
    return statistics.median(xs) if xs else None


def fmt(x):
    if x is None:
        return "-"
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.3f" % x


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


class Setup:
    """Setup rows grouped by (shape, method, n)."""

    def __init__(self, rows):
        self.groups = {}
        for r in rows:
            m = "nsrouter" if r["method"] == "tool" else r["method"]
            self.groups.setdefault((r["shape"], m, int(r["n"])), []).append(r)

    def median(self, shape, method, n, column):
        g = self.groups.get((shape, method, n))
        return med(r.get(column) for r in g) if g else None

    def checked(self, shape, method, n):
        """False when a run of that cell failed its check after up."""
        return all(r.get("verify") == "ok" for r in self.groups.get((shape, method, n), []))

    def shapes(self):
        return [s for s in ("star", "bridge") if any(k[0] == s for k in self.groups)]

    def methods(self, shape):
        ms = {k[1] for k in self.groups if k[0] == shape}
        return sorted(ms, key=lambda m: ORDER.index(m) if m in ORDER else 99)

    def sizes(self, shape):
        return sorted({k[2] for k in self.groups if k[0] == shape})


def setup_table(s, shape):
    ns = s.sizes(shape)
    out = ["| method | " + " | ".join("N=%d" % n for n in ns) + " | peak RSS MB (largest N) | verify |",
           "|---" * (len(ns) + 3) + "|"]
    for m in s.methods(shape):
        cells, rss, verdicts, runs = [], "-", set(), []
        for n in ns:
            g = s.groups.get((shape, m, n))
            if not g:
                cells.append("-")
                continue
            cells.append(" / ".join(fmt(s.median(shape, m, n, c))
                                    for c in ("setup_s", "down_s", "down_free_s", "down_freed_s")))
            kb = s.median(shape, m, n, "maxrss_kb")
            rss = "-" if kb is None else "%.1f" % (kb / 1024)
            verdicts |= {r["verify"] for r in g}
            runs.append(str(len(g)))
        out.append("| %s | %s | %s | %s (runs %s) |" % (
            m, " | ".join(cells), rss, ",".join(sorted(verdicts)), "/".join(runs)))
    return "\n".join(out)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


class Targets:
    """The issue's targets, each a PASS, FAIL or n/a row."""

    def __init__(self, setup):
        self.setup = setup
        self.rows = []

    def add(self, what, value, limit, ok, shown, cells=()):
        """A target row; cells are the (shape, method, n) it is measured on:
        if a run of one failed its check, the timing is no result."""
        bad = [c for c in cells if not self.setup.checked(*c)]
        if bad:
            self.rows.append((what, "runs failed their check: " + ", ".join(
                "%s %s N=%d" % (m, sh, n) for sh, m, n in bad), limit, "FAIL"))
        elif value is None:
            self.rows.append((what, "not measured", limit, "n/a"))
        else:
            self.rows.append((what, shown % value, limit, "PASS" if ok(value) else "FAIL"))

    def note(self, what, value, shown):
        """A measurement shown next to the targets, judged by none."""
        self.rows.append((what, "not measured" if value is None else shown % value, "-", "(shown only)"))

    def failed(self):
        return any(r[3] == "FAIL" for r in self.rows)

    def table(self):
        out = ["| target | measured | limit | verdict |", "|---|---|---|---|"]
        out += ["| %s | %s | %s | %s |" % r for r in self.rows]
        return "\n".join(out)


def extra_median(rows, what):
    xs = [r for r in rows if r["what"] == what]
    ok = all(r["result"] == "ok" for r in xs)
    v = med(r["seconds"] for r in xs)
    return (v if ok else None), xs


def targets(s, extra):
    t = Targets(s)
    up = lambda shape, m, n: s.median(shape, m, n, "setup_s")
    free = lambda shape, m, n: s.median(shape, m, n, "down_free_s")
    freed = lambda shape, m, n: s.median(shape, m, n, "down_freed_s")
    x = "%.2fx"
    star1k = [("star", m, 1000) for m in ("nsrouter", "go4")]
    t.add("star 1,000 up: nsrouter / go4 reference", ratio(up("star", "nsrouter", 1000), up("star", "go4", 1000)),
          "<= 1.00", lambda v: v <= 1.0, x, star1k)
    t.add("star 1,000 up: ip -batch / nsrouter", ratio(up("star", "batch", 1000), up("star", "nsrouter", 1000)),
          ">= 4.00", lambda v: v >= 4.0, x, [("star", "batch", 1000), ("star", "nsrouter", 1000)])
    t.add("star 1,000 down until freed: nsrouter / go4 reference",
          ratio(freed("star", "nsrouter", 1000), freed("star", "go4", 1000)), "<= 1.00", lambda v: v <= 1.0, x,
          star1k)
    t.note("star 1,000 down+free, the harness's first witness (can stop part-way): nsrouter / go4",
           ratio(free("star", "nsrouter", 1000), free("star", "go4", 1000)), x)
    t.add("bridge 1,000 up: nsrouter bridge / nsrouter star",
          ratio(up("bridge", "nsrouter", 1000), up("star", "nsrouter", 1000)), "<= 1.50", lambda v: v <= 1.5, x,
          [("bridge", "nsrouter", 1000), ("star", "nsrouter", 1000)])
    t.add("bridge 1,000 up: go4 reference / nsrouter",
          ratio(up("bridge", "go4", 1000), up("bridge", "nsrouter", 1000)), ">= 2.00", lambda v: v >= 2.0, x,
          [("bridge", m, 1000) for m in ("go4", "nsrouter")])
    big = [("star", "nsrouter", 10000)]
    t.add("star 10,000 up (s)", up("star", "nsrouter", 10000), "< 12 s", lambda v: v < 12, "%.2f s", big)
    t.add("star 10,000 down (s)", s.median("star", "nsrouter", 10000, "down_s"), "< 3 s", lambda v: v < 3, "%.2f s",
          big)
    t.add("star 10,000 down until freed: nsrouter / go4 reference",
          ratio(freed("star", "nsrouter", 10000), freed("star", "go4", 10000)), "<= 1.00", lambda v: v <= 1.0, x,
          big + [("star", "go4", 10000)])
    t.note("star 10,000 down+free, the harness's first witness: nsrouter / go4",
           ratio(free("star", "nsrouter", 10000), free("star", "go4", 10000)), x)
    kb = s.median("star", "nsrouter", 10000, "maxrss_kb")
    t.add("star 10,000 peak RSS (MB)", None if kb is None else kb / 1024, "< 100 MB", lambda v: v < 100, "%.1f MB",
          big)
    for what, label in (("check-pairs", "check of 9,900 pairs among 100 hosts (s)"),
                        ("validate-100000", "validate of 100,000 nodes (s)"),
                        ("plan-100000", "plan.Build of 100,000 nodes (s, go test -bench)")):
        v, xs = extra_median(extra, what)
        limit = 5 if what == "check-pairs" else 1
        if xs and v is None:
            t.rows.append((label, "runs failed: " + ",".join(sorted({r["result"] for r in xs})), "< %d s" % limit,
                           "FAIL"))
            continue
        t.add(label, v, "< %d s" % limit, lambda v, l=limit: v < l, "%.3f s")
    return t


def extras_table(extra):
    out = ["| what | N | runs | median s | results |", "|---|---|---|---|---|"]
    seen = []
    for r in extra:
        if r["what"] not in seen:
            seen.append(r["what"])
    for w in seen:
        v, xs = extra_median(extra, w)
        out.append("| %s | %s | %d | %s | %s |" % (w, xs[0]["n"], len(xs), fmt(v if v is not None else med(
            r["seconds"] for r in xs)), ",".join(sorted({r["result"] for r in xs}))))
    return "\n".join(out)


def write_dat(s, shape, path):
    ms = s.methods(shape)
    with open(path, "w") as f:
        f.write("N " + " ".join(ms) + "\n")
        for n in s.sizes(shape):
            vals = [up if (up := s.median(shape, m, n, "setup_s")) is not None else "NaN" for m in ms]
            f.write("%d %s\n" % (n, " ".join(str(v) for v in vals)))


def main(d):
    s = Setup(read_csv(os.path.join(d, "setup.csv")))
    extra = read_csv(os.path.join(d, "extra.csv"))
    parts = []
    if os.path.exists(os.path.join(d, "info.txt")):
        parts.append("```\n" + open(os.path.join(d, "info.txt")).read().rstrip() + "\n```")
    for shape in s.shapes():
        parts.append("### %s: up / down / down+free / down until freed, seconds (medians)\n\n%s" % (
            shape, setup_table(s, shape)))
        write_dat(s, shape, os.path.join(d, "up-%s.dat" % shape))
    if extra:
        parts.append("### check, validate and plan\n\n" + extras_table(extra))
    t = targets(s, extra)
    fwd = os.path.join(d, "forwarding")
    if os.path.exists(os.path.join(fwd, "cycles.csv")):
        text, rows = fwdreport.report(fwd)
        parts.append("### forwarding (bench/forwarding.sh)\n\n" + text.rstrip())
        t.rows += rows
    parts.append("### targets of issue 7\n\n" + t.table())
    text = "\n\n".join(parts) + "\n"
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 1 if t.failed() else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: report.py DIR")
    sys.exit(main(sys.argv[1]))
