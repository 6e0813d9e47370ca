package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

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
	// PayloadHash is SHA-256(Payload), the dedup key.
	PayloadHash tlog.Hash
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
}

// Apply sequences a batch: it skips payloads already in the log, assigns
// indexes, builds entries, extends the tree, signs a checkpoint of the new
// size and commits everything in one synced Pebble batch. It returns once the
// batch is durable and published; the returned Head covers every result.
//
// Apply reads only the stored state and the batch. After any storage error
// it returns ErrFailed from then on (fail-stop); restart to recover.
func (s *Store) Apply(b *Batch) ([]Result, Head, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.rlock(); err != nil {
		return nil, Head{}, err
	}
	defer s.closeMu.RUnlock()
	if s.failed != nil {
		return nil, Head{}, fmt.Errorf("%w: %w", ErrFailed, s.failed)
	}
	results, head, err := s.apply(b)
	if err != nil {
		s.failed = err
		return nil, Head{}, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return results, head, nil
}

func (s *Store) apply(b *Batch) ([]Result, Head, error) {
	first := s.tree.Size()
	t := max(b.Time, s.lastTime)
	results := make([]Result, len(b.Records))
	entries := make([]byte, 0, len(b.Records)*tlog.EntrySize)

	payloadBytes := 0
	for i := range b.Records {
		payloadBytes += len(b.Records[i].Payload)
	}
	pb := s.db.NewBatchWithSize(len(b.Records)*(3*tlog.HashSize+tlog.EntrySize+tlog.SaltSize+64) + payloadBytes + 64<<10)
	defer pb.Close()
	// Bundles start with a 4-byte count, filled in once duplicates are known.
	ebundle := make([]byte, 4, 4+len(b.Records)*(tlog.EntrySize+1))
	pbundle := make([]byte, 4, 4+len(b.Records)*(tlog.SaltSize+3)+payloadBytes)
	var val [8]byte
	n := uint64(0)
	for i := range b.Records {
		r := &b.Records[i]
		if s.dedup.mayContain(&r.PayloadHash) {
			dup, ok, err := s.findDuplicate(b.Records[:i], results[:i], r)
			if err != nil {
				return nil, Head{}, err
			}
			if ok {
				results[i] = dup
				continue
			}
		}
		s.dedup.add(&r.PayloadHash)

		index := first + n
		n++
		start := len(entries)
		entries = tlog.Entry{Time: t, Commitment: r.Commitment}.AppendBinary(entries)
		entry := entries[start:len(entries):len(entries)]
		leaf := tlog.LeafHash(entry)
		s.tree.Append(leaf, s.visit)
		results[i] = Result{Index: index, Entry: entry, LeafHash: leaf, Salt: r.Salt}

		binary.BigEndian.PutUint64(val[:], index)
		s.keyBuf = hashKey(s.keyBuf, prefixDedup, r.PayloadHash[:])
		if err := pb.Set(s.keyBuf, val[:], nil); err != nil {
			return nil, Head{}, fmt.Errorf("storage: batch dedup key: %w", err)
		}
		s.keyBuf = hashKey(s.keyBuf, prefixLeaf, leaf[:])
		if err := pb.Set(s.keyBuf, val[:], nil); err != nil {
			return nil, Head{}, fmt.Errorf("storage: batch leaf key: %w", err)
		}
		ebundle = binary.AppendUvarint(ebundle, uint64(len(entry)))
		ebundle = append(ebundle, entry...)
		pbundle = append(pbundle, r.Salt[:]...)
		pbundle = binary.AppendUvarint(pbundle, uint64(len(r.Payload)))
		pbundle = append(pbundle, r.Payload...)
	}
	if n == 0 {
		// Every record was already durable in the log.
		return results, s.Head(), nil
	}
	binary.BigEndian.PutUint32(ebundle, uint32(n))
	binary.BigEndian.PutUint32(pbundle, uint32(n))

	if err := pb.Set(indexKey(prefixEntries, first), ebundle, nil); err != nil {
		return nil, Head{}, fmt.Errorf("storage: batch entries: %w", err)
	}
	if err := pb.Set(indexKey(prefixPayloads, first), pbundle, nil); err != nil {
		return nil, Head{}, fmt.Errorf("storage: batch payloads: %w", err)
	}
	written, err := s.writeEdge(pb)
	if err != nil {
		return nil, Head{}, err
	}
	size := first + n
	root := s.tree.Root()
	signed, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: s.origin, Size: size, Root: root}, s.signer)
	if err != nil {
		return nil, Head{}, err
	}
	if err := pb.Set(indexKey(prefixCheckpoint, size), signed, nil); err != nil {
		return nil, Head{}, fmt.Errorf("storage: batch checkpoint: %w", err)
	}
	if err := pb.Commit(pebble.Sync); err != nil {
		return nil, Head{}, fmt.Errorf("storage: commit batch at size %d: %w", size, err)
	}
	s.lastTime = t
	for _, w := range written {
		s.tiles.put(w.id, w.tile)
	}
	head := &Head{Size: size, Root: root, Checkpoint: signed}
	s.publish(head)
	return results, *head, nil
}

// findDuplicate looks for r's payload earlier in this batch, then in the
// log. ok is false when the filter's answer was a false positive.
func (s *Store) findDuplicate(prev []Record, prevResults []Result, r *Record) (Result, bool, error) {
	for j := range prev {
		if prev[j].PayloadHash == r.PayloadHash {
			res := prevResults[j]
			res.Duplicate = true
			return res, true, nil
		}
	}
	s.keyBuf = hashKey(s.keyBuf, prefixDedup, r.PayloadHash[:])
	index, err := s.getIndex(s.keyBuf)
	if errors.Is(err, ErrNotFound) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, err
	}
	es, err := s.readEntries(index, 1, true)
	if err != nil {
		return Result{}, false, fmt.Errorf("storage: read duplicate's entry %d: %w", index, err)
	}
	e := es[0]
	res := Result{Index: index, Entry: e.Entry, LeafHash: tlog.LeafHash(e.Entry), Duplicate: true}
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
