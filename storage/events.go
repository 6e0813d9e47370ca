package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tlogd/tlogd/tlog"
)

// Audit events carry two more kinds of keys:
//
//	s | subject (32)                     → the index of the latest entry
//	                                       naming the subject (8 bytes)
//	{ | epoch (8) | term | index (8)     → a caller-defined value
//
// The s keys give each new event its back-links (tlog.Entry.Links); the
// writer keeps every subject's latest index in memory, loaded at Open. The
// { keys are posting lists: for each term the caller attaches to a record
// (a subject, a tenant, an action), the indexes of the records that carry
// it, in log order.
//
// Neither is written by the batch that sequences the event: inserting six
// random keys per event into Pebble's memtable cost the writer more than
// everything else it does. They follow the hash indexes instead (index.go):
// the postings of the leaves since the index watermark live in memory, and
// each flush writes an epoch's postings, sorted, as an sstable that Pebble
// ingests into the bottom level (the { prefix sorts after every key a
// memtable holds, and each epoch's keys after the previous epoch's), and in
// one synced batch with the new watermark, the latest index of each subject
// the epoch named. Open rebuilds both past the watermark from the stored
// entries and payloads (Options.Reindex).

// Posting is one posting-list entry to write with a record.
type Posting struct {
	// Term names the list; the caller chooses its encoding. Terms of
	// different lengths must not be prefixes of each other: give each kind
	// of term a fixed length or a kind byte and a fixed-length hash.
	Term []byte
	// Value is stored with the index, for example which role a subject
	// plays in the event: at most MaxPostingValue bytes.
	Value []byte
}

// MaxPostingValue is the largest Posting.Value.
const MaxPostingValue = 1<<16 - 1

// Hit is a posting-list entry read back.
type Hit struct {
	Index uint64
	Value []byte
}

func subjectKey(subject tlog.Hash) []byte {
	return append([]byte{prefixSubject}, subject[:]...)
}

// postingKey appends the key of a posting in the epoch's table to dst[:0].
func postingKey(dst []byte, epoch uint64, term []byte, index uint64) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst[:0], prefixPosting), epoch)
	dst = append(dst, term...)
	return binary.BigEndian.AppendUint64(dst, index)
}

// loadSubjects loads every subject's latest index as of the watermark.
func (s *Store) loadSubjects() error {
	s.subjects = map[tlog.Hash]uint64{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSubject}, UpperBound: prefixEnd(prefixSubject)})
	if err != nil {
		return fmt.Errorf("storage: scan subjects: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 1+tlog.HashSize || len(v) != 8 {
			it.Close()
			return fmt.Errorf("%w: subject key of %d bytes, value of %d", ErrCorrupt, len(k), len(v))
		}
		s.subjects[tlog.Hash(k[1:])] = binary.BigEndian.Uint64(v)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: scan subjects: %w", err)
	}
	return nil
}

// links returns the back-links of a new event at index naming subjects,
// and records index as each subject's latest.
func (s *Store) links(index uint64, subjects []tlog.Hash) []uint64 {
	links := make([]uint64, len(subjects))
	for i, subj := range subjects {
		prev, ok := s.subjects[subj]
		if ok && prev == index {
			// The same subject twice (a user acting on itself): the same link.
			links[i] = links[i-1]
			continue
		}
		links[i] = tlog.NoLink
		if ok {
			links[i] = prev
		}
		s.subjects[subj] = index
	}
	return links
}

// postRun holds in memory the postings and subjects of the events of a run
// of leaves from its first index on: the events past the watermark. The
// writer appends; once frozen, a run does not change. Its arrays hold no
// pointers, so the garbage collector does not scan them: each posting is a
// position in the parallel arrays, chained to the previous posting of the
// same term, and a term maps to its latest posting.
type postRun struct {
	from uint64
	// end is where a frozen run ends; math.MaxUint64 while it grows.
	end uint64

	index    []uint64 // per posting: the record's index
	prev     []int32  // per posting: the term's previous posting, or -1
	valStart []uint32 // per posting: where its value starts in vals
	valLen   []uint16
	vals     []byte
	last     map[string]int32 // term → its latest posting

	subjects  []tlog.Hash // every subject named, in index order
	subjectAt []uint64    // the index of the event naming it

	records int // how many records the run is expected to hold
}

func newPostRun(from uint64, records int) *postRun {
	return &postRun{from: from, end: math.MaxUint64, records: records}
}

// add appends the postings and subjects of the event at index, which
// follows every event in the run.
func (r *postRun) add(index uint64, subjects []tlog.Hash, postings []Posting) {
	if r.last == nil {
		r.init(len(postings), len(subjects))
	}
	for _, subj := range subjects {
		r.subjects = append(r.subjects, subj)
		r.subjectAt = append(r.subjectAt, index)
	}
	for _, p := range postings {
		r.addPosting(index, p.Term, p.Value)
	}
}

// init sizes the run for records with as many postings and subjects each:
// growing the arrays cost the writer more than filling them.
func (r *postRun) init(postings, subjects int) {
	n, m := r.records*postings, r.records*subjects
	r.index, r.prev, r.valStart, r.valLen = make([]uint64, 0, n), make([]int32, 0, n), make([]uint32, 0, n), make([]uint16, 0, n)
	r.vals = make([]byte, 0, 8*n)
	r.subjects, r.subjectAt = make([]tlog.Hash, 0, m), make([]uint64, 0, m)
	r.last = make(map[string]int32, r.records/2)
}

func (r *postRun) addPosting(index uint64, term, value []byte) {
	prev, ok := r.last[string(term)]
	if !ok {
		prev = -1
	} else if r.index[prev] == index {
		// The same term twice in one record: one entry, the later value.
		r.valStart[prev], r.valLen[prev] = uint32(len(r.vals)), uint16(len(value))
		r.vals = append(r.vals, value...)
		return
	}
	r.last[string(term)] = int32(len(r.index))
	r.index = append(r.index, index)
	r.prev = append(r.prev, prev)
	r.valStart = append(r.valStart, uint32(len(r.vals)))
	r.valLen = append(r.valLen, uint16(len(value)))
	r.vals = append(r.vals, value...)
}

// split freezes r at end and returns a new run holding its events from
// end on (those of batches still in flight).
func (r *postRun) split(end uint64) *postRun {
	next := newPostRun(end, r.records)
	if r.last != nil {
		next.init(cap(r.index)/max(r.records, 1), cap(r.subjects)/max(r.records, 1))
	}
	i, _ := slices.BinarySearch(r.subjectAt, end)
	next.subjects = append(next.subjects, r.subjects[i:]...)
	next.subjectAt = append(next.subjectAt, r.subjectAt[i:]...)
	// The postings of one event may be several, so move each term's from
	// its tail, oldest first.
	for term, p := range r.last {
		var tail []int32
		for ; p >= 0 && r.index[p] >= end; p = r.prev[p] {
			tail = append(tail, p)
		}
		for k := len(tail) - 1; k >= 0; k-- {
			q := tail[k]
			next.addPosting(r.index[q], []byte(term), r.value(q))
		}
	}
	r.end = end
	return next
}

func (r *postRun) value(p int32) []byte {
	start := r.valStart[p]
	return r.vals[start : start+uint32(r.valLen[p]) : start+uint32(r.valLen[p])]
}

// hits returns the run's entries of term in [from, to), clipped to the
// run, in index order. The caller holds the lock that guards the run.
func (r *postRun) hits(term []byte, from, to uint64) []Hit {
	return r.snap(term).hits(from, to)
}

// runSnap is what a reader needs of a run to read one term's postings
// without the lock: the writer only appends to the arrays, and never
// changes a posting a reader can see (below the published head).
type runSnap struct {
	run postRun // a shallow copy; its map is not used
	p   int32   // the term's latest posting, or -1
}

// snap takes the run's state for term; the caller holds the lock.
func (r *postRun) snap(term []byte) runSnap {
	if r == nil {
		return runSnap{p: -1}
	}
	p, ok := r.last[string(term)]
	if !ok {
		p = -1
	}
	return runSnap{*r, p}
}

func (sn runSnap) hits(from, to uint64) []Hit {
	r := &sn.run
	if sn.p < 0 {
		return nil
	}
	from, to = max(from, r.from), min(to, r.end)
	if from >= to {
		return nil
	}
	var out []Hit
	for p := sn.p; p >= 0 && r.index[p] >= from; p = r.prev[p] {
		if r.index[p] < to {
			out = append(out, Hit{r.index[p], r.value(p)})
		}
	}
	slices.Reverse(out)
	return out
}

// heads returns the latest index below end of each subject the run names.
func (r *postRun) heads(end uint64) map[tlog.Hash]uint64 {
	heads := map[tlog.Hash]uint64{}
	for i, subj := range r.subjects {
		if r.subjectAt[i] >= end {
			break
		}
		heads[subj] = r.subjectAt[i]
	}
	return heads
}

// writePostingTable writes the postings of the run's events below end to
// an sstable at path, keyed under the run's epoch; ok is false when there
// are none.
func (s *Store) writePostingTable(path string, r *postRun, end uint64) (ok bool, err error) {
	terms := make([]string, 0, len(r.last))
	for t := range r.last {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	w, closeFile, err := s.newIndexTable(path)
	if err != nil {
		return false, err
	}
	var key []byte
	n := 0
	for _, t := range terms {
		for _, h := range r.hits([]byte(t), r.from, end) {
			key = postingKey(key, r.from, []byte(t), h.Index)
			if err := w.Set(key, h.Value); err != nil {
				closeFile()
				return false, fmt.Errorf("storage: write posting table: %w", err)
			}
			n++
		}
	}
	if err := w.Close(); err != nil {
		return false, fmt.Errorf("storage: finish posting table: %w", err)
	}
	if n == 0 {
		return false, s.fs.Remove(path)
	}
	return true, nil
}

// Postings returns up to limit entries of the posting list of term with
// indexes in [from, to), in index order, within the published tree; with
// reverse, the last ones first, in descending order.
func (s *Store) Postings(term []byte, from, to uint64, limit int, reverse bool) ([]Hit, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	to = min(to, s.head.Load().Size)
	if from >= to || limit <= 0 {
		return nil, nil
	}
	v := s.idx.view(term, from, to)
	var out []Hit
	take := func(hs []Hit) {
		if reverse {
			for i := len(hs) - 1; i >= 0 && len(out) < limit; i-- {
				out = append(out, hs[i])
			}
		} else {
			out = append(out, hs[:min(len(hs), limit-len(out))]...)
		}
	}
	if reverse {
		take(v.current)
		take(v.frozen)
	}
	for i := range v.epochs {
		if len(out) >= limit {
			return out, nil
		}
		e := i
		if reverse {
			e = len(v.epochs) - 1 - i
		}
		hs, err := s.epochPostings(term, v.epochs[e], max(from, v.epochs[e]), min(to, v.epochEnd(e)), limit-len(out), reverse)
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	if !reverse {
		take(v.frozen)
		take(v.current)
	}
	return out, nil
}

// epochPostings reads up to limit entries of term in [from, to) from the
// table of the epoch starting at epoch.
func (s *Store) epochPostings(term []byte, epoch, from, to uint64, limit int, reverse bool) ([]Hit, error) {
	if from >= to {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: postingKey(nil, epoch, term, from), UpperBound: postingKey(nil, epoch, term, to)})
	if err != nil {
		return nil, fmt.Errorf("storage: read postings: %w", err)
	}
	var out []Hit
	ok, next := it.First, it.Next
	if reverse {
		ok, next = it.Last, it.Prev
	}
	want := 1 + 8 + len(term) + 8
	for valid := ok(); valid && len(out) < limit; valid = next() {
		k := it.Key()
		if len(k) != want {
			it.Close()
			return nil, fmt.Errorf("%w: posting key of %d bytes for a term of %d", ErrCorrupt, len(k), len(term))
		}
		out = append(out, Hit{Index: binary.BigEndian.Uint64(k[len(k)-8:]), Value: append([]byte(nil), it.Value()...)})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("storage: read postings: %w", err)
	}
	return out, nil
}

// postingView is what a read of one term sees: the epochs written to
// Pebble below the watermark, and the hits held in memory above it.
type postingView struct {
	epochs          []uint64
	watermark       uint64
	frozen, current []Hit
}

func (v *postingView) epochEnd(i int) uint64 {
	if i+1 < len(v.epochs) {
		return v.epochs[i+1]
	}
	return v.watermark
}

// view takes a consistent view of term's postings in [from, to).
func (x *hashIndex) view(term []byte, from, to uint64) postingView {
	x.mu.RLock()
	v := postingView{epochs: x.epochs, watermark: x.watermark}
	frozen, current := x.frozenPost.snap(term), x.post.snap(term)
	x.mu.RUnlock()
	// What a finished flush wrote is read from Pebble, not from the frozen
	// run that reapFlush has yet to drop.
	v.frozen = frozen.hits(max(from, v.watermark), to)
	v.current = current.hits(max(from, v.watermark), to)
	return v
}

// epochOf returns the first index of the epoch holding index, which must
// be below the watermark.
func (x *hashIndex) epochOf(index uint64) (uint64, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	i, found := slices.BinarySearch(x.epochs, index)
	if !found {
		i--
	}
	if i < 0 || index >= x.watermark {
		return 0, fmt.Errorf("%w: entry %d is in no index epoch below the watermark %d", ErrCorrupt, index, x.watermark)
	}
	return x.epochs[i], nil
}
