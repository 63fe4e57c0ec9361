package topology

import (
	"bytes"
	"os"
	"testing"
)

func TestBuiltinParses(t *testing.T) {
	top := Builtin()
	if top.Name != "classic" {
		t.Fatalf("name = %q, want classic", top.Name)
	}
	if got, want := len(top.Namespaces()), 3; got != want {
		t.Errorf("namespaces = %d, want %d", got, want)
	}
	if got, want := len(top.Links), 4; got != want {
		t.Errorf("links = %d, want %d", got, want)
	}
	if len(top.Warnings) != 0 {
		t.Errorf("warnings: %v", top.Warnings)
	}
}

func TestBuiltinMatchesExample(t *testing.T) {
	ex, err := os.ReadFile("../examples/builtin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ex, BuiltinYAML()) {
		t.Error("examples/builtin.yaml differs from topology/builtin.yaml; they must be the same file")
	}
}
