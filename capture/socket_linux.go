package capture

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"github.com/nsrouter/nsrouter/kernel"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoInterface says the namespace has no interface of the name asked for.
var ErrNoInterface = errors.New("no such interface")

// Socket is an AF_PACKET socket that receives every frame crossing one
// interface of a namespace, in both directions, as `tcpdump -i` does.
type Socket struct {
	f    *os.File
	conn syscall.RawConn
	buf  []byte
	oob  []byte
}

// Open opens a Socket on the interface iface of ns. The socket is made
// inside ns, since an AF_PACKET socket belongs to the namespace it was
// created in and binds to an interface index of that namespace; after
// that it is an ordinary descriptor any goroutine may read.
func Open(ns *kernel.NS, iface string) (*Socket, error) {
	link, err := ns.Netlink().LinkByName(iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			err = ErrNoInterface
		}
		return nil, &kernel.OpError{Op: "capture", Node: ns.Name, Iface: iface, Err: err}
	}
	var fd int
	err = ns.Do(func() error {
		// Protocol 0 receives nothing until bind names the protocol and
		// the interface, so no frame of another interface slips in.
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, &kernel.OpError{Op: "open packet socket on", Node: ns.Name, Iface: iface, Err: err}
	}
	if err := bind(fd, link.Attrs().Index); err != nil {
		unix.Close(fd)
		return nil, &kernel.OpError{Op: "open packet socket on", Node: ns.Name, Iface: iface, Err: err}
	}
	return newSocket(fd)
}

// bind asks for kernel timestamps and binds fd to every protocol
// (ETH_P_ALL, in network byte order as packet(7) wants it) on the
// interface with index ifindex.
func bind(fd, ifindex int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fmt.Errorf("asking for timestamps: %w", err)
	}
	var proto [2]byte
	binary.BigEndian.PutUint16(proto[:], unix.ETH_P_ALL)
	sa := &unix.SockaddrLinklayer{Protocol: binary.NativeEndian.Uint16(proto[:]), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("binding to interface index %d: %w", ifindex, err)
	}
	return nil
}

// newSocket wraps the non-blocking fd in an os.File, so reads wait in
// Go's poller and a deadline can interrupt them.
func newSocket(fd int) (*Socket, error) {
	f := os.NewFile(uintptr(fd), "packet socket")
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	return &Socket{f: f, conn: conn, buf: make([]byte, SnapLen), oob: make([]byte, 128)}, nil
}

// Close closes the socket.
func (s *Socket) Close() error { return s.f.Close() }

// Read waits for the next frame. Once ctx is done it returns ctx's error.
func (s *Socket) Read(ctx context.Context) (*Packet, error) {
	stop := context.AfterFunc(ctx, func() { s.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var (
		n, oobn int
		from    unix.Sockaddr
		rerr    error
	)
	err := s.conn.Read(func(fd uintptr) bool {
		// MSG_TRUNC makes n the frame's full length even when the
		// buffer holds less of it.
		n, oobn, _, from, rerr = unix.Recvmsg(int(fd), s.buf, s.oob, unix.MSG_TRUNC)
		return rerr != unix.EAGAIN
	})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading packet socket: %w", err)
	}
	p := &Packet{Time: stamp(s.oob[:oobn]), Dir: direction(from), Len: n}
	p.Data = append([]byte(nil), s.buf[:min(n, len(s.buf))]...)
	return p, nil
}

// direction reads the packet type the kernel reports in the sender's
// address (sll_pkttype).
func direction(from unix.Sockaddr) Direction {
	ll, ok := from.(*unix.SockaddrLinklayer)
	switch {
	case !ok:
		return DirUnknown
	case ll.Pkttype == unix.PACKET_OUTGOING:
		return DirOut
	}
	return DirIn
}

// stamp returns the time the kernel received the frame, from the
// SCM_TIMESTAMPNS control message, or now when there is none.
func stamp(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Now()
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Unix())
		}
	}
	return time.Now()
}
