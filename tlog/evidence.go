package tlog

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// EvidenceFormat names the JSON evidence format.
const EvidenceFormat = "tlogd-evidence/v1"

// Evidence is the portable proof that a log showed two histories: two
// checkpoints it signed and, for different sizes, a proof that leads to the
// larger one's root and shows another root at the smaller size. tlogctl
// monitor and consistency write it, witnesses that compare views store it,
// and VerifyEvidence checks it offline.
type Evidence struct {
	Format        string `json:"format"`
	OldCheckpoint string `json:"old_checkpoint"`
	NewCheckpoint string `json:"new_checkpoint"`
	// ConsistencyProof is the proof the log served from the old size to
	// the new one.
	ConsistencyProof [][]byte `json:"consistency_proof,omitempty"`
	// PrefixLeafHash and PrefixProof are leaf old-size's hash in the new
	// tree and its inclusion proof there.
	PrefixLeafHash []byte   `json:"prefix_leaf_hash,omitempty"`
	PrefixProof    [][]byte `json:"prefix_proof,omitempty"`
	// Reason is how the check that found it failed; informational.
	Reason string `json:"reason"`
}

// ErrNoProof is wrapped by VerifyEvidence's error when the evidence is
// genuine (both checkpoints signed by the log) but does not prove two
// histories: a rollback, or a wrong proof without the proof that the trees
// differ.
var ErrNoProof = errors.New("the evidence does not prove two histories")

// VerifyEvidence checks evidence against the log's verifier and returns
// what it proves. Evidence holds only if it proves, to anyone with the key
// and with nothing taken on trust, that the log signed two trees that are
// not one history:
//
//   - two checkpoints of the same size with different roots;
//   - or, for sizes m < n: leaf m's inclusion proof in the tree of size n,
//     which verifies against the signed root of size n and shows a root at
//     size m other than the one the log signed (PrefixRoot);
//   - or the log's consistency proof from m to n, which leads to the signed
//     root of size n but to another root at size m (ConsistencyRoots; for m
//     a power of two the proof must start with the subtree [0, m), which
//     the log's proofs leave out, so such evidence needs the first kind).
//
// A checkpoint not signed by the key is an error; so is evidence whose
// proofs do not lead to the signed roots, or a rollback (a smaller tree
// shown after a larger one: the log showed an older view, which may be
// stale, not forked), both wrapping ErrNoProof.
func VerifyEvidence(ev Evidence, v note.Verifier) (string, error) {
	old, _, err := OpenCheckpoint([]byte(ev.OldCheckpoint), v)
	if err != nil {
		return "", fmt.Errorf("evidence: old checkpoint: %w", err)
	}
	cur, _, err := OpenCheckpoint([]byte(ev.NewCheckpoint), v)
	if err != nil {
		return "", fmt.Errorf("evidence: new checkpoint: %w", err)
	}
	if old.Size > cur.Size {
		return "", fmt.Errorf("%w: rollback: the log showed tree size %d after %d; a stale view, not by itself two histories", ErrNoProof, cur.Size, old.Size)
	}
	if old.Size == cur.Size {
		if old.Root == cur.Root {
			return "", fmt.Errorf("%w: the same checkpoint twice", ErrNoProof)
		}
		return fmt.Sprintf("fork: the log signed two different trees of size %d (roots %s and %s)", old.Size, old.Root, cur.Root), nil
	}
	if ev.PrefixLeafHash != nil {
		leaf, err1 := ParseHash(ev.PrefixLeafHash)
		p, err2 := parseHashes(ev.PrefixProof)
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("evidence: prefix proof: %w", err)
		}
		root, err := PrefixRoot(old.Size, cur.Size, leaf, p, cur.Root)
		if err == nil && root != old.Root {
			return fmt.Sprintf("inconsistent: the log's signed tree of size %d holds a tree of size %d with root %s, but the log signed root %s at size %d",
				cur.Size, old.Size, root, old.Root, old.Size), nil
		}
	}
	if p, err := parseHashes(ev.ConsistencyProof); err == nil && len(p) > 0 {
		r1, r2, err := ConsistencyRoots(old.Size, cur.Size, p)
		if err == nil && r2 == cur.Root && r1 != old.Root {
			return fmt.Sprintf("inconsistent: the log's own consistency proof from size %d to %d leads to its signed root of size %d and to root %s at size %d, not the root %s it signed there",
				old.Size, cur.Size, cur.Size, r1, old.Size, old.Root), nil
		}
	}
	return "", fmt.Errorf("%w: no proof in it leads to the signed root of size %d and shows another root at size %d (a log that serves a wrong proof is at fault, but that is not proof of a fork)", ErrNoProof, cur.Size, old.Size)
}

// parseHashes parses 32-byte hashes.
func parseHashes(b [][]byte) ([]Hash, error) {
	out := make([]Hash, len(b))
	for i, h := range b {
		var err error
		if out[i], err = ParseHash(h); err != nil {
			return nil, err
		}
	}
	return out, nil
}
