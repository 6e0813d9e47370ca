package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tlogd/tlogd/tlog"
)

// Entry is a stored leaf.
type Entry struct {
	// Index is the leaf index.
	Index uint64
	// Entry is the entry the leaf commits to.
	Entry []byte
	// Salt and Payload are set only when payloads were asked for, and the
	// payload was not erased.
	Salt    []byte
	Payload []byte
	// Erased is set, when payloads were asked for, if the payload and salt
	// were erased; ErasedBy is then the index of the erasure record.
	Erased   bool
	ErasedBy uint64
}

// CheckpointAt returns the checkpoint signed at exactly size: ErrBeyondTree
// past the published size, ErrNotFound where none was signed at that size.
func (s *Store) CheckpointAt(size uint64) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	head := s.head.Load()
	if size > head.Size {
		return nil, fmt.Errorf("%w: tree size %d, published %d", ErrBeyondTree, size, head.Size)
	}
	if size == head.Size {
		return head.Checkpoint, nil
	}
	cp, err := s.get(indexKey(prefixCheckpoint, size))
	if err != nil {
		return nil, fmt.Errorf("checkpoint at size %d: %w", size, err)
	}
	return cp, nil
}

// LatestCheckpointIn returns the checkpoint with the largest size in
// (lo, hi], if any; hi must not exceed the published size.
func (s *Store) LatestCheckpointIn(lo, hi uint64) ([]byte, bool, error) {
	if err := s.rlock(); err != nil {
		return nil, false, err
	}
	defer s.closeMu.RUnlock()
	if head := s.head.Load(); hi > head.Size {
		return nil, false, fmt.Errorf("%w: tree size %d, published %d", ErrBeyondTree, hi, head.Size)
	} else if hi == head.Size && hi > lo {
		return head.Checkpoint, true, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: indexKey(prefixCheckpoint, lo+1), UpperBound: indexKey(prefixCheckpoint, hi+1)})
	if err != nil {
		return nil, false, fmt.Errorf("storage: find checkpoint in (%d, %d]: %w", lo, hi, err)
	}
	defer it.Close()
	if !it.Last() {
		return nil, false, it.Error()
	}
	return bytes.Clone(it.Value()), true, nil
}

// CheckpointsIn returns every checkpoint with a size in (lo, hi], in size
// order; hi must not exceed the published size.
func (s *Store) CheckpointsIn(lo, hi uint64) ([]string, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	if head := s.head.Load(); hi > head.Size {
		return nil, fmt.Errorf("%w: tree size %d, published %d", ErrBeyondTree, hi, head.Size)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: indexKey(prefixCheckpoint, lo+1), UpperBound: indexKey(prefixCheckpoint, hi+1)})
	if err != nil {
		return nil, fmt.Errorf("storage: read checkpoints in (%d, %d]: %w", lo, hi, err)
	}
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Value()))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("storage: read checkpoints in (%d, %d]: %w", lo, hi, err)
	}
	return out, nil
}

// InclusionProof returns the inclusion proof of leaf index in the tree of the
// given size, which must not exceed the published size.
func (s *Store) InclusionProof(index, size uint64) ([]tlog.Hash, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	if head := s.head.Load(); size > head.Size {
		return nil, fmt.Errorf("%w: tree size %d, published %d", ErrBeyondTree, size, head.Size)
	}
	if index >= size {
		return nil, fmt.Errorf("%w: index %d, tree size %d", ErrBeyondTree, index, size)
	}
	return tlog.InclusionProof(index, size, tlog.HashReaderFunc(s.readHashes))
}

// ConsistencyProof returns the consistency proof between trees of size1 and
// size2 (size1 ≤ size2 ≤ published size).
func (s *Store) ConsistencyProof(size1, size2 uint64) ([]tlog.Hash, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	if head := s.head.Load(); size2 > head.Size {
		return nil, fmt.Errorf("%w: tree size %d, published %d", ErrBeyondTree, size2, head.Size)
	}
	return tlog.ConsistencyProof(size1, size2, tlog.HashReaderFunc(s.readHashes))
}

// LeafIndex returns the index of the published leaf with the given hash.
func (s *Store) LeafIndex(leaf tlog.Hash) (uint64, error) {
	if err := s.rlock(); err != nil {
		return 0, err
	}
	defer s.closeMu.RUnlock()
	index, ok := s.idx.leafIndex(leaf)
	if !ok {
		var err error
		index, err = s.lookupIndex(prefixLeaf, leaf)
		if err != nil {
			return 0, fmt.Errorf("leaf hash %s: %w", leaf, err)
		}
	}
	if index >= s.head.Load().Size {
		// Committed by a batch that is not published yet.
		return 0, fmt.Errorf("leaf hash %s: %w", leaf, ErrNotFound)
	}
	return index, nil
}

// FindPayload returns the published entry, with salt and payload, whose
// payload has the given SHA-256 hash: ErrNotFound if there is none.
func (s *Store) FindPayload(payloadHash tlog.Hash) (Entry, error) {
	if err := s.rlock(); err != nil {
		return Entry{}, err
	}
	defer s.closeMu.RUnlock()
	x := s.idx
	x.dedupMu.RLock()
	index, ok := x.dedupIndex(payloadHash)
	x.dedupMu.RUnlock()
	if !ok {
		var err error
		if index, err = s.lookupIndex(prefixDedup, payloadHash); err != nil {
			return Entry{}, fmt.Errorf("payload hash %s: %w", payloadHash, err)
		}
	}
	if index >= s.head.Load().Size {
		return Entry{}, fmt.Errorf("payload hash %s: %w", payloadHash, ErrNotFound)
	}
	es, err := s.readEntries(index, 1, true, math.MaxInt)
	if err != nil {
		return Entry{}, err
	}
	if es[0].Erased {
		return Entry{}, fmt.Errorf("payload hash %s: %w (erased by entry %d)", payloadHash, ErrNotFound, es[0].ErasedBy)
	}
	if sha256.Sum256(es[0].Payload) != payloadHash {
		// Another kind of dedup key (an audit event's id) that happens to
		// be asked for: not a payload hash of this log.
		return Entry{}, fmt.Errorf("payload hash %s: %w", payloadHash, ErrNotFound)
	}
	return es[0], nil
}

// Entries returns up to count published entries from start, with salts and
// payloads when withPayloads is set. start must be below the published size.
// With payloads, it stops before the entries' total size (entry, salt and
// payload bytes) passes maxBytes, but always returns at least one entry.
func (s *Store) Entries(start uint64, count int, withPayloads bool, maxBytes int) ([]Entry, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	size := s.head.Load().Size
	if start >= size {
		return nil, fmt.Errorf("%w: start %d, published size %d", ErrBeyondTree, start, size)
	}
	if uint64(count) > size-start {
		count = int(size - start)
	}
	return s.readEntries(start, count, withPayloads, maxBytes)
}

// errBudget stops a bundle scan once a byte budget is spent.
var errBudget = errors.New("storage: byte budget spent")

// readEntries reads count entries from start, which must all be stored,
// stopping early (after at least one) when payloads pass maxBytes.
func (s *Store) readEntries(start uint64, count int, withPayloads bool, maxBytes int) ([]Entry, error) {
	out := make([]Entry, 0, count)
	err := s.scanBundles(prefixEntries, start, count, func(index uint64, b []byte, keep bool) ([]byte, error) {
		e, b, err := readLenPrefixed(b)
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, Entry{Index: index, Entry: bytes.Clone(e)})
		}
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	if !withPayloads {
		return out, nil
	}
	i, total := 0, 0
	err = s.scanBundles(prefixPayloads, start, count, func(index uint64, b []byte, keep bool) ([]byte, error) {
		if len(b) < tlog.SaltSize {
			return nil, fmt.Errorf("%w: record %d truncated", ErrCorrupt, index)
		}
		salt := b[:tlog.SaltSize:tlog.SaltSize]
		p, b, err := readLenPrefixed(b[tlog.SaltSize:])
		if err != nil {
			return nil, err
		}
		if keep {
			total += len(out[i].Entry) + len(salt) + len(p)
			if total > maxBytes && i > 0 {
				return nil, errBudget
			}
			out[i].Salt, out[i].Payload = bytes.Clone(salt), bytes.Clone(p)
			i++
		}
		return b, nil
	})
	if errors.Is(err, errBudget) {
		out, err = out[:i], nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.markErased(out); err != nil {
		return nil, err
	}
	return out, nil
}

func readLenPrefixed(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, fmt.Errorf("%w: bad length prefix in bundle", ErrCorrupt)
	}
	return b[k : k+int(n) : k+int(n)], b[k+int(n):], nil
}

// scanBundles walks the per-batch bundles of prefix that cover
// [start, start+count), calling item for each record of those bundles with
// the bytes that start at the record; item returns the bytes after it. keep
// is false for records before start, decoded only to skip them. The bytes
// are Pebble's and valid only during the call: item copies what it keeps
// (copying a whole bundle of up to thousands of payloads to read one of
// them made single-entry reads cost a bundle each).
func (s *Store) scanBundles(prefix byte, start uint64, count int, item func(index uint64, b []byte, keep bool) ([]byte, error)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("storage: iterate %q: %w", prefix, err)
	}
	defer it.Close()
	end := start + uint64(count)
	next := start
	for ok := it.SeekLT(indexKey(prefix, start+1)); ok && next < end; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return fmt.Errorf("%w: bundle key of %d bytes", ErrCorrupt, len(k))
		}
		first := binary.BigEndian.Uint64(k[1:])
		if first > next {
			return fmt.Errorf("%w: no %q bundle holds index %d", ErrCorrupt, prefix, next)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("storage: read bundle %q/%d: %w", prefix, first, err)
		}
		if len(v) < 4 {
			return fmt.Errorf("%w: bundle %q/%d has no count", ErrCorrupt, prefix, first)
		}
		n := uint64(binary.BigEndian.Uint32(v))
		b := v[4:]
		for i := first; i < first+n && next < end; i++ {
			if b, err = item(i, b, i >= start); err != nil {
				return fmt.Errorf("bundle %q/%d record %d: %w", prefix, first, i, err)
			}
			next = max(next, i+1)
		}
		if next < end && next != first+n {
			return fmt.Errorf("%w: bundle %q/%d is shorter than its count", ErrCorrupt, prefix, first)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: iterate %q: %w", prefix, err)
	}
	if next < end {
		return fmt.Errorf("%w: entries %d to %d missing", ErrCorrupt, next, end-1)
	}
	return nil
}

// readHashes reads stored perfect-subtree hashes by node ID, from the tile
// cache or Pebble.
func (s *Store) readHashes(ids []tlog.NodeID) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	var (
		lastID   tileID
		lastTile []byte
	)
	for i, id := range ids {
		level, index, row, col := tileCoord(id)
		tid := tileID{level, index}
		if lastTile == nil || tid != lastID || !tileCoversRow(lastTile, row, col+1) {
			t, err := s.tile(tid, row, col+1)
			if err != nil {
				return nil, fmt.Errorf("read node %d/%d: %w", id.Level, id.Index, err)
			}
			lastID, lastTile = tid, t
		}
		h, ok := tileNode(lastTile, row, col)
		if !ok {
			return nil, fmt.Errorf("%w: node %d/%d missing from tile", ErrCorrupt, id.Level, id.Index)
		}
		out[i] = h
	}
	return out, nil
}

// tile returns an encoded tile holding at least n nodes in row.
func (s *Store) tile(id tileID, row uint, n uint64) ([]byte, error) {
	if t := s.tiles.get(id); t != nil && tileCoversRow(t, row, n) {
		return t, nil
	}
	t, err := s.get(tileKey(id.level, id.index))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: tile %d/%d missing", ErrCorrupt, id.level, id.index)
	}
	if err != nil {
		return nil, err
	}
	if err := checkTile(t); err != nil {
		return nil, fmt.Errorf("tile %d/%d: %w", id.level, id.index, err)
	}
	// Random leaf-level reads would push the hot upper tiles out of the
	// cache; Pebble's block cache keeps those.
	if id.level > 0 {
		s.tiles.put(id, t)
	}
	return t, nil
}

// forEachCheckpoint calls fn for every stored checkpoint in size order,
// including any not yet published.
func (s *Store) forEachCheckpoint(fn func(size uint64, signed []byte) error) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCheckpoint}, UpperBound: prefixEnd(prefixCheckpoint)})
	if err != nil {
		return fmt.Errorf("storage: iterate checkpoints: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			return fmt.Errorf("%w: checkpoint key of %d bytes", ErrCorrupt, len(k))
		}
		if err := fn(binary.BigEndian.Uint64(k[1:]), append([]byte(nil), it.Value()...)); err != nil {
			return err
		}
	}
	return it.Error()
}

// FirstAtTime returns the index of the first entry below size whose log
// time is at least t (Unix milliseconds), or size if there is none. Log time
// never decreases along the log, so it is a binary search.
func (s *Store) FirstAtTime(t, size uint64) (uint64, error) {
	lo, hi := uint64(0), min(size, s.Head().Size)
	for lo < hi {
		mid := lo + (hi-lo)/2
		es, err := s.Entries(mid, 1, false, 0)
		if err != nil {
			return 0, err
		}
		e, err := tlog.ParseEntry(es[0].Entry)
		if err != nil {
			return 0, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, mid, err)
		}
		if e.Time < t {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
