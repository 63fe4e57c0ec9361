#!/usr/bin/env python3
"""fwdreport.py DIR -- medians and ratios of the forwarding benchmark.

Reads DIR/rounds.csv (round,builder,path + the columns of the shared
harness's bench_tput.sh: streams,run,gbps,retransmits,ping_avg_ms) and
DIR/info.txt; writes DIR/forwarding.md and prints it.

Ratios are paired: each round's nsrouter run is divided by the same
round's hand-built run of that path, each path by the same round's direct
veth pair, and the median of those per-round ratios is reported (with
their range). Runs minutes apart on a shared 2-core machine differ by more
than runs seconds apart, so pairs cancel most of the drift.
"""
import csv
import os
import statistics
import sys


def num(x, f="%.2f"):
    return "-" if x is None else f % x


def median(xs):
    return statistics.median(xs) if xs else None


def load(d):
    gbps, ping = {}, {}
    path = os.path.join(d, "rounds.csv")
    if not os.path.exists(path):
        return gbps, ping
    with open(path) as f:
        for r in csv.DictReader(f):
            try:
                g = float(r["gbps"])
            except ValueError:
                continue
            if g != g:  # nan: iperf3 failed
                continue
            gbps[(int(r["round"]), r["builder"], r["path"], int(r["streams"]))] = g
            try:
                ping.setdefault((r["builder"], r["path"]), []).append(float(r["ping_avg_ms"]))
            except ValueError:
                pass
    return gbps, ping


def paired(gbps, a, b):
    """Per-round ratios a/b, where a and b are (builder, path)."""
    out = {}
    for (rnd, builder, path, s), g in gbps.items():
        if (builder, path) != a:
            continue
        other = gbps.get((rnd, b[0], b[1], s))
        if other:
            out.setdefault(s, []).append(g / other)
    return out


def spread(xs):
    return "" if not xs else " (%.2f-%.2f)" % (min(xs), max(xs))


def main(d):
    gbps, ping = load(d)
    streams = sorted({k[3] for k in gbps})
    known = ["direct", "routed", "masq"]
    paths = sorted({k[2] for k in gbps}, key=lambda p: known.index(p) if p in known else 99)
    out = []
    if os.path.exists(os.path.join(d, "info.txt")):
        out.append("```\n" + open(os.path.join(d, "info.txt")).read().rstrip() + "\n```\n")
    verdicts = []
    for s in streams:
        out.append("#### iperf3 -P %d: Gbit/s (median of rounds); ratios are medians of per-round pairs\n" % s)
        out.append("| path | by hand | by nsrouter | nsrouter / hand | hand / direct | nsrouter / direct"
                   " | ping ms hand / nsrouter | rounds |")
        out.append("|---|---|---|---|---|---|---|---|")
        for p in paths:
            g = {b: [v for k, v in gbps.items() if k[1:] == (b, p, s)] for b in ("hand", "nsrouter")}
            nh = paired(gbps, ("nsrouter", p), ("hand", p)).get(s, [])
            hd = paired(gbps, ("hand", p), ("hand", "direct")).get(s, [])
            nd = paired(gbps, ("nsrouter", p), ("hand", "direct")).get(s, [])
            out.append("| %s | %s | %s | %s%s | %s%s | %s%s | %s / %s | %d |" % (
                p, num(median(g["hand"]), "%.1f"), num(median(g["nsrouter"]), "%.1f"),
                num(median(nh)), spread(nh), num(median(hd)), spread(hd), num(median(nd)), spread(nd),
                num(median(ping.get(("hand", p), [])), "%.3f"), num(median(ping.get(("nsrouter", p), [])), "%.3f"),
                max(len(g["hand"]), len(g["nsrouter"]))))
            if p != "direct":
                verdicts.append(("%s -P %d: nsrouter / hand" % (p, s), median(nh), 0.98))
            if p == "routed":
                verdicts.append(("routed -P %d: nsrouter / direct veth" % s, median(nd), 0.95))
        out.append("")
    out.append("| target | measured | limit | verdict |")
    out.append("|---|---|---|---|")
    for what, v, lim in verdicts:
        out.append("| %s | %s | >= %.2f | %s |" % (
            what, num(v), lim, "n/a" if v is None else ("PASS" if v >= lim else "FAIL")))
    text = "\n".join(out) + "\n"
    with open(os.path.join(d, "forwarding.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fwdreport.py DIR")
    main(sys.argv[1])
