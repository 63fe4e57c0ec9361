package capture

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriterBytes(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 4, LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(0x01020304, 5006000) // 5006 microseconds
	if err := w.WritePacket(ts, []byte{1, 2, 3, 4, 5, 6}, 60); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePacket(ts.Add(time.Second), []byte{7, 8}, 0); err != nil {
		t.Fatal(err)
	}
	want := "d4c3b2a1" + "0200" + "0400" + "00000000" + "00000000" + "04000000" + "01000000" + // file header
		"04030201" + "8e130000" + "04000000" + "3c000000" + "01020304" + // cut to the snap length of 4
		"05030201" + "8e130000" + "02000000" + "02000000" + "0708" // wire length at least the data's
	if got := hex.EncodeToString(buf.Bytes()); got != want {
		t.Errorf("pcap bytes:\n got %s\nwant %s", got, want)
	}
}

// TestWriterTcpdump has tcpdump read a file of hand-made frames.
func TestWriterTcpdump(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatal("tcpdump is not on PATH: the test needs it as a witness (apt-get install tcpdump; .ci/run installs it)")
	}
	path := filepath.Join(t.TempDir(), "echo.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, SnapLen, LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for _, frame := range [][]byte{
		eth(macB, macA, 0x0800, ip4(1, "10.11.0.2", "10.12.0.2", echo(8, 7, 1))),
		eth(macA, macB, 0x0800, ip4(1, "10.12.0.2", "10.11.0.2", echo(0, 7, 1))),
	} {
		if err := w.WritePacket(ts, frame, len(frame)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	out, err := exec.Command(tcpdump, "-r", path, "-n", "-tt").CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, out)
	}
	for _, want := range []string{
		"1767323045.000006 IP 10.11.0.2 > 10.12.0.2: ICMP echo request, id 7, seq 1, length 16",
		"1767323045.000006 IP 10.12.0.2 > 10.11.0.2: ICMP echo reply, id 7, seq 1, length 16",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tcpdump -r lacks %q:\n%s", want, out)
		}
	}
}
