package kernel

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	mnl "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nfnlgrpNftrace is the netlink group nftables trace events go to
// (NFNLGRP_NFTRACE in linux/netfilter/nfnetlink.h).
const nfnlgrpNftrace = 9

// TraceEvent is one verdict the kernel reported for a traced packet.
type TraceEvent struct {
	Node    string `json:"node"`
	Family  string `json:"family"`
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Handle  uint64 `json:"handle,omitempty"`
	Type    string `json:"type"`    // rule, policy or return
	Verdict string `json:"verdict"` // accept, drop, continue, ...
	Rule    string `json:"rule,omitempty"`
}

// Drops reports whether the event ended the packet.
func (e TraceEvent) Drops() bool { return e.Verdict == "drop" }

// Tracer marks the packets of one flow in a namespace for nftables
// tracing, and collects the verdicts the kernel reports for them:
//
//	table inet nsrouter-trace {
//		chain pre { type filter hook prerouting priority -350; ip saddr A ip daddr B meta nftrace set 1 ... }
//		chain out { type filter hook output priority -350; ... }
//	}
//
// The mark does not survive a veth into another namespace, so every
// namespace on the path gets a tracer of its own.
type Tracer struct {
	ns     *NS
	node   string
	table  *nftables.Table
	conn   *mnl.Conn
	mu     sync.Mutex
	events []TraceEvent
	done   chan struct{}
}

// TraceTable is the table a tracer adds, and removes when it stops.
const TraceTable = "nsrouter-trace"

// StartTrace starts tracing packets between a and b, both directions.
func (ns *NS) StartTrace(node string, a, b netip.Addr) (*Tracer, error) {
	conn, err := mnl.Dial(unix.NETLINK_NETFILTER, &mnl.Config{NetNS: ns.Fd()})
	if err != nil {
		return nil, &OpError{Op: "open trace socket", Node: ns.Name, Err: err}
	}
	if err := conn.JoinGroup(nfnlgrpNftrace); err != nil {
		conn.Close()
		return nil, &OpError{Op: "join trace group", Node: ns.Name, Err: err}
	}
	t := &Tracer{ns: ns, node: node, conn: conn, done: make(chan struct{}),
		table: &nftables.Table{Name: TraceTable, Family: nftables.TableFamilyINet}}
	if err := t.install(a, b); err != nil {
		conn.Close()
		return nil, err
	}
	go t.read()
	return t, nil
}

func (t *Tracer) install(a, b netip.Addr) error {
	c := t.ns.conn()
	c.AddTable(t.table)
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"pre", nftables.ChainHookPrerouting}, {"out", nftables.ChainHookOutput}} {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: t.table, Type: nftables.ChainTypeFilter,
			Hooknum: h.hook, Priority: nftables.ChainPriorityRef(-350)})
		for _, pair := range [][2]netip.Addr{{a, b}, {b, a}} {
			e := matchNFProto(pair[0].Is6())
			e = append(e, matchPrefix(netip.PrefixFrom(pair[0], pair[0].BitLen()), true)...)
			e = append(e, matchPrefix(netip.PrefixFrom(pair[1], pair[1].BitLen()), false)...)
			e = append(e, &expr.Immediate{Register: 1, Data: []byte{1}},
				&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1})
			c.AddRule(&nftables.Rule{Table: t.table, Chain: ch, Exprs: e})
		}
	}
	if err := c.Flush(); err != nil {
		return &OpError{Op: "add trace table", Node: t.ns.Name, Err: err}
	}
	return nil
}

func (t *Tracer) read() {
	defer close(t.done)
	for {
		msgs, err := t.conn.Receive()
		if err != nil {
			return
		}
		for _, m := range msgs {
			if m.Header.Type != mnl.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE) || len(m.Data) < 4 {
				continue
			}
			if ev, ok := parseTrace(m.Data[0], m.Data[4:]); ok {
				ev.Node = t.node
				t.mu.Lock()
				t.events = append(t.events, ev)
				t.mu.Unlock()
			}
		}
	}
}

var traceTypes = map[uint32]string{1: "policy", 2: "return", 3: "rule"}

func parseTrace(family byte, b []byte) (TraceEvent, bool) {
	ad, err := mnl.NewAttributeDecoder(b)
	if err != nil {
		return TraceEvent{}, false
	}
	ad.ByteOrder = binary.BigEndian
	ev := TraceEvent{Family: familyName(nftables.TableFamily(family))}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TRACE_TABLE:
			ev.Table = ad.String()
		case unix.NFTA_TRACE_CHAIN:
			ev.Chain = ad.String()
		case unix.NFTA_TRACE_RULE_HANDLE:
			ev.Handle = ad.Uint64()
		case unix.NFTA_TRACE_TYPE:
			ev.Type = traceTypes[ad.Uint32()]
		case unix.NFTA_TRACE_POLICY:
			ev.Verdict = verdictName(int32(ad.Uint32()))
		case unix.NFTA_TRACE_VERDICT:
			ad.Nested(func(nad *mnl.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.NFTA_VERDICT_CODE {
						ev.Verdict = verdictName(int32(nad.Uint32()))
					}
				}
				return nil
			})
		}
	}
	return ev, ad.Err() == nil && ev.Table != ""
}

func verdictName(v int32) string {
	switch v {
	case 0: // NF_DROP
		return "drop"
	case 1: // NF_ACCEPT
		return "accept"
	case unix.NFT_CONTINUE:
		return "continue"
	case unix.NFT_RETURN:
		return "return"
	case unix.NFT_JUMP:
		return "jump"
	case unix.NFT_GOTO:
		return "goto"
	}
	return fmt.Sprintf("verdict %d", v)
}

// Stop waits briefly for late events, removes the trace table and returns
// what was seen, each rule named by its comment or position.
func (t *Tracer) Stop() []TraceEvent {
	time.Sleep(50 * time.Millisecond)
	t.conn.Close()
	<-t.done
	c := t.ns.conn()
	c.DelTable(t.table)
	c.Flush()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.events {
		t.events[i].Rule = t.ns.ruleText(t.events[i])
	}
	return t.events
}

// ruleText names the rule an event points at: its comment, or its
// position in the chain.
func (ns *NS) ruleText(ev TraceEvent) string {
	if ev.Type != "rule" {
		return ""
	}
	fam := map[string]nftables.TableFamily{"ip": nftables.TableFamilyIPv4, "ip6": nftables.TableFamilyIPv6,
		"inet": nftables.TableFamilyINet, "bridge": nftables.TableFamilyBridge}[ev.Family]
	tbl := &nftables.Table{Name: ev.Table, Family: fam}
	rules, err := ns.conn().GetRules(tbl, &nftables.Chain{Name: ev.Chain, Table: tbl})
	if err != nil {
		return ""
	}
	for i, r := range rules {
		if r.Handle == ev.Handle {
			if c := commentOf(r); c != "" {
				return c
			}
			return fmt.Sprintf("rule %d of the chain", i+1)
		}
	}
	return ""
}

// RouteInfo is the kernel's answer to a route lookup.
type RouteInfo struct {
	Dev   string
	Gw    netip.Addr
	Src   netip.Addr
	Table int
}

// RouteGet asks the kernel which route a packet to dst takes in ns
// (`ip route get`), as if it came in on iif when that is set.
func (ns *NS) RouteGet(dst, src netip.Addr, iif string) (RouteInfo, error) {
	opt := &netlink.RouteGetOptions{Iif: iif}
	if src.IsValid() && iif != "" {
		opt.SrcAddr = src.AsSlice()
	}
	routes, err := ns.nl.RouteGetWithOptions(dst.AsSlice(), opt)
	if err != nil {
		return RouteInfo{}, err
	}
	if len(routes) == 0 {
		return RouteInfo{}, unix.ENETUNREACH
	}
	r := routes[0]
	info := RouteInfo{Table: r.Table}
	info.Gw, _ = netip.AddrFromSlice(r.Gw)
	info.Gw = info.Gw.Unmap()
	info.Src, _ = netip.AddrFromSlice(r.Src)
	info.Src = info.Src.Unmap()
	if l, err := ns.nl.LinkByIndex(r.LinkIndex); err == nil {
		info.Dev = l.Attrs().Name
	}
	return info, nil
}

// NeighborFailed reports whether the neighbour entry for addr on dev says
// that it did not answer ARP or neighbour discovery.
func (ns *NS) NeighborFailed(dev string, addr netip.Addr) bool {
	l, err := ns.nl.LinkByName(dev)
	if err != nil {
		return false
	}
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	neighs, err := dump(func() ([]netlink.Neigh, error) { return ns.nl.NeighList(l.Attrs().Index, fam) })
	if err != nil {
		return false
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == addr {
			return n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) != 0
		}
	}
	return false
}
