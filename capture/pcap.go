// Package capture records the frames that cross an interface of a lab
// node without tcpdump: an AF_PACKET socket opened inside the node's
// namespace, a writer of the classic pcap file format, and a one-line
// summary of a frame's headers.
package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// LinkTypeEthernet is the pcap link type of Ethernet frames
// (LINKTYPE_ETHERNET, DLT_EN10MB in libpcap).
const LinkTypeEthernet = 1

// SnapLen is the most of a frame a Socket keeps and a capture file
// holds: more than any frame a veth passes, offloaded TCP segments of
// up to 64 KiB included.
const SnapLen = 262144

// magicMicro starts a classic pcap file whose timestamps count
// microseconds. Readers tell the byte order of the whole file from it;
// this package writes little-endian.
const magicMicro = 0xa1b2c3d4

// Writer writes the classic pcap format that tcpdump -r and Wireshark
// read: a 24-byte file header, then a 16-byte record header before each
// frame. Each frame goes to the underlying writer in one Write call, so a
// file is complete after every frame, even if the program is killed.
type Writer struct {
	w       io.Writer
	snaplen int
	buf     []byte
}

// NewWriter writes the file header to w and returns a Writer that keeps
// at most snaplen bytes of each frame.
func NewWriter(w io.Writer, snaplen int, linkType uint32) (*Writer, error) {
	h := make([]byte, 0, 24)
	h = binary.LittleEndian.AppendUint32(h, magicMicro)
	h = binary.LittleEndian.AppendUint16(h, 2) // format version 2.4
	h = binary.LittleEndian.AppendUint16(h, 4)
	h = binary.LittleEndian.AppendUint32(h, 0) // timestamps are UTC
	h = binary.LittleEndian.AppendUint32(h, 0) // accuracy, always 0
	h = binary.LittleEndian.AppendUint32(h, uint32(snaplen))
	h = binary.LittleEndian.AppendUint32(h, linkType)
	if _, err := w.Write(h); err != nil {
		return nil, fmt.Errorf("writing pcap file header: %w", err)
	}
	return &Writer{w: w, snaplen: snaplen}, nil
}

// WritePacket writes one frame captured at ts. wireLen is the frame's
// length on the wire; data may be shorter, and is cut to the snap length.
func (w *Writer) WritePacket(ts time.Time, data []byte, wireLen int) error {
	if len(data) > w.snaplen {
		data = data[:w.snaplen]
	}
	wireLen = max(wireLen, len(data))
	b := w.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(ts.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts.Nanosecond()/1000))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(wireLen))
	b = append(b, data...)
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("writing pcap record: %w", err)
	}
	return nil
}
