# guard.sh -- sourced by every bench script that changes the kernel. It
# returns only when the script runs inside the sandbox lib/sandbox.sh made:
# the network namespace is the one that script checked was new and empty,
# and not the one it was started from.
nsr_guard() {
	local here
	here=$(stat -L -c %i /proc/self/ns/net)
	if [[ ${BN_IN_SANDBOX:-} != 1 || -z ${NSR_BENCH_NETNS:-} ||
		$here != "$NSR_BENCH_NETNS" || $here == "${NSR_BENCH_OUTER_NETNS:-}" ]]; then
		echo "${0##*/}: refusing to run outside the bench sandbox (start it through bench/run.sh or bench/forwarding.sh)" >&2
		exit 2
	fi
}
nsr_guard
