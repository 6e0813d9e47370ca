package storage

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCheckpointRecord: Open refuses a log that does not reach the
// checkpoint recorded outside Pebble, or has another root at its size;
// accepts a record behind the tree; survives one damaged slot; and writes a
// missing record again, saying so.
func TestCheckpointRecord(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	mem := vfs.NewMem()
	s := openStore(t, "data", mem, k)
	m := &sumdbTree{}
	apply(t, s, m, makeBatch(1, 0, 100))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	at100 := copyDir(t, mem, "data")
	s = openStore(t, "data", mem, k)
	apply(t, s, m, makeBatch(2, 100, 100))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	record200 := readAll(t, mem, "data/"+guardFile)

	// Another history of the same size, signed by the same key.
	other := vfs.NewMem()
	s = openStore(t, "data", other, k)
	apply(t, s, &sumdbTree{}, makeBatch(1, 1000, 100))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	otherRecord := readAll(t, other, "data/"+guardFile)

	for _, c := range []struct {
		name   string
		dir    vfs.FS
		record []byte
		want   string
	}{
		{"the record is ahead of Pebble", at100, record200, "published a checkpoint of size 200"},
		{"the record has another root at the tree's size", at100, otherRecord, "stored nodes give root"},
		{"the record has another root at a smaller size", mem, otherRecord, "stored nodes give root"},
		{"both slots are damaged", at100, bytes.Repeat([]byte{0xff}, 2*guardSlot), "holds no valid checkpoint of this log"},
	} {
		fs := copyDir(t, c.dir, "data")
		writeFile(t, fs, "data/"+guardFile, c.record)
		_, err := Open("data", testOptions(k, fs))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open gave %v, want ErrCorrupt saying %q", c.name, err, c.want)
		}
	}

	// A record behind the tree, with the tree's root at its size: accepted.
	fs0 := copyDir(t, mem, "data")
	writeFile(t, fs0, "data/"+guardFile, readAll(t, at100, "data/"+guardFile))
	if r, err := Open("data", testOptions(k, fs0)); err != nil {
		t.Fatalf("a record behind the tree: %v", err)
	} else {
		r.Close()
	}

	// One damaged slot: the other is used.
	fs := copyDir(t, mem, "data")
	rec := bytes.Clone(record200)
	rec[10] ^= 1 // inside slot 0's checkpoint; slot 1 is intact
	writeFile(t, fs, "data/"+guardFile, rec)
	r, err := Open("data", testOptions(k, fs))
	if err != nil {
		t.Fatalf("one damaged slot: %v", err)
	}
	r.Close()

	// A missing record is written again, with a warning, over what a crash
	// while making it would have left.
	fs = copyDir(t, mem, "data")
	if err := fs.Remove("data/" + guardFile); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fs, "data/"+guardFile+".tmp", []byte("torn"))
	var logs bytes.Buffer
	opts := testOptions(k, fs)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	r, err = Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !strings.Contains(logs.String(), "the checkpoint record was missing") {
		t.Fatalf("no warning: %s", logs.String())
	}
	if got := readAll(t, fs, "data/"+guardFile); len(got) < guardSlot {
		t.Fatalf("the record was not written again: %d bytes", len(got))
	}
}

func writeFile(t *testing.T, fs vfs.FS, name string, b []byte) {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Clone(b)); err != nil { // vfs.File.Write may modify what it is given
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
