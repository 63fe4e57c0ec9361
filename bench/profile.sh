#!/bin/bash
# profile.sh -- which settings of lab links raise forwarding throughput?
# The measurements behind the "fast profile" question of issue 7: iperf3
# over the direct and routed paths of the shared harness (built by hand),
# with candidate settings on every veth end:
#
#   base        the kernel's defaults
#   gro         GRO on (ethtool -K gro on: veth then receives through NAPI)
#   bigtcp      GSO/GRO packets up to 185,000 bytes, IPv4 and IPv6
#               (BIG TCP; set over netlink by bench/linkset)
#   bigtcp+gro  both
#   txq0        txqueuelen 0
#
#   sudo bench/profile.sh [--rounds R] [--secs S] [--variants "..."] [--out DIR]
#
#   defaults: 6 rounds, 4 s, variants "direct:base routed:base direct:bigtcp
#   routed:bigtcp routed:gro routed:bigtcp+gro" (about 3 minutes).
#
# The client runs on CPU 0, the server on CPU 1. Prints the median Gbit/s of
# each variant and its per-round ratio to direct:base. Everything runs in
# lib/sandbox.sh's throwaway namespaces. Installs iperf3 and ethtool if
# missing (ethtool is only this experiment's tool; nsrouter uses netlink).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${NSR_SHARED_BENCH:-$REPO/../shared/bench}
ROUNDS=6 SECS=4 OUT=
VARIANTS="direct:base routed:base direct:bigtcp routed:bigtcp routed:gro routed:bigtcp+gro"

usage() { sed -n '2,23p' "$0"; }
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--variants) VARIANTS=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "profile.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ && $SECS =~ ^[1-9][0-9]?$ ]] ||
	{ echo "profile.sh: rounds and secs are 1 to 99" >&2; exit 2; }
for v in $VARIANTS; do
	[[ $v =~ ^(direct|routed):(base|gro|bigtcp|bigtcp\+gro|txq0)$ ]] ||
		{ echo "profile.sh: bad variant $v" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "profile.sh: needs root (network namespaces); run it with sudo" >&2; exit 3; }
(($(nproc) >= 2)) || { echo "profile.sh: needs 2 CPUs (client and server are pinned apart)" >&2; exit 3; }

OUT=${OUT:-/tmp/nsr-profile-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/nsr-profile-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export PATH=$PATH:/usr/local/go/bin
source "$HERE/lib/prereq.sh"
need_debs iproute2 iperf3 ethtool iputils-ping
(cd "$REPO" && timeout 300 go build -o "$WORK/linkset" ./bench/linkset)

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: nproc=$(nproc) kernel=$(uname -r); iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
	echo "rounds: $ROUNDS; iperf3: $SECS s, 1 stream, client CPU 0, server CPU 1"
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/info.txt"
OUT=$OUT VARIANTS=$VARIANTS ROUNDS=$ROUNDS SECS=$SECS LINKSET=$WORK/linkset \
	"$HERE/lib/sandbox.sh" "$HERE/lib/profile.sh" || echo "profile.sh: the sandboxed part failed" >&2
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info.txt"

python3 - "$OUT/profile.csv" <<'EOF' | tee "$OUT/profile.md"
import csv, statistics, sys
runs, order = {}, []
for r in csv.DictReader(open(sys.argv[1])):
    try:
        g = float(r["gbps"])
    except ValueError:
        continue
    if g == g:
        runs[(r["variant"], r["round"])] = g
        if r["variant"] not in order:
            order.append(r["variant"])
print("| variant | Gbit/s (median) | x direct:base (median of rounds) | rounds |")
print("|---|---|---|---|")
for v in order:
    gs = [g for (w, _), g in runs.items() if w == v]
    rs = [g / runs[("direct:base", rd)] for (w, rd), g in runs.items() if w == v and ("direct:base", rd) in runs]
    print("| %s | %.1f | %s | %d |" % (v, statistics.median(gs),
          "%.2f (%.2f-%.2f)" % (statistics.median(rs), min(rs), max(rs)) if rs else "-", len(gs)))
EOF
