package topology

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/invalid/*.want from what Check reports")

// TestInvalidCorpus runs Check on every file of testdata/invalid and
// compares what it reports, one problem a line, with the file's .want.
// Each file holds one mistake, so the corpus also shows every message a
// user can meet; read a .want written by -update before committing it.
func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no files in testdata/invalid")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			checkInvalid(t, file)
		})
	}
}

func checkInvalid(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := reportLines(Check(file, data))
	wantFile := strings.TrimSuffix(file, ".yaml") + ".want"
	if *update {
		if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(wantFile)
	if err != nil {
		t.Fatalf("%v (run with -update to write it, then read it)", err)
	}
	if got == "" {
		t.Errorf("Check(%s) found no problem; want\n%s", file, want)
		return
	}
	if got != string(want) {
		t.Errorf("Check(%s):\ngot:\n%swant:\n%sdiff:\n%s", file, got, want, lineDiff(got, string(want)))
	}
}

// reportLines formats problems as the command line prints them.
func reportLines(errs []Error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteByte('\n')
	}
	return b.String()
}

// lineDiff marks lines only in got with "+" and lines only in want with
// "-", in order; enough for lists of a few messages.
func lineDiff(got, want string) string {
	g := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	w := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	inG, inW := map[string]bool{}, map[string]bool{}
	for _, l := range g {
		inG[l] = true
	}
	for _, l := range w {
		inW[l] = true
	}
	var b strings.Builder
	for _, l := range w {
		if !inG[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !inW[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		b.WriteString("(same lines, different order or count)\n")
	}
	return b.String()
}

// TestInvalidCorpusFailsParse makes sure every corpus file holding an
// error (not only warnings) is refused by Parse with the same errors.
func TestInvalidCorpusFailsParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		all := Check(file, data)
		var errs []Error
		for _, e := range all {
			if !e.Warning {
				errs = append(errs, e)
			}
		}
		top, perr := Parse(file, data)
		switch {
		case len(errs) == 0 && perr != nil:
			t.Errorf("Parse(%s) = %v; want success with warnings only", file, perr)
		case len(errs) == 0 && reportLines(top.Warnings) != reportLines(all):
			t.Errorf("Parse(%s) warnings:\n%swant:\n%s", file, reportLines(top.Warnings), reportLines(all))
		case len(errs) > 0 && perr == nil:
			t.Errorf("Parse(%s) succeeded; want the errors\n%s", file, reportLines(errs))
		case len(errs) > 0 && perr.Error()+"\n" != reportLines(errs):
			t.Errorf("Parse(%s) error:\n%s\nwant:\n%s", file, perr, reportLines(errs))
		}
	}
}
