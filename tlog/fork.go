package tlog

import (
	"fmt"
	"math/bits"
)

// PrefixRoot returns the root of the first index leaves of the tree of the
// given size and root, as that tree holds them, from the inclusion proof of
// leaf index (whose hash is leaf), which it verifies first. If the log
// signed another root at size index, the two signed trees are not
// consistent, and (leaf, proof) proves it to anyone: the proof's nodes are
// authenticated by the larger tree's signed root.
func PrefixRoot(index, size uint64, leaf Hash, p []Hash, root Hash) (Hash, error) {
	if err := VerifyInclusion(index, size, leaf, p, root); err != nil {
		return Hash{}, err
	}
	if index == 0 {
		return EmptyRoot, nil
	}
	left := leftSiblings(index, size, p)
	r := left[len(left)-1]
	for i := len(left) - 2; i >= 0; i-- {
		r = NodeHash(left[i], r)
	}
	return r, nil
}

// ConsistencyRoots returns the roots of the trees of size1 and size2 that a
// consistency proof leads to, computed from the proof alone (RFC 9162
// §2.1.4.2). When size1 is a power of two the proof must begin with the
// hash of the subtree [0, size1), which RFC 6962 proofs leave out because it
// is the first tree's root. If the second root is the one the log signed at
// size2 and the first is not the one it signed at size1, the proof shows
// that the log's tree of size2 does not extend its tree of size1.
func ConsistencyRoots(size1, size2 uint64, p []Hash) (root1, root2 Hash, err error) {
	if size1 == 0 || size1 >= size2 {
		return Hash{}, Hash{}, fmt.Errorf("%w: consistency roots need 0 < size1 < size2, got %d and %d", ErrProof, size1, size2)
	}
	if len(p) == 0 {
		return Hash{}, Hash{}, fmt.Errorf("%w: empty consistency proof", ErrProof)
	}
	fn, sn := size1-1, size2-1
	tz := bits.TrailingZeros64(^fn) // the low set bits of fn
	fn, sn = fn>>tz, sn>>tz
	fr, sr := p[0], p[0]
	for _, c := range p[1:] {
		if sn == 0 {
			return Hash{}, Hash{}, fmt.Errorf("%w: consistency proof of %d and %d is too long", ErrProof, size1, size2)
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = NodeHash(c, fr), NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
			}
		} else {
			sr = NodeHash(sr, c)
		}
		fn, sn = fn>>1, sn>>1
	}
	if sn != 0 {
		return Hash{}, Hash{}, fmt.Errorf("%w: consistency proof of %d and %d is too short", ErrProof, size1, size2)
	}
	return fr, sr, nil
}

// IsPowerOfTwo reports whether n is a power of two: the sizes whose RFC 6962
// consistency proofs leave the first root out.
func IsPowerOfTwo(n uint64) bool { return n != 0 && n&(n-1) == 0 }
