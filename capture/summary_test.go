package capture

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// Frames for the tests are built by hand, from documentation addresses.

var (
	macA   = []byte{0x02, 0, 0, 0, 0, 0x0a}
	macB   = []byte{0x02, 0, 0, 0, 0, 0x0b}
	macAll = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func eth(dst, src []byte, etype uint16, payload []byte) []byte {
	b := append(append(append([]byte{}, dst...), src...), byte(etype>>8), byte(etype))
	return append(b, payload...)
}

func ip4(proto byte, src, dst string, payload []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, payload...)
}

func ip6(next, hlim byte, src, dst string, payload []byte) []byte {
	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, next, hlim
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// echo is an ICMP (or ICMPv6) echo message with 8 bytes of data.
func echo(typ byte, id, seq uint16) []byte {
	b := make([]byte, 16)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], "nsrouter")
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func tcpSeg(sport, dport uint16, seq, ack uint32, flags byte, data string) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], ack)
	b[12], b[13] = 5<<4, flags
	binary.BigEndian.PutUint16(b[14:], 64240)
	return append(b, data...)
}

func udpDgram(sport, dport uint16, data string) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(data)))
	return append(b, data...)
}

func arpPkt(op uint16, sha []byte, spa, tpa string) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, byte(op >> 8), byte(op)}
	s, t := netip.MustParseAddr(spa).As4(), netip.MustParseAddr(tpa).As4()
	b = append(append(b, sha...), s[:]...)
	return append(append(b, make([]byte, 6)...), t[:]...)
}

// pad fills a frame up to Ethernet's 60-byte minimum, as the kernel does
// on the wire.
func pad(frame []byte) []byte {
	for len(frame) < 60 {
		frame = append(frame, 0)
	}
	return frame
}

func TestSummarize(t *testing.T) {
	ns := make([]byte, 24) // neighbor solicitation for 2001:db8::2
	ns[0] = 135
	target := netip.MustParseAddr("2001:db8::2").As16()
	copy(ns[8:], target[:])
	hbh := append([]byte{58, 0, 5, 2, 0, 0, 1, 0}, 143, 0, 0, 0, 0, 0, 0, 1) // hop-by-hop, then MLDv2
	unreach := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, ip4(17, "192.0.2.1", "198.51.100.2", udpDgram(5000, 53, ""))...)
	frag := ip4(17, "192.0.2.1", "198.51.100.2", []byte("more data"))
	binary.BigEndian.PutUint16(frag[6:], 185) // offset 1480 bytes
	vlan := eth(macB, macA, 0x8100, append([]byte{0, 10, 0x08, 0x00}, ip4(17, "192.0.2.1", "192.0.2.2", udpDgram(68, 67, "hello"))...))
	for _, c := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"arp request", pad(eth(macAll, macA, 0x0806, arpPkt(1, macA, "10.11.0.2", "10.11.0.3"))),
			"02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff ARP who-has 10.11.0.3 tell 10.11.0.2"},
		{"arp reply", pad(eth(macA, macB, 0x0806, arpPkt(2, macB, "10.11.0.3", "10.11.0.2"))),
			"02:00:00:00:00:0b > 02:00:00:00:00:0a ARP 10.11.0.3 is-at 02:00:00:00:00:0b"},
		{"echo request", eth(macB, macA, 0x0800, ip4(1, "10.11.0.2", "10.12.0.2", echo(8, 7, 1))),
			"10.11.0.2 > 10.12.0.2 ICMP echo request id 7 seq 1, ttl 64"},
		{"echo reply", eth(macA, macB, 0x0800, ip4(1, "10.12.0.2", "10.11.0.2", echo(0, 7, 1))),
			"10.12.0.2 > 10.11.0.2 ICMP echo reply id 7 seq 1, ttl 64"},
		{"port unreachable", eth(macA, macB, 0x0800, ip4(1, "198.51.100.2", "192.0.2.1", unreach)),
			"198.51.100.2 > 192.0.2.1 ICMP unreachable port, ttl 64"},
		{"tcp syn-ack, padded", pad(eth(macA, macB, 0x0800, ip4(6, "192.0.2.1", "192.0.2.2", tcpSeg(80, 40000, 100, 201, 0x12, "")))),
			"192.0.2.1:80 > 192.0.2.2:40000 TCP [S.] seq 100 ack 201 win 64240 len 0, ttl 64"},
		{"tcp data", eth(macA, macB, 0x0800, ip4(6, "192.0.2.1", "192.0.2.2", tcpSeg(80, 40000, 101, 201, 0x18, "hi"))),
			"192.0.2.1:80 > 192.0.2.2:40000 TCP [P.] seq 101 ack 201 win 64240 len 2, ttl 64"},
		{"tcp fin", eth(macA, macB, 0x0800, ip4(6, "192.0.2.1", "192.0.2.2", tcpSeg(80, 40000, 103, 0, 0x01, ""))),
			"192.0.2.1:80 > 192.0.2.2:40000 TCP [F] seq 103 win 64240 len 0, ttl 64"},
		{"udp in a vlan", vlan, "192.0.2.1:68 > 192.0.2.2:67 vlan 10 UDP len 5, ttl 64"},
		{"ipv4 fragment", eth(macA, macB, 0x0800, frag), "192.0.2.1 > 198.51.100.2 IPv4 fragment offset 1480, ttl 64"},
		{"ipv4 other protocol", eth(macA, macB, 0x0800, ip4(47, "192.0.2.1", "192.0.2.2", nil)), "192.0.2.1 > 192.0.2.2 IPv4 protocol 47, ttl 64"},
		{"icmpv6 echo", eth(macB, macA, 0x86dd, ip6(58, 64, "2001:db8::1", "2001:db8::2", echo(128, 1, 2))),
			"2001:db8::1 > 2001:db8::2 ICMPv6 echo request id 1 seq 2, hlim 64"},
		{"neighbor solicitation", eth(macAll, macA, 0x86dd, ip6(58, 255, "2001:db8::1", "ff02::1:ff00:2", ns)),
			"2001:db8::1 > ff02::1:ff00:2 ICMPv6 neighbor solicitation 2001:db8::2, hlim 255"},
		{"mld behind hop-by-hop", eth(macAll, macA, 0x86dd, ip6(0, 1, "fe80::1", "ff02::16", hbh)),
			"fe80::1 > ff02::16 ICMPv6 multicast listener report v2, hlim 1"},
		{"udp over ipv6", eth(macB, macA, 0x86dd, ip6(17, 64, "2001:db8::1", "2001:db8::2", udpDgram(5353, 53, "q"))),
			"[2001:db8::1]:5353 > [2001:db8::2]:53 UDP len 1, hlim 64"},
		{"igmp v2 report", eth(macAll, macA, 0x0800, ip4(2, "192.0.2.1", "224.0.0.251", []byte{0x16, 0, 0, 0, 224, 0, 0, 251})),
			"192.0.2.1 > 224.0.0.251 IGMP v2 report 224.0.0.251, ttl 64"},
		{"igmp v3 report", eth(macAll, macA, 0x0800, ip4(2, "192.0.2.1", "224.0.0.22", []byte{0x22, 0, 0, 0, 0, 0, 0, 0})),
			"192.0.2.1 > 224.0.0.22 IGMP v3 report, ttl 64"},
		{"lldp", pad(eth(macAll, macA, 0x88cc, nil)), "02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff ethertype 0x88cc"},
		{"short frame", macA, "? > ? Ethernet truncated"},
		{"short ipv4", eth(macB, macA, 0x0800, []byte{0x45, 0, 0}), "02:00:00:00:00:0a > 02:00:00:00:00:0b IPv4 truncated"},
		{"short tcp", eth(macB, macA, 0x0800, ip4(6, "192.0.2.1", "192.0.2.2", []byte{0, 80})),
			"192.0.2.1 > 192.0.2.2 TCP truncated, ttl 64"},
		{"short icmp", eth(macB, macA, 0x0800, ip4(1, "192.0.2.1", "192.0.2.2", []byte{8})), "192.0.2.1 > 192.0.2.2 ICMP truncated, ttl 64"},
	} {
		if got := Summarize(c.frame).String(); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestSummarizeNeverPanics feeds every prefix of every test frame.
func TestSummarizeNeverPanics(t *testing.T) {
	frames := [][]byte{
		eth(macB, macA, 0x0800, ip4(6, "192.0.2.1", "192.0.2.2", tcpSeg(1, 2, 3, 4, 0x10, "x"))),
		eth(macB, macA, 0x86dd, ip6(0, 1, "fe80::1", "ff02::16", []byte{44, 0, 0, 0, 0, 0, 0, 0, 58, 0, 0, 8, 0, 0, 0, 1})),
		eth(macB, macA, 0x8100, []byte{0, 1, 0x81, 0x00, 0, 2, 0x08, 0x06}),
		eth(macB, macA, 0x0806, arpPkt(2, macA, "192.0.2.1", "192.0.2.2")),
	}
	for _, f := range frames {
		for i := range f {
			Summarize(f[:i])
		}
	}
}

func TestPacketString(t *testing.T) {
	p := &Packet{
		Time: time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.Local),
		Dir:  DirOut,
		Data: eth(macA, macB, 0x0800, ip4(1, "10.12.0.2", "10.11.0.2", echo(0, 7, 3))),
		Len:  98,
	}
	want := "15:04:05.123456 out 10.12.0.2 > 10.11.0.2 ICMP echo reply id 7 seq 3, ttl 64, length 98"
	if got := p.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	p.Dir = DirIn
	if got := p.String(); got[16:19] != "in " {
		t.Errorf("direction in: got %q", got)
	}
}
