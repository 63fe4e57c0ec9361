#!/usr/bin/env python3
"""fwdreport.py DIR -- medians and ratios of the forwarding benchmark.

Reads DIR/tput-hand.csv and DIR/tput-nsrouter.csv (rows of the shared
harness's bench_tput.sh: path,streams,run,gbps,retransmits,ping_avg_ms)
and DIR/info.txt; writes DIR/forwarding.md and prints it.
"""
import csv
import os
import statistics
import sys


def read(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def med(xs):
    v = []
    for x in xs:
        try:
            f = float(x)
        except (TypeError, ValueError):
            continue
        if f == f:
            v.append(f)
    return statistics.median(v) if v else None


def num(x, f="%.2f"):
    return "-" if x is None else f % x


def ratio(a, b):
    return None if a is None or not b else a / b


def main(d):
    rows = {b: read(os.path.join(d, "tput-%s.csv" % b)) for b in ("hand", "nsrouter")}
    gbps, ping, count = {}, {}, {}
    paths, streams = [], set()
    for b, rs in rows.items():
        for r in rs:
            k = (b, r["path"], int(r["streams"]))
            gbps.setdefault(k, []).append(r["gbps"])
            ping.setdefault((b, r["path"]), []).append(r["ping_avg_ms"])
            if r["path"] not in paths:
                paths.append(r["path"])
            streams.add(int(r["streams"]))
    out = []
    if os.path.exists(os.path.join(d, "info.txt")):
        out.append("```\n" + open(os.path.join(d, "info.txt")).read().rstrip() + "\n```\n")
    verdicts = []
    for s in sorted(streams):
        direct = med(gbps.get(("hand", "direct", s), []))
        out.append("#### iperf3 -P %d: Gbit/s (median), ratio to a direct veth pair, ping avg ms\n" % s)
        out.append("| path | built by hand | built by nsrouter | nsrouter / hand | ping ms hand / nsrouter | runs |")
        out.append("|---|---|---|---|---|---|")
        for p in paths:
            h = med(gbps.get(("hand", p, s), []))
            n = med(gbps.get(("nsrouter", p, s), []))
            nr = ratio(n, h)
            out.append("| %s | %s (%s) | %s (%s) | %s | %s / %s | %d |" % (
                p, num(h, "%.1f"), num(ratio(h, direct)), num(n, "%.1f"), num(ratio(n, direct)), num(nr),
                num(med(ping.get(("hand", p), [])), "%.3f"), num(med(ping.get(("nsrouter", p), [])), "%.3f"),
                len(gbps.get(("hand", p, s), []))))
            if p != "direct":
                verdicts.append(("%s -P %d: nsrouter / hand" % (p, s), nr, 0.98))
            if p == "routed":
                verdicts.append(("routed -P %d: nsrouter / direct veth" % s, ratio(n, direct), 0.95))
        out.append("")
    out.append("| target | measured | limit | verdict |")
    out.append("|---|---|---|---|")
    for what, v, lim in verdicts:
        out.append("| %s | %s | >= %.2f | %s |" % (what, num(v), lim,
                                                   "n/a" if v is None else ("PASS" if v >= lim else "FAIL")))
    text = "\n".join(out) + "\n"
    with open(os.path.join(d, "forwarding.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: fwdreport.py DIR")
    main(sys.argv[1])
