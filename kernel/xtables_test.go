package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// xtStd builds an entry with a standard target and the given verdict.
func xtStd(l xtLayout, verdict int32) []byte {
	e := make([]byte, l.entrySize+xtStandardSize)
	binary.NativeEndian.PutUint16(e[l.targetOff:], uint16(l.entrySize))
	binary.NativeEndian.PutUint16(e[l.targetOff+2:], uint16(len(e)))
	binary.NativeEndian.PutUint16(e[l.entrySize:], xtStandardSize)
	binary.NativeEndian.PutUint32(e[l.entrySize+xtTargetHdr:], uint32(verdict))
	return e
}

// xtError builds the entry that heads a user chain or ends the table.
func xtError(l xtLayout, name string) []byte {
	e := make([]byte, l.entrySize+64)
	binary.NativeEndian.PutUint16(e[l.targetOff:], uint16(l.entrySize))
	binary.NativeEndian.PutUint16(e[l.targetOff+2:], uint16(len(e)))
	binary.NativeEndian.PutUint16(e[l.entrySize:], 64)
	copy(e[l.entrySize+2:], "ERROR")
	copy(e[l.entrySize+xtTargetHdr:], name)
	return e
}

// sampleTable lays out INPUT (policy), FORWARD (a jump to USER, a rule
// that falls through, policy DROP), OUTPUT (policy), and chain USER
// holding a RETURN.
func sampleTable(t testing.TB, l xtLayout) (*xtTable, []byte) {
	size := func(b []byte) int { return len(b) }
	in := xtStd(l, xtVerdictAccept)
	jump := xtStd(l, 0) // set below
	fall := xtStd(l, 0) // set below
	fwdPolicy := xtStd(l, xtVerdictDrop)
	out := xtStd(l, xtVerdictAccept)
	userHead := xtError(l, "USER")
	ret := xtStd(l, -5) // XT_RETURN
	end := xtError(l, "ERROR")
	offs := []int{0}
	for _, b := range [][]byte{in, jump, fall, fwdPolicy, out, userHead, ret} {
		offs = append(offs, offs[len(offs)-1]+size(b))
	}
	binary.NativeEndian.PutUint32(jump[l.entrySize+xtTargetHdr:], uint32(offs[6])) // USER's RETURN
	binary.NativeEndian.PutUint32(fall[l.entrySize+xtTargetHdr:], uint32(offs[3])) // the next entry
	var blob []byte
	for _, b := range [][]byte{in, jump, fall, fwdPolicy, out, userHead, ret, end} {
		blob = append(blob, b...)
	}
	entries, err := parseXT(l, blob)
	if err != nil {
		t.Fatal(err)
	}
	tab := &xtTable{layout: l, validHooks: 1<<1 | 1<<2 | 1<<3, entries: entries}
	tab.hookEntry[1], tab.underflow[1] = uint32(offs[0]), uint32(offs[0])
	tab.hookEntry[2], tab.underflow[2] = uint32(offs[1]), uint32(offs[3])
	tab.hookEntry[3], tab.underflow[3] = uint32(offs[4]), uint32(offs[4])
	return tab, blob
}

func verdictAt(l xtLayout, blob []byte, off int) int32 {
	_, v := l.target(blob[off:])
	return v
}

// TestXTEnsureRemove inserts two rules at the head of FORWARD, checks every
// hook and jump moved with the entries, then removes them and expects the
// original table back, byte for byte.
func TestXTEnsureRemove(t *testing.T) {
	for _, l := range []xtLayout{xtIPv4, xtIPv6} {
		tab, blob := sampleTable(t, l)
		if !tab.forwardDrops() {
			t.Fatalf("%s: FORWARD policy not seen as DROP", l.tool)
		}
		rules := []xtRule{{In: "br0", Out: "br0", Comment: "nsrouter:lab br0"}, {Out: "up0", Comment: "nsrouter:lab up"}}
		ed, changed := tab.ensure(rules)
		if !changed {
			t.Fatalf("%s: ensure changed nothing", l.tool)
		}
		added := 2 * (l.entrySize + xtTargetHdr + xtCommentSize + xtStandardSize)
		if len(ed.blob) != len(blob)+added {
			t.Fatalf("%s: %d bytes, want %d", l.tool, len(ed.blob), len(blob)+added)
		}
		fwd := int(tab.hookEntry[2])
		if ed.hookEntry[2] != uint32(fwd) || ed.underflow[2] != tab.underflow[2]+uint32(added) ||
			ed.hookEntry[1] != 0 || ed.hookEntry[3] != tab.hookEntry[3]+uint32(added) {
			t.Errorf("%s: hooks %v / %v", l.tool, ed.hookEntry, ed.underflow)
		}
		if got := l.comment(ed.blob[fwd:]); got != "nsrouter:lab br0" {
			t.Errorf("%s: FORWARD starts with comment %q", l.tool, got)
		}
		e := ed.blob[fwd:]
		if cstring(e[l.ifaceOff:l.ifaceOff+16]) != "br0" || !bytes.Equal(e[l.ifaceOff+32:l.ifaceOff+36], []byte{255, 255, 255, 255}) {
			t.Errorf("%s: interface match wrong", l.tool)
		}
		jumpAt := fwd + added
		if v := verdictAt(l, ed.blob, jumpAt); v != verdictAt(l, blob, int(tab.hookEntry[2]))+int32(added) {
			t.Errorf("%s: jump to USER not moved: %d", l.tool, v)
		}
		fallAt := jumpAt + len(tab.entries[1].b)
		if v := verdictAt(l, ed.blob, fallAt); v != int32(tab.underflow[2])+int32(added) {
			t.Errorf("%s: fall-through not moved: %d", l.tool, v)
		}
		if want := []int{0, -1, -1, 1, 2, 3, 4, 5, 6, 7}; fmt.Sprint(ed.from) != fmt.Sprint(want) {
			t.Errorf("%s: from = %v, want %v", l.tool, ed.from, want)
		}
		if _, again := (&xtTable{layout: l, validHooks: tab.validHooks, hookEntry: ed.hookEntry, underflow: ed.underflow,
			entries: mustParse(t, l, ed.blob)}).ensure(rules); again {
			t.Errorf("%s: ensure is not idempotent", l.tool)
		}

		back := &xtTable{layout: l, validHooks: tab.validHooks, hookEntry: ed.hookEntry, underflow: ed.underflow,
			entries: mustParse(t, l, ed.blob)}
		rm, n := back.remove("nsrouter:lab")
		if n != 2 || !bytes.Equal(rm.blob, blob) || rm.hookEntry != tab.hookEntry || rm.underflow != tab.underflow {
			t.Errorf("%s: remove gave %d entries, same blob %v, hooks %v/%v", l.tool, n, bytes.Equal(rm.blob, blob), rm.hookEntry, rm.underflow)
		}
		if _, n := back.remove("nsrouter:other"); n != 0 {
			t.Errorf("%s: another lab's mark removed %d entries", l.tool, n)
		}
	}
}

func mustParse(t *testing.T, l xtLayout, blob []byte) []xtEntry {
	t.Helper()
	e, err := parseXT(l, blob)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestXTPolicyAccept: a FORWARD chain that accepts needs nothing.
func TestXTPolicyAccept(t *testing.T) {
	tab, _ := sampleTable(t, xtIPv4)
	accept := int32(xtVerdictAccept)
	binary.NativeEndian.PutUint32(tab.entries[3].b[xtIPv4.entrySize+xtTargetHdr:], uint32(accept))
	if tab.forwardDrops() {
		t.Error("policy ACCEPT seen as DROP")
	}
}

func FuzzXTParse(f *testing.F) {
	_, blob := sampleTable(f, xtIPv4)
	f.Add(blob)
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseXT(xtIPv4, b)
		if err != nil {
			return
		}
		for _, e := range entries {
			xtIPv4.comment(e.b)
			xtIPv4.target(e.b)
		}
	})
}
