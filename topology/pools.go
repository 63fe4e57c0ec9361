package topology

import (
	"encoding/binary"
	"maps"
	"math/big"
	"math/bits"
	"net/netip"
	"slices"
)

// pool hands out consecutive subnets of a range, in file order, so the
// same file always gives the same addresses.
type pool struct {
	name         string
	v4, v6       netip.Prefix
	size4, size6 int // 0: the default for the use
	// used4 and used6 are the offsets of the first address not handed
	// out: subnets of different sizes (a bridge's /24, a link's /31) are
	// cut one after another, each aligned to its size, so none overlap.
	used4, used6 *big.Int
	full4, full6 bool // exhausted, and reported once
	pos          Pos
}

func (r *resolver) poolDefs(f *File) {
	r.pools = map[string]*pool{}
	r.unknownPools = map[Pos]bool{}
	for _, e := range f.Pools {
		what := "pool " + e.Key
		p := &pool{name: e.Key, pos: e.KeyPos}
		p.v4 = r.network(e.Value.IPv4, what+" ipv4")
		p.v6 = r.network(e.Value.IPv6, what+" ipv6")
		if p.v4.IsValid() && !p.v4.Addr().Is4() {
			r.errs.add(e.Value.IPv4.Pos, "%s: ipv4 %s is not an IPv4 range", what, p.v4)
		}
		if p.v6.IsValid() && !p.v6.Addr().Is6() {
			r.errs.add(e.Value.IPv6.Pos, "%s: ipv6 %s is not an IPv6 range", what, p.v6)
		}
		if !p.v4.IsValid() && !p.v6.IsValid() && !e.Value.IPv4.Set && !e.Value.IPv6.Set {
			r.errs.add(e.KeyPos, "%s: give an ipv4 range, an ipv6 range, or both", what)
		}
		p.size4 = r.poolSize(e.Value.Size4, p.v4, 32, what+" ipv4-length")
		p.size6 = r.poolSize(e.Value.Size6, p.v6, 128, what+" ipv6-length")
		r.pools[e.Key] = p
	}
}

func (r *resolver) poolSize(i Int, rng netip.Prefix, bits int, what string) int {
	if !i.Set {
		return 0
	}
	if i.Value < 1 || i.Value > bits-1 || (rng.IsValid() && i.Value < rng.Bits()) {
		r.errs.add(i.Pos, "%s: %d must lie between the range's length and %d", what, i.Value, bits-1)
		return 0
	}
	return i.Value
}

// lookupPool finds a pool by name, reporting unknown ones.
func (r *resolver) lookupPool(s String, what string) *pool {
	if p := r.pools[s.Value]; p != nil {
		return p
	}
	if r.unknownPools[s.Pos] {
		return nil // a group's links share the group's pool field
	}
	r.unknownPools[s.Pos] = true
	names := slices.Sorted(maps.Keys(r.pools))
	msg := what + ": unknown pool " + quote(s.Value)
	if sug := suggest(s.Value, names); sug != "" {
		msg += "; did you mean " + quote(sug) + "?"
	}
	r.errs.add(s.Pos, "%s", msg)
	return nil
}

func quote(s string) string { return "\"" + s + "\"" }

// take returns the next subnet of the given family, or false when the
// pool is exhausted (reported once, at the user's position).
func (p *pool) take(v6 bool, lan bool, r *resolver, at Pos, what string) (netip.Prefix, bool) {
	rng, size := p.v4, p.size4
	def := 31
	if lan {
		def = 24
	}
	if v6 {
		rng, size = p.v6, p.size6
		def = 127
		if lan {
			def = 64
		}
	}
	if !rng.IsValid() {
		return netip.Prefix{}, false
	}
	if size == 0 {
		size = max(def, rng.Bits())
	}
	used, full := &p.used4, &p.full4
	if v6 {
		used, full = &p.used6, &p.full6
	}
	if *full {
		return netip.Prefix{}, false
	}
	if *used == nil {
		*used = new(big.Int)
	}
	bits := rng.Addr().BitLen()
	blk := new(big.Int).Lsh(big.NewInt(1), uint(bits-size))
	total := new(big.Int).Lsh(big.NewInt(1), uint(bits-rng.Bits()))
	start := new(big.Int).Add(*used, new(big.Int).Sub(blk, big.NewInt(1)))
	start.Div(start, blk).Mul(start, blk) // round up to the subnet's size
	end := new(big.Int).Add(start, blk)
	if end.Cmp(total) > 0 {
		room := new(big.Int).Div(total, blk)
		r.errs.add(at, "%s: pool %s (%s) is too small: it has room for %s subnets of /%d; give it a larger range", what, p.name, rng, room, size)
		*full = true
		return netip.Prefix{}, false
	}
	*used = end
	return netip.PrefixFrom(addBig(rng.Masked().Addr(), start), size), true
}

// hostAddr returns the k-th usable address (k from 0) of a subnet: /31,
// /32, /127 and /128 use every address; larger IPv4 subnets skip the
// network address, IPv6 ones the subnet-router anycast address.
func hostAddr(subnet netip.Prefix, k uint64) (netip.Prefix, bool) {
	host := subnet.Addr().BitLen() - subnet.Bits()
	first := uint64(1)
	if host <= 1 {
		first = 0
	}
	idx := first + k
	if host < 64 {
		last := uint64(1)<<host - 1
		if subnet.Addr().Is4() && host > 1 {
			last-- // broadcast
		}
		if idx > last {
			return netip.Prefix{}, false
		}
	}
	return netip.PrefixFrom(addOffset(subnet.Masked().Addr(), idx), subnet.Bits()), true
}

// addOffset returns a+n, wrapping around at the end of the address space.
func addOffset(a netip.Addr, n uint64) netip.Addr {
	if a.Is4() {
		b := a.As4()
		v := uint32(uint64(binary.BigEndian.Uint32(b[:])) + n)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	lo, carry := bits.Add64(binary.BigEndian.Uint64(b[8:]), n, 0)
	binary.BigEndian.PutUint64(b[8:], lo)
	binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(b[:8])+carry)
	return netip.AddrFrom16(b)
}

func addBig(a netip.Addr, n *big.Int) netip.Addr {
	v := new(big.Int).SetBytes(a.AsSlice())
	v.Add(v, n)
	b := v.Bytes()
	out := make([]byte, a.BitLen()/8)
	if len(b) > len(out) {
		b = b[len(b)-len(out):]
	}
	copy(out[len(out)-len(b):], b)
	r, _ := netip.AddrFromSlice(out)
	return r
}

func lastAddr(p netip.Prefix) netip.Addr {
	host := p.Addr().BitLen() - p.Bits()
	n := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(host)), big.NewInt(1))
	return addBig(p.Masked().Addr(), n)
}

// allocate numbers, from their pools, the bridges and link ends that have
// no address of a family their pool offers.
func (r *resolver) allocate() {
	for _, n := range r.t.Nodes {
		for _, b := range n.Bridges {
			if s, ok := r.bridgePools[b]; ok {
				r.allocateBridge(b, s)
			}
		}
	}
	for _, l := range r.t.Links {
		if s, ok := r.linkPools[l]; ok && l.B.Master == nil {
			r.allocateLink(l, s)
		}
	}
}

func (r *resolver) allocateBridge(b *Bridge, s String) {
	p := r.lookupPool(s, "bridge "+b.Node.Name+":"+b.Name)
	if p == nil {
		return
	}
	for _, v6 := range []bool{false, true} {
		subnet, ok := p.take(v6, true, r, s.Pos, "bridge "+b.Name)
		if !ok {
			continue
		}
		k := uint64(0)
		next := func(owner string) (netip.Prefix, bool) {
			a, ok := hostAddr(subnet, k)
			k++
			if !ok {
				r.errs.add(s.Pos, "bridge %s: subnet %s of pool %s has no room for %s", b.Name, subnet, p.name, owner)
			}
			return a, ok
		}
		if !hasFamily(b.Addrs, v6) {
			if a, ok := next(b.Node.Name + ":" + b.Name); ok && r.claim(a, b.Node.Name+":"+b.Name, s.Pos) {
				b.Addrs = append(b.Addrs, a)
			}
		}
		for _, port := range b.Ports {
			i := port.Peer()
			if hasFamily(i.Addrs, v6) {
				continue
			}
			if a, ok := next(i.String()); ok && r.claim(a, i.String(), s.Pos) {
				i.Addrs = append(i.Addrs, a)
			} else if !ok {
				return
			}
		}
	}
}

func (r *resolver) allocateLink(l *Link, s String) {
	what := "link " + l.A.String() + " - " + l.B.String()
	p := r.lookupPool(s, what)
	if p == nil {
		return
	}
	for _, v6 := range []bool{false, true} {
		if hasFamily(l.A.Addrs, v6) && hasFamily(l.B.Addrs, v6) {
			continue
		}
		subnet, ok := p.take(v6, false, r, s.Pos, what)
		if !ok {
			continue
		}
		for k, i := range []*Interface{l.A, l.B} {
			if hasFamily(i.Addrs, v6) {
				continue
			}
			if a, ok := hostAddr(subnet, uint64(k)); ok && r.claim(a, i.String(), s.Pos) {
				i.Addrs = append(i.Addrs, a)
			}
		}
	}
}

func hasFamily(list []netip.Prefix, v6 bool) bool {
	for _, p := range list {
		if p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}
