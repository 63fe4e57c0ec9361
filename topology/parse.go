package topology

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds what Load reads: topology files are written by people
// or generated compactly; anything larger is a mistake.
const MaxFileSize = 16 << 20

//go:embed builtin.yaml
var builtinYAML []byte

// BuiltinName is the Source of the embedded topology.
const BuiltinName = "<built-in>"

// BuiltinYAML returns the text of the embedded topology.
func BuiltinYAML() []byte { return append([]byte(nil), builtinYAML...) }

// Builtin returns the embedded classic topology.
func Builtin() *Topology {
	t, err := Parse(BuiltinName, builtinYAML)
	if err != nil {
		panic("topology: the built-in topology is invalid: " + err.Error())
	}
	return t
}

// Load reads and parses a topology: "" is the built-in topology, "-" is
// standard input, anything else a file path. Problems with the file's
// content come back as *ErrorList; a file that cannot be read as a plain
// error.
func Load(path string, stdin io.Reader) (*Topology, []byte, error) {
	var (
		data []byte
		err  error
		name = path
	)
	switch path {
	case "":
		return Builtin(), BuiltinYAML(), nil
	case "-":
		name = "<stdin>"
		data, err = readLimited(stdin)
	default:
		var f *os.File
		if f, err = os.Open(path); err == nil {
			data, err = readLimited(f)
			f.Close()
		}
	}
	if err != nil {
		// An unreadable file is bad input like any other: exit status 2.
		errs := &ErrorList{File: name}
		errs.add(Pos{}, "cannot be read: %v", unwrapPath(err))
		return nil, nil, errs
	}
	t, err := Parse(name, data)
	return t, data, err
}

// unwrapPath drops the path from an *os.PathError; the message names the
// file already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err == nil && len(data) > MaxFileSize {
		err = fmt.Errorf("larger than %d MiB, the limit for a topology file", MaxFileSize>>20)
	}
	return data, err
}

// Parse decodes and validates a topology file. On failure the error is an
// *ErrorList holding every problem found, in file order. Warnings alone do
// not fail; they are available through Warnings.
func Parse(name string, data []byte) (*Topology, error) {
	t, errs := parse(name, data)
	if t == nil || len(errs.Errors()) > 0 {
		return nil, errs
	}
	t.Warnings = errs.Warnings()
	return t, nil
}

// Check parses the file and returns every problem, warnings included, or
// nil when there are none.
func Check(name string, data []byte) []Error {
	_, errs := parse(name, data)
	return errs.Items
}

// parse decodes and resolves the file. Where a value did not decode,
// validation's own complaints at that place are dropped: they would
// report the same mistake again ("missing field via" after "via:
// expected a string").
func parse(name string, data []byte) (*Topology, *ErrorList) {
	errs := &ErrorList{File: name}
	f, bad := decodeFile(data, errs)
	if f == nil {
		errs.sort()
		return nil, errs
	}
	decoded := len(errs.Items)
	t := resolve(name, f, errs)
	kept := errs.Items[:decoded]
	for _, e := range errs.Items[decoded:] {
		if !bad[e.Pos] {
			kept = append(kept, e)
		}
	}
	errs.Items = kept
	errs.sort()
	return t, errs
}

func decodeFile(data []byte, errs *ErrorList) (*File, map[Pos]bool) {
	if !utf8.Valid(data) {
		line, start := 1, 0
		for i := 0; i < len(data); {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				errs.add(Pos{Line: line, Col: i - start + 1}, "the file is not UTF-8 text (invalid byte 0x%02x); save it as UTF-8", data[i])
				return nil, nil
			}
			if r == '\n' {
				line, start = line+1, i+1
			}
			i += size
		}
	}
	root, ok := oneDocument(data, errs)
	if !ok {
		return nil, nil
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		errs.add(Pos{Line: 1, Col: 1}, "the file is empty; a topology needs at least a name and nodes")
		return nil, nil
	}
	f := new(File)
	d := &decoder{errs: errs, bad: map[Pos]bool{}}
	d.decode(root.Content[0], valueOf(f))
	if d.refused {
		return nil, nil
	}
	return f, d.bad
}

// oneDocument parses the file's YAML document and refuses a second one,
// which yaml.Unmarshal would drop without a word.
func oneDocument(data []byte, errs *ErrorList) (*yaml.Node, bool) {
	var root, next yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&root)
	if err == nil {
		err = dec.Decode(&next)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		line, msg := yamlError(err, data)
		errs.add(Pos{Line: line, Col: 1}, "%s", msg)
		return nil, false
	}
	if len(next.Content) > 0 && next.Content[0].Tag != "!!null" {
		errs.add(posOf(next.Content[0]), "a second YAML document starts here, after '---'; a file holds one topology, so remove the '---' or split the file")
		return nil, false
	}
	return &root, true
}

// yamlError turns the library's message ("yaml: line 3: found ...") into
// a line number and a message of our own form. The library numbers lines
// from 0 for parser errors (an unclosed '[') and from 1 for scanner errors
// (a tab), and gives for the former where the enclosing list or mapping
// starts, not where the problem is: the hints say so.
func yamlError(err error, data []byte) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	hint, parserError := yamlHints[msg]
	if parserError {
		line++
	}
	if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		line = lineOf(data, []byte("*"+m[1]))
		hint = "define it with &" + m[1] + " before using it"
	}
	// The end of the file counts as its last line.
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	line = min(max(line, 1), len(lines))
	if bytes.HasPrefix(bytes.TrimLeft(lines[line-1], " "), []byte("\t")) {
		hint = "a tab indents this line; YAML indents with spaces only"
	}
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return line, "not valid YAML: " + msg
}

var (
	yamlLine   = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	// yamlHints holds the parser's problems, all numbered from 0, with
	// what they usually mean.
	yamlHints = map[string]string{
		"did not find expected ',' or ']'":       "a '[' list opened on this line or after it is not closed, or lacks a ','",
		"did not find expected ',' or '}'":       "a '{' mapping opened on this line or after it is not closed, or lacks a ','",
		"did not find expected key":              "a line from here on is indented wrongly, or is not key: value",
		"did not find expected '-' indicator":    "a line from here on is indented wrongly, or lacks its '- '",
		"did not find expected node content":     "",
		"did not find expected <document start>": "",
		"found undefined tag handle":             "",
		"found duplicate %YAML directive":        "",
		"found incompatible YAML document":       "",
		"found duplicate %TAG directive":         "",
	}
)

// lineOf returns the 1-based line of the first occurrence of what, or 0.
func lineOf(data, what []byte) int {
	i := bytes.Index(data, what)
	if i < 0 {
		return 0
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}
