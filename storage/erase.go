package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tlogd/tlogd/tlog"
)

// Erased payloads: the payload bundle keeps the record with a zero salt and
// an empty payload, and
//
//	z | index (8) → the index of the erasure record (8 bytes)
//
// says it was erased, and by which record. Entries, leaf hashes, nodes and
// checkpoints are untouched, so every proof stays valid.

// PostingKey names one posting-list entry.
type PostingKey struct {
	Term  []byte
	Index uint64
}

// Forget names a subject whose chain an erasure may end: Subject as given
// in Record.Subjects, Term its posting list.
type Forget struct {
	Subject tlog.Hash
	Term    []byte
}

// Erase deletes the salts and payloads of the published entries at
// indexes, marks them erased by the entry at by, and deletes the posting
// entries given, in one synced batch. Entries already erased stay erased by
// their first erasure. Then, for each subject in forget whose posting list
// is now empty, it forgets the subject's latest index, so that its next
// event starts a new chain (its old events are listed nowhere any more);
// a subject with events left keeps its chain. Any storage error stops the
// store (fail-stop).
func (s *Store) Erase(indexes []uint64, postings []PostingKey, forget []Forget, by uint64) error {
	// The writer's lock: the subject map is the writer's, and no batch may
	// link to a subject while it is forgotten.
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failure(); err != nil {
		return err
	}
	size := s.head.Load().Size
	indexes = slices.Clone(indexes)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)
	if len(indexes) > 0 && indexes[len(indexes)-1] >= size {
		return fmt.Errorf("%w: erase entry %d, published size %d", ErrBeyondTree, indexes[len(indexes)-1], size)
	}
	if by >= size {
		return fmt.Errorf("%w: erasure record %d, published size %d", ErrBeyondTree, by, size)
	}
	pb := s.db.NewBatch()
	defer pb.Close()
	var byValue [8]byte
	binary.BigEndian.PutUint64(byValue[:], by)
	for len(indexes) > 0 {
		n, err := s.eraseInBundle(pb, indexes, byValue[:])
		if err != nil {
			return err
		}
		indexes = indexes[n:]
	}
	var key []byte
	for _, p := range postings {
		key = postingKey(key, p.Term, p.Index)
		if err := pb.Delete(key, nil); err != nil {
			return fmt.Errorf("storage: erase posting: %w", err)
		}
	}
	// Set before the commit: a reader that sees the z keys checks them.
	s.anyErased.Store(true)
	if err := pb.Commit(pebble.Sync); err != nil {
		s.fail(err)
		return fmt.Errorf("%w: erase: %w", ErrFailed, err)
	}
	// The writer is held: no event can join a list between the check and
	// the forgetting.
	fb := s.db.NewBatch()
	defer fb.Close()
	var gone []tlog.Hash
	for _, f := range forget {
		left, err := s.postingsLeft(f.Term)
		if err != nil {
			return err
		}
		if left {
			continue
		}
		if err := fb.Delete(subjectKey(f.Subject), nil); err != nil {
			return fmt.Errorf("storage: erase: %w", err)
		}
		gone = append(gone, f.Subject)
	}
	if len(gone) == 0 {
		return nil
	}
	if err := fb.Commit(pebble.Sync); err != nil {
		s.fail(err)
		return fmt.Errorf("%w: erase: %w", ErrFailed, err)
	}
	for _, subj := range gone {
		delete(s.subjects, subj)
	}
	return nil
}

// postingsLeft reports whether term's posting list has any entry.
func (s *Store) postingsLeft(term []byte) (bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: postingKey(nil, term, 0), UpperBound: postingKey(nil, term, math.MaxUint64)})
	if err != nil {
		return false, fmt.Errorf("storage: read postings: %w", err)
	}
	left := it.First()
	return left, it.Close()
}

// eraseInBundle rewrites the payload bundle holding indexes[0], blanking
// every index of indexes it holds, and returns how many it handled.
func (s *Store) eraseInBundle(pb *pebble.Batch, indexes []uint64, by []byte) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixPayloads}, UpperBound: prefixEnd(prefixPayloads)})
	if err != nil {
		return 0, fmt.Errorf("storage: erase: %w", err)
	}
	defer it.Close()
	if !it.SeekLT(indexKey(prefixPayloads, indexes[0]+1)) {
		return 0, fmt.Errorf("%w: no payload bundle holds entry %d", ErrCorrupt, indexes[0])
	}
	key := append([]byte(nil), it.Key()...)
	first := binary.BigEndian.Uint64(key[1:])
	v, err := it.ValueAndErr()
	if err != nil || len(v) < 4 {
		return 0, fmt.Errorf("%w: payload bundle %d: %v", ErrCorrupt, first, err)
	}
	count := uint64(binary.BigEndian.Uint32(v))
	b := v[4:]
	out := append(make([]byte, 0, len(v)), v[:4]...)
	done := 0
	for i := first; i < first+count; i++ {
		if len(b) < tlog.SaltSize {
			return 0, fmt.Errorf("%w: payload bundle %d record %d truncated", ErrCorrupt, first, i)
		}
		salt := b[:tlog.SaltSize]
		p, rest, err := readLenPrefixed(b[tlog.SaltSize:])
		if err != nil {
			return 0, fmt.Errorf("payload bundle %d record %d: %w", first, i, err)
		}
		b = rest
		if done < len(indexes) && indexes[done] == i {
			done++
			erasedKey := indexKey(prefixErased, i)
			if _, closer, err := s.db.Get(erasedKey); err == nil {
				closer.Close() // erased before: keep the first erasure
			} else if err := pb.Set(erasedKey, by, nil); err != nil {
				return 0, fmt.Errorf("storage: erase: %w", err)
			}
			out = append(out, make([]byte, tlog.SaltSize)...)
			out = binary.AppendUvarint(out, 0)
			continue
		}
		out = append(out, salt...)
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	if done == 0 {
		return 0, fmt.Errorf("%w: payload bundle %d does not hold entry %d", ErrCorrupt, first, indexes[0])
	}
	if err := pb.Set(key, out, nil); err != nil {
		return 0, fmt.Errorf("storage: erase: %w", err)
	}
	return done, nil
}

// markErased sets Erased and ErasedBy on the entries of es (consecutive)
// whose payloads were erased, and clears their salt and payload.
func (s *Store) markErased(es []Entry) error {
	if len(es) == 0 || !s.anyErased.Load() {
		return nil
	}
	first := es[0].Index
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: indexKey(prefixErased, first), UpperBound: indexKey(prefixErased, first+uint64(len(es)))})
	if err != nil {
		return fmt.Errorf("storage: read erasures: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 9 || len(v) != 8 {
			it.Close()
			return fmt.Errorf("%w: erasure key of %d bytes", ErrCorrupt, len(k))
		}
		e := &es[binary.BigEndian.Uint64(k[1:])-first]
		e.Erased, e.ErasedBy, e.Salt, e.Payload = true, binary.BigEndian.Uint64(v), nil, nil
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: read erasures: %w", err)
	}
	return nil
}

// loadErased notes whether any payload was ever erased, so that reads of a
// log without erasures skip looking for them.
func (s *Store) loadErased() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixErased}, UpperBound: prefixEnd(prefixErased)})
	if err != nil {
		return fmt.Errorf("storage: read erasures: %w", err)
	}
	s.anyErased.Store(it.First())
	return it.Close()
}
