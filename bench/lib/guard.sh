# guard.sh -- sourced by every bench script that changes the kernel. It
# returns only when the script runs inside the sandbox lib/sandbox.sh made:
# the network namespace is the one that script checked was new and empty,
# not the one it was started from, and the PID namespace is a new one (in
# the machine's own, PID 2 is the kernel's kthreadd).
nsr_guard() {
	local here
	here=$(stat -L -c %i /proc/self/ns/net)
	if [[ ${BN_IN_SANDBOX:-} != 1 || -z ${NSR_BENCH_NETNS:-} || -z ${NSR_BENCH_OUTER_NETNS:-} ||
		$here != "$NSR_BENCH_NETNS" || $here == "$NSR_BENCH_OUTER_NETNS" ||
		$(cat /proc/2/comm 2>/dev/null) == kthreadd ]]; then
		echo "${0##*/}: refusing to run outside the bench sandbox (start it through bench/run.sh, forwarding.sh or profile.sh)" >&2
		exit 2
	fi
}
nsr_guard
