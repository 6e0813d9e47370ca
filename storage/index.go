package storage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tlogd/tlogd/tlog"
)

// The two hash indexes (leaf hash → index, payload hash → index) are the
// only random keys the log writes. Inserting random keys into Pebble's
// memtable costs more than the rest of a batch together, and compacting
// them rewrites the whole index again and again as the log grows. So they
// are kept behind the durable tree: new entries live in memory, and every
// flushRecords leaves the writer freezes them and a background goroutine
// writes them as two sorted sstables that Pebble ingests. Each flush is an
// epoch: its keys are prefix || first leaf index of the epoch || hash, so an
// epoch's table overlaps no other table and Pebble ingests it straight into
// the bottom level, where it is never compacted. The epoch list and the
// watermark (the tree size below which the index is complete) are recorded
// under m/index after each ingestion.
//
// A proof never depends on these indexes. On open the entries past the
// watermark are rebuilt from the stored entries and payloads. Lookups
// consult memory first, then every epoch's table, newest first; each probe
// is a bloom-filter check on one table.
type hashIndex struct {
	// mu guards the leaf and posting runs, which readers consult, the
	// epochs and the watermark.
	mu         sync.RWMutex
	leaf       *hashRun
	frozenLeaf *hashRun
	post       *postRun
	frozenPost *postRun

	// dedupMu guards the dedup runs: the writer changes them (holding it
	// for a whole batch), the flusher reads frozenDedup, and FindPayload
	// reads both.
	dedupMu     sync.RWMutex
	dedup       *hashRun
	frozenDedup *hashRun

	// epochs are the first leaf indexes of the epochs written to Pebble,
	// ascending; watermark is where the last one ends.
	epochs    []uint64
	watermark uint64

	flushRecords int
	flushing     chan error // non-nil while a flush runs; receives its result
}

func newHashIndex(from uint64, flushRecords int) *hashIndex {
	return &hashIndex{
		leaf:         newHashRun(from, flushRecords),
		dedup:        newHashRun(from, flushRecords),
		post:         newPostRun(from, flushRecords),
		watermark:    from,
		flushRecords: flushRecords,
	}
}

// leafIndex looks a leaf hash up in memory.
func (x *hashIndex) leafIndex(h tlog.Hash) (uint64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if i, ok := x.leaf.find(h); ok {
		return i, true
	}
	return x.frozenLeaf.find(h)
}

// dedupIndex looks a payload hash up in memory; the caller holds dedupMu.
func (x *hashIndex) dedupIndex(h tlog.Hash) (uint64, bool) {
	if i, ok := x.dedup.find(h); ok {
		return i, true
	}
	return x.frozenDedup.find(h)
}

// addLeaves publishes the leaf hashes of new leaves, in index order.
func (x *hashIndex) addLeaves(hs []tlog.Hash) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, h := range hs {
		x.leaf.add(h)
	}
}

type indexEntry struct {
	hash  tlog.Hash
	index uint64
}

// reapFlush collects the result of a finished flush, if any, and drops the
// frozen maps it wrote. wait makes it block for a running flush.
func (s *Store) reapFlush(wait bool) error {
	x := s.idx
	if x.flushing == nil {
		return nil
	}
	var err error
	if wait {
		err = <-x.flushing
	} else {
		select {
		case err = <-x.flushing:
		default:
			return nil
		}
	}
	x.flushing = nil
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.frozenLeaf, x.frozenPost = nil, nil
	x.mu.Unlock()
	x.dedupMu.Lock()
	x.frozenDedup = nil
	x.dedupMu.Unlock()
	return nil
}

// maybeFlush starts a background flush once enough entries are in memory
// (or, with force, any) and no flush is running. Only published leaves are
// flushed: they are durable, so the index never names a leaf a crash could
// take back. The leaf run holds exactly the published leaves; the dedup and
// posting runs may hold more, from batches in flight, which move to their
// successors.
func (s *Store) maybeFlush(force bool) {
	x := s.idx
	if x.flushing != nil || len(x.dedup.hashes) < x.flushRecords && !force || len(x.leaf.hashes) == 0 {
		return
	}
	x.mu.Lock()
	end := x.leaf.end()
	x.frozenLeaf, x.leaf = x.leaf, newHashRun(end, x.flushRecords)
	x.frozenPost, x.post = x.post, x.post.split(end)
	x.mu.Unlock()
	next := newHashRun(end, x.flushRecords)
	x.dedupMu.Lock()
	for _, h := range x.dedup.hashes[end-x.dedup.from:] {
		next.add(h)
	}
	x.frozenDedup, x.dedup = x.dedup, next
	x.dedupMu.Unlock()
	x.flushing = make(chan error, 1)
	leaf, dedup, post, done := x.frozenLeaf, x.frozenDedup, x.frozenPost, x.flushing
	go func() { done <- s.writeIndex(leaf, dedup, post, end) }()
}

// flushPublished writes the index entries and postings of every published
// leaf to Pebble before it returns: an erasure needs the postings it
// deletes there.
func (s *Store) flushPublished() error {
	if err := s.reapFlush(true); err != nil {
		return err
	}
	s.maybeFlush(true)
	return s.reapFlush(true)
}

// writeIndex writes the entries of the runs for leaves below end as the
// sstables of a new epoch, has Pebble ingest them, and records, in one
// synced batch, the epoch, the watermark end and the latest index of every
// subject the epoch's events name.
func (s *Store) writeIndex(leaf, dedup *hashRun, post *postRun, end uint64) error {
	epoch := leaf.from
	var paths []string
	for _, part := range []struct {
		prefix byte
		run    *hashRun
	}{{prefixDedup, dedup}, {prefixLeaf, leaf}} {
		p := s.fs.PathJoin(s.dir, fmt.Sprintf("index-%c-%020d.sst", part.prefix, end))
		ok, err := s.writeIndexTable(p, part.prefix, epoch, part.run, end)
		if err != nil {
			return err
		}
		if ok {
			paths = append(paths, p)
		}
	}
	p := s.fs.PathJoin(s.dir, fmt.Sprintf("index-q-%020d.sst", end))
	ok, err := s.writePostingTable(p, post, end)
	if err != nil {
		return err
	}
	heads := post.heads(end)
	if ok {
		paths = append(paths, p)
	}
	if len(paths) > 0 {
		if err := s.db.Ingest(context.Background(), paths); err != nil {
			return fmt.Errorf("storage: ingest index up to %d: %w", end, err)
		}
		// Ingest linked the files into the store; drop our names for them.
		for _, p := range paths {
			if err := s.fs.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("storage: remove ingested %s: %w", p, err)
			}
		}
	}
	x := s.idx
	epochs := slices.Clone(x.epochs) // only the flush changes them
	if len(paths) > 0 && (len(epochs) == 0 || epochs[len(epochs)-1] != epoch) {
		epochs = append(epochs, epoch)
	}
	v := make([]byte, 0, 8*len(epochs)+8)
	for _, e := range epochs {
		v = binary.BigEndian.AppendUint64(v, e)
	}
	v = binary.BigEndian.AppendUint64(v, end)
	subjects := make([]tlog.Hash, 0, len(heads))
	for subj := range heads {
		subjects = append(subjects, subj)
	}
	slices.SortFunc(subjects, func(a, b tlog.Hash) int { return bytes.Compare(a[:], b[:]) })
	b := s.db.NewBatch()
	defer b.Close()
	var val [8]byte
	for _, subj := range subjects {
		binary.BigEndian.PutUint64(val[:], heads[subj])
		if err := b.Set(subjectKey(subj), val[:], nil); err != nil {
			return fmt.Errorf("storage: record subjects up to %d: %w", end, err)
		}
	}
	if err := b.Set(metaEpochs, v, nil); err != nil {
		return fmt.Errorf("storage: record index epochs up to %d: %w", end, err)
	}
	// Synced: past the watermark Open rebuilds postings and subjects from
	// payloads, which an erasure (it flushes first) removes.
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: record index epochs up to %d: %w", end, err)
	}
	x.mu.Lock()
	x.epochs, x.watermark = epochs, end
	x.mu.Unlock()
	return nil
}

// lookupIndex finds hash h in the Pebble part of an index, newest epoch
// first.
func (s *Store) lookupIndex(prefix byte, h tlog.Hash) (uint64, error) {
	x := s.idx
	x.mu.RLock()
	epochs := x.epochs
	x.mu.RUnlock()
	var key []byte
	for i := len(epochs) - 1; i >= 0; i-- {
		key = indexEntryKey(key, prefix, epochs[i], h[:])
		index, err := s.getIndex(key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return index, err
	}
	return 0, ErrNotFound
}

// removeStaleIndexTables deletes index tables that a crash left behind
// before Pebble ingested them; their entries are rebuilt on open.
func (s *Store) removeStaleIndexTables() error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("storage: list %s: %w", s.dir, err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "index-") && strings.HasSuffix(n, ".sst") {
			if err := s.fs.Remove(s.fs.PathJoin(s.dir, n)); err != nil {
				return fmt.Errorf("storage: remove stale %s: %w", n, err)
			}
		}
	}
	return nil
}

// writeIndexTable writes the run's entries below end, sorted, under the
// epoch to an sstable at path. ok is false when there are none and nothing
// was written.
func (s *Store) writeIndexTable(path string, prefix byte, epoch uint64, run *hashRun, end uint64) (ok bool, err error) {
	es := make([]indexEntry, 0, len(run.hashes))
	for i, h := range run.hashes[:end-run.from] {
		if h != (tlog.Hash{}) {
			es = append(es, indexEntry{h, run.from + uint64(i)})
		}
	}
	if len(es) == 0 {
		return false, nil
	}
	// A hash there twice (appended again after an erasure) sorts by index,
	// and only the latest is written.
	slices.SortFunc(es, func(a, b indexEntry) int {
		// Hashes are uniform: the first 8 bytes almost always decide.
		x, y := binary.BigEndian.Uint64(a.hash[:8]), binary.BigEndian.Uint64(b.hash[:8])
		if x != y {
			return cmp.Compare(x, y)
		}
		if c := bytes.Compare(a.hash[8:], b.hash[8:]); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
	w, closeFile, err := s.newIndexTable(path)
	if err != nil {
		return false, err
	}
	key := make([]byte, 0, 9+tlog.HashSize)
	var val [8]byte
	for i, e := range es {
		if i+1 < len(es) && es[i+1].hash == e.hash {
			continue
		}
		key = indexEntryKey(key, prefix, epoch, e.hash[:])
		binary.BigEndian.PutUint64(val[:], e.index)
		if err := w.Set(key, val[:]); err != nil {
			closeFile()
			return false, fmt.Errorf("storage: write index table: %w", err)
		}
	}
	// Close flushes and fsyncs the file, as Ingest requires.
	if err := w.Close(); err != nil {
		return false, fmt.Errorf("storage: finish index table: %w", err)
	}
	return true, nil
}

// newIndexTable creates an sstable at path for Pebble to ingest; closeFile
// abandons it after an error.
func (s *Store) newIndexTable(path string) (w *sstable.Writer, closeFile func(), err error) {
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: create index table: %w", err)
	}
	w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.popts.MakeWriterOptions(0, s.db.TableFormat()))
	return w, func() { w.Close() }, nil
}

// loadIndex restores the in-memory index entries past the watermark from
// the stored entries and payloads, and fills the dedup filter.
func (s *Store) loadIndex(size uint64) error {
	if err := s.loadFilter(); err != nil {
		return err
	}
	from := uint64(0)
	var epochs []uint64
	v, err := s.get(metaEpochs)
	switch {
	case err == nil:
		if len(v) < 8 || len(v)%8 != 0 {
			return fmt.Errorf("%w: index epoch list of %d bytes", ErrCorrupt, len(v))
		}
		for len(v) > 8 {
			epochs = append(epochs, binary.BigEndian.Uint64(v))
			v = v[8:]
		}
		from = binary.BigEndian.Uint64(v)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if from > size {
		return fmt.Errorf("%w: index watermark %d beyond tree size %d", ErrCorrupt, from, size)
	}
	s.idx = newHashIndex(from, s.opts.IndexFlushRecords)
	s.idx.epochs = epochs
	const chunk = 4096
	var leaves []tlog.Hash
	for start := from; start < size; start += chunk {
		// A replica keeps no payload index: the leaf index is all it needs.
		es, err := s.readEntries(start, int(min(chunk, size-start)), !s.opts.Replica, math.MaxInt)
		if err != nil {
			return fmt.Errorf("storage: rebuild index from %d: %w", start, err)
		}
		leaves = leaves[:0]
		for _, e := range es {
			leaves = append(leaves, tlog.LeafHash(e.Entry))
			if e.Erased || s.opts.Replica {
				// An erased record holds no key any more; its postings are
				// below the watermark (an erasure flushes first).
				s.idx.dedup.add(tlog.Hash{})
				continue
			}
			var r Record
			switch {
			case s.opts.Reindex != nil:
				s.opts.Reindex(e.Entry, e.Payload, &r)
			case len(e.Payload) > 0:
				r.PayloadHash = sha256.Sum256(e.Payload)
			}
			if r.PayloadHash != (tlog.Hash{}) {
				s.filter.add(&r.PayloadHash)
			}
			s.idx.dedup.add(r.PayloadHash)
			for _, subj := range r.Subjects {
				s.subjects[subj] = e.Index
			}
			if len(r.Subjects) > 0 || len(r.Postings) > 0 {
				s.idx.post.add(e.Index, r.Subjects, r.Postings)
			}
		}
		s.idx.addLeaves(leaves)
	}
	return nil
}

// flushIndex writes every in-memory index entry, waiting for a running
// flush first; used on Close so the next Open has nothing to rebuild.
func (s *Store) flushIndex() error {
	if err := s.reapFlush(true); err != nil {
		return err
	}
	x := s.idx
	if len(x.dedup.hashes) == 0 {
		return nil
	}
	// Nothing is in flight at Close, so every leaf is published.
	end := x.leaf.end()
	if err := s.writeIndex(x.leaf, x.dedup, x.post, end); err != nil {
		return err
	}
	x.leaf, x.dedup, x.post = newHashRun(end, 0), newHashRun(end, 0), newPostRun(end, 0)
	return nil
}
