package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tlogd/tlogd/tlog"
)

// A replica stores a copy of a log that another process (its primary)
// sequences and signs. It writes the same keys as the primary, one batch
// per checkpoint the log signed, so a replica that has copied every batch
// holds the primary's entries, tree tiles and checkpoints byte for byte. It
// never signs: every batch it takes must end at a checkpoint signed by the
// log's key whose root the copied entries reproduce. It keeps no payload
// hash index, postings or subject chains: those serve appends and payload
// reads, which only the primary does.

const (
	rolePrimary = "primary"
	roleReplica = "replica"

	copiesPayloads = "payloads"
	copiesEntries  = "entries"
)

// Copy is a run of entries the log's primary sequenced, starting at the
// replica's size and ending at a checkpoint the log signed.
type Copy struct {
	// Entries are the entries, in index order.
	Entries [][]byte
	// Records, for a replica that stores payloads, holds each entry's salt
	// and payload (or that they were erased); nil for one that stores
	// entries only. A replica's first Copy decides which for good.
	Records []CopyRecord
	// Checkpoint is the log's signed checkpoint at the size the entries
	// end at.
	Checkpoint []byte
}

// CopyRecord is the salt and payload of a copied entry.
type CopyRecord struct {
	Salt, Payload []byte
	// Erased is set when the primary had erased the salt and payload, by
	// the erasure record at ErasedBy.
	Erased   bool
	ErasedBy uint64
}

// CopiesPayloads reports whether a replica stores payloads; decided is
// false before its first copied batch.
func (s *Store) CopiesPayloads() (payloads, decided bool) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.copies == copiesPayloads, s.copies != ""
}

// checkRole refuses a data directory of the other role, and loads what a
// replica stores.
func (s *Store) checkRole() error {
	role, err := s.get(metaRole)
	if errors.Is(err, ErrNotFound) {
		role = []byte(rolePrimary)
	} else if err != nil {
		return err
	}
	want := rolePrimary
	if s.opts.Replica {
		want = roleReplica
	}
	if string(role) != want {
		return fmt.Errorf("storage: the data directory holds the %s of log %q; it cannot be opened as a %s", role, s.origin, want)
	}
	copies, err := s.get(metaCopies)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.copies = string(copies)
	return nil
}

// createReplica writes the metadata of an empty replica. It has no
// checkpoint until its first copied batch: it cannot sign one.
func (s *Store) createReplica() error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, kv := range [][2][]byte{
		{metaSchema, []byte(schemaVersion)},
		{metaOrigin, []byte(s.origin)},
		{metaVerifier, []byte(s.vkey)},
		{metaRole, []byte(roleReplica)},
	} {
		if err := b.Set(kv[0], kv[1], nil); err != nil {
			return fmt.Errorf("storage: create replica: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: create replica: %w", err)
	}
	return s.loadEmptyReplica()
}

// loadEmptyReplica restores a replica that holds no checkpoint yet.
func (s *Store) loadEmptyReplica() error {
	rec, _, err := s.readRecord()
	if err != nil {
		return err
	}
	if rec != nil {
		return fmt.Errorf("%w: the replica copied a checkpoint of size %d (recorded in %s), but Pebble holds none", ErrCorrupt, rec.Size, guardFile)
	}
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		return err
	}
	s.tree = tree
	s.subjects = map[tlog.Hash]uint64{}
	s.head.Store(&Head{Size: 0, Root: tlog.EmptyRoot})
	return nil
}

// recordCheckpoint writes a published checkpoint to the checkpoint record,
// creating the record for a replica's first checkpoint.
func (s *Store) recordCheckpoint(signed []byte) error {
	if s.guard != nil {
		return s.guard.record(signed)
	}
	if err := s.createRecord(signed); err != nil {
		return err
	}
	g, err := s.openRecord(0)
	if err != nil {
		return err
	}
	s.guard = g
	return nil
}

// BeginCopy checks a copied batch and hands it to Pebble like Begin: the
// entries must start at the replica's size, parse, keep log time from going
// back, reproduce the root of the log's checkpoint at their end, and, with
// payloads, match their commitments. A batch that fails any check is
// refused with ErrRejected, and nothing changes. An erasure record erases
// the payloads it names (Options.Reindex gives them, as Record.Erases).
// Wait publishes it, as for Begin.
func (s *Store) BeginCopy(c *Copy) (*Pending, error) {
	if !s.opts.Replica {
		return nil, errors.New("storage: BeginCopy on a primary's store")
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.beginWith(func() (*Pending, error) { return s.beginCopy(c) })
}

func rejectf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

func (s *Store) beginCopy(c *Copy) (*Pending, error) {
	first, n := s.tree.Size(), uint64(len(c.Entries))
	cp, times, erases, err := s.checkCopy(c)
	if err != nil {
		return nil, err
	}
	if err := s.reapFlush(false); err != nil {
		return nil, err
	}
	s.maybeFlush(false)
	pb := s.db.NewBatch()
	closeBatch := true
	defer func() {
		if closeBatch {
			pb.Close()
		}
	}()
	if s.copies == "" {
		mode := copiesEntries
		if c.Records != nil {
			mode = copiesPayloads
		}
		if err := pb.Set(metaCopies, []byte(mode), nil); err != nil {
			return nil, fmt.Errorf("storage: batch: %w", err)
		}
		s.copies = mode
	}
	ebundle := binary.BigEndian.AppendUint32(make([]byte, 0, 4+int(n)*(tlog.EntrySize+1)), uint32(n))
	leaves := make([]tlog.Hash, n)
	for i, e := range c.Entries {
		leaves[i] = tlog.LeafHash(e)
		s.tree.Append(leaves[i], s.visit)
		ebundle = binary.AppendUvarint(ebundle, uint64(len(e)))
		ebundle = append(ebundle, e...)
	}
	if err := pb.Set(indexKey(prefixEntries, first), ebundle, nil); err != nil {
		return nil, fmt.Errorf("storage: batch entries: %w", err)
	}
	if c.Records != nil {
		if err := s.copyPayloads(pb, first, c.Records, erases); err != nil {
			return nil, err
		}
	}
	written, err := s.writeEdge(pb)
	if err != nil {
		return nil, err
	}
	if err := pb.Set(indexKey(prefixCheckpoint, cp.Size), c.Checkpoint, nil); err != nil {
		return nil, fmt.Errorf("storage: batch checkpoint: %w", err)
	}
	if err := s.db.ApplyNoSyncWait(pb, pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: write copied batch at size %d: %w", cp.Size, err)
	}
	closeBatch = false
	// No payload hash index on a replica: keep the runs aligned.
	s.idx.dedupMu.Lock()
	for range n {
		s.idx.dedup.add(tlog.Hash{})
	}
	s.idx.dedupMu.Unlock()
	s.lastTime = times
	return &Pending{
		s: s, pb: pb, leaves: leaves, written: written, done: make(chan struct{}),
		results: make([]Result, n),
		head:    &Head{Size: cp.Size, Root: cp.Root, Checkpoint: c.Checkpoint, Time: time.UnixMilli(int64(times))},
	}, nil
}

// checkCopy checks a copied batch against the log's checkpoint and the
// replica's state without changing either. It returns the checkpoint, the
// last entry's log time, and what the batch's erasure records erase
// (erased index → erasure record index).
func (s *Store) checkCopy(c *Copy) (tlog.Checkpoint, uint64, map[uint64]uint64, error) {
	first, n := s.tree.Size(), uint64(len(c.Entries))
	cp, n0, err := tlog.OpenCheckpoint(c.Checkpoint, s.verifier)
	if err != nil {
		return cp, 0, nil, rejectf("checkpoint: %v", err)
	}
	// Stored and served as received: only the log's own signature, and
	// within the checkpoint record's slot.
	if len(n0.UnverifiedSigs) > 0 || len(c.Checkpoint) > guardSlot-4 {
		return cp, 0, nil, rejectf("checkpoint: %d bytes with %d signatures not by the log's key", len(c.Checkpoint), len(n0.UnverifiedSigs))
	}
	if n == 0 || cp.Size != first+n {
		return cp, 0, nil, rejectf("%d entries from index %d end at size %d, the checkpoint is for size %d", n, first, first+n, cp.Size)
	}
	switch {
	case c.Records != nil && uint64(len(c.Records)) != n:
		return cp, 0, nil, rejectf("%d records for %d entries", len(c.Records), n)
	case s.copies == copiesEntries && c.Records != nil:
		return cp, 0, nil, rejectf("this replica stores entries only; the batch has payloads")
	case s.copies == copiesPayloads && c.Records == nil:
		return cp, 0, nil, rejectf("this replica stores payloads; the batch has none")
	}
	tree, err := tlog.NewTree(first, s.tree.Hashes())
	if err != nil {
		return cp, 0, nil, err
	}
	t := s.lastTime
	erases := map[uint64]uint64{}
	for i, e := range c.Entries {
		index := first + uint64(i)
		pe, err := tlog.ParseEntry(e)
		if err != nil {
			return cp, 0, nil, rejectf("entry %d: %v", index, err)
		}
		if pe.Time < t {
			return cp, 0, nil, rejectf("entry %d: log time %d is before the previous entry's %d", index, pe.Time, t)
		}
		t = pe.Time
		tree.Append(tlog.LeafHash(e), nil)
		if c.Records == nil {
			continue
		}
		r := &c.Records[i]
		if r.Erased {
			if r.ErasedBy <= index {
				return cp, 0, nil, rejectf("entry %d: erased by entry %d, which is not after it", index, r.ErasedBy)
			}
			continue
		}
		if err := tlog.VerifyRecord(e, r.Salt, r.Payload); err != nil {
			return cp, 0, nil, rejectf("entry %d: %v", index, err)
		}
		if s.opts.Reindex == nil {
			continue
		}
		var rec Record
		s.opts.Reindex(e, r.Payload, &rec)
		if rec.Erases == nil {
			continue
		}
		if len(erases) > 0 {
			// The primary commits one erasure per batch (see eraseInto).
			return cp, 0, nil, rejectf("entry %d: a second erasure record in one batch", index)
		}
		for _, x := range rec.Erases.Indexes {
			if x >= index {
				return cp, 0, nil, rejectf("entry %d: erases entry %d, which is not before it", index, x)
			}
			if _, ok := erases[x]; !ok {
				erases[x] = index
			}
		}
	}
	if root := tree.Root(); root != cp.Root {
		return cp, 0, nil, rejectf("entries %d to %d give root %s at size %d, the log's checkpoint says %s", first, cp.Size-1, root, cp.Size, cp.Root)
	}
	return cp, t, erases, nil
}

// copyPayloads adds a copied batch's payload bundle to pb, with the
// erasures the primary had made and those the batch's erasure records make.
func (s *Store) copyPayloads(pb *pebble.Batch, first uint64, records []CopyRecord, erases map[uint64]uint64) error {
	size := 4
	for _, r := range records {
		size += tlog.SaltSize + 3 + len(r.Payload)
	}
	pbundle := binary.BigEndian.AppendUint32(make([]byte, 0, size), uint32(len(records)))
	var earlier []uint64 // what the batch's erasure record erases in earlier batches
	record := uint64(0)
	for x, by := range erases {
		if x < first {
			earlier, record = append(earlier, x), by
		}
	}
	var by [8]byte
	for i, r := range records {
		index := first + uint64(i)
		erasedBy, erased := r.ErasedBy, r.Erased
		if b, ok := erases[index]; ok && !erased {
			erasedBy, erased = b, true
		}
		if erased {
			binary.BigEndian.PutUint64(by[:], erasedBy)
			if err := pb.Set(indexKey(prefixErased, index), by[:], nil); err != nil {
				return fmt.Errorf("storage: batch erasure: %w", err)
			}
			s.anyErased.Store(true) // before the commit, as eraseInto does
			pbundle = append(pbundle, make([]byte, tlog.SaltSize)...)
			pbundle = binary.AppendUvarint(pbundle, 0)
			continue
		}
		pbundle = append(pbundle, r.Salt...)
		pbundle = binary.AppendUvarint(pbundle, uint64(len(r.Payload)))
		pbundle = append(pbundle, r.Payload...)
	}
	if err := pb.Set(indexKey(prefixPayloads, first), pbundle, nil); err != nil {
		return fmt.Errorf("storage: batch payloads: %w", err)
	}
	if len(earlier) == 0 {
		return nil
	}
	return s.eraseInto(pb, &Erasure{Indexes: earlier}, record, nil)
}
