package topology

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits that keep hostile input from exhausting memory or the stack.
const (
	maxDepth = 64        // nesting of mappings and sequences
	maxNodes = 2_000_000 // YAML nodes visited, aliases expanded
	// maxAliased bounds the values read through aliases, beyond ten for
	// each value the file writes out: a firewall shared by a few nodes
	// is fine, a "billion laughs" stops after a few megabytes.
	maxAliased = 100_000
)

// Pos is a position in a topology file, 1-based.
type Pos struct {
	Line, Col int
}

// String is a scalar string with the position it was read at.
type String struct {
	Value string
	Pos   Pos
	Set   bool
}

// Int is a scalar integer with its position.
type Int struct {
	Value int
	Pos   Pos
	Set   bool
}

// Bool is a scalar boolean with its position.
type Bool struct {
	Value bool
	Pos   Pos
	Set   bool
}

// Map is a YAML mapping that keeps the file's order and each key's position.
type Map[T any] []Entry[T]

// Entry is one key of a Map.
type Entry[T any] struct {
	Key    string
	KeyPos Pos
	Value  T
}

// mapDecoder lets the reflective decoder fill a Map[T] of any T.
type mapDecoder interface {
	decodeMap(d *decoder, n *yaml.Node)
}

func (m *Map[T]) decodeMap(d *decoder, n *yaml.Node) {
	seen := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "a key must be a plain name")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "%s: %q is given twice (first at line %d); merge the two", d.where(), k.Value, first.Line)
			continue
		}
		seen[k.Value] = posOf(k)
		var e Entry[T]
		e.Key, e.KeyPos = k.Value, posOf(k)
		d.path = append(d.path, k.Value)
		d.decode(v, reflect.ValueOf(&e.Value).Elem())
		d.path = d.path[:len(d.path)-1]
		*m = append(*m, e)
	}
}

// decoder turns a yaml.Node tree into the file structs, strictly: unknown
// fields and wrong kinds become errors, and decoding goes on so that every
// error in the file is reported at once.
type decoder struct {
	errs  *ErrorList
	path  []string
	depth int
	count int
	// bad holds the positions of values that did not decode, and of the
	// mappings that hold them: validation reports nothing more there,
	// since a missing or zero field there is the same mistake again.
	bad map[Pos]bool
	// aliased counts the values decoded through inAlias, the outermost
	// alias being expanded.
	aliased int
	inAlias *yaml.Node
	// refused is set when the file hit a limit: it is refused whole.
	refused bool
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs.add(posOf(n), format, args...)
	d.bad[posOf(n)] = true
}

// resolve follows aliases.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func (d *decoder) where() string {
	if len(d.path) == 0 {
		return "the file"
	}
	return strings.Join(d.path, ".")
}

var (
	stringType = reflect.TypeOf(String{})
	intType    = reflect.TypeOf(Int{})
	boolType   = reflect.TypeOf(Bool{})
	posType    = reflect.TypeOf(Pos{})
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value) {
	if d.refused {
		return
	}
	if n.Kind == yaml.AliasNode && d.inAlias == nil {
		d.inAlias = n
		defer func() { d.inAlias = nil }()
	}
	n = d.resolve(n)
	d.count++
	if d.inAlias != nil {
		d.aliased++
	}
	switch {
	case d.count > maxNodes:
		d.errorf(n, "the file holds more than %d values; refusing it", maxNodes)
		d.refused = true
		return
	case d.aliased > maxAliased+10*(d.count-d.aliased):
		d.errorf(d.inAlias, "aliases expand to more than %d values, over ten times what the file writes out; refusing it", maxAliased)
		d.refused = true
		return
	}
	if d.depth > maxDepth {
		d.errorf(n, "nesting deeper than %d levels", maxDepth)
		return
	}
	d.depth++
	defer func() { d.depth-- }()

	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the zero value
	}
	if md, ok := v.Addr().Interface().(mapDecoder); ok {
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: expected a mapping of names, found %s", d.where(), kindName(n))
			return
		}
		md.decodeMap(d, n)
		return
	}
	switch v.Type() {
	case stringType:
		d.decodeString(n, v.Addr().Interface().(*String))
		return
	case intType:
		d.decodeInt(n, v.Addr().Interface().(*Int))
		return
	case boolType:
		d.decodeBool(n, v.Addr().Interface().(*Bool))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem())
	case reflect.Slice:
		d.decodeSlice(n, v)
	case reflect.Struct:
		d.decodeStruct(n, v)
	default:
		panic(fmt.Sprintf("topology: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) decodeString(n *yaml.Node, s *String) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: expected a string, found %s", d.where(), kindName(n))
		return
	}
	*s = String{Value: n.Value, Pos: posOf(n), Set: true}
}

func (d *decoder) decodeInt(n *yaml.Node, i *Int) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errorf(n, "%s: expected an integer, found %s", d.where(), kindName(n))
		return
	}
	val, err := strconv.ParseInt(n.Value, 0, 64)
	if err != nil || val != int64(int(val)) || val > 1<<31 || val < -(1<<31) {
		d.errorf(n, "%s: integer %s out of range", d.where(), n.Value)
		return
	}
	*i = Int{Value: int(val), Pos: posOf(n), Set: true}
}

func (d *decoder) decodeBool(n *yaml.Node, b *Bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, "%s: expected true or false, found %s", d.where(), kindName(n))
		return
	}
	*b = Bool{Value: strings.EqualFold(n.Value, "true"), Pos: posOf(n), Set: true}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s: expected a list, found %s", d.where(), kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	last := len(d.path) - 1
	base := ""
	if last >= 0 {
		base = d.path[last]
	}
	et := v.Type().Elem()
	scalar := et == stringType || et == intType || et == boolType
	for i, item := range n.Content {
		if last >= 0 {
			d.path[last] = fmt.Sprintf("%s[%d]", base, i)
		}
		// A scalar item that did not decode is left out, so validation
		// does not report it again. Other items stay, so that messages
		// number them as the file does.
		before := len(d.errs.Items)
		elem := reflect.New(et).Elem()
		if r := d.resolve(item); r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
			d.errorf(item, "%s: empty list item; remove it or give it a value", d.where())
			if f := elem.FieldByName("Pos"); elem.Kind() == reflect.Struct && f.IsValid() && f.Type() == posType {
				f.Set(reflect.ValueOf(posOf(item)))
			}
		} else {
			d.decode(item, elem)
		}
		if scalar && len(d.errs.Items) > before {
			continue
		}
		out = reflect.Append(out, elem)
	}
	if last >= 0 {
		d.path[last] = base
	}
	v.Set(out)
}

// fieldsOf lists the YAML names of a struct's fields, with their indexes.
func fieldsOf(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		idx[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	return idx, names
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value) {
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		f.Set(reflect.ValueOf(posOf(n)))
	}
	if n.Kind != yaml.MappingNode {
		_, names := fieldsOf(v.Type())
		d.errorf(n, "%s: expected a mapping (fields: %s), found %s", d.where(), strings.Join(names, ", "), kindName(n))
		return
	}
	before := len(d.errs.Items)
	defer func() {
		if len(d.errs.Items) > before {
			d.bad[posOf(n)] = true
		}
	}()
	idx, names := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fi, ok := idx[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q in %s", k.Value, d.where())
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; known fields: " + strings.Join(names, ", ")
			}
			d.errorf(k, "%s", msg)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "field %q set twice in %s", k.Value, d.where())
			continue
		}
		seen[k.Value] = true
		d.path = append(d.path, k.Value)
		d.decode(val, v.Field(fi))
		d.path = d.path[:len(d.path)-1]
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "nothing"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}
