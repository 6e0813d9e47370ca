package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tlogd/tlogd/tlog"
)

// Record is a record ready to be sequenced. Everything random or derived is
// chosen before Apply, so that applying a batch is deterministic.
type Record struct {
	// Payload is the record's payload.
	Payload []byte
	// Salt is the commitment salt, chosen at random by the caller.
	Salt [tlog.SaltSize]byte
	// Commitment is tlog.Commit(Salt, Payload).
	Commitment tlog.Hash
	// PayloadHash is the dedup key: SHA-256(Payload) for records; for audit
	// events the caller derives it from the event's identity.
	PayloadHash tlog.Hash
	// Subjects, for an audit event, are the subjects it names (at most
	// tlog.MaxLinks, in order): the entry gets a back-link for each (a
	// version 2 entry). Nil for records.
	Subjects []tlog.Hash
	// Postings are the posting lists the record joins (see Posting).
	Postings []Posting
	// Erases, for an erasure record, is what it erases, in the same batch
	// (see Erasure). At most one record of a batch may erase.
	Erases *Erasure
}

// Batch is a group of records committed together under one checkpoint.
type Batch struct {
	// Time is the log time in Unix milliseconds for every entry of the batch.
	// Apply raises it to the previous entry's time if it is lower, so log
	// time never goes backwards.
	Time uint64
	// Records in sequencing order.
	Records []Record
}

// Result is the outcome of one record of a batch.
type Result struct {
	// Index is the record's leaf index (the first occurrence's for a
	// duplicate).
	Index uint64
	// Entry is the entry the leaf commits to.
	Entry []byte
	// LeafHash is tlog.LeafHash(Entry).
	LeafHash tlog.Hash
	// Salt is the commitment salt of the entry.
	Salt [tlog.SaltSize]byte
	// Duplicate is true when the payload was already in the log (or earlier
	// in the same batch) and no new leaf was added.
	Duplicate bool
	// Payload is the payload the entry commits to: the record's own, or for
	// a duplicate the first occurrence's (which, for audit events deduped
	// by event id, may differ from the new one).
	Payload []byte
}

// Apply sequences a batch and waits until it is durable: Begin then Wait.
func (s *Store) Apply(b *Batch) ([]Result, Head, error) {
	p, err := s.Begin(b)
	if err != nil {
		return nil, Head{}, err
	}
	return p.Wait()
}

// Pending is a batch that Begin has sequenced and written to Pebble's WAL,
// whose fsync may still be running. Call Wait on every Pending, in the order
// Begin returned them.
type Pending struct {
	s       *Store
	pb      *pebble.Batch // nil when the batch added no leaf
	results []Result
	head    *Head
	leaves  []tlog.Hash
	written []writtenTile
	prev    *Pending
	done    chan struct{} // closed when Wait has finished
	err     error
	stats   BatchStats
}

// BatchStats describes one applied batch, for metrics.
type BatchStats struct {
	// Records is how many records the batch held; Leaves how many of them
	// became new leaves (the rest were duplicates).
	Records, Leaves int
	// Sequence is the time Begin spent sequencing the batch and handing it
	// to Pebble.
	Sequence time.Duration
	// Sync is the time Wait spent waiting for the WAL fsync, including the
	// wait for earlier batches.
	Sync time.Duration
}

// Stats returns the batch's figures; call it after Wait.
func (p *Pending) Stats() BatchStats { return p.stats }

// Begin sequences a batch: it skips payloads already in the log, assigns
// indexes, builds entries, extends the tree, signs a checkpoint of the new
// size, and hands everything to Pebble as one batch whose WAL fsync Wait
// waits for. While that fsync runs, the caller may Begin the next batch:
// Pebble syncs them together.
//
// Begin reads only the stored state and the batch, so applying the same
// batches to the same state gives the same entries, tree and checkpoints.
// After any storage error Begin and Wait return ErrFailed from then on
// (fail-stop); restart to recover.
func (s *Store) Begin(b *Batch) (*Pending, error) {
	for i := range b.Records {
		for _, p := range b.Records[i].Postings {
			if len(p.Value) > MaxPostingValue {
				return nil, fmt.Errorf("storage: record %d: a posting value of %d bytes exceeds %d", i, len(p.Value), MaxPostingValue)
			}
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.opts.Replica {
		return nil, ErrReplica
	}
	return s.beginWith(func() (*Pending, error) { return s.begin(b) })
}

// beginWith runs begin for Begin or BeginCopy, holding writeMu.
func (s *Store) beginWith(begin func() (*Pending, error)) (*Pending, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	if err := s.failure(); err != nil {
		return nil, err
	}
	if err := s.checkSpace(); err != nil {
		return nil, err
	}
	start := time.Now()
	p, err := begin()
	if errors.Is(err, ErrRejected) {
		return nil, err // nothing was changed
	}
	if err != nil {
		s.fail(err)
		return nil, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	p.stats.Records, p.stats.Leaves = len(p.results), len(p.leaves)
	p.stats.Sequence = time.Since(start)
	p.prev, s.last = s.last, p
	s.inflight.Add(1)
	return p, nil
}

// Wait waits until the batch is durable, publishes it to readers and
// returns its results and the head that covers them.
func (p *Pending) Wait() ([]Result, Head, error) {
	s := p.s
	start := time.Now()
	defer func() { p.stats.Sync = time.Since(start) }()
	if p.prev != nil {
		<-p.prev.done
		p.prev = nil
	}
	defer close(p.done)
	defer s.inflight.Done()
	if p.pb != nil {
		err := p.pb.SyncWait()
		p.pb.Close()
		p.pb = nil
		if err != nil {
			s.fail(fmt.Errorf("storage: sync batch at size %d: %w", p.head.Size, err))
		}
	}
	if err := s.failure(); err != nil {
		// This batch or an earlier one failed: nothing after it is published.
		p.err = err
		return nil, Head{}, err
	}
	if p.head == nil {
		// Only duplicates, of leaves published by now.
		h := s.Head()
		return p.results, h, nil
	}
	if err := s.recordCheckpoint(p.head.Checkpoint); err != nil {
		s.fail(err)
		p.err = s.failure()
		return nil, Head{}, p.err
	}
	for _, w := range p.written {
		s.tiles.put(w.id, w.tile)
	}
	s.idx.addLeaves(p.leaves)
	s.publish(p.head)
	return p.results, *p.head, nil
}

// fail records the first storage error; the writer stops for good.
func (s *Store) fail(err error) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failed == nil {
		s.failed = err
	}
}

// failure returns ErrFailed wrapping the first storage error, if any.
func (s *Store) failure() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, s.failed)
	}
	return nil
}

func (s *Store) begin(b *Batch) (*Pending, error) {
	if err := s.reapFlush(false); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(b.Records, func(r Record) bool { return r.Erases != nil }) {
		if err := s.flushPublished(); err != nil {
			return nil, err
		}
	}
	s.maybeFlush(false)
	first := s.tree.Size()
	t := max(b.Time, s.lastTime)
	results := make([]Result, len(b.Records))
	entries := make([]byte, 0, len(b.Records)*tlog.EntrySize)
	p := &Pending{s: s, results: results, done: make(chan struct{})}

	payloadBytes := 0
	for i := range b.Records {
		payloadBytes += len(b.Records[i].Payload)
	}
	// Bundles start with a 4-byte count, filled in once duplicates are known.
	ebundle := make([]byte, 4, 4+len(b.Records)*(tlog.EntrySize+1))
	pbundle := make([]byte, 4, 4+len(b.Records)*(tlog.SaltSize+3)+payloadBytes)
	leaves := make([]tlog.Hash, 0, len(b.Records))
	newPos := make([]int, 0, len(b.Records)) // result position of each new leaf
	n := uint64(0)
	hasEvents := false
	s.idx.dedupMu.Lock()
	defer s.idx.dedupMu.Unlock()
	for i := range b.Records {
		r := &b.Records[i]
		if s.filter.mayContain(&r.PayloadHash) {
			dup, ok, err := s.findDuplicate(first, newPos, results, r)
			if err != nil {
				return nil, err
			}
			if ok {
				results[i] = dup
				continue
			}
		}
		s.filter.add(&r.PayloadHash)

		index := first + n
		n++
		start := len(entries)
		var links []uint64
		if len(r.Subjects) > 0 {
			links = s.links(index, r.Subjects)
		}
		hasEvents = hasEvents || len(r.Subjects) > 0 || len(r.Postings) > 0
		entries = tlog.Entry{Time: t, Commitment: r.Commitment, Links: links}.AppendBinary(entries)
		entry := entries[start:len(entries):len(entries)]
		leaf := tlog.LeafHash(entry)
		s.tree.Append(leaf, s.visit)
		results[i] = Result{Index: index, Entry: entry, LeafHash: leaf, Salt: r.Salt, Payload: r.Payload}
		s.idx.dedup.add(r.PayloadHash)
		leaves = append(leaves, leaf)
		newPos = append(newPos, i)
		ebundle = binary.AppendUvarint(ebundle, uint64(len(entry)))
		ebundle = append(ebundle, entry...)
		pbundle = append(pbundle, r.Salt[:]...)
		pbundle = binary.AppendUvarint(pbundle, uint64(len(r.Payload)))
		pbundle = append(pbundle, r.Payload...)
	}
	if n == 0 {
		// Every record is already in the log (or in a batch in flight).
		return p, nil
	}
	binary.BigEndian.PutUint32(ebundle, uint32(n))
	binary.BigEndian.PutUint32(pbundle, uint32(n))

	pb := s.db.NewBatchWithSize(len(ebundle) + len(pbundle) + 64<<10)
	closeBatch := true
	defer func() {
		if closeBatch {
			pb.Close()
		}
	}()
	if err := pb.Set(indexKey(prefixEntries, first), ebundle, nil); err != nil {
		return nil, fmt.Errorf("storage: batch entries: %w", err)
	}
	if err := pb.Set(indexKey(prefixPayloads, first), pbundle, nil); err != nil {
		return nil, fmt.Errorf("storage: batch payloads: %w", err)
	}
	for j, i := range newPos {
		if e := b.Records[i].Erases; e != nil {
			if err := s.eraseInto(pb, e, first+uint64(j), b.Records); err != nil {
				return nil, err
			}
		}
	}
	written, err := s.writeEdge(pb)
	if err != nil {
		return nil, err
	}
	size := first + n
	root := s.tree.Root()
	signed, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: s.origin, Size: size, Root: root}, s.signer)
	if err != nil {
		return nil, err
	}
	if err := pb.Set(indexKey(prefixCheckpoint, size), signed, nil); err != nil {
		return nil, fmt.Errorf("storage: batch checkpoint: %w", err)
	}
	// ApplyNoSyncWait writes the WAL record and the memtable and returns; the
	// fsync is awaited in Wait. Committed data is visible in Pebble before
	// the fsync, so readers are bounded by the published head, never by
	// what Pebble holds.
	if err := s.db.ApplyNoSyncWait(pb, pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: write batch at size %d: %w", size, err)
	}
	closeBatch = false // Wait closes it after SyncWait
	if hasEvents {
		// Readers see them once the head covers them (see postRun).
		s.idx.mu.Lock()
		for j, i := range newPos {
			if r := &b.Records[i]; len(r.Subjects) > 0 || len(r.Postings) > 0 {
				s.idx.post.add(first+uint64(j), r.Subjects, r.Postings)
			}
		}
		s.idx.mu.Unlock()
	}
	s.lastTime = t
	p.pb, p.leaves, p.written = pb, leaves, written
	p.head = &Head{Size: size, Root: root, Checkpoint: signed, Time: time.UnixMilli(int64(t))}
	return p, nil
}

// findDuplicate looks for r's payload in this batch (new leaves from first,
// whose result positions are newPos), in the in-memory index, then in
// Pebble. ok is false when the filter's answer was a false positive.
func (s *Store) findDuplicate(first uint64, newPos []int, results []Result, r *Record) (Result, bool, error) {
	index, ok := s.idx.dedupIndex(r.PayloadHash)
	if ok && index >= first {
		res := results[newPos[index-first]]
		res.Duplicate = true
		return res, true, nil
	}
	if !ok {
		var err error
		index, err = s.lookupIndex(prefixDedup, r.PayloadHash)
		if errors.Is(err, ErrNotFound) {
			return Result{}, false, nil
		}
		if err != nil {
			return Result{}, false, err
		}
	}
	es, err := s.readEntries(index, 1, true, math.MaxInt)
	if err != nil {
		return Result{}, false, fmt.Errorf("storage: read duplicate's entry %d: %w", index, err)
	}
	e := es[0]
	if e.Erased {
		return Result{}, false, nil // an erased record does not hold its key any more
	}
	res := Result{Index: index, Entry: e.Entry, LeafHash: tlog.LeafHash(e.Entry), Duplicate: true, Payload: e.Payload}
	copy(res.Salt[:], e.Salt)
	return res, true, nil
}

// visit records a node the tree reports as complete in its edge tile.
func (s *Store) visit(id tlog.NodeID, h tlog.Hash) {
	level, index, row, _ := tileCoord(id)
	for int(level) >= len(s.edge) {
		s.edge = append(s.edge, &edgeTile{})
	}
	t := s.edge[level]
	if t.index != index {
		// The edge tile is full and the next one begins: keep the full one
		// for writeEdge.
		if t.dirty {
			s.full = append(s.full, fullTile{level: level, t: t})
		}
		t = &edgeTile{index: index}
		s.edge[level] = t
	}
	t.rows[row] = append(t.rows[row], h)
	t.dirty = true
}

type fullTile struct {
	level uint8
	t     *edgeTile
}

type writtenTile struct {
	id   tileID
	tile []byte
}

// writeEdge adds every tile changed by the batch to pb.
func (s *Store) writeEdge(pb *pebble.Batch) ([]writtenTile, error) {
	var written []writtenTile
	write := func(level uint8, t *edgeTile) error {
		enc := t.encode()
		if err := pb.Set(tileKey(level, t.index), enc, nil); err != nil {
			return fmt.Errorf("storage: batch tile %d/%d: %w", level, t.index, err)
		}
		t.dirty = false
		written = append(written, writtenTile{id: tileID{level, t.index}, tile: enc})
		return nil
	}
	for _, f := range s.full {
		if err := write(f.level, f.t); err != nil {
			return nil, err
		}
	}
	s.full = s.full[:0]
	for level, t := range s.edge {
		if t.dirty {
			if err := write(uint8(level), t); err != nil {
				return nil, err
			}
		}
	}
	return written, nil
}
