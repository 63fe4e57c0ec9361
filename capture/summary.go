package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Direction says whether a frame came into the interface or left it.
type Direction int

const (
	DirUnknown Direction = iota
	DirIn                // received: for this host, broadcast, multicast or another host
	DirOut               // sent by this host
)

func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return "?"
}

// Packet is one captured frame.
type Packet struct {
	Time time.Time
	Dir  Direction
	Data []byte // the frame from its Ethernet header on, at most the snap length
	Len  int    // the frame's length on the wire
}

// String renders p as one line: time, direction, summary and length.
//
//	17:03:01.123456 out 10.12.0.2 > 10.11.0.2 ICMP echo reply id 7 seq 1, ttl 63, length 98
func (p *Packet) String() string {
	return fmt.Sprintf("%s %-3s %s, length %d", p.Time.Format("15:04:05.000000"), p.Dir, Summarize(p.Data), p.Len)
}

// Summary is what a line of capture output says about a frame.
type Summary struct {
	Src, Dst string // addresses, with ports for TCP and UDP; MAC addresses below IP
	Proto    string // "ARP", "ICMP", "ICMPv6", "IGMP", "TCP", "UDP", "IPv4", "IPv6", or "ethertype 0x88cc"
	Info     string // what the header says: "echo request id 7 seq 1", "[S.] seq 1 ack 1 win 502", ...
}

// String renders s as "SRC > DST PROTO INFO".
func (s Summary) String() string {
	out := s.Src + " > " + s.Dst + " " + s.Proto
	if s.Info != "" {
		out += " " + s.Info
	}
	return out
}

// Summarize decodes the headers of an Ethernet frame: VLAN tags, ARP,
// IPv4, IPv6 and its extension headers, ICMP, ICMPv6, IGMP, TCP and UDP. It
// never fails; what it cannot decode it says so in Info.
func Summarize(frame []byte) Summary {
	if len(frame) < 14 {
		return Summary{Src: "?", Dst: "?", Proto: "Ethernet", Info: "truncated"}
	}
	src, dst := net.HardwareAddr(frame[6:12]).String(), net.HardwareAddr(frame[0:6]).String()
	etype, payload := binary.BigEndian.Uint16(frame[12:]), frame[14:]
	var vlans []string
	for (etype == 0x8100 || etype == 0x88a8) && len(payload) >= 4 {
		vlans = append(vlans, fmt.Sprintf("vlan %d", binary.BigEndian.Uint16(payload)&0xfff))
		etype, payload = binary.BigEndian.Uint16(payload[2:]), payload[4:]
	}
	s := byEtherType(etype, payload)
	if s.Src == "" {
		s.Src, s.Dst = src, dst
	}
	if len(vlans) > 0 {
		s.Proto = strings.Join(vlans, " ") + " " + s.Proto
	}
	return s
}

func byEtherType(etype uint16, b []byte) Summary {
	switch etype {
	case 0x0806:
		return arp(b)
	case 0x0800:
		return ipv4(b)
	case 0x86dd:
		return ipv6(b)
	}
	return Summary{Proto: fmt.Sprintf("ethertype 0x%04x", etype)}
}

// arp decodes an ARP packet for IPv4 over Ethernet.
func arp(b []byte) Summary {
	s := Summary{Proto: "ARP"}
	if len(b) < 28 || b[4] != 6 || b[5] != 4 {
		s.Info = "truncated or not IPv4 over Ethernet"
		return s
	}
	sha := net.HardwareAddr(b[8:14])
	spa, tpa := netip.AddrFrom4([4]byte(b[14:18])), netip.AddrFrom4([4]byte(b[24:28]))
	switch op := binary.BigEndian.Uint16(b[6:]); op {
	case 1:
		s.Info = fmt.Sprintf("who-has %s tell %s", tpa, spa)
	case 2:
		s.Info = fmt.Sprintf("%s is-at %s", spa, sha)
	default:
		s.Info = fmt.Sprintf("operation %d", op)
	}
	return s
}

// ipv4 decodes an IPv4 header and what it carries; the IP's total length
// cuts off the padding Ethernet adds to short frames.
func ipv4(b []byte) Summary {
	if len(b) < 20 || b[0]>>4 != 4 || int(b[0]&0xf)*4 < 20 || len(b) < int(b[0]&0xf)*4 {
		return Summary{Proto: "IPv4", Info: "truncated"}
	}
	hl := int(b[0]&0xf) * 4
	total := min(max(int(binary.BigEndian.Uint16(b[2:])), hl), len(b))
	src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	var s Summary
	if off := binary.BigEndian.Uint16(b[6:]) & 0x1fff; off != 0 {
		s = Summary{Src: src.String(), Dst: dst.String(), Proto: "IPv4", Info: fmt.Sprintf("fragment offset %d", off*8)}
	} else {
		s = transport(b[9], src, dst, b[hl:total])
	}
	s.Info = strings.TrimPrefix(s.Info+fmt.Sprintf(", ttl %d", b[8]), ", ")
	return s
}

// ipv6 decodes an IPv6 header, skips the extension headers that may
// stand before the upper layer, and decodes that.
func ipv6(b []byte) Summary {
	if len(b) < 40 || b[0]>>4 != 6 {
		return Summary{Proto: "IPv6", Info: "truncated"}
	}
	src, dst := netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
	hlim := b[7]
	next, rest := b[6], b[40:min(40+int(binary.BigEndian.Uint16(b[4:])), len(b))]
	var s Summary
	for range 8 { // a bound: real packets carry two or three extension headers at most
		if next != 0 && next != 43 && next != 44 && next != 60 {
			break
		}
		if len(rest) < 8 {
			s = Summary{Proto: "IPv6", Info: "truncated"}
			break
		}
		if next == 44 && binary.BigEndian.Uint16(rest[2:])>>3 != 0 {
			s = Summary{Proto: "IPv6", Info: fmt.Sprintf("fragment offset %d", binary.BigEndian.Uint16(rest[2:])&^7)}
			break
		}
		n := 8
		if next != 44 {
			n = (int(rest[1]) + 1) * 8
		}
		next, rest = rest[0], rest[min(n, len(rest)):]
	}
	if s.Proto == "" {
		s = transport(next, src, dst, rest)
	}
	s.Src, s.Dst = or(s.Src, src.String()), or(s.Dst, dst.String())
	s.Info = strings.TrimPrefix(s.Info+fmt.Sprintf(", hlim %d", hlim), ", ")
	return s
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// transport decodes the upper-layer header an IP packet carries.
func transport(proto byte, src, dst netip.Addr, b []byte) Summary {
	s := Summary{Src: src.String(), Dst: dst.String()}
	switch proto {
	case 1:
		s.Proto, s.Info = "ICMP", icmp4(b)
	case 58:
		s.Proto, s.Info = "ICMPv6", icmp6(b)
	case 2:
		s.Proto, s.Info = "IGMP", igmp(b)
	case 6:
		s.Proto = "TCP"
		s.Src, s.Dst, s.Info = ports(src, dst, b, tcp)
	case 17:
		s.Proto = "UDP"
		s.Src, s.Dst, s.Info = ports(src, dst, b, udp)
	default:
		s.Proto = "IPv4"
		if src.Is6() {
			s.Proto = "IPv6"
		}
		s.Info = fmt.Sprintf("protocol %d", proto)
	}
	return s
}

// ports adds the ports of a TCP or UDP header to the addresses, and
// decodes the rest of the header with info.
func ports(src, dst netip.Addr, b []byte, info func([]byte) string) (string, string, string) {
	if len(b) < 8 {
		return src.String(), dst.String(), "truncated"
	}
	sp, dp := binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
	return netip.AddrPortFrom(src, sp).String(), netip.AddrPortFrom(dst, dp).String(), info(b)
}

// tcpFlags are the flag letters in tcpdump's order: FIN, SYN, RST, PSH,
// URG, ECE, CWR, and "." for ACK last.
var tcpFlags = []struct {
	bit    byte
	letter string
}{{0x01, "F"}, {0x02, "S"}, {0x04, "R"}, {0x08, "P"}, {0x20, "U"}, {0x40, "E"}, {0x80, "W"}, {0x10, "."}}

func tcp(b []byte) string {
	if len(b) < 20 || int(b[12]>>4)*4 < 20 {
		return "truncated"
	}
	var flags strings.Builder
	for _, f := range tcpFlags {
		if b[13]&f.bit != 0 {
			flags.WriteString(f.letter)
		}
	}
	s := fmt.Sprintf("[%s] seq %d", flags.String(), binary.BigEndian.Uint32(b[4:]))
	if b[13]&0x10 != 0 {
		s += fmt.Sprintf(" ack %d", binary.BigEndian.Uint32(b[8:]))
	}
	data := max(len(b)-int(b[12]>>4)*4, 0)
	return s + fmt.Sprintf(" win %d len %d", binary.BigEndian.Uint16(b[14:]), data)
}

func udp(b []byte) string {
	return fmt.Sprintf("len %d", max(int(binary.BigEndian.Uint16(b[4:]))-8, 0))
}

var igmpNames = map[byte]string{0x11: "membership query", 0x12: "v1 report", 0x16: "v2 report", 0x17: "leave group",
	0x22: "v3 report"}

// igmp names an IGMP message and, but for v3 reports, its group.
func igmp(b []byte) string {
	if len(b) < 8 {
		return "truncated"
	}
	name, ok := igmpNames[b[0]]
	switch {
	case !ok:
		return fmt.Sprintf("type 0x%02x", b[0])
	case b[0] == 0x22:
		return name
	}
	return name + " " + netip.AddrFrom4([4]byte(b[4:8])).String()
}

// icmpNames names the ICMP types and codes worth a word; others print
// as numbers.
var icmpNames = map[byte]string{0: "echo reply", 3: "unreachable", 8: "echo request", 11: "time exceeded", 5: "redirect"}

var unreach4 = map[byte]string{0: "net", 1: "host", 2: "protocol", 3: "port", 4: "fragmentation needed", 9: "net prohibited",
	10: "host prohibited", 13: "administratively prohibited"}

func icmp4(b []byte) string {
	if len(b) < 8 {
		return "truncated"
	}
	return icmpText(b, icmpNames, 8, 0, 3, unreach4)
}

var icmp6Names = map[byte]string{1: "unreachable", 2: "packet too big", 3: "time exceeded", 128: "echo request", 129: "echo reply",
	133: "router solicitation", 134: "router advertisement", 135: "neighbor solicitation", 136: "neighbor advertisement",
	143: "multicast listener report v2"}

var unreach6 = map[byte]string{0: "no route", 1: "administratively prohibited", 3: "address", 4: "port", 5: "source address failed policy",
	6: "reject route"}

func icmp6(b []byte) string {
	if len(b) < 8 {
		return "truncated"
	}
	s := icmpText(b, icmp6Names, 128, 129, 1, unreach6)
	if (b[0] == 135 || b[0] == 136) && len(b) >= 24 {
		s += " " + netip.AddrFrom16([16]byte(b[8:24])).String()
	}
	return s
}

// icmpText names an ICMP or ICMPv6 message, with the identifier and
// sequence number of echoes and the reason of unreachables.
func icmpText(b []byte, names map[byte]string, request, reply, unreach byte, reasons map[byte]string) string {
	typ, code := b[0], b[1]
	name, ok := names[typ]
	if !ok {
		return fmt.Sprintf("type %d code %d", typ, code)
	}
	switch typ {
	case request, reply:
		return fmt.Sprintf("%s id %d seq %d", name, binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]))
	case unreach:
		if r, ok := reasons[code]; ok {
			return name + " " + r
		}
	}
	if code != 0 {
		return fmt.Sprintf("%s code %d", name, code)
	}
	return name
}
