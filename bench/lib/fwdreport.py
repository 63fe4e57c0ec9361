#!/usr/bin/env python3
"""fwdreport.py DIR -- medians and ratios of the forwarding benchmark.

Reads DIR/cycles.csv (cycle,variant,gbps,retransmits), DIR/ping.csv
(variant,ping_avg_ms) and DIR/info.txt; writes DIR/forwarding.md and
prints it.

Ratios are paired: in each cycle every variant ran once, seconds apart, so
each cycle's run of one variant is divided by the same cycle's run of the
other, and the median of those per-cycle ratios is reported with its
interquartile range. A target passes when the median meets it.
"""
import csv
import os
import statistics
import sys

# (numerator, denominator, label, limit): the targets of issue 7.
TARGETS = [
    ("routed", "routed-hand", "routed: nsrouter / hand", 0.98),
    ("masq", "masq-hand", "masq: nsrouter / hand", 0.98),
    ("routed-fast", "direct", "routed, fast profile / direct veth pair", 0.95),
]
ORDER = ["direct", "direct-fast", "routed-hand", "routed", "routed-fast", "masq-hand", "masq", "masq-fast"]
BUILT = {
    "direct": "hand (harness)", "direct-fast": "nsrouter, fast",
    "routed-hand": "hand (harness)", "routed": "nsrouter", "routed-fast": "nsrouter, fast",
    "masq-hand": "hand (harness)", "masq": "nsrouter", "masq-fast": "nsrouter, fast",
}


def load(d):
    runs = {}
    with open(os.path.join(d, "cycles.csv")) as f:
        for r in csv.DictReader(f):
            try:
                g = float(r["gbps"])
            except ValueError:
                continue
            if g == g:  # not nan: iperf3 worked
                runs[(int(r["cycle"]), r["variant"])] = (g, int(r["retransmits"]))
    ping = {}
    p = os.path.join(d, "ping.csv")
    if os.path.exists(p):
        with open(p) as f:
            for r in csv.DictReader(f):
                ping[r["variant"]] = r["ping_avg_ms"]
    return runs, ping


def quartiles(xs):
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def paired(runs, a, b):
    return [runs[(c, a)][0] / runs[(c, b)][0] for (c, v) in runs if v == a and (c, b) in runs]


def fmt(q):
    return "%.2f (%.2f-%.2f)" % (q[1], q[0], q[2])


def report(d):
    """DIR's tables as markdown, and the target rows (what, measured,
    limit, verdict) for run.sh's table of all targets."""
    runs, ping = load(d)
    variants = [v for v in ORDER if any(w == v for (_, w) in runs)]
    out = []
    info = os.path.join(d, "info.txt")
    if os.path.exists(info):
        out += ["```", open(info).read().rstrip(), "```", ""]
    out += ["#### iperf3, 1 stream: Gbit/s and ratios to the direct veth pair (median of per-cycle ratios, interquartile range)", "",
            "| variant | built by | Gbit/s (median) | x direct | retransmits (median) | ping ms | cycles |",
            "|---|---|---|---|---|---|---|"]
    for v in variants:
        gs = [runs[k][0] for k in runs if k[1] == v]
        rt = [runs[k][1] for k in runs if k[1] == v]
        r = paired(runs, v, "direct")
        out.append("| %s | %s | %.1f | %s | %d | %s | %d |" % (
            v, BUILT.get(v, "?"), statistics.median(gs), fmt(quartiles(r)) if r else "-",
            statistics.median(rt), ping.get(v, "-") or "-", len(gs)))
    rows = []
    for a, b, label, limit in TARGETS:
        r = paired(runs, a, b)
        if not r:
            rows.append(("forwarding, " + label, "not measured", ">= %.2f" % limit, "n/a"))
            continue
        q = quartiles(r)
        rows.append(("forwarding, " + label, fmt(q) + "x", ">= %.2f" % limit, "PASS" if q[1] >= limit else "FAIL"))
    out += ["", "| target | median of per-cycle ratios (interquartile range) | limit | verdict |", "|---|---|---|---|"]
    out += ["| %s | %s | %s | %s |" % r for r in rows]
    return "\n".join(out) + "\n", rows


def main(d):
    text, _ = report(d)
    with open(os.path.join(d, "forwarding.md"), "w") as f:
        f.write(text)
    print(text, end="")


if __name__ == "__main__":
    main(sys.argv[1])
