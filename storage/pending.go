package storage

import (
	"encoding/binary"

	"github.com/tlogd/tlogd/tlog"
)

// hashRun holds the hashes of a consecutive run of leaves [from, from+n) in
// order, with an open-addressing table to find a leaf by hash. It costs one
// sequential append and one random slot write per leaf, several times less
// than a Go map with 32-byte keys, which matters on the writer's path.
//
// A slot holds the position+1 of a hash in the low 32 bits and 32 more bits
// of the hash as a fingerprint in the high bits, so a probe reads the hash
// itself only on a fingerprint match. The zero Hash marks a leaf without an
// entry (it is never a SHA-256 output anyone can find) and is not indexed.
type hashRun struct {
	from   uint64
	hashes []tlog.Hash
	slots  []uint64
}

func newHashRun(from uint64, capacity int) *hashRun {
	n := 16
	for n < 2*capacity {
		n *= 2
	}
	return &hashRun{from: from, hashes: make([]tlog.Hash, 0, capacity), slots: make([]uint64, n)}
}

func slotKey(h *tlog.Hash) (start uint64, fp uint64) {
	return binary.LittleEndian.Uint64(h[0:8]), uint64(binary.LittleEndian.Uint32(h[8:12])) << 32
}

// add appends the hash of leaf from+len.
func (r *hashRun) add(h tlog.Hash) {
	r.hashes = append(r.hashes, h)
	if h == (tlog.Hash{}) {
		return
	}
	if 2*len(r.hashes) > len(r.slots) {
		r.grow()
		return // grow indexed every hash, this one included
	}
	r.insert(&r.hashes[len(r.hashes)-1], uint64(len(r.hashes)))
}

func (r *hashRun) insert(h *tlog.Hash, pos uint64) {
	start, fp := slotKey(h)
	mask := uint64(len(r.slots) - 1)
	for i := start & mask; ; i = (i + 1) & mask {
		if r.slots[i] == 0 {
			r.slots[i] = fp | pos
			return
		}
	}
}

func (r *hashRun) grow() {
	r.slots = make([]uint64, 2*len(r.slots))
	for i := range r.hashes {
		if r.hashes[i] != (tlog.Hash{}) {
			r.insert(&r.hashes[i], uint64(i+1))
		}
	}
}

// find returns the leaf index of h, if it is in the run: the latest, when
// it is there more than once (a payload appended again after its first
// occurrence was erased).
func (r *hashRun) find(h tlog.Hash) (uint64, bool) {
	if r == nil || h == (tlog.Hash{}) {
		return 0, false
	}
	start, fp := slotKey(&h)
	mask := uint64(len(r.slots) - 1)
	best := uint64(0)
	for i := start & mask; ; i = (i + 1) & mask {
		s := r.slots[i]
		if s == 0 {
			break
		}
		if s&^0xffffffff == fp {
			if pos := s & 0xffffffff; r.hashes[pos-1] == h {
				best = max(best, pos)
			}
		}
	}
	if best == 0 {
		return 0, false
	}
	return r.from + best - 1, true
}

// end returns the index after the run's last leaf.
func (r *hashRun) end() uint64 { return r.from + uint64(len(r.hashes)) }
