package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nsrouter/nsrouter/kernel"
)

// greeting starts every answer of a listener; the rest of the line is the
// client address the listener saw, so the client learns what NAT did.
const greeting = "nsrouter-seen "

// Listener is a short-lived TCP or UDP server inside a namespace that
// tells each client the source address it came from.
type Listener struct {
	tcp  net.Listener
	udp  net.PacketConn
	wg   sync.WaitGroup
	once sync.Once
}

// Listen opens a listener on every address of ns at port. The socket is
// created inside the namespace and served from ordinary goroutines.
func Listen(ns *kernel.NS, proto string, port uint16) (*Listener, error) {
	l := &Listener{}
	addr := fmt.Sprintf(":%d", port)
	err := ns.Do(func() error {
		var err error
		if proto == "udp" {
			l.udp, err = net.ListenPacket("udp", addr)
		} else {
			l.tcp, err = net.Listen("tcp", addr)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s port %d in %s: %w", proto, port, ns.Name, err)
	}
	l.wg.Add(1)
	if proto == "udp" {
		go l.serveUDP()
	} else {
		go l.serveTCP()
	}
	return l, nil
}

func (l *Listener) serveTCP() {
	defer l.wg.Done()
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			return
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "%s%s\n", greeting, c.RemoteAddr())
		c.Close()
	}
}

func (l *Listener) serveUDP() {
	defer l.wg.Done()
	buf := make([]byte, 512)
	for {
		_, from, err := l.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		l.udp.WriteTo([]byte(greeting+from.String()+"\n"), from)
	}
}

// Close stops the listener and waits for its goroutine.
func (l *Listener) Close() {
	l.once.Do(func() {
		if l.tcp != nil {
			l.tcp.Close()
		}
		if l.udp != nil {
			l.udp.Close()
		}
	})
	l.wg.Wait()
}

// ConnResult is the outcome of a TCP or UDP probe.
type ConnResult struct {
	Connected bool
	// Outcome is "connected", "refused", "timed out", "unreachable" or
	// "rejected" (an ICMP error other than port unreachable).
	Outcome string
	Seen    netip.Addr // the source address the listener saw
	RTT     time.Duration
}

// Connect opens a connection (TCP) or exchanges a datagram (UDP) from ns
// to dst, and reads the source address the listener saw.
func Connect(ctx context.Context, ns *kernel.NS, proto string, dst netip.AddrPort, timeout time.Duration) (ConnResult, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	start := time.Now()
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		d := net.Dialer{Deadline: deadline}
		c, err = d.DialContext(ctx, proto, dst.String())
		return err
	})
	if err != nil {
		return classify(err), nil
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if proto == "udp" {
		if _, err := c.Write([]byte("nsrouter probe\n")); err != nil {
			return classify(err), nil
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return classify(err), nil
	}
	res := ConnResult{Connected: true, Outcome: "connected", RTT: time.Since(start)}
	if seen, ok := strings.CutPrefix(strings.TrimSpace(line), greeting); ok {
		if ap, err := netip.ParseAddrPort(seen); err == nil {
			res.Seen = ap.Addr().Unmap()
		}
	}
	return res, nil
}

// classify names why a connection did not happen.
func classify(err error) ConnResult {
	var errno syscall.Errno
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ConnResult{Outcome: "timed out"}
	case errors.As(err, &errno) && errno == syscall.ECONNREFUSED:
		return ConnResult{Outcome: "refused"}
	case errors.As(err, &errno) && (errno == syscall.ENETUNREACH || errno == syscall.EHOSTUNREACH):
		return ConnResult{Outcome: "unreachable"}
	case errors.As(err, &errno) && (errno == syscall.EACCES || errno == syscall.EPERM):
		return ConnResult{Outcome: "rejected"}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ConnResult{Outcome: "timed out"}
	}
	return ConnResult{Outcome: err.Error()}
}
