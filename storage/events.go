package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

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

// eventKeys collects the s and q keys of a batch's new events.
type eventKeys struct {
	arena []byte
	kvs   []eventKV
}

type eventKV struct{ key, value []byte }

// add collects the keys of a new event at index.
func (k *eventKeys) add(index uint64, r *Record) {
	for _, subj := range r.Subjects {
		start := len(k.arena)
		k.arena = append(k.arena, prefixSubject)
		k.arena = append(k.arena, subj[:]...)
		k.arena = binary.BigEndian.AppendUint64(k.arena, index)
		kv := k.arena[start:len(k.arena):len(k.arena)]
		k.kvs = append(k.kvs, eventKV{kv[:1+tlog.HashSize], kv[1+tlog.HashSize:]})
	}
	for _, p := range r.Postings {
		start := len(k.arena)
		k.arena = append(k.arena, prefixPosting)
		k.arena = append(k.arena, p.Term...)
		k.arena = binary.BigEndian.AppendUint64(k.arena, index)
		k.kvs = append(k.kvs, eventKV{k.arena[start:len(k.arena):len(k.arena)], p.Value})
	}
}

// write adds the collected keys to pb in key order, each once (a subject
// named twice keeps its latest index). Pebble inserts a batch's keys into
// its memtable one after the other, starting each search from the last
// one's position: in order, the random keys of an event batch cost far less
// than in arrival order.
func (k *eventKeys) write(pb *pebble.Batch) error {
	// Equal keys are a subject's heads, whose values are big-endian
	// indexes: ordering by value keeps the latest last. (A stable sort
	// cost more than the inserts it saves.)
	slices.SortFunc(k.kvs, func(a, b eventKV) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return bytes.Compare(a.value, b.value)
	})
	for i, kv := range k.kvs {
		if i+1 < len(k.kvs) && bytes.Equal(k.kvs[i+1].key, kv.key) {
			continue // a later value for the same key follows
		}
		if err := pb.Set(kv.key, kv.value, nil); err != nil {
			return fmt.Errorf("storage: batch event keys: %w", err)
		}
	}
	return nil
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
