package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// The iptables-legacy tables (ip_tables, ip6_tables) have no netlink
// interface: a program reads a whole table as one blob of entries with
// getsockopt and writes it back, changed, with setsockopt. This file edits
// such a blob without the kernel; xtables_linux.go moves it in and out.
//
// An entry is a fixed header (ipt_entry or ip6t_entry), its matches and a
// target. Built-in chains start at the table's hook entry offsets and end
// at their underflow (the policy); a jump is a standard target whose
// verdict is the byte offset of its destination. Inserting or removing an
// entry therefore moves every later offset, in the hooks and in the jumps.

// xtLayout holds what differs between the IPv4 and IPv6 tables.
type xtLayout struct {
	tool      string // command that shows the table to people
	entrySize int    // sizeof(struct ipt_entry) or ip6t_entry
	ifaceOff  int    // offset of iniface; outiface and the masks follow
	targetOff int    // offset of target_offset; next_offset follows
	countOff  int    // offset of the counters
}

var (
	xtIPv4 = xtLayout{tool: "iptables-legacy", entrySize: 112, ifaceOff: 16, targetOff: 88, countOff: 96}
	xtIPv6 = xtLayout{tool: "ip6tables-legacy", entrySize: 168, ifaceOff: 64, targetOff: 140, countOff: 152}
)

const (
	xtHooks         = 5  // NF_INET_NUMHOOKS
	xtHookForward   = 2  // NF_INET_FORWARD
	xtNameLen       = 29 // XT_EXTENSION_MAXNAMELEN
	xtTargetHdr     = 32 // struct xt_entry_target / xt_entry_match
	xtStandardSize  = 40 // XT_ALIGN(sizeof(struct xt_standard_target))
	xtCommentSize   = 256
	xtVerdictDrop   = -1 // -NF_DROP - 1
	xtVerdictAccept = -2 // -NF_ACCEPT - 1
)

// xtTable is one table as the kernel reported it.
type xtTable struct {
	layout     xtLayout
	validHooks uint32
	hookEntry  [xtHooks]uint32
	underflow  [xtHooks]uint32
	entries    []xtEntry
}

// xtEntry is one entry's bytes; off is where the kernel had it.
type xtEntry struct {
	off int
	b   []byte
}

// xtRule is the only kind of entry the tool writes: interface matches, a
// comment naming the lab, and ACCEPT.
type xtRule struct {
	In, Out string
	Comment string
}

func (l xtLayout) targetOffset(e []byte) int { return int(binary.NativeEndian.Uint16(e[l.targetOff:])) }
func (l xtLayout) nextOffset(e []byte) int   { return int(binary.NativeEndian.Uint16(e[l.targetOff+2:])) }

// parseXT splits a table's entries.
func parseXT(l xtLayout, blob []byte) ([]xtEntry, error) {
	var out []xtEntry
	for off := 0; off < len(blob); {
		if len(blob)-off < l.entrySize {
			return nil, fmt.Errorf("entry at %d: %d bytes left, want %d", off, len(blob)-off, l.entrySize)
		}
		next := l.nextOffset(blob[off:])
		if next < l.entrySize || off+next > len(blob) || l.targetOffset(blob[off:])+xtTargetHdr > next {
			return nil, fmt.Errorf("entry at %d: bad size %d", off, next)
		}
		out = append(out, xtEntry{off: off, b: blob[off : off+next]})
		off += next
	}
	return out, nil
}

// target returns an entry's target name and, for the standard target, its
// verdict.
func (l xtLayout) target(e []byte) (name string, verdict int32) {
	t := e[l.targetOffset(e):]
	name = cstring(t[2 : 2+xtNameLen])
	if name == "" && len(t) >= xtTargetHdr+4 {
		verdict = int32(binary.NativeEndian.Uint32(t[xtTargetHdr:]))
	}
	return name, verdict
}

// comment returns the text of an entry's comment match, if it has one.
func (l xtLayout) comment(e []byte) string {
	for m := l.entrySize; m+xtTargetHdr <= l.targetOffset(e); {
		size := int(binary.NativeEndian.Uint16(e[m:]))
		if size < xtTargetHdr || m+size > len(e) {
			return ""
		}
		if cstring(e[m+2:m+2+xtNameLen]) == "comment" {
			return cstring(e[m+xtTargetHdr : m+size])
		}
		m += size
	}
	return ""
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// forward returns the index range [first, policy] of the FORWARD chain's
// entries; policy is its underflow.
func (t *xtTable) forward() (first, policy int, ok bool) {
	if t.validHooks&(1<<xtHookForward) == 0 {
		return 0, 0, false
	}
	first, policy = -1, -1
	for i, e := range t.entries {
		if uint32(e.off) == t.hookEntry[xtHookForward] {
			first = i
		}
		if uint32(e.off) == t.underflow[xtHookForward] {
			policy = i
		}
	}
	return first, policy, first >= 0 && policy >= first
}

// forwardDrops reports whether the FORWARD policy is DROP.
func (t *xtTable) forwardDrops() bool {
	_, p, ok := t.forward()
	if !ok {
		return false
	}
	name, v := t.layout.target(t.entries[p].b)
	return name == "" && v == xtVerdictDrop
}

// encode builds an entry for r.
func (l xtLayout) encode(r xtRule) []byte {
	match := xtTargetHdr + xtCommentSize
	e := make([]byte, l.entrySize+match+xtStandardSize)
	iface := func(off int, name string) {
		if name == "" {
			return
		}
		copy(e[off:off+16], name)
		for i := 0; i <= len(name) && i < 16; i++ { // the name and its NUL, as iptables does
			e[off+32+i] = 0xff
		}
	}
	iface(l.ifaceOff, r.In)
	iface(l.ifaceOff+16, r.Out)
	binary.NativeEndian.PutUint16(e[l.targetOff:], uint16(l.entrySize+match))
	binary.NativeEndian.PutUint16(e[l.targetOff+2:], uint16(len(e)))
	m := e[l.entrySize:]
	binary.NativeEndian.PutUint16(m, uint16(match))
	copy(m[2:], "comment")
	copy(m[xtTargetHdr:xtTargetHdr+xtCommentSize-1], r.Comment)
	t := e[l.entrySize+match:]
	binary.NativeEndian.PutUint16(t, xtStandardSize)
	v := int32(xtVerdictAccept)
	binary.NativeEndian.PutUint32(t[xtTargetHdr:], uint32(v))
	return e
}

// xtEdit is a table rebuilt: its entries in order, the new hook offsets,
// and for each new entry the index it had before (-1 for new ones).
type xtEdit struct {
	hookEntry, underflow [xtHooks]uint32
	blob                 []byte
	from                 []int
}

// rebuild lays out keep (indexes into t.entries, in order) with add
// inserted before entry at index before, and moves every offset.
func (t *xtTable) rebuild(keep []int, before int, add [][]byte) xtEdit {
	l := t.layout
	// at: an old offset's new place; start: where the chain that began
	// at an old offset now begins (before the inserted entries).
	at, start := map[int]int{}, map[int]int{}
	var ed xtEdit
	pos := 0
	kept := map[int]bool{}
	for _, i := range keep {
		kept[i] = true
	}
	var pending []int // removed entries waiting for the next kept one
	for i, e := range t.entries {
		if i == before {
			s := pos
			for _, b := range add {
				ed.blob = append(ed.blob, b...)
				ed.from = append(ed.from, -1)
				pos += len(b)
			}
			start[e.off] = s
		}
		if !kept[i] {
			pending = append(pending, e.off)
			continue
		}
		if _, ok := start[e.off]; !ok {
			start[e.off] = pos
		}
		for _, p := range pending {
			at[p], start[p] = pos, start[e.off]
		}
		pending = pending[:0]
		at[e.off] = pos
		b := append([]byte(nil), e.b...)
		ed.blob = append(ed.blob, b...)
		ed.from = append(ed.from, i)
		pos += len(b)
	}
	for _, p := range pending {
		at[p], start[p] = pos, pos
	}
	for h := 0; h < xtHooks; h++ {
		if t.validHooks&(1<<h) != 0 {
			ed.hookEntry[h] = uint32(start[int(t.hookEntry[h])])
			ed.underflow[h] = uint32(at[int(t.underflow[h])])
		}
	}
	// Jumps, and the fall-through of rules without a target, are verdicts
	// holding an offset.
	for off := 0; off < len(ed.blob); {
		e := ed.blob[off:]
		if name, v := l.target(e); name == "" && v >= 0 {
			if n, ok := at[int(v)]; ok {
				binary.NativeEndian.PutUint32(e[l.targetOffset(e)+xtTargetHdr:], uint32(n))
			}
		}
		off += l.nextOffset(e)
	}
	return ed
}

// ensure returns the table with every rule of rules at the head of
// FORWARD, unless an entry with its comment is in the chain already.
// changed is false when nothing was missing.
func (t *xtTable) ensure(rules []xtRule) (ed xtEdit, changed bool) {
	first, _, ok := t.forward()
	if !ok {
		return ed, false
	}
	var add [][]byte
	for _, r := range t.missing(rules) {
		add = append(add, t.layout.encode(r))
	}
	if len(add) == 0 {
		return ed, false
	}
	keep := make([]int, len(t.entries))
	for i := range keep {
		keep[i] = i
	}
	return t.rebuild(keep, first, add), true
}

// missing returns the rules whose comment no entry of FORWARD carries.
func (t *xtTable) missing(rules []xtRule) []xtRule {
	first, policy, ok := t.forward()
	if !ok {
		return nil
	}
	have := map[string]bool{}
	for _, e := range t.entries[first:policy] {
		have[t.layout.comment(e.b)] = true
	}
	var out []xtRule
	for _, r := range rules {
		if !have[r.Comment] {
			out = append(out, r)
		}
	}
	return out
}

// markedBy returns a test of whether a rule's comment is one the lab with
// this mark wrote.
func markedBy(mark string) func(comment string) bool {
	return func(c string) bool { return c == mark || strings.HasPrefix(c, mark+" ") }
}

// remove returns the table without the entries whose comment is mark or
// starts with mark and a space, and how many there were.
func (t *xtTable) remove(mark string) (ed xtEdit, n int) { return t.removeIf(markedBy(mark)) }

// removeIf returns the table without the entries whose comment matches.
func (t *xtTable) removeIf(match func(comment string) bool) (ed xtEdit, n int) {
	var keep []int
	for i, e := range t.entries {
		if match(t.layout.comment(e.b)) {
			n++
			continue
		}
		keep = append(keep, i)
	}
	if n == 0 {
		return ed, 0
	}
	return t.rebuild(keep, -1, nil), n
}
