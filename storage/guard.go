package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tlogd/tlogd/tlog"
)

// guardFile records, outside Pebble, the latest checkpoint the log has
// published. Pebble's files hold the checkpoints too, but a damaged file can
// make Pebble lose data without an error: the tail of its last WAL is read
// up to the first bad record, as if the process had died while writing it.
// Open compares the two, so a log that lost published records refuses to
// start instead of signing a second tree of a size it has signed before.
//
// The file has two fixed slots written in turn, so a torn or damaged slot
// leaves the other one: each holds a 4-byte big-endian length and a signed
// checkpoint. It is written after a batch's fsync and before its head is
// published, without a sync of its own: after a power loss it can only be
// behind Pebble, never ahead.
const (
	guardFile = "tlogd-checkpoint"
	guardSlot = 2048
)

type guard struct {
	f    vfs.File
	next int64 // the slot to write next
}

// readRecord returns the latest valid checkpoint in the checkpoint record
// and its slot, or nil if there is no record.
func (s *Store) readRecord() (*tlog.Checkpoint, int64, error) {
	name := s.fs.PathJoin(s.dir, guardFile)
	b, err := s.readGuard(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("storage: read %s: %w", name, err)
	}
	latest, slot := s.latestSlot(b)
	if latest == nil {
		return nil, 0, fmt.Errorf("%w: %s holds no valid checkpoint of this log", ErrCorrupt, name)
	}
	return latest, slot, nil
}

// latestSlot returns the latest valid checkpoint in b and its slot.
func (s *Store) latestSlot(b []byte) (*tlog.Checkpoint, int64) {
	var latest *tlog.Checkpoint
	slot := int64(0)
	for i := range int64(2) {
		if cp, ok := s.parseSlot(b, i); ok && (latest == nil || cp.Size > latest.Size) {
			latest, slot = cp, i
		}
	}
	return latest, slot
}

// createRecord makes a new checkpoint record holding signed in both slots,
// whole or not at all: written under a temporary name, synced, renamed into
// place, and the directory synced.
func (s *Store) createRecord(signed []byte) error {
	name := s.fs.PathJoin(s.dir, guardFile)
	tmp := name + ".tmp"
	f, err := s.fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("storage: create checkpoint record: %w", err)
	}
	g := &guard{f: f}
	err = g.record(signed)
	if err == nil {
		err = g.record(signed)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.fs.Rename(tmp, name)
	}
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		s.fs.Remove(tmp)
		return fmt.Errorf("storage: create checkpoint record: %w", err)
	}
	return nil
}

// openRecord opens the checkpoint record for writing, next into slot next.
func (s *Store) openRecord(next int64) (*guard, error) {
	name := s.fs.PathJoin(s.dir, guardFile)
	f, err := s.fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", name, err)
	}
	return &guard{f: f, next: next}, nil
}

func (s *Store) readGuard(name string) ([]byte, error) {
	f, err := s.fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 2*guardSlot))
}

// parseSlot returns the checkpoint in slot i of b, if it is one this log signed.
func (s *Store) parseSlot(b []byte, i int64) (*tlog.Checkpoint, bool) {
	if int64(len(b)) < (i+1)*guardSlot {
		return nil, false
	}
	slot := b[i*guardSlot : (i+1)*guardSlot]
	n := binary.BigEndian.Uint32(slot)
	if n == 0 || n > guardSlot-4 {
		return nil, false
	}
	cp, _, err := tlog.OpenCheckpoint(slot[4:4+n], s.verifier)
	if err != nil || cp.Origin != s.origin {
		return nil, false
	}
	return &cp, true
}

// record writes a published checkpoint to the next slot.
func (g *guard) record(signed []byte) error {
	if len(signed) > guardSlot-4 {
		return fmt.Errorf("storage: checkpoint of %d bytes does not fit the checkpoint record", len(signed))
	}
	slot := make([]byte, guardSlot)
	binary.BigEndian.PutUint32(slot, uint32(len(signed)))
	copy(slot[4:], signed)
	if _, err := g.f.WriteAt(slot, g.next*guardSlot); err != nil {
		return fmt.Errorf("storage: write checkpoint record: %w", err)
	}
	g.next = 1 - g.next
	return nil
}

// checkGuard compares the checkpoint record with the restored tree: the tree
// must reach the recorded size and have the recorded root there.
func (s *Store) checkGuard(rec *tlog.Checkpoint) error {
	if rec == nil {
		return nil
	}
	size := s.tree.Size()
	if rec.Size > size {
		return fmt.Errorf("%w: the log published a checkpoint of size %d (recorded in %s), but Pebble's data ends at size %d: published records were lost, and signing again would fork the log",
			ErrCorrupt, rec.Size, guardFile, size)
	}
	root := s.tree.Root()
	if rec.Size < size {
		hashes, err := s.readHashes(tlog.TreeNodes(rec.Size))
		if err != nil {
			return fmt.Errorf("storage: check the recorded checkpoint of size %d: %w", rec.Size, err)
		}
		t, err := tlog.NewTree(rec.Size, hashes)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		root = t.Root()
	}
	if root != rec.Root {
		return fmt.Errorf("%w: stored nodes give root %s at size %d, the checkpoint recorded in %s says %s", ErrCorrupt, root, rec.Size, guardFile, rec.Root)
	}
	return nil
}

// close syncs and closes the record.
func (g *guard) close() error {
	err := g.f.Sync()
	if cerr := g.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: close checkpoint record: %w", err)
	}
	return nil
}

// syncDir syncs the data directory.
func (s *Store) syncDir() error {
	d, err := s.fs.OpenDir(s.dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
