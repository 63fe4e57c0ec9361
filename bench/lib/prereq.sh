# prereq.sh -- sourced by run.sh and forwarding.sh: packages, binaries,
# the Go benchmarks and the plot. Nothing here touches the network stack;
# the package installs and Go builds run before the sandbox is entered,
# since the sandbox has no network.

# need_debs PKG...: install the Debian packages that are missing.
need_debs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	echo "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq &&
		timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ echo "could not install ${missing[*]}" >&2; return 1; }
}

# build_binaries DIR: nsrouter from this tree and the harness's netlink
# reference program, built from its own folder into DIR.
build_binaries() {
	mkdir -p "$1"
	(cd "$REPO" && timeout 300 go build -o "$1/nsrouter" ./cmd/nsrouter) ||
		{ echo "building nsrouter failed" >&2; return 1; }
	(cd "$SHARED/netlinkref" && timeout 300 go build -o "$1/netlinkref" .) ||
		{ echo "building the netlink reference failed" >&2; return 1; }
}

# plan_bench CSV: decoding+validation and planning of a 100,000-host star
# from the Go benchmarks, three rows each (each the mean of three
# iterations); rows what,n,run,seconds,result.
plan_bench() {
	local out line name ns
	local -A run=()
	out=$(cd "$REPO" && timeout 300 go test -run '^$' -bench 'Star100000$' -benchtime 3x -count 3 \
		./topology ./plan 2>&1) || { echo "$out" | tail -5 >&2; return 0; }
	[[ -s $1 ]] || echo "what,n,run,seconds,result" >"$1"
	while read -r line; do
		name=${line%%-*}
		ns=$(awk '{for (i = 1; i < NF; i++) if ($(i+1) == "ns/op") print $i}' <<<"$line")
		case $name in
		BenchmarkParseStar100000) name=parse-100000 ;;
		BenchmarkBuildStar100000) name=plan-100000 ;;
		*) continue ;;
		esac
		run[$name]=$((${run[$name]:-0} + 1))
		echo "$name,100001,${run[$name]},$(awk -v n="$ns" 'BEGIN{printf "%.4f", n/1e9}'),ok" >>"$1"
		echo "  $name: $(awk -v n="$ns" 'BEGIN{printf "%.3f", n/1e9}') s"
	done < <(grep '^Benchmark' <<<"$out")
}

# plot_up DIR PNG: up time against N per method, star and bridge side by
# side, from DIR/up-SHAPE.dat (written by report.py).
plot_up() {
	local dir=$1 png=$2 shape plots=()
	for shape in star bridge; do
		[[ -s $dir/up-$shape.dat ]] && plots+=("$shape")
	done
	((${#plots[@]})) || { echo "no data to plot" >&2; return 0; }
	timeout 60 gnuplot -e "dir='$dir'; out='$png'; shapes='${plots[*]}'" "$HERE/lib/up.gp" ||
		echo "gnuplot failed" >&2
}
