#!/bin/bash
# forwarding.sh -- does traffic cross a path nsrouter built as fast as the
# same path built by hand, and how close does the fast profile bring a
# routed path to a direct veth pair? iperf3 (one TCP stream) and ping over
# the shared harness's paths, client a, server b (10.9.2.2):
#
#   direct   a veth pair between the two hosts: the reference
#   routed   host, veth, router r (ip_forward), veth, host
#   masq     host, veth, br0 in r, routed out with nftables masquerade
#
# Every path is built three times -- by hand (the harness's ip and nft
# commands), by nsrouter, and by nsrouter with `profile: fast` -- and the
# direct pair twice (by hand, and by nsrouter with the fast profile), all
# at once in their own namespaces. Then cycles: each runs iperf3 for S
# seconds over every variant, in a new random order. Ratios are medians of
# per-cycle ratios, so drift of the machine's speed cancels out. Prints
# medians, ratios and PASS/FAIL for nsrouter/hand >= 0.98 (routed, masq)
# and routed with the fast profile >= 0.95 of the direct pair.
#
#   sudo bench/forwarding.sh [--cycles C] [--secs S] [--paths "routed masq"]
#                            [--no-pin] [--out DIR]
#
#   defaults: 20 cycles of 2 s runs: about 7 minutes.
#   iperf3's client runs on CPU 0 and its server on CPU 1 (taskset), which
#   makes runs repeatable; --no-pin leaves them to the scheduler.
#
# Everything runs in lib/sandbox.sh's throwaway namespaces; the traffic
# never leaves the namespaces made there. Installs iperf3 if missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${NSR_SHARED_BENCH:-$REPO/../shared/bench}
CYCLES=20 SECS=2 PATHS="routed masq" OUT= PIN=1

usage() { sed -n '2,29p' "$0"; }
while (($#)); do
	case $1 in
	--cycles) CYCLES=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--paths) PATHS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--no-pin) PIN=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "forwarding.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $CYCLES =~ ^[1-9][0-9]?$ && $SECS =~ ^[1-9][0-9]?$ ]] ||
	{ echo "forwarding.sh: cycles and secs are 1 to 99" >&2; exit 2; }
for p in $PATHS; do
	[[ $p == routed || $p == masq ]] || { echo "forwarding.sh: paths are routed and masq" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "forwarding.sh: needs root (network namespaces); run it with sudo" >&2; exit 3; }
[[ -x $SHARED/lib/bench_tput.sh ]] || { echo "forwarding.sh: no harness at $SHARED (set NSR_SHARED_BENCH)" >&2; exit 3; }

OUT=${OUT:-/tmp/nsr-fwd-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/nsr-fwd-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export PATH=$PATH:/usr/local/go/bin
(($(nproc) >= 2)) || PIN=0

source "$HERE/lib/prereq.sh"
need_debs iproute2 nftables iperf3 iputils-ping
build_binaries "$WORK/bin"
mkdir -p "$WORK/topo"
topo() { "$HERE/lib/topo.sh" "fwd-$1" "$2-" "$3" >"$WORK/topo/fwd-$1-$2-$3.yaml"; }
topo direct df fast
for p in $PATHS; do
	topo "$p" "n${p:0:1}" default
	topo "$p" "f${p:0:1}" fast
done

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: nproc=$(nproc) kernel=$(uname -r) mem=$(free -g | awk '/Mem:/{print $2}')GiB"
	echo "versions: nsrouter $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?');" \
		"iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
	echo "cycles: $CYCLES; iperf3: $SECS s, 1 stream; paths: direct $PATHS;" \
		"pinned: $( ((PIN)) && echo 'client CPU 0, server CPU 1' || echo no)"
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/info.txt"

NSR=$WORK/bin/nsrouter TOPO=$WORK/topo OUT=$OUT PATHS="$PATHS" CYCLES=$CYCLES SECS=$SECS PIN=$PIN \
	"$HERE/lib/sandbox.sh" "$HERE/lib/forward.sh" || echo "forwarding.sh: the sandboxed part failed" >&2

echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info.txt"
echo
python3 "$HERE/lib/fwdreport.py" "$OUT"
echo "results: $OUT/forwarding.md"
