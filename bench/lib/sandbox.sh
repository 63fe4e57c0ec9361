#!/bin/bash
# sandbox.sh CMD [ARGS...] -- run CMD in a throwaway sandbox.
#
# The shared harness's lib/sandbox.sh makes the sandbox: new network, mount
# and PID namespaces, a tmpfs on /run/netns, /proc/sys read-only except
# /proc/sys/net, lo up. nsrouter also writes /etc/netns/NODE/hosts and
# /run/nsrouter/LAB, and reads /sys/class/net, so this script then mounts
# tmpfs on /etc/netns and /run/nsrouter and a fresh sysfs on /sys, all
# inside the sandbox's own mount namespace. When CMD ends, the kernel kills
# every process left inside and frees every namespace made there.
#
# Scripts that touch the kernel source lib/guard.sh, which refuses to go on
# unless they run in the network namespace this script made.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHARED=${NSR_SHARED_BENCH:-$(cd "$HERE/../.." && pwd)/../shared/bench}

if [[ ${NSR_BENCH_STAGE:-} != enter ]]; then
	[[ $(id -u) == 0 ]] || { echo "sandbox.sh: needs root (network and mount namespaces)" >&2; exit 2; }
	[[ -x $SHARED/lib/sandbox.sh ]] || { echo "sandbox.sh: no harness at $SHARED (set NSR_SHARED_BENCH)" >&2; exit 2; }
	NSR_BENCH_OUTER_NETNS=$(stat -L -c %i /proc/self/ns/net)
	export NSR_BENCH_OUTER_NETNS NSR_BENCH_STAGE=enter
	# Without this the shared script would trust an inherited marker and
	# run CMD where we are instead of making new namespaces.
	unset BN_IN_SANDBOX
	exec "$SHARED/lib/sandbox.sh" "$0" "$@"
fi

# Inside: the namespace must be new and empty (lo only) before we add to it.
NSR_BENCH_NETNS=$(stat -L -c %i /proc/self/ns/net)
if [[ $NSR_BENCH_NETNS == "$NSR_BENCH_OUTER_NETNS" ]]; then
	echo "sandbox.sh: still in the caller's network namespace; refusing" >&2
	exit 2
fi
if [[ $(ip -o link show | wc -l) != 1 || -n $(ls -A /run/netns) ]]; then
	echo "sandbox.sh: the new network namespace is not empty; refusing" >&2
	exit 2
fi
for dir in /etc/netns /run/nsrouter; do
	mkdir -p "$dir"
	mount -t tmpfs -o mode=0755 nsr-bench "$dir"
done
mount -t sysfs sysfs /sys
unset NSR_BENCH_STAGE
export NSR_BENCH_NETNS
exec "$@"
