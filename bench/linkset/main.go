// Command linkset raises the largest GSO and GRO packet sizes of one
// interface in the network namespace it runs in, for bench/profile.sh:
//
//	ip netns exec NODE linkset IFACE SIZE [ipv4|all]
//
// It sets IFLA_GSO_IPV4_MAX_SIZE and IFLA_GRO_IPV4_MAX_SIZE (IPv4 "BIG
// TCP", what nsrouter's fast profile sets), and with "all" (the default)
// IFLA_GSO_MAX_SIZE and IFLA_GRO_MAX_SIZE too, which IPv6 uses; iproute2
// 6.1, which Debian 12 ships, sets only those last two.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/vishvananda/netlink"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "linkset:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 2 {
		args = append(args, "all")
	}
	if len(args) != 3 || (args[2] != "ipv4" && args[2] != "all") {
		return fmt.Errorf("usage: linkset IFACE SIZE [ipv4|all]")
	}
	size, err := strconv.Atoi(args[1])
	if err != nil || size < 65536 || size > 524280 {
		return fmt.Errorf("size %q: want 65536 to 524280 bytes", args[1])
	}
	l, err := netlink.LinkByName(args[0])
	if err != nil {
		return fmt.Errorf("finding %s: %w", args[0], err)
	}
	sets := []struct {
		name string
		set  func(netlink.Link, int) error
	}{
		{"gso_ipv4_max_size", netlink.LinkSetGSOIPv4MaxSize},
		{"gro_ipv4_max_size", netlink.LinkSetGROIPv4MaxSize},
		{"gso_max_size", netlink.LinkSetGSOMaxSize},
		{"gro_max_size", netlink.LinkSetGROMaxSize},
	}
	if args[2] == "ipv4" {
		sets = sets[:2]
	}
	for _, s := range sets {
		if err := s.set(l, size); err != nil {
			return fmt.Errorf("setting %s of %s to %d: %w", s.name, args[0], size, err)
		}
	}
	return nil
}
