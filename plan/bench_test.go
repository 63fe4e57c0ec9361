package plan_test

import (
	"fmt"
	"testing"

	"github.com/nsrouter/nsrouter/plan"
	"github.com/nsrouter/nsrouter/topology"
)

// starTopology parses, once, a router r with count hosts h1..hN, each on
// a point-to-point link numbered from pool with a default route to r.
func starTopology(b *testing.B, count int, pool string) *topology.Topology {
	b.Helper()
	data := fmt.Appendf(nil, `name: star
pools:
  p2p: {ipv4: %s}
nodes:
  r:
    forwarding: {ipv4: true}
groups:
  - {name: h, count: %d, connect: r, pool: p2p, default-route: true}
`, pool, count)
	t, err := topology.Parse(fmt.Sprintf("star%d.yaml", count), data)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// benchmarkBuild times plan.Build alone: the topology is parsed before
// the timer starts.
func benchmarkBuild(b *testing.B, count int, pool string) {
	t := starTopology(b, count, pool)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p := plan.Build(t)
		if len(p.Steps) < 2*count {
			b.Fatalf("plan has %d steps for %d hosts, want at least %d", len(p.Steps), count, 2*count)
		}
	}
}

func BenchmarkBuildStar1000(b *testing.B) {
	benchmarkBuild(b, 1000, "10.0.0.0/16")
}

func BenchmarkBuildStar100000(b *testing.B) {
	benchmarkBuild(b, 100_000, "10.0.0.0/8")
}
