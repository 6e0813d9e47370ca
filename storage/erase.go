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

// Erasure is what an erasure record erases (Record.Erases): the salts and
// payloads of the entries at Indexes, the posting entries Postings, and the
// chain of each subject in Forget whose posting list it leaves empty.
type Erasure struct {
	Indexes  []uint64
	Postings []PostingKey
	Forget   []Forget
}

// eraseInto adds an erasure to the batch being built, whose record is the
// new entry at by; records are the batch's. It blanks the entries' salts
// and payloads in their bundles and marks them erased by by (entries
// erased before stay erased by their first erasure), deletes the postings,
// and forgets the latest index of each subject in e.Forget that keeps no
// posting and is not named by the batch itself, so that its next event
// starts a new chain (its old events are listed nowhere any more). All of
// it commits, or not, with the record: an erasure is never without its
// record, nor a record without its erasure. One erasure per batch: the
// bundles are read from the store, not from the batch.
func (s *Store) eraseInto(pb *pebble.Batch, e *Erasure, by uint64, records []Record) error {
	indexes := slices.Clone(e.Indexes)
	slices.Sort(indexes)
	indexes = slices.Compact(indexes)
	if len(indexes) > 0 && indexes[len(indexes)-1] >= by {
		return fmt.Errorf("%w: erase entry %d from a record at %d", ErrBeyondTree, indexes[len(indexes)-1], by)
	}
	var byValue [8]byte
	binary.BigEndian.PutUint64(byValue[:], by)
	for rest := indexes; len(rest) > 0; {
		n, err := s.eraseInBundle(pb, rest, byValue[:])
		if err != nil {
			return err
		}
		rest = rest[n:]
	}
	deleted := map[string]bool{}
	var key []byte
	for _, p := range e.Postings {
		// Begin flushed every published posting to its epoch's table.
		epoch, err := s.idx.epochOf(p.Index)
		if err != nil {
			return err
		}
		key = postingKey(key, epoch, p.Term, p.Index)
		deleted[string(key)] = true
		if err := pb.Delete(key, nil); err != nil {
			return fmt.Errorf("storage: erase posting: %w", err)
		}
	}
	s.anyErased.Store(true) // before the commit: a reader that sees z keys checks them
	for _, f := range e.Forget {
		if slices.ContainsFunc(records, func(r Record) bool { return slices.Contains(r.Subjects, f.Subject) }) {
			continue
		}
		left, err := s.postingsLeft(f.Term, deleted)
		if err != nil {
			return err
		}
		if left {
			continue
		}
		if err := pb.Delete(subjectKey(f.Subject), nil); err != nil {
			return fmt.Errorf("storage: erase: %w", err)
		}
		delete(s.subjects, f.Subject) // ahead of the commit, as the links are
	}
	return nil
}

// postingsLeft reports whether term's posting list has an entry whose key
// is not in deleted, in memory or in an epoch's table.
func (s *Store) postingsLeft(term []byte, deleted map[string]bool) (bool, error) {
	v := s.idx.view(term, 0, math.MaxUint64)
	if len(v.frozen) > 0 || len(v.current) > 0 {
		return true, nil
	}
	for _, epoch := range v.epochs {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: postingKey(nil, epoch, term, 0), UpperBound: postingKey(nil, epoch, term, math.MaxUint64)})
		if err != nil {
			return false, fmt.Errorf("storage: read postings: %w", err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			if !deleted[string(it.Key())] {
				return true, it.Close()
			}
		}
		if err := it.Close(); err != nil {
			return false, fmt.Errorf("storage: read postings: %w", err)
		}
	}
	return false, nil
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
