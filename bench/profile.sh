#!/bin/bash
# profile.sh -- which settings of lab links raise forwarding throughput?
# The measurements behind nsrouter's fast profile (issue 7): iperf3 over
# the shared harness's paths (direct, routed, masq), built by hand, with a
# candidate setting on every veth end:
#
#   base      the kernel's defaults
#   big4      IPv4 GSO/GRO packets up to 185,000 bytes (IPv4 BIG TCP, set
#             over netlink by bench/linkset): what `profile: fast` sets
#   big512    the same at the kernel's limit, 524,280 bytes
#   gro       GRO on (ethtool -K gro on: veth then receives through NAPI)
#   big4+gro  both
#   txq0      txqueuelen 0
#   nobrnf    masq only: bridge-nf-call-iptables 0 in the router (no
#             netfilter hooks for frames the bridge passes)
#
#   sudo bench/profile.sh [--cycles C] [--secs S] [--variants "..."] [--out DIR]
#
#   defaults: 12 cycles of 2 s runs over "direct:base direct:big4
#   routed:base routed:big4 routed:big4+gro routed:gro masq:base masq:big4
#   masq:nobrnf" (about 5 minutes).
#
# All variants are built at once and each cycle runs every one of them, in
# a new random order; ratios are medians of per-cycle ratios to
# direct:base. Everything runs in lib/sandbox.sh's throwaway namespaces.
# Installs iperf3 and ethtool if missing (ethtool is only this experiment's
# tool; nsrouter uses netlink).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${NSR_SHARED_BENCH:-$REPO/../shared/bench}
CYCLES=12 SECS=2 OUT=
VARIANTS="direct:base direct:big4 routed:base routed:big4 routed:big4+gro routed:gro masq:base masq:big4 masq:nobrnf"

usage() { sed -n '2,28p' "$0"; }
while (($#)); do
	case $1 in
	--cycles) CYCLES=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--variants) VARIANTS=$2; shift ;;
	--out) OUT=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "profile.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $CYCLES =~ ^[1-9][0-9]?$ && $SECS =~ ^[1-9][0-9]?$ ]] ||
	{ echo "profile.sh: cycles and secs are 1 to 99" >&2; exit 2; }
for v in $VARIANTS; do
	[[ $v =~ ^(direct|routed|masq):(base|gro|big4|big512|big4\+gro|txq0)$ || $v == masq:nobrnf ]] ||
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
need_debs iproute2 nftables iperf3 ethtool iputils-ping
(cd "$REPO" && timeout 300 go build -o "$WORK/linkset" ./bench/linkset)

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: nproc=$(nproc) kernel=$(uname -r); iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
	echo "cycles: $CYCLES; iperf3: $SECS s, 1 stream, client CPU 0, server CPU 1"
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/info.txt"
OUT=$OUT VARIANTS=$VARIANTS CYCLES=$CYCLES SECS=$SECS LINKSET=$WORK/linkset \
	"$HERE/lib/sandbox.sh" "$HERE/lib/profile.sh" || echo "profile.sh: the sandboxed part failed" >&2
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info.txt"

python3 - "$OUT/profile.csv" $VARIANTS <<'EOF' | tee "$OUT/profile.md"
import csv, statistics, sys
runs, order = {}, sys.argv[2:]
for r in csv.DictReader(open(sys.argv[1])):
    try:
        g = float(r["gbps"])
    except ValueError:
        continue
    if g == g:
        runs[(r["variant"], r["cycle"])] = g
print("| variant | Gbit/s (median) | x direct:base (median of per-cycle ratios, interquartile range) | cycles |")
print("|---|---|---|---|")
for v in order:
    gs = [g for (w, _), g in runs.items() if w == v]
    if not gs:
        print("| %s | - | not measured | 0 |" % v)
        continue
    rs = [g / runs[("direct:base", rd)] for (w, rd), g in runs.items() if w == v and ("direct:base", rd) in runs]
    q = statistics.quantiles(rs, n=4) if len(rs) > 1 else rs * 3
    print("| %s | %.1f | %s | %d |" % (v, statistics.median(gs),
          "%.2f (%.2f-%.2f)" % (statistics.median(rs), q[0], q[2]) if rs else "-", len(gs)))
EOF
