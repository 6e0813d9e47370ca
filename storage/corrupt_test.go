package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// TestCorruptionTrials flips one bit at a random offset of one file of a
// closed log's data directory, on a fresh copy for every trial, and opens
// it. Every trial must end in one of:
//
//   - refused at start: Open fails (Pebble's checksums, or tlogd's start-up
//     self-check: stored nodes against the latest checkpoint, the last
//     entries against the stored leaves, the tree against the checkpoint
//     record kept outside Pebble);
//   - an error on read: some read fails with an error;
//   - caught by verification: a read returns bytes that a verifying client
//     rejects (a leaf that fails its inclusion proof, a payload that does
//     not match its commitment);
//   - harmless: every record, proof and index answer is what it was.
//
// Never allowed: a log that opens smaller than it was or with another root
// (silently truncated), a wrong index answer without an error, or a new
// checkpoint that is not consistent with the old one (re-signed).
//
// TLOGD_CORRUPTION_TRIALS sets the number of trials (default 200, 40 with
// -short).
func TestCorruptionTrials(t *testing.T) {
	trials := 200
	if testing.Short() {
		trials = 40
	}
	if v := os.Getenv("TLOGD_CORRUPTION_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("TLOGD_CORRUPTION_TRIALS: %v", err)
		}
		trials = n
	}
	k := newTestKey(t, "example.com/log")
	base := vfs.NewMem()
	l := buildCorruptionLog(t, k, base)

	rng := rand.New(rand.NewPCG(7, uint64(trials)))
	// A control: the undamaged copy must come out harmless, or the trials
	// below would count a broken Open or a wrong check as detection.
	if outcome, detail, err := l.trial(k, copyDir(t, base, "data"), rng); err != nil || outcome != "harmless" {
		t.Fatalf("the undamaged copy: %s %s %v", outcome, detail, err)
	}
	outcomes := map[string]int{}
	byKind := map[string]int{} // "file kind: outcome" → trials
	examples := map[string]string{}
	for trial := range trials {
		img := copyDir(t, base, "data")
		name, off := pickOffset(t, rng, img, "data")
		bit := byte(1) << rng.IntN(8)
		flipBit(t, img, name, off, bit)
		what := fmt.Sprintf("trial %d: bit %#x at offset %d of %s", trial, bit, off, name)
		outcome, detail, err := l.trial(k, img, rng)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		outcomes[outcome]++
		byKind[fileKind(name)+": "+outcome]++
		if _, ok := examples[outcome]; !ok && detail != "" {
			examples[outcome] = what + ": " + detail
		}
	}
	keys := make([]string, 0, len(outcomes))
	for o := range outcomes {
		keys = append(keys, o)
	}
	sort.Strings(keys)
	for _, o := range keys {
		t.Logf("%5d  %s", outcomes[o], o)
	}
	for _, o := range keys {
		if e := examples[o]; e != "" {
			t.Logf("e.g. %s", e)
		}
	}
	kinds := slices.Sorted(maps.Keys(byKind))
	for _, k := range kinds {
		t.Logf("%5d  %s", byKind[k], k)
	}
}

// fileKind names the kind of a file of the data directory.
func fileKind(name string) string {
	base := path.Base(name)
	switch {
	case strings.HasPrefix(base, "index-"):
		return "index table"
	case base == guardFile:
		return "checkpoint record"
	case strings.HasPrefix(base, "MANIFEST"), strings.HasPrefix(base, "OPTIONS"), strings.HasPrefix(base, "marker"):
		return strings.SplitN(base, "-", 2)[0]
	case strings.HasSuffix(base, ".log"):
		return "WAL"
	case strings.HasSuffix(base, ".sst"):
		return "sstable"
	case strings.HasSuffix(base, ".blob"):
		return "blob file"
	}
	return base
}

// corruptionLog is what the log held before the damage.
type corruptionLog struct {
	m           *sumdbTree
	head        Head
	records     []Result            // by index
	postings    map[string][]uint64 // subject → its events' indexes
	checkpoints map[uint64][]byte   // every checkpoint published
}

// buildCorruptionLog writes a log of about 3,000 records, a third of them
// events with postings, with payloads of up to 4 KiB so that Pebble holds
// blob files, sstables of several memtable flushes, ingested index tables
// and a WAL tail, and closes it.
func buildCorruptionLog(t *testing.T, k testKey, fs vfs.FS) *corruptionLog {
	s := openStore(t, "data", fs, k)
	l := &corruptionLog{m: &sumdbTree{}, postings: map[string][]uint64{}, checkpoints: map[uint64][]byte{}}
	rng := rand.New(rand.NewPCG(1, 1))
	subjects := []string{"alice", "bob", "carol", "dave"}
	for b := 0; len(l.records) < 3000; b++ {
		batch := &Batch{Time: uint64(1000 + b)}
		for range 1 + rng.IntN(150) {
			i := len(l.records) + len(batch.Records)
			payload := fmt.Appendf(nil, "record %d %s", i, strings.Repeat("x", rng.IntN(4096)))
			if rng.IntN(3) == 0 {
				sub := subjects[rng.IntN(len(subjects))]
				batch.Records = append(batch.Records, eventRecord(string(payload), sub))
				l.postings[sub] = append(l.postings[sub], uint64(i))
			} else {
				batch.Records = append(batch.Records, makeRecord(payload))
			}
		}
		l.records = append(l.records, apply(t, s, l.m, batch)...)
		l.checkpoints[s.Head().Size] = s.Head().Checkpoint
		if b == 10 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.head = s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return l
}

// trial opens a damaged copy and classifies what happens. err is a failure
// of the test: data lost, changed or re-signed without an error.
func (l *corruptionLog) trial(k testKey, fs vfs.FS, rng *rand.Rand) (outcome, detail string, err error) {
	r, err := Open("data", testOptions(k, fs))
	if err != nil && !errors.Is(err, ErrCorrupt) && !pebble.IsCorruptionError(err) {
		return "refused at start by Pebble, not as corruption", err.Error(), nil
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), guardFile) {
			return "refused at start: Pebble lost published records, found by the checkpoint record", err.Error(), nil
		}
		if errors.Is(err, ErrCorrupt) {
			return "refused at start by tlogd's self-check", err.Error(), nil
		}
		return "refused at start by Pebble", err.Error(), nil
	}
	defer r.Close()
	h := r.Head()
	n := l.head.Size
	switch {
	case h.Size < n:
		return "", "", fmt.Errorf("opened at size %d, but the log had %d records: silently truncated", h.Size, n)
	case h.Size > n || h.Root != l.head.Root || !bytes.Equal(h.Checkpoint, l.head.Checkpoint):
		return "", "", fmt.Errorf("opened with another head: size %d root %s, was size %d root %s", h.Size, h.Root, n, l.head.Root)
	}
	readErr := func(what string, err error) (string, string, error) {
		return "an error on read", what + ": " + err.Error(), nil
	}

	es, err := r.Entries(0, int(n), true, math.MaxInt)
	if err != nil {
		return readErr("entries", err)
	}
	if uint64(len(es)) != n {
		return "", "", fmt.Errorf("read %d entries of %d without an error", len(es), n)
	}
	for i, e := range es {
		w := l.records[i]
		if bytes.Equal(e.Entry, w.Entry) && bytes.Equal(e.Payload, w.Payload) && bytes.Equal(e.Salt, w.Salt[:]) && !e.Erased {
			continue
		}
		if tlog.LeafHash(e.Entry) != l.m.leaves[i] {
			return "caught by verification", fmt.Sprintf("entry %d fails its inclusion proof", i), nil
		}
		pe, perr := tlog.ParseEntry(e.Entry)
		if perr != nil || tlog.Commit(e.Salt, e.Payload) != pe.Commitment {
			return "caught by verification", fmt.Sprintf("payload %d does not match its commitment", i), nil
		}
		return "", "", fmt.Errorf("entry %d was served changed, and it verifies", i)
	}

	for _, i := range append(sampleIndexes(n), uint64(rng.IntN(int(n)))) {
		p, err := r.InclusionProof(i, n)
		if err != nil {
			return readErr("inclusion proof", err)
		}
		if err := sumdb.CheckRecord(sumdbHashes(p), int64(n), sumdb.Hash(h.Root), int64(i), sumdb.Hash(l.m.leaves[i])); err != nil {
			return "caught by verification", fmt.Sprintf("inclusion proof of %d: %v", i, err), nil
		}
		got, err := r.LeafIndex(l.m.leaves[i])
		if err != nil {
			return readErr("leaf index", err)
		}
		if got != i {
			return "", "", fmt.Errorf("LeafIndex of leaf %d gave %d without an error", i, got)
		}
	}
	for _, m := range []uint64{1, n / 2, n - 1} {
		p, err := r.ConsistencyProof(m, n)
		if err != nil {
			return readErr("consistency proof", err)
		}
		if err := sumdb.CheckTree(sumdbHashes(p), int64(n), sumdb.Hash(h.Root), int64(m), sumdb.Hash(l.m.root(m))); err != nil {
			return "caught by verification", fmt.Sprintf("consistency proof %d→%d: %v", m, n, err), nil
		}
	}
	for sub, want := range l.postings {
		term := sha256.Sum256([]byte(sub))
		hits, err := r.Postings(term[:], 0, n, len(want)+1, false)
		if err != nil {
			return readErr("postings", err)
		}
		if got := hitIndexes(hits); fmt.Sprint(got) != fmt.Sprint(want) {
			return "", "", fmt.Errorf("postings of %s: %d hits without an error, want %d", sub, len(got), len(want))
		}
	}

	for size, want := range l.checkpoints {
		got, err := r.CheckpointAt(size)
		if err != nil {
			return readErr("checkpoint", err)
		}
		if !bytes.Equal(got, want) {
			return "", "", fmt.Errorf("the checkpoint of size %d changed without an error", size)
		}
	}

	// The log goes on from where it was: an event of each subject links to
	// the subject's latest event, and a new checkpoint must extend the old
	// tree, never replace it.
	batch := &Batch{Time: 1 << 40}
	subjects := slices.Sorted(maps.Keys(l.postings))
	for _, sub := range subjects {
		batch.Records = append(batch.Records, eventRecord(fmt.Sprintf("after the damage: %s %d", sub, rng.Uint64()), sub))
	}
	res, nh, err := r.Apply(batch)
	if err != nil {
		return "an error on write", err.Error(), nil
	}
	for i, sub := range subjects {
		e, err := tlog.ParseEntry(res[i].Entry)
		if err != nil {
			return "", "", err
		}
		if want := l.postings[sub][len(l.postings[sub])-1]; len(e.Links) != 1 || e.Links[0] != want {
			return "", "", fmt.Errorf("a new event of %s links to %v, want %d", sub, e.Links, want)
		}
	}
	p, err := r.ConsistencyProof(n, nh.Size)
	if err != nil {
		return readErr("consistency proof after an append", err)
	}
	if err := sumdb.CheckTree(sumdbHashes(p), int64(nh.Size), sumdb.Hash(nh.Root), int64(n), sumdb.Hash(l.head.Root)); err != nil {
		return "", "", fmt.Errorf("the checkpoint signed after the damage does not extend the old tree: %v", err)
	}
	return "harmless", "", nil
}

// copyDir copies every file of dir in fs to a new in-memory filesystem.
func copyDir(t *testing.T, fs vfs.FS, dir string) vfs.FS {
	t.Helper()
	out := vfs.NewMem()
	if err := out.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		b := readAll(t, fs, fs.PathJoin(dir, name))
		f, err := out.Create(out.PathJoin(dir, name), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func readAll(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pickOffset picks a data file and an offset in it: half the time a file chosen
// uniformly (so that small files such as the MANIFEST are hit often), half
// the time a byte chosen uniformly over all files.
func pickOffset(t *testing.T, rng *rand.Rand, fs vfs.FS, dir string) (string, int64) {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var files []string
	var sizes []int64
	total := int64(0)
	for _, name := range names {
		st, err := fs.Stat(fs.PathJoin(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 0 && name != ballastFile { // the ballast holds no data
			files = append(files, name)
			sizes = append(sizes, st.Size())
			total += st.Size()
		}
	}
	if rng.IntN(2) == 0 {
		i := rng.IntN(len(files))
		return fs.PathJoin(dir, files[i]), rng.Int64N(sizes[i])
	}
	off := rng.Int64N(total)
	for i := range files {
		if off < sizes[i] {
			return fs.PathJoin(dir, files[i]), off
		}
		off -= sizes[i]
	}
	panic("unreachable")
}

func flipBit(t *testing.T, fs vfs.FS, name string, off int64, bit byte) {
	t.Helper()
	f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= bit
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
