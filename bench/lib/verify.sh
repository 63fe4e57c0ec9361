#!/bin/bash
# verify.sh NSROUTER FILE N -- untimed check of a lab a benchmark built:
# nsrouter check passes (h1 reaches hN across the router; in the bridge
# shape hN also reaches wan through the masquerade) and /run/netns holds
# the lab's namespaces and no more. Prints "ok" or what failed.
nsr=$1 file=$2 n=$3
want=$((n + 1))
[[ $file == */bridge-* ]] && want=$((n + 2)) # r, wan and the hosts
have=$(ls /run/netns | wc -l)
((have == want)) || { echo "FAIL: $have namespaces, want $want"; exit 1; }
out=$(timeout 60 "$nsr" check "$file" 2>&1) || { echo "FAIL: check: $(echo "$out" | tail -1)"; exit 1; }
[[ $(echo "$out" | tail -1) =~ ^[1-9][0-9]*\ passed,\ 0\ failed ]] || { echo "FAIL: check proved nothing: $(echo "$out" | tail -1)"; exit 1; }
echo ok
