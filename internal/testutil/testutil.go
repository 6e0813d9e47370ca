// Package testutil holds helpers the tests of several packages share.
package testutil

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer safe for a writer and a reader in other
// goroutines: logs and command output read while they are written.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Golden compares got with the golden file at path, or, with update set
// (the tests' -update flag), writes got there. regen is the command that
// rewrites the file, for the failure message.
func Golden(t testing.TB, path string, got []byte, update bool, regen string) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s writes it)", err, regen)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the Go code generates (first difference at line %d); if the change is intended, run %s and review the diff",
			path, firstDiffLine(got, want), regen)
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}
