#!/bin/bash
# forwarding.sh -- does traffic cross a path nsrouter built as fast as the
# same path built by hand? iperf3 (and ping) over the shared harness's
# paths, client tp-a, server tp-b (10.9.2.2):
#
#   direct   a veth pair between the two hosts: the reference
#   routed   host, veth, router tp-r (ip_forward), veth, host
#   masq     host, veth, br0 in tp-r, routed out with nftables masquerade
#
# Each round builds every path fresh, once by hand (the harness's ip and
# nft commands) and once with nsrouter from files with the same names and
# addresses (bench/lib/topo.sh fwd-routed, fwd-masq), alternating which
# goes first. Prints medians, ratios and PASS/FAIL for nsrouter/hand >= 0.98
# and routed/direct >= 0.95.
#
#   sudo bench/forwarding.sh [--rounds R] [--secs S] [--streams "1 4"]
#                            [--paths "routed masq"] [--no-pin] [--out DIR]
#
#   defaults: 5 rounds, 5 s per iperf3 run, 1 stream: about 3 minutes.
#   iperf3's client runs on CPU 0 and its server on CPU 1 (taskset), which
#   makes runs repeatable; --no-pin leaves them to the scheduler.
#
# Everything runs in lib/sandbox.sh's throwaway namespaces; the traffic
# never leaves the namespaces made there. Installs iperf3 if missing.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${NSR_SHARED_BENCH:-$REPO/../shared/bench}
ROUNDS=5 SECS=5 STREAMS=1 PATHS="routed masq" OUT= PIN=1

usage() { sed -n '2,27p' "$0"; }
while (($#)); do
	case $1 in
	--rounds) ROUNDS=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--streams) STREAMS=$2; shift ;;
	--paths) PATHS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--no-pin) PIN=0 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "forwarding.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
[[ $ROUNDS =~ ^[1-9][0-9]?$ && $SECS =~ ^[1-9][0-9]?$ ]] ||
	{ echo "forwarding.sh: rounds and secs are 1 to 99" >&2; exit 2; }
for s in $STREAMS; do [[ $s =~ ^[1-8]$ ]] || { echo "forwarding.sh: streams are 1 to 8" >&2; exit 2; }; done
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
for p in $PATHS; do "$HERE/lib/topo.sh" "fwd-$p" >"$WORK/topo/fwd-$p.yaml"; done

{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine: nproc=$(nproc) kernel=$(uname -r) mem=$(free -g | awk '/Mem:/{print $2}')GiB"
	echo "versions: nsrouter $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?');" \
		"iperf3 $(iperf3 --version | head -1 | awk '{print $2}')"
	echo "rounds: $ROUNDS; iperf3: $SECS s, streams $STREAMS; paths: direct $PATHS;" \
		"pinned: $( ((PIN)) && echo 'client CPU 0, server CPU 1' || echo no)"
	echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/info.txt"

NSR=$WORK/bin/nsrouter TOPO=$WORK/topo OUT=$OUT SHARED=$SHARED PATHS="$PATHS" ROUNDS=$ROUNDS PIN=$PIN \
	BN_SECS=$SECS BN_PINGS=${BN_PINGS:-20} BN_STREAMS="$STREAMS" \
	"$HERE/lib/sandbox.sh" "$HERE/lib/forward.sh" || echo "forwarding.sh: the sandboxed part failed" >&2

echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/info.txt"
echo
python3 "$HERE/lib/fwdreport.py" "$OUT"
echo "results: $OUT/forwarding.md"
