package topology

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in a topology file.
type Error struct {
	File    string
	Pos     Pos
	Msg     string
	Warning bool
}

// Error formats the problem as FILE:LINE:COL: message, the form editors and
// compilers use, so that a click in a terminal opens the right line.
func (e Error) Error() string {
	prefix := ""
	if e.Warning {
		prefix = "warning: "
	}
	if e.Pos.Line == 0 {
		return fmt.Sprintf("%s: %s%s", e.File, prefix, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", e.File, e.Pos.Line, e.Pos.Col, prefix, e.Msg)
}

// ErrorList holds every problem of one file, in file order.
type ErrorList struct {
	File  string
	Items []Error
}

func (l *ErrorList) add(p Pos, format string, args ...any) {
	l.Items = append(l.Items, Error{File: l.File, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (l *ErrorList) warn(p Pos, format string, args ...any) {
	l.Items = append(l.Items, Error{File: l.File, Pos: p, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// Errors returns the problems that are not warnings.
func (l *ErrorList) Errors() []Error {
	var out []Error
	for _, e := range l.Items {
		if !e.Warning {
			out = append(out, e)
		}
	}
	return out
}

// Warnings returns the problems that do not stop the file from being used.
func (l *ErrorList) Warnings() []Error {
	var out []Error
	for _, e := range l.Items {
		if e.Warning {
			out = append(out, e)
		}
	}
	return out
}

func (l *ErrorList) sort() {
	slices.SortStableFunc(l.Items, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	l.Items = slices.Compact(l.Items)
}

// Error lists every error, one per line.
func (l *ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l.Errors() {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// suggest returns the candidate closest to name when it is close enough to
// be a likely misspelling, or "".
func suggest(name string, candidates []string) string {
	best, bestDist := "", len(name)/2+1
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestDist || (d == bestDist && best == "" && d <= 2) {
			best, bestDist = c, d
		}
	}
	if best == "" || editDistance(name, best) > max(2, len(name)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
