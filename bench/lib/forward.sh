#!/bin/bash
# forward.sh -- the part of bench/forwarding.sh that runs inside the
# sandbox. Each round measures, with the shared harness's bench_tput.sh
# (one run each), a direct veth pair and then every path twice: built by
# hand (the harness's own commands) and built by nsrouter from the same
# names and addresses. The order of the two builders alternates from round
# to round, so a drift in the machine's speed does not favour either.
# forwarding.sh sets the environment:
#
#   NSR TOPO OUT SHARED   binary, topology files, results folder, harness
#   PATHS ROUNDS          paths (routed masq) and rounds
#   PIN                   1: iperf3's client on CPU 0, its server on CPU 1
#   BN_SECS BN_PINGS BN_STREAMS   passed on to bench_tput.sh
#
# All traffic runs between the namespaces tp-a, tp-r and tp-b made here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/guard.sh"

measure() { # builder path
	local up= down=
	if [[ $1 == nsrouter ]]; then
		up="$NSR up --quiet $TOPO/fwd-{PATH}.yaml"
		down="$NSR down $TOPO/fwd-{PATH}.yaml >/dev/null"
	fi
	local csv=$OUT/tput-$1.csv before=0
	[[ -s $csv ]] && before=$(wc -l <"$csv")
	BN_TP_UP=$up BN_TP_DOWN=$down BN_PATHS=$2 BN_RUNS=1 BN_OUT=$csv \
		timeout $((4 * ${BN_SECS:-5} + 120)) "$SHARED/lib/bench_tput.sh" 2>&1 | sed "s/^/  $1 round $r:/"
	# The same rows with their round and builder, so that report can pair
	# each nsrouter run with the hand-built run next to it.
	[[ -s $OUT/rounds.csv ]] || echo "round,builder,path,streams,run,gbps,retransmits,ping_avg_ms" >"$OUT/rounds.csv"
	tail -n +$((before + 1)) "$csv" | grep -v '^path,' | sed "s/^/$r,$1,/" >>"$OUT/rounds.csv"
}

# Pinned, the client and the forwarding work it triggers (softirq, on the
# sending CPU) share CPU 0 and the server has CPU 1; unpinned, the scheduler
# moves them around and runs of one path differ by up to 30%.
if [[ $PIN == 1 ]]; then
	export BN_TP_CLIENT_EXEC="ip netns exec tp-a taskset -c 0"
	export BN_TP_SERVER_EXEC="ip netns exec tp-b taskset -c 1"
fi

for ((r = 1; r <= ROUNDS; r++)); do
	measure hand direct
	for p in $PATHS; do
		if ((r % 2)); then
			measure hand "$p"
			measure nsrouter "$p"
		else
			measure nsrouter "$p"
			measure hand "$p"
		fi
	done
done
