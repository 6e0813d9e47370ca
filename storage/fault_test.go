package storage

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// TestDiskFullReserve: below the reserve, Begin refuses batches with
// ErrDiskFull before writing anything, the log stays as it was, and appends
// resume once space is back: no restart, no lost or changed record.
func TestDiskFullReserve(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	mem := vfs.NewMem()
	plenty := vfs.DiskUsage{AvailBytes: 10 << 30, TotalBytes: 20 << 30}
	mem.TestingSetDiskUsage(plenty)
	s := openStore(t, "data", mem, k)
	defer s.Close()
	m := &sumdbTree{}
	apply(t, s, m, makeBatch(1, 0, 10))
	before := s.Head()

	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 5 << 20, TotalBytes: 20 << 30})
	s.space.checked = time.Time{} // do not wait for the next check
	for range 3 {
		_, _, err := s.Apply(makeBatch(2, 10, 5))
		if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "5 MiB free") || !strings.Contains(err.Error(), "8 MiB kept in reserve") {
			t.Fatalf("Apply on a full disk: %v", err)
		}
	}
	if h := s.Head(); h.Size != before.Size || h.Root != before.Root {
		t.Fatalf("the head moved on a full disk: %d, was %d", h.Size, before.Size)
	}
	if st := s.Stats(); st.AvailBytes != 5<<20 || st.ReserveBytes != 8<<20 {
		t.Fatalf("stats: available %d, reserve %d", st.AvailBytes, st.ReserveBytes)
	}

	mem.TestingSetDiskUsage(plenty)
	apply(t, s, m, makeBatch(3, 10, 5))
	checkStore(t, s, k, m, []uint64{0, 10, 15})
}

// TestDiskFullBallast: a write that finds the disk full although the
// free-space check let its batch in (another process filled the disk)
// deletes the ballast and is retried, so its batch completes; appends are
// then refused until space is back, when the ballast is made again and
// appends resume, without a restart and with every record in place.
func TestDiskFullBallast(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	mem := vfs.NewMem()
	plenty := vfs.DiskUsage{AvailBytes: 10 << 30, TotalBytes: 20 << 30}
	mem.TestingSetDiskUsage(plenty)
	// The disk is full while full is set and the ballast exists: deleting
	// the ballast frees the space the writes need.
	var full atomic.Bool
	ballast := "data/" + ballastFile
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) {
			if _, err := mem.Stat(ballast); err == nil {
				return fmt.Errorf("injected on %s: %w", op.Path, syscall.ENOSPC)
			}
		}
		return nil
	}))
	s := openStore(t, "data", fs, k)
	defer s.Close()
	if _, err := mem.Stat(ballast); err != nil {
		t.Fatalf("no ballast after Open: %v", err)
	}
	m := &sumdbTree{}
	apply(t, s, m, makeBatch(1, 0, 10))

	// Another process fills the disk between two free-space checks.
	full.Store(true)
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 20, TotalBytes: 20 << 30})
	apply(t, s, m, makeBatch(2, 10, 10)) // completes on the ballast's space
	if _, err := mem.Stat(ballast); err == nil {
		t.Fatal("the ballast was not deleted")
	}
	for range 2 {
		_, _, err := s.Apply(makeBatch(3, 20, 5))
		if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "a write found the filesystem of the data directory full; 1 MiB free now, appends resume once 10 MiB are") {
			t.Fatalf("Apply after the disk filled: %v", err)
		}
	}

	// Space comes back: the ballast is made again and appends resume.
	full.Store(false)
	mem.TestingSetDiskUsage(plenty)
	apply(t, s, m, makeBatch(4, 20, 5))
	if _, err := mem.Stat(ballast); err != nil {
		t.Fatalf("the ballast was not made again: %v", err)
	}
	checkStore(t, s, k, m, []uint64{10, 20, 25})
}

// TestWriteFaults injects a failure into one kind of write with Pebble's
// error-injecting filesystem while batches are applied, in a child process
// (Pebble ends the process when a WAL write fails: its commit pipeline
// cannot go on). The batch whose write fails, and every later one, gets an
// error, never a result or a checkpoint: either Apply fails (ErrFailed) or
// the process exits with status 70. The log then opens again on the same
// directory, as a restarted tlogd would: every acknowledged record is there,
// every published checkpoint is reproduced, and the log goes on from them.
func TestWriteFaults(t *testing.T) {
	if os.Getenv("TLOGD_FAULT_CHILD") != "" {
		faultChild(t)
		return
	}
	for _, name := range []string{"WAL write, disk full", "WAL write, I/O error", "WAL fsync, I/O error",
		"checkpoint record write, I/O error", "index table write, disk full"} {
		t.Run(name, func(t *testing.T) {
			skey, _, err := note.GenerateKey(rand.Reader, "example.com/log")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFaults$", "-test.v")
			cmd.Env = append(os.Environ(), "TLOGD_FAULT_CHILD="+name, "TLOGD_FAULT_DIR="+dir, "TLOGD_FAULT_KEY="+skey)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			var exit *exec.ExitError
			how := ""
			switch {
			case err == nil && bytes.Contains(out, []byte("\nfailed: ")):
				how = "Apply failed, the writer stopped"
			case errors.As(err, &exit) && exit.ExitCode() == 70 && strings.Contains(stderr.String(), "pebble: fatal"):
				how = "Pebble ended the process (status 70)"
			default:
				t.Fatalf("child: %v\n%s\n%s", err, out, stderr.String())
			}
			k := parseTestKey(t, skey)
			var leaves []tlog.Hash
			published := map[uint64]string{}
			for line := range strings.Lines(string(out)) {
				if leaf, ok := strings.CutPrefix(line, "leaf "); ok {
					b, err := hex.DecodeString(strings.TrimSpace(leaf))
					if err != nil {
						t.Fatal(err)
					}
					leaves = append(leaves, tlog.Hash(b))
				}
				if cp, ok := strings.CutPrefix(line, "published "); ok {
					b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cp))
					if err != nil {
						t.Fatal(err)
					}
					c, _, err := tlog.OpenCheckpoint(b, k.verifier)
					if err != nil {
						t.Fatal(err)
					}
					published[c.Size] = string(b)
				}
			}
			m := &sumdbTree{}
			for _, h := range leaves {
				m.add(h)
			}
			acked := uint64(len(leaves))
			if acked < 1000 || len(published) < 10 {
				t.Fatalf("the child acknowledged %d records and published %d checkpoints", acked, len(published))
			}

			r, err := Open(dir, testOptions(k, nil))
			if err != nil {
				t.Fatalf("Open after the failure: %v", err)
			}
			defer r.Close()
			h := r.Head()
			if h.Size < acked {
				t.Fatalf("opened at size %d, %d records were acknowledged", h.Size, acked)
			}
			es, err := r.Entries(0, int(acked), false, math.MaxInt)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range es {
				if tlog.LeafHash(e.Entry) != leaves[i] {
					t.Fatalf("leaf %d changed", i)
				}
			}
			for size, want := range published {
				got, err := r.CheckpointAt(size)
				if err != nil || string(got) != want {
					t.Fatalf("the checkpoint published at size %d is not reproduced: %v", size, err)
				}
			}
			_, nh, err := r.Apply(makeBatch(4, 1<<30, 5))
			if err != nil {
				t.Fatalf("Apply after recovery: %v", err)
			}
			p, err := r.ConsistencyProof(acked, nh.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := sumdb.CheckTree(sumdbHashes(p), int64(nh.Size), sumdb.Hash(nh.Root), int64(acked), sumdb.Hash(m.root(acked))); err != nil {
				t.Fatalf("the new checkpoint does not extend the acknowledged tree: %v", err)
			}
			t.Logf("%s; %d records acknowledged before the failure, all present; %d published checkpoints reproduced; recovered size %d", how, acked, len(published), h.Size)
		})
	}
}

// faultChild is the child process of TestWriteFaults: it applies batches,
// printing every acknowledged leaf and published checkpoint, turns the
// fault on, and goes on until a write fails.
func faultChild(t *testing.T) {
	name := os.Getenv("TLOGD_FAULT_CHILD")
	wal := func(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".log") }
	writes := func(op errorfs.Op) bool { return op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt }
	syncs := func(op errorfs.Op) bool {
		return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
	}
	match, want := map[string]func(errorfs.Op) bool{
		"WAL write, disk full":               func(op errorfs.Op) bool { return wal(op) && writes(op) },
		"WAL write, I/O error":               func(op errorfs.Op) bool { return wal(op) && writes(op) },
		"WAL fsync, I/O error":               func(op errorfs.Op) bool { return wal(op) && syncs(op) },
		"checkpoint record write, I/O error": func(op errorfs.Op) bool { return strings.HasSuffix(op.Path, guardFile) && writes(op) },
		"index table write, disk full":       func(op errorfs.Op) bool { return strings.Contains(op.Path, "index-") && writes(op) },
	}[name], error(syscall.EIO)
	if strings.HasSuffix(name, "disk full") {
		want = syscall.ENOSPC
	}
	var on errorfs.Toggle
	on.Injector = errorfs.InjectorFunc(func(op errorfs.Op) error {
		if match(op) {
			return fmt.Errorf("injected on %s: %w", op.Path, want)
		}
		return nil
	})
	k := parseTestKey(t, os.Getenv("TLOGD_FAULT_KEY"))
	s := openStore(t, os.Getenv("TLOGD_FAULT_DIR"), errorfs.Wrap(vfs.Default, &on), k)
	next := 0
	var last Head // the last head published
	for batch := range 30 {
		if batch == 10 {
			on.On()
		}
		res, h, err := s.Apply(makeBatch(1, next, 100))
		next += 100
		if err != nil {
			if !errors.Is(err, ErrFailed) || !errors.Is(err, want) {
				t.Fatalf("the failed write gave %v, want ErrFailed wrapping %v", err, want)
			}
			fmt.Printf("\nfailed: %v\n", err)
			if _, _, err := s.Apply(makeBatch(3, next, 10)); !errors.Is(err, ErrFailed) {
				t.Fatalf("Apply after the failure: %v, want ErrFailed", err)
			}
			if got := s.Head(); got.Size != last.Size || got.Root != last.Root {
				t.Fatalf("the published head moved from size %d to %d after the failure", last.Size, got.Size)
			}
			return // no Close: the process ends as a stopped tlogd would be killed
		}
		last = h
		for _, r := range res {
			fmt.Printf("leaf %s\n", r.LeafHash)
		}
		fmt.Printf("published %s\n", base64.StdEncoding.EncodeToString(h.Checkpoint))
	}
	t.Fatal("no write failed")
}
