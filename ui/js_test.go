package ui_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestJavaScript runs the dashboard's JavaScript unit tests, test/*.test.mjs,
// with node --test. They need Node.js 18 or later (Debian 12's): without
// it this test fails rather than skips, so that no run passes without them
// (CI installs Node).
func TestJavaScript(t *testing.T) {
	const need = "the dashboard's JavaScript tests (ui/test/*.test.mjs) need Node.js 18 or later on PATH (CI installs it)"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("%s: %v", need, err)
	}
	version, err := exec.CommandContext(t.Context(), node, "--version").Output()
	if err != nil {
		t.Fatalf("%s: node --version: %v", need, err)
	}
	var major int
	if m := regexp.MustCompile(`^v(\d+)\.`).FindSubmatch(version); m != nil {
		major, _ = strconv.Atoi(string(m[1]))
	}
	if major < 18 {
		t.Fatalf("%s; node --version says %s", need, strings.TrimSpace(string(version)))
	}
	files, err := filepath.Glob(filepath.Join("test", "*.test.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test/*.test.mjs files (%v)", err)
	}
	args := []string{"--test"}
	if major == 18 {
		args = append(args, "--experimental-global-webcrypto") // a default from Node 19 on
	}
	out, err := exec.CommandContext(t.Context(), node, append(args, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", strings.Join(files, " "), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "# tests ") || strings.HasPrefix(line, "# pass ") {
			t.Log(line)
		}
	}
}
