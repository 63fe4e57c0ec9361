// Package probe sends test traffic from inside lab namespaces.
package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// PingResult is the outcome of an ICMP echo probe.
type PingResult struct {
	Reply bool
	RTT   time.Duration
	TTL   int // TTL (IPv4) or hop limit (IPv6) of the reply
	Sent  int
	// Unreachable holds the ICMP error that came back instead of a reply,
	// if any, as "destination unreachable from 10.11.0.3".
	Unreachable string
}

// PingOptions bound a probe.
type PingOptions struct {
	Count    int           // echo requests at most; 6 if 0
	Interval time.Duration // between requests; 400ms if 0
	Timeout  time.Duration // for the whole probe; 3s if 0
}

// Ping sends ICMP echo requests to dst from inside ns until one is
// answered, and reports the first reply. The raw socket is opened inside
// the namespace and used from the calling goroutine: a socket stays in the
// namespace it was created in.
func Ping(ctx context.Context, ns *kernel.NS, dst netip.Addr, opt PingOptions) (PingResult, error) {
	opt = opt.withDefaults()
	var (
		conn *icmp.PacketConn
		err  error
	)
	network, laddr := "ip4:icmp", "0.0.0.0"
	if dst.Is6() {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	if err := ns.Do(func() error {
		conn, err = icmp.ListenPacket(network, laddr)
		return err
	}); err != nil {
		return PingResult{}, fmt.Errorf("opening ICMP socket in %s: %w", ns.Name, err)
	}
	defer conn.Close()
	if dst.Is6() {
		err = conn.IPv6PacketConn().SetControlMessage(ipv6.FlagHopLimit, true)
	} else {
		err = conn.IPv4PacketConn().SetControlMessage(ipv4.FlagTTL, true)
	}
	if err != nil {
		return PingResult{}, fmt.Errorf("asking for TTLs in %s: %w", ns.Name, err)
	}
	deadline := time.Now().Add(opt.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	p := &pinger{conn: conn, dst: dst, id: rand.IntN(0xffff) + 1, sent: map[int]time.Time{}}
	return p.run(ctx, opt, deadline)
}

func (o PingOptions) withDefaults() PingOptions {
	if o.Count == 0 {
		o.Count = 6
	}
	if o.Interval == 0 {
		o.Interval = 400 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Second
	}
	return o
}

type pinger struct {
	conn *icmp.PacketConn
	dst  netip.Addr
	id   int
	sent map[int]time.Time
	res  PingResult
}

func (p *pinger) run(ctx context.Context, opt PingOptions, deadline time.Time) (PingResult, error) {
	next := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.res.Sent < opt.Count && !time.Now().Before(next) {
			if err := p.send(); err != nil {
				return p.res, err
			}
			next = time.Now().Add(opt.Interval)
		}
		wait := deadline
		if p.res.Sent < opt.Count && next.Before(wait) {
			wait = next
		}
		done, err := p.receive(wait)
		if err != nil || done {
			return p.res, err
		}
	}
	return p.res, ctx.Err()
}

func (p *pinger) send() error {
	seq := p.res.Sent + 1
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if p.dst.Is6() {
		typ = ipv6.ICMPTypeEchoRequest
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: []byte("nsrouter check")}}
	b, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
	if err != nil {
		return err
	}
	p.sent[seq] = time.Now()
	p.res.Sent++
	if _, err := p.conn.WriteTo(b, &net.IPAddr{IP: p.dst.AsSlice()}); err != nil {
		// No route is an answer, not a failure of the probe.
		p.res.Unreachable = err.Error()
	}
	return nil
}

// receive reads until a matching reply or the deadline; it reports whether
// the probe is over.
func (p *pinger) receive(until time.Time) (bool, error) {
	buf := make([]byte, 1500)
	for {
		if err := p.conn.SetReadDeadline(until); err != nil {
			return true, err
		}
		n, ttl, src, err := p.read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		proto := 1
		if p.dst.Is6() {
			proto = 58
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch body := m.Body.(type) {
		case *icmp.Echo:
			if src != p.dst || body.ID != p.id || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
				continue
			}
			if t, ok := p.sent[body.Seq]; ok {
				p.res.Reply, p.res.RTT, p.res.TTL = true, time.Since(t), ttl
				return true, nil
			}
		case *icmp.DstUnreach:
			p.res.Unreachable = fmt.Sprintf("destination unreachable from %s", src)
		case *icmp.TimeExceeded:
			p.res.Unreachable = fmt.Sprintf("time exceeded at %s", src)
		}
	}
}

func (p *pinger) read(buf []byte) (int, int, netip.Addr, error) {
	var (
		n    int
		ttl  int
		addr net.Addr
		err  error
	)
	if p.dst.Is6() {
		var cm *ipv6.ControlMessage
		n, cm, addr, err = p.conn.IPv6PacketConn().ReadFrom(buf)
		if cm != nil {
			ttl = cm.HopLimit
		}
	} else {
		var cm *ipv4.ControlMessage
		n, cm, addr, err = p.conn.IPv4PacketConn().ReadFrom(buf)
		if cm != nil {
			ttl = cm.TTL
		}
	}
	var src netip.Addr
	if ip, ok := addr.(*net.IPAddr); ok {
		src, _ = netip.AddrFromSlice(ip.IP)
		src = src.Unmap()
	}
	return n, ttl, src, err
}
