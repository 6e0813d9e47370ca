package storage

import (
	"encoding/binary"

	"github.com/tlogd/tlogd/tlog"
)

// dedupFilter answers "might this payload hash be in the log?" without a
// Pebble lookup. It is a list of cache-line-blocked Bloom filters, each four
// times the capacity of the previous one, so it grows with the log without a
// rebuild. A key touches one 512-bit block per segment; with 16 bits per key
// and 7 probes the false-positive rate of a full segment is about 0.1%
// (TestDedupFilterFalsePositives), and a lookup checks every segment.
//
// Keys are SHA-256 payload hashes, already uniform, so the probes come
// straight from the key's bits.
type dedupFilter struct {
	segs []*bloomSegment
}

type bloomSegment struct {
	blocks [][8]uint64
	cap    int
	n      int
}

const (
	bloomFirstCap    = 1 << 16
	bloomGrowth      = 4
	bloomBitsPerKey  = 16
	bloomProbes      = 7 // 7 probes × 9 bits fit in one 64-bit word
	bloomBlockBits   = 512
	bloomBlockWords  = bloomBlockBits / 64
	bloomProbeBitLen = 9 // log2(bloomBlockBits)
)

func newBloomSegment(capacity int) *bloomSegment {
	nblocks := (capacity*bloomBitsPerKey + bloomBlockBits - 1) / bloomBlockBits
	return &bloomSegment{blocks: make([][8]uint64, nblocks), cap: capacity}
}

// probes returns the block selector and the probe bits of h. They come from
// the last 16 bytes: Open adds the stored hashes in sorted order, so a
// segment can hold a narrow range of leading bytes, and blocks chosen by
// those would fill unevenly.
func probes(h *tlog.Hash) (uint64, uint64) {
	return binary.LittleEndian.Uint64(h[16:24]), binary.LittleEndian.Uint64(h[24:32])
}

func (s *bloomSegment) add(h *tlog.Hash) {
	sel, bits := probes(h)
	b := &s.blocks[sel%uint64(len(s.blocks))]
	for range bloomProbes {
		p := bits & (bloomBlockBits - 1)
		b[p/64] |= 1 << (p % 64)
		bits >>= bloomProbeBitLen
	}
	s.n++
}

func (s *bloomSegment) mayContain(h *tlog.Hash) bool {
	sel, bits := probes(h)
	b := &s.blocks[sel%uint64(len(s.blocks))]
	for range bloomProbes {
		p := bits & (bloomBlockBits - 1)
		if b[p/64]&(1<<(p%64)) == 0 {
			return false
		}
		bits >>= bloomProbeBitLen
	}
	return true
}

func (f *dedupFilter) add(h *tlog.Hash) {
	if len(f.segs) == 0 || f.segs[len(f.segs)-1].n >= f.segs[len(f.segs)-1].cap {
		c := bloomFirstCap
		if len(f.segs) > 0 {
			c = f.segs[len(f.segs)-1].cap * bloomGrowth
		}
		f.segs = append(f.segs, newBloomSegment(c))
	}
	f.segs[len(f.segs)-1].add(h)
}

func (f *dedupFilter) mayContain(h *tlog.Hash) bool {
	for i := len(f.segs) - 1; i >= 0; i-- {
		if f.segs[i].mayContain(h) {
			return true
		}
	}
	return false
}

// sizeBytes returns the memory the filter's bit arrays use.
func (f *dedupFilter) sizeBytes() int {
	n := 0
	for _, s := range f.segs {
		n += len(s.blocks) * bloomBlockBits / 8
	}
	return n
}
