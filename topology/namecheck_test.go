package topology

import (
	"regexp"
	"strings"
	"testing"
)

// TestNameChecker compares the hand-written name checks with the regular
// expressions they replace.
func TestNameChecker(t *testing.T) {
	node := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	iface := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	cases := []string{"", "a", "A_1", "_x", ".x", "-x", "x.", "x-y.z", "h1", "é", "a b", "a/b", "a\x00", "0",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "a:b", "a*", "Z9"}
	for _, c := range cases {
		if got, want := nodeNameRE.MatchString(c), node.MatchString(c); got != want {
			t.Errorf("node name %q: %v, want %v", c, got, want)
		}
		if got, want := ifNameRE.MatchString(c), iface.MatchString(c); got != want {
			t.Errorf("interface name %q: %v, want %v", c, got, want)
		}
	}
}
