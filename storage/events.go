package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tlogd/tlogd/tlog"
)

// Audit events carry two more kinds of keys, written in the batch that
// sequences them:
//
//	s | subject (32)                → the index of the latest entry naming
//	                                  the subject (8 bytes, big-endian)
//	q | term | index (8, big-endian) → a caller-defined value
//
// The s keys give each new event its back-links (tlog.Entry.Links); they are
// loaded into memory at Open. The q keys are posting lists: for each term
// the caller attaches to a record (a subject, a tenant, an action), the
// indexes of the records that carry it, in log order.

// Posting is one posting-list entry to write with a record.
type Posting struct {
	// Term names the list; the caller chooses its encoding. Terms of
	// different lengths must not be prefixes of each other: give each kind
	// of term a fixed length or a kind byte and a fixed-length hash.
	Term []byte
	// Value is stored with the index, for example which role a subject
	// plays in the event.
	Value []byte
}

// Hit is a posting-list entry read back.
type Hit struct {
	Index uint64
	Value []byte
}

func subjectKey(subject tlog.Hash) []byte {
	return append([]byte{prefixSubject}, subject[:]...)
}

func postingKey(dst, term []byte, index uint64) []byte {
	dst = append(append(dst[:0], prefixPosting), term...)
	return binary.BigEndian.AppendUint64(dst, index)
}

// loadSubjects loads every subject's latest index.
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
// and records index as each subject's latest. The caller writes the s keys.
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

// writeEventKeys adds the s and q keys of a new event at index to pb.
func writeEventKeys(pb *pebble.Batch, index uint64, r *Record, buf []byte) ([]byte, error) {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], index)
	for _, subj := range r.Subjects {
		if err := pb.Set(subjectKey(subj), v[:], nil); err != nil {
			return buf, fmt.Errorf("storage: batch subject: %w", err)
		}
	}
	for _, p := range r.Postings {
		buf = postingKey(buf, p.Term, index)
		if err := pb.Set(buf, p.Value, nil); err != nil {
			return buf, fmt.Errorf("storage: batch posting: %w", err)
		}
	}
	return buf, nil
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
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: postingKey(nil, term, from), UpperBound: postingKey(nil, term, to)})
	if err != nil {
		return nil, fmt.Errorf("storage: read postings: %w", err)
	}
	var out []Hit
	ok := it.First()
	next := it.Next
	if reverse {
		ok, next = it.Last(), it.Prev
	}
	for ; ok && len(out) < limit; ok = next() {
		k := it.Key()
		if len(k) != 1+len(term)+8 {
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
