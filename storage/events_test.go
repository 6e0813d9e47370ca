package storage

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tlogd/tlogd/tlog"
)

// eventRecord is a record naming subjects, joining a posting list per
// subject. What it names is remembered by payload, for reindexEvent.
func eventRecord(payload string, subjects ...string) Record {
	r := makeRecord([]byte(payload))
	eventSubjects.Store(payload, subjects)
	for _, s := range subjects {
		h := tlog.Hash(sha256.Sum256([]byte(s)))
		r.Subjects = append(r.Subjects, h)
		r.Postings = append(r.Postings, Posting{Term: h[:], Value: []byte(s)})
	}
	return r
}

var eventSubjects sync.Map // payload → the subjects eventRecord gave it

// reindexEvent is the Options.Reindex of the tests: it gives an event entry
// the subjects and postings eventRecord gave its payload.
func reindexEvent(entry, payload []byte, r *Record) {
	r.PayloadHash = sha256.Sum256(payload)
	if e, err := tlog.ParseEntry(entry); err != nil || e.Links == nil {
		return
	}
	subjects, ok := eventSubjects.Load(string(payload))
	if !ok {
		panic(fmt.Sprintf("reindex: no event has payload %q", payload))
	}
	r2 := eventRecord(string(payload), subjects.([]string)...)
	r.Subjects, r.Postings = r2.Subjects, r2.Postings
}

// newEventStore opens a store in a new directory with its model.
func newEventStore(t *testing.T) (testKey, string, *Store, *sumdbTree) {
	k := newTestKey(t, "example.com/log")
	dir := t.TempDir()
	return k, dir, openStore(t, dir, nil, k), &sumdbTree{}
}

func TestEventLinksAndPostings(t *testing.T) {
	k, dir, s, m := newEventStore(t)
	apply(t, s, m, &Batch{Time: 1, Records: []Record{
		eventRecord("0: admin creates alice", "admin", "alice"),
		makeRecord([]byte("1: a plain record")),
		eventRecord("2: admin grants alice", "admin", "alice"),
	}})
	apply(t, s, m, &Batch{Time: 2, Records: []Record{
		eventRecord("3: alice changes her password", "alice", "alice"),
		eventRecord("0: admin creates alice", "admin", "alice"), // a duplicate: no leaf, no link
		eventRecord("4: bob logs in", "bob", "bob"),
	}})
	s.Close()
	s = openStore(t, dir, nil, k) // the latest indexes survive a reopen
	defer s.Close()
	apply(t, s, m, &Batch{Time: 3, Records: []Record{eventRecord("5: admin revokes alice", "admin", "alice")}})

	want := map[uint64][]uint64{
		0: {tlog.NoLink, tlog.NoLink},
		1: nil,
		2: {0, 0},
		3: {2, 2},
		4: {tlog.NoLink, tlog.NoLink},
		5: {2, 3},
	}
	es, err := s.Entries(0, 6, false, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		parsed, err := tlog.ParseEntry(e.Entry)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(parsed.Links, want[e.Index]) {
			t.Errorf("entry %d links %v, want %v", e.Index, parsed.Links, want[e.Index])
		}
	}
	alice := sha256.Sum256([]byte("alice"))
	hits, err := s.Postings(alice[:], 0, math.MaxUint64, 100, false)
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, h := range hits {
		idx = append(idx, h.Index)
	}
	if !slices.Equal(idx, []uint64{0, 2, 3, 5}) || string(hits[0].Value) != "alice" {
		t.Fatalf("alice's postings: %v", hits)
	}
	last, err := s.Postings(alice[:], 0, 5, 1, true)
	if err != nil || len(last) != 1 || last[0].Index != 3 {
		t.Fatalf("alice's last posting below 5: %v %v", last, err)
	}
	bob := sha256.Sum256([]byte("bob"))
	if hits, _ := s.Postings(bob[:], 0, 4, 10, false); len(hits) != 0 {
		t.Fatalf("bob's postings below 4: %v", hits)
	}
}

func TestErase(t *testing.T) {
	k, dir, s, m := newEventStore(t)
	apply(t, s, m, &Batch{Time: 1, Records: []Record{
		eventRecord("0: admin creates alice", "admin", "alice"),
		eventRecord("1: admin creates bob", "admin", "bob"),
		eventRecord("2: alice logs in", "alice", "alice"),
	}})
	apply(t, s, m, makeBatch(2, 100, 3)) // 3, 4, 5
	alice := sha256.Sum256([]byte("alice"))
	// The erasure record (6) carries the erasure: one batch.
	erasure := eventRecord("6: ops erases alice", "ops", "log")
	erasure.Erases = &Erasure{Indexes: []uint64{2, 0}, Postings: []PostingKey{{alice[:], 0}, {alice[:], 2}}, Forget: []Forget{{alice, alice[:]}}}
	apply(t, s, m, &Batch{Time: 2, Records: []Record{erasure}})
	again := eventRecord("7: ops erases entry 0 again", "ops", "log") // the first erasure stays
	again.Erases = &Erasure{Indexes: []uint64{0}}
	apply(t, s, m, &Batch{Time: 2, Records: []Record{again}})
	check := func() {
		t.Helper()
		es, err := s.Entries(0, 8, true, math.MaxInt)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			erased := e.Index == 0 || e.Index == 2
			if e.Erased != erased || (erased && (e.ErasedBy != 6 || e.Payload != nil || e.Salt != nil)) || (!erased && e.Payload == nil) {
				t.Fatalf("entry %d: erased %v by %d, payload %q", e.Index, e.Erased, e.ErasedBy, e.Payload)
			}
		}
		if hits, _ := s.Postings(alice[:], 0, 8, 10, false); len(hits) != 0 {
			t.Fatalf("alice's postings after erasure: %v", hits)
		}
		if _, err := s.FindPayload(sha256.Sum256([]byte("0: admin creates alice"))); !errors.Is(err, ErrNotFound) {
			t.Fatalf("FindPayload of an erased payload: %v", err)
		}
		checkStore(t, s, k, m, []uint64{3, 6, 7, 8}) // every proof still holds
	}
	check()
	s.Close()
	s = openStore(t, dir, nil, k)
	defer func() { s.Close() }()
	check()
	// alice's chain restarted: her next event links to nothing.
	res := apply(t, s, m, &Batch{Time: 3, Records: []Record{eventRecord("8: admin creates alice again", "admin", "alice")}})
	if e, _ := tlog.ParseEntry(res[0].Entry); e.Links[1] != tlog.NoLink {
		t.Fatalf("alice's new chain links to %v", e.Links)
	}
	// The erased payload no longer dedups: appending it again is new.
	res = apply(t, s, m, &Batch{Time: 3, Records: []Record{makeRecord([]byte("0: admin creates alice"))}})
	if res[0].Duplicate || res[0].Index != 9 {
		t.Fatalf("re-append after erasure: %+v", res[0])
	}
	// And from then on it dedups to the new one, before and after the
	// index is flushed to a table and the store reopened.
	for round := range 2 {
		res = apply(t, s, m, &Batch{Time: 4, Records: []Record{makeRecord([]byte("0: admin creates alice"))}})
		if !res[0].Duplicate || res[0].Index != 9 {
			t.Fatalf("round %d: append a third time: %+v", round, res[0])
		}
		apply(t, s, m, makeBatch(5, 1000+1000*round, 800)) // past IndexFlushRecords
		s.Close()
		s = openStore(t, dir, nil, k)
	}
	// An erasure of an entry not before its record fails the batch, and
	// the store stops (fail-stop): nothing is half done.
	bad := eventRecord("erases the future", "ops", "log")
	bad.Erases = &Erasure{Indexes: []uint64{1 << 40}}
	if _, _, err := s.Apply(&Batch{Time: 6, Records: []Record{bad}}); !errors.Is(err, ErrBeyondTree) && !errors.Is(err, ErrFailed) {
		t.Fatalf("erase beyond the record: %v", err)
	}
}

// TestDedupKeyRebuiltAfterCrash: records deduped by a caller's key (not the
// payload's hash) still dedup after a crash that lost the in-memory index.
func TestDedupKeyRebuiltAfterCrash(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	key := func(entry, payload []byte) tlog.Hash { return sha256.Sum256(payload[:2]) } // the "event id"
	opts := testOptions(k, vfs.NewCrashableMem())
	opts.Reindex = func(entry, payload []byte, r *Record) { r.PayloadHash = key(entry, payload) }
	s, err := Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(p string) Record {
		r := makeRecord([]byte(p))
		r.PayloadHash = key(nil, r.Payload)
		return r
	}
	if _, _, err := s.Apply(&Batch{Time: 1, Records: []Record{rec("e1 first"), rec("e2 first")}}); err != nil {
		t.Fatal(err)
	}
	img := opts.FS.(*vfs.MemFS).CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	opts.FS = img
	s, err = Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, _, err := s.Apply(&Batch{Time: 2, Records: []Record{rec("e1 retried, other content"), rec("e3 new")}})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Duplicate || res[0].Index != 0 || res[1].Duplicate || res[1].Index != 2 {
		t.Fatalf("after the crash: %+v", res)
	}
}

// TestEraseCrashAtomic crashes while an erasure's batch may be half
// written: after recovery the record and the erasure are both there or
// both absent.
func TestEraseCrashAtomic(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	outcomes := map[uint64]int{}
	// Whether the batch's WAL record reached the file before the crash
	// depends on timing: both outcomes usually occur; the check is that
	// each is whole.
	defer func() { t.Logf("sizes after the crashes: %v", outcomes) }()
	for trial := range 20 {
		fs := vfs.NewCrashableMem()
		s := openStore(t, "data", fs, k)
		if _, _, err := s.Apply(&Batch{Time: 1, Records: []Record{eventRecord("0: alice", "admin", "alice"), eventRecord("1: bob", "admin", "bob")}}); err != nil {
			t.Fatal(err)
		}
		alice := sha256.Sum256([]byte("alice"))
		rec := eventRecord("2: erasure", "ops", "log")
		rec.Erases = &Erasure{Indexes: []uint64{0}, Postings: []PostingKey{{alice[:], 0}}, Forget: []Forget{{alice, alice[:]}}}
		p, err := s.Begin(&Batch{Time: 2, Records: []Record{rec}})
		if err != nil {
			t.Fatal(err)
		}
		crash := func() vfs.FS {
			return fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 5 * trial, RNG: rand.New(rand.NewPCG(uint64(trial), 9))})
		}
		var img vfs.FS
		if trial%2 == 0 {
			img = crash() // before the fsync: the batch may be lost, whole
		}
		if _, _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if trial%2 == 1 {
			img = crash() // after: acknowledged, so kept, whole
		}
		s.Close()
		r := openStore(t, "data", img, k)
		size := r.Head().Size
		es, err := r.Entries(0, 1, true, math.MaxInt)
		if err != nil {
			t.Fatal(err)
		}
		hits, err := r.Postings(alice[:], 0, size, 10, false)
		if err != nil {
			t.Fatal(err)
		}
		outcomes[size]++
		switch size {
		case 3:
			if !es[0].Erased || es[0].ErasedBy != 2 || len(hits) != 0 {
				t.Fatalf("trial %d: the record survived without its erasure: %+v %v", trial, es[0], hits)
			}
		case 2:
			if trial%2 == 1 {
				t.Fatalf("trial %d: an acknowledged erasure was lost", trial)
			}
			if es[0].Erased || len(hits) != 1 {
				t.Fatalf("trial %d: the erasure survived without its record: %+v %v", trial, es[0], hits)
			}
		default:
			t.Fatalf("trial %d: size %d after the crash", trial, size)
		}
		r.Close()
	}
}

// TestPostingsAcrossEpochs checks every kind of posting read against a
// model while events cross many index flushes (an epoch per 700 leaves),
// with readers running alongside the writer, after a reopen and after a
// crash that loses what was not synced: postings and subjects' latest
// indexes come back from the epoch tables and the rebuilt memory.
func TestPostingsAcrossEpochs(t *testing.T) {
	k := newTestKey(t, "example.com/log")
	fs := vfs.NewCrashableMem()
	s := openStore(t, "data", fs, k)
	r := rand.New(rand.NewPCG(3, 4))
	users := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"}
	model := map[string][]uint64{} // user → indexes of the events naming them
	latest := map[string]uint64{}
	next := uint64(0)
	record := func(s *Store, batches int) {
		for range batches {
			b := &Batch{Time: next}
			for range 1 + r.IntN(150) {
				if r.IntN(4) == 0 {
					b.Records = append(b.Records, makeRecord(fmt.Appendf(nil, "plain %d %d", next, r.Uint64())))
					continue
				}
				a, u := users[r.IntN(len(users))], users[r.IntN(len(users))]
				b.Records = append(b.Records, eventRecord(fmt.Sprintf("event %d %d: %s → %s", next, r.Uint64(), a, u), a, u))
			}
			res, _, err := s.Apply(b)
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range b.Records {
				if res[i].Duplicate {
					continue
				}
				e, _ := tlog.ParseEntry(res[i].Entry)
				for j, subj := range rec.Postings {
					name := string(subj.Value)
					if j == 1 && name == string(rec.Postings[0].Value) {
						continue
					}
					want := tlog.NoLink
					if l, ok := latest[name]; ok {
						want = l
					}
					if e.Links[j] != want {
						t.Fatalf("entry %d: link %d for %s is %d, want %d", res[i].Index, j, name, e.Links[j], want)
					}
					model[name] = append(model[name], res[i].Index)
					latest[name] = res[i].Index
				}
			}
			next = s.Head().Size
		}
	}
	check := func(s *Store) {
		t.Helper()
		size := s.Head().Size
		for _, u := range users {
			term := sha256.Sum256([]byte(u))
			for range 20 {
				from, to := uint64(r.IntN(int(size)+1)), uint64(r.IntN(int(size)+10))
				limit := 1 + r.IntN(300)
				var want []uint64
				for _, i := range model[u] {
					if i >= from && i < to {
						want = append(want, i)
					}
				}
				got, err := s.Postings(term[:], from, to, limit, false)
				if err != nil {
					t.Fatal(err)
				}
				if idx := hitIndexes(got); !slices.Equal(idx, want[:min(len(want), limit)]) {
					t.Fatalf("%s in [%d, %d) limit %d: got %v, want %v", u, from, to, limit, idx, want[:min(len(want), limit)])
				}
				rev, err := s.Postings(term[:], from, to, limit, true)
				if err != nil {
					t.Fatal(err)
				}
				slices.Reverse(want)
				if idx := hitIndexes(rev); !slices.Equal(idx, want[:min(len(want), limit)]) {
					t.Fatalf("%s in [%d, %d) limit %d, reversed: got %v, want %v", u, from, to, limit, idx, want[:min(len(want), limit)])
				}
			}
		}
	}
	// Readers alongside the writer: each read is a prefix of the model's
	// list at some size (the race detector checks the rest).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		term := sha256.Sum256([]byte("u3"))
		for {
			select {
			case <-stop:
				return
			default:
			}
			hits, err := s.Postings(term[:], 0, math.MaxUint64, 1<<20, false)
			if err != nil {
				t.Error(err)
				return
			}
			if idx := hitIndexes(hits); !slices.IsSorted(idx) || len(slices.Compact(idx)) != len(hits) {
				t.Errorf("postings out of order or repeated: %v", hitIndexes(hits))
				return
			}
		}
	}()
	record(s, 80)
	close(stop)
	wg.Wait()
	s.idx.mu.RLock()
	epochs := len(s.idx.epochs) // a flush may still be running
	s.idx.mu.RUnlock()
	if epochs < 2 {
		t.Fatalf("only %d epochs: the test does not cross flushes", epochs)
	}
	check(s)
	s.Close()
	s = openStore(t, "data", fs, k)
	check(s)
	record(s, 20)
	img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(1, 1))})
	s.Close()
	s = openStore(t, "data", img, k)
	defer s.Close()
	check(s)      // every acknowledged batch was synced: nothing is lost
	record(s, 20) // and the links go on from the recovered latest indexes
	check(s)
}

func hitIndexes(hs []Hit) []uint64 {
	out := make([]uint64, len(hs))
	for i, h := range hs {
		out[i] = h.Index
	}
	return out
}

func TestPostingValueLimit(t *testing.T) {
	_, _, s, _ := newEventStore(t)
	defer s.Close()
	r := eventRecord("big", "alice")
	r.Postings[0].Value = make([]byte, MaxPostingValue+1)
	if _, _, err := s.Apply(&Batch{Time: 1, Records: []Record{r}}); err == nil || errors.Is(err, ErrFailed) {
		t.Fatalf("a posting value over the limit: %v", err)
	}
	if _, _, err := s.Apply(&Batch{Time: 1, Records: []Record{eventRecord("fine", "alice")}}); err != nil {
		t.Fatalf("the store stopped after refusing a batch: %v", err)
	}
}
