package witness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// volatile are JSON fields that differ between two builds of the same
// network: indexes, random MAC addresses and what derives from them,
// counters and handles.
var volatile = map[string]bool{
	"ifindex": true, "link_index": true, "address": true, "broadcast": true, "perm_address": true,
	"handle": true, "packets": true, "bytes": true, "link_netnsid": true, "link": true,
	"valid_life_time": true, "preferred_life_time": true, "stats64": true, "num_tx_queues": true,
	"num_rx_queues": true, "gso_max_size": true, "gso_max_segs": true, "parentbus": true, "parentdev": true,
	"bridge_id": true, "root_id": true, "hello_timer": true, "tcn_timer": true, "topology_change_timer": true,
	"gc_timer": true, "operstate": true, "port_id": true, "port_no": true, "designated_port": true, "designated_bridge": true, "designated_root": true, "forward_delay_timer": true, "message_age_timer": true, "hold_timer": true, "inet6_addr_gen_mode": true, "id": true, "no": true, "hash_elasticity": true,
}

// carrierless drops the carrier flags from an interface's flags: the
// kernel reports a peer's state change through its link watch, late on a
// busy machine; whether each end is UP is what was configured.
func carrierless(x any) any {
	list, ok := x.([]any)
	if !ok {
		return x
	}
	var out []any
	for _, f := range list {
		if f != "NO-CARRIER" && f != "LOWER_UP" {
			out = append(out, f)
		}
	}
	return out
}

// clean drops volatile fields and link-local addresses and routes.
func clean(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			switch {
			case volatile[k]:
			case k == "flags":
				out[k] = carrierless(x)
			default:
				out[k] = clean(x)
			}
		}
		return out
	case []any:
		var out []any
		for _, x := range v {
			b, _ := json.Marshal(x)
			if s := string(b); strings.Contains(s, "fe80") || strings.Contains(s, `"ff00::/8"`) || strings.Contains(s, "ff02") {
				continue
			}
			out = append(out, clean(x))
		}
		return out
	}
	return v
}

// jsonLines runs a command printing a JSON list and returns its items,
// cleaned, one canonical line each, sorted.
func jsonLines(t testing.TB, name string, args ...string) []string {
	t.Helper()
	var list any
	JSON(t, &list, name, args...)
	var out []string
	items, ok := clean(list).([]any)
	if !ok {
		items = []any{clean(list)}
	}
	for _, x := range items {
		b, _ := json.Marshal(x)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// nsSysctls are the settings nsrouter may write in a namespace.
var nsSysctls = []string{
	"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
	"net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter",
	"net/ipv6/conf/all/disable_ipv6", "net/ipv6/conf/default/disable_ipv6",
	"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
}

// batchLines runs `ip -d -j [-n NS] [-6] -batch -` with the given commands
// and returns each command's items, cleaned, one canonical line each,
// sorted per command.
func batchLines(t testing.TB, ns string, v6 bool, cmds ...string) [][]string {
	t.Helper()
	args := []string{"-d", "-j"}
	if v6 {
		args = append(args, "-6")
	} else {
		args = append(args, "-4")
	}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	cmd := exec.Command("ip", append(args, "-batch", "-")...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ip %v -batch: %v", args, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var res [][]string
	for range cmds {
		var list []any
		if err := dec.Decode(&list); err != nil {
			t.Fatalf("ip -batch output: %v\n%s", err, out)
		}
		var lines []string
		for _, x := range clean(list).([]any) {
			b, _ := json.Marshal(x)
			lines = append(lines, string(b))
		}
		slices.Sort(lines)
		res = append(res, lines)
	}
	return res
}

// Semantic renders what matters of the host and every named namespace,
// leaving out what differs between two builds of the same network
// (interface indexes, MAC addresses, link-local addresses, rule handles,
// counters, timers), so a network built one way can be compared with the
// same network built another.
func Semantic(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	names := strings.Fields(Run(t, "sh", "-c", "ip netns list | cut -d' ' -f1"))
	slices.Sort(names)
	for _, ns := range append([]string{""}, names...) {
		fmt.Fprintf(&b, "### namespace %q\n", ns)
		for _, part := range [][][]string{
			batchLines(t, ns, false, "link show", "addr show", "route show table all", "rule show"),
			batchLines(t, ns, true, "route show table all", "rule show"),
		} {
			for _, lines := range part {
				fmt.Fprintf(&b, "##\n%s\n", strings.Join(lines, "\n"))
			}
		}
		prefix := ""
		if ns != "" {
			prefix = "ip netns exec " + ns + " "
		}
		var rs map[string]any
		JSON(t, &rs, "sh", "-c", prefix+"nft -j list ruleset")
		j, _ := json.Marshal(clean(rs))
		fmt.Fprintf(&b, "## nft\n%s\n", j)
		script := "for f in " + strings.Join(nsSysctls, " ") + "; do printf '%s = ' $f; cat /proc/sys/$f 2>/dev/null || echo absent; done"
		args := []string{"sh", "-c", script}
		if ns != "" {
			args = append([]string{"ip", "netns", "exec", ns}, args...)
		}
		b.WriteString(Run(t, args[0], args[1:]...))
	}
	files, _ := filepath.Glob("/etc/netns/*/*")
	for _, f := range files {
		c, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "### file %s\n%s\n", f, c)
	}
	return b.String()
}
