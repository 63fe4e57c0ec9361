package topology

import (
	"fmt"
	"testing"
)

// starYAML is a router r with count hosts h1..hN, each on a point-to-point
// link numbered from pool and routing default via r.
func starYAML(count int, pool string) []byte {
	return fmt.Appendf(nil, `name: star
pools:
  p2p: {ipv4: %s}
nodes:
  r:
    forwarding: {ipv4: true}
groups:
  - {name: h, count: %d, connect: r, pool: p2p, default-route: true}
`, pool, count)
}

func benchmarkParse(b *testing.B, name string, data []byte, nodes int) {
	b.Helper()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		top, err := Parse(name, data)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(top.Nodes); got != nodes {
			b.Fatalf("nodes = %d, want %d", got, nodes)
		}
	}
}

func BenchmarkParseBuiltin(b *testing.B) {
	benchmarkParse(b, BuiltinName, builtinYAML, 4)
}

func BenchmarkParseStar1000(b *testing.B) {
	benchmarkParse(b, "star1000.yaml", starYAML(1000, "10.0.0.0/16"), 1001)
}

func BenchmarkParseStar100000(b *testing.B) {
	benchmarkParse(b, "star100000.yaml", starYAML(100_000, "10.0.0.0/8"), 100_001)
}
