package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

var eventErasures sync.Map // payload → the indexes an erasure record erases

// reindexCopy is reindexEvent that also gives erasure records their
// Erases, as a replica needs.
func reindexCopy(entry, payload []byte, r *Record) {
	reindexEvent(entry, payload, r)
	if v, ok := eventErasures.Load(string(payload)); ok {
		r.Erases = &Erasure{Indexes: v.([]uint64)}
	}
}

func openReplica(t *testing.T, dir string, k testKey) *Store {
	t.Helper()
	opts := testOptions(k, nil)
	opts.Signer, opts.Replica, opts.Reindex = nil, true, reindexCopy
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open replica: %v", err)
	}
	return s
}

// copyFrom copies every checkpointed batch of primary that replica lacks,
// one Copy per checkpoint, as tlogd's follower does.
func copyFrom(t *testing.T, primary, replica *Store, payloads bool) {
	t.Helper()
	var batches []*Copy
	err := primary.forEachCheckpoint(func(size uint64, signed []byte) error {
		from := replica.Head().Size
		if len(batches) > 0 {
			prev, _, _ := tlog.OpenCheckpoint(batches[len(batches)-1].Checkpoint, replica.verifier)
			from = prev.Size
		}
		if size <= from {
			return nil
		}
		es, err := primary.Entries(from, int(size-from), payloads, math.MaxInt)
		if err != nil {
			return err
		}
		c := &Copy{Checkpoint: signed}
		for _, e := range es {
			c.Entries = append(c.Entries, e.Entry)
			if payloads {
				c.Records = append(c.Records, CopyRecord{Salt: e.Salt, Payload: e.Payload, Erased: e.Erased, ErasedBy: e.ErasedBy})
			}
		}
		batches = append(batches, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range batches {
		p, err := replica.BeginCopy(c)
		if err != nil {
			t.Fatalf("BeginCopy: %v", err)
		}
		if _, _, err := p.Wait(); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
}

// sameLog checks that the replica holds what the primary holds: every
// checkpoint, entry (with payloads), tile and proof.
func sameLog(t *testing.T, primary, replica *Store, k testKey, m *sumdbTree, payloads bool) {
	t.Helper()
	ph, rh := primary.Head(), replica.Head()
	if ph.Size != rh.Size || !bytes.Equal(ph.Checkpoint, rh.Checkpoint) || !ph.Time.Equal(rh.Time) {
		t.Fatalf("replica head %d %v, primary %d %v", rh.Size, rh.Time, ph.Size, ph.Time)
	}
	var sizes []uint64
	primary.forEachCheckpoint(func(size uint64, _ []byte) error {
		if size > 0 {
			sizes = append(sizes, size)
		}
		return nil
	})
	checkStore(t, replica, k, m, sizes)
	pe, err := primary.Entries(0, int(ph.Size), payloads, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	re, err := replica.Entries(0, int(ph.Size), payloads, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range pe {
		a, b := pe[i], re[i]
		if !bytes.Equal(a.Entry, b.Entry) || !bytes.Equal(a.Salt, b.Salt) || !bytes.Equal(a.Payload, b.Payload) || a.Erased != b.Erased || a.ErasedBy != b.ErasedBy {
			t.Fatalf("entry %d: replica %+v, primary %+v", i, b, a)
		}
		if j, err := replica.LeafIndex(tlog.LeafHash(a.Entry)); err != nil || j != uint64(i) {
			t.Fatalf("replica LeafIndex of entry %d: %d, %v", i, j, err)
		}
	}
	for level := 0; level < 2; level++ {
		n := ph.Size >> (8 * level)
		for index := uint64(0); index <= n/256; index++ {
			w := 256
			if index == n/256 {
				if w = int(n % 256); w == 0 {
					continue
				}
			}
			a, err1 := primary.HashTile(level, index, w)
			b, err2 := replica.HashTile(level, index, w)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Fatalf("tile %d/%d.p/%d: %v %v, equal %v", level, index, w, err1, err2, bytes.Equal(a, b))
			}
		}
	}
}

func TestReplicaCopiesEveryBatch(t *testing.T) {
	for _, payloads := range []bool{true, false} {
		t.Run(map[bool]string{true: "payloads", false: "entries"}[payloads], func(t *testing.T) {
			k, _, primary, m := newEventStore(t)
			defer primary.Close()
			dir := t.TempDir()
			replica := openReplica(t, dir, k)
			if h := replica.Head(); h.Size != 0 || h.Checkpoint != nil {
				t.Fatalf("empty replica head: %+v", h)
			}
			if _, _, err := replica.Apply(makeBatch(1, 0, 1)); !errors.Is(err, ErrReplica) {
				t.Fatalf("Apply on a replica: %v", err)
			}
			// Events, many batches across tiles and index flushes, an
			// erasure of earlier batches, reopened in between.
			apply(t, primary, m, &Batch{Time: 1, Records: []Record{
				eventRecord("r0: admin creates alice", "admin", "alice"),
				eventRecord("r1: alice logs in", "alice", "alice"),
			}})
			for i := range 30 {
				apply(t, primary, m, makeBatch(uint64(2+i), 10000+100*i, 1+i*7))
			}
			copyFrom(t, primary, replica, payloads)
			sameLog(t, primary, replica, k, m, payloads)

			alice := sha256.Sum256([]byte("alice"))
			erasure := eventRecord("r-erase: ops erases alice", "ops", "log")
			eventErasures.Store("r-erase: ops erases alice", []uint64{0, 1})
			erasure.Erases = &Erasure{Indexes: []uint64{0, 1}, Postings: []PostingKey{{alice[:], 0}, {alice[:], 1}}, Forget: []Forget{{alice, alice[:]}}}
			apply(t, primary, m, &Batch{Time: 40, Records: []Record{erasure}})
			apply(t, primary, m, makeBatch(41, 20000, 300))
			replica.Close()
			replica = openReplica(t, dir, k)
			defer func() { replica.Close() }()
			copyFrom(t, primary, replica, payloads)
			sameLog(t, primary, replica, k, m, payloads)
			if payloads {
				es, _ := replica.Entries(0, 2, true, math.MaxInt)
				if !es[0].Erased || es[0].Payload != nil {
					t.Fatalf("replica kept an erased payload: %+v", es[0])
				}
			}
			replica.Close()
			replica = openReplica(t, dir, k)
			sameLog(t, primary, replica, k, m, payloads)
			if got, decided := replica.CopiesPayloads(); got != payloads || !decided {
				t.Fatalf("CopiesPayloads = %v, %v", got, decided)
			}
		})
	}
}

// A replica whose payload copy races an erasure gets the payload, then
// the erasure record in a later batch: it erases its own copy.
func TestReplicaAppliesLaterErasure(t *testing.T) {
	k, _, primary, m := newEventStore(t)
	defer primary.Close()
	replica := openReplica(t, t.TempDir(), k)
	defer replica.Close()
	apply(t, primary, m, &Batch{Time: 1, Records: []Record{eventRecord("l0: admin creates bob", "admin", "bob")}})
	copyFrom(t, primary, replica, true)
	bob := sha256.Sum256([]byte("bob"))
	erasure := eventRecord("l-erase: ops erases bob", "ops", "log")
	eventErasures.Store("l-erase: ops erases bob", []uint64{0})
	erasure.Erases = &Erasure{Indexes: []uint64{0}, Postings: []PostingKey{{bob[:], 0}}, Forget: []Forget{{bob, bob[:]}}}
	apply(t, primary, m, &Batch{Time: 2, Records: []Record{erasure}})
	copyFrom(t, primary, replica, true)
	es, err := replica.Entries(0, 2, true, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	if !es[0].Erased || es[0].ErasedBy != 1 || es[0].Payload != nil || es[1].Erased {
		t.Fatalf("replica entries after the erasure: %+v", es)
	}
	sameLog(t, primary, replica, k, m, true)
}

func TestReplicaRejectsWhatTheLogDidNotSign(t *testing.T) {
	k, _, primary, m := newEventStore(t)
	defer primary.Close()
	replica := openReplica(t, t.TempDir(), k)
	defer replica.Close()
	apply(t, primary, m, makeBatch(5, 0, 10))
	apply(t, primary, m, makeBatch(6, 100, 10))
	es, _ := primary.Entries(0, 10, true, math.MaxInt)
	cp10, _ := primary.CheckpointAt(10)
	cp20, _ := primary.CheckpointAt(20)
	other := newTestKey(t, "example.com/log")
	forged, _ := tlog.SignCheckpoint(tlog.Checkpoint{Origin: "example.com/log", Size: 10, Root: primary.Head().Root}, other.signer)
	n10, _ := note.Open(cp10, note.VerifierList(k.verifier))
	cosigned, _ := note.Sign(&note.Note{Text: n10.Text}, k.signer, other.signer)
	good := func() *Copy {
		c := &Copy{Checkpoint: cp10}
		for _, e := range es {
			c.Entries = append(c.Entries, bytes.Clone(e.Entry))
			c.Records = append(c.Records, CopyRecord{Salt: e.Salt, Payload: e.Payload})
		}
		return c
	}
	laterTime := func() []byte {
		e, _ := tlog.ParseEntry(es[0].Entry)
		e.Time = 2
		b, _ := e.MarshalBinary()
		return b
	}()
	for _, tc := range []struct {
		name, want string
		edit       func(c *Copy)
	}{
		{"tampered entry", "give root", func(c *Copy) { c.Entries[3][20] ^= 1; c.Records = nil }},
		{"reordered", "give root", func(c *Copy) { c.Entries[1], c.Entries[2] = c.Entries[2], c.Entries[1]; c.Records = nil }},
		{"other key", "checkpoint", func(c *Copy) { c.Checkpoint = forged }},
		{"extra signature", "not by the log's key", func(c *Copy) { c.Checkpoint = cosigned }},
		{"wrong size", "the checkpoint is for size 20", func(c *Copy) { c.Checkpoint = cp20 }},
		{"no entries", "0 entries", func(c *Copy) { c.Entries, c.Records = nil, nil }},
		{"time goes back", "before the previous", func(c *Copy) { c.Entries[1] = laterTime }},
		{"wrong payload", "commitment", func(c *Copy) { c.Records[4].Payload = []byte("not it") }},
		{"missing records", "records for", func(c *Copy) { c.Records = c.Records[:9] }},
		{"garbage entry", "entry 5", func(c *Copy) { c.Entries[5] = []byte{9} }},
	} {
		c := good()
		tc.edit(c)
		_, err := replica.BeginCopy(c)
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: BeginCopy = %v, want ErrRejected mentioning %q", tc.name, err, tc.want)
		}
		if h := replica.Head(); h.Size != 0 {
			t.Fatalf("%s: the rejected batch changed the head: %d", tc.name, h.Size)
		}
	}
	// After all of that, the real batches still apply.
	copyFrom(t, primary, replica, true)
	sameLog(t, primary, replica, k, m, true)
	// An entries-only batch on a replica that stores payloads is refused.
	apply(t, primary, m, makeBatch(7, 200, 3))
	_, err := replica.BeginCopy(&Copy{Entries: [][]byte{es[0].Entry}, Checkpoint: cp10})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("entries-only batch on a payload replica: %v", err)
	}
}

func TestRolesAreKept(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	pdir, rdir := t.TempDir(), t.TempDir()
	openStore(t, pdir, nil, k).Close()
	openReplica(t, rdir, k).Close()
	opts := testOptions(k, nil)
	if _, err := Open(rdir, opts); err == nil || !strings.Contains(err.Error(), "holds the replica") {
		t.Fatalf("open a replica as a primary: %v", err)
	}
	opts.Signer, opts.Replica = nil, true
	if _, err := Open(pdir, opts); err == nil || !strings.Contains(err.Error(), "holds the primary") {
		t.Fatalf("open a primary as a replica: %v", err)
	}
	opts.Signer = k.signer
	if _, err := Open(t.TempDir(), opts); err == nil {
		t.Fatal("a replica with a Signer was accepted")
	}
}
