package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport runs the whole report with tiny logs and runs of one second
// against real tlogd processes, into a file with text around the generated
// section: the section is replaced, the rest kept, and every target has a
// row with a verdict.
func TestReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dozen tlogd processes")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir, "../tlogd", "../tlogctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "BENCHMARKS.md")
	before := "# Benchmarks\n\nintro\n\n" + reportBegin + "\nstale\n" + reportEnd + "\n\n## By hand\n\nkept\n"
	if err := os.WriteFile(out, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := report([]string{"-bin", dir, "-out", out, "-runs", "1", "-duration", "1s", "-big", "10000", "-medium", "10000"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("report exited %d: %s\n%s", code, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, "# Benchmarks\n\nintro\n\n"+reportBegin+"\n## Targets\n") || !strings.HasSuffix(got, reportEnd+"\n\n## By hand\n\nkept\n") || strings.Contains(got, "stale") {
		t.Fatalf("the generated section was not replaced in place:\n%s", got)
	}
	rows := 0
	for line := range strings.Lines(got) {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| target ") && !strings.HasPrefix(line, "| --- ") {
			rows++
			if !strings.Contains(line, "| met |") && !strings.Contains(line, "**missed**") && !strings.Contains(line, "not measured") {
				t.Errorf("a row without a verdict: %s", line)
			}
		}
	}
	if rows != 14 {
		t.Fatalf("%d rows, want 14:\n%s", rows, got)
	}
}
