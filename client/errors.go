package client

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

// ErrVerification is wrapped by every error that means the server gave
// something that does not verify: a bad signature, a wrong proof, a
// commitment that does not match. Never a transport error.
var ErrVerification = errors.New("client: verification failed")

// VerificationError says what did not verify.
type VerificationError struct {
	// What names the thing checked, for example "inclusion proof of leaf 7".
	What string
	// Err is the underlying failure.
	Err error
}

func (e *VerificationError) Error() string {
	return fmt.Sprintf("client: %s does not verify: %v", e.What, e.Err)
}

// Unwrap returns ErrVerification and the cause.
func (e *VerificationError) Unwrap() []error { return []error{ErrVerification, e.Err} }

func verifyErr(what string, err error) error {
	return &VerificationError{What: what, Err: err}
}

// InconsistencyError is returned when the log presents a checkpoint that
// cannot be reconciled with one the client trusted: a different root at the
// same size, a consistency proof that does not verify, or a smaller tree
// than one it showed before (a rollback). It carries the evidence (see
// Evidence and VerifyEvidence): both signed checkpoints, the consistency
// proof the log served and, when the log would serve it, the inclusion
// proof of leaf Old.Size in New's tree, which shows the root New's tree
// has at Old.Size.
type InconsistencyError struct {
	// Old is the checkpoint the client trusted; New the one that does not
	// extend it.
	Old, New Checkpoint
	// Proof is the consistency proof from Old to New the log served (none
	// for a same-size fork or a rollback).
	Proof []tlog.Hash
	// PrefixLeaf and PrefixProof are the hash of leaf Old.Size in New's
	// tree and its inclusion proof there, when the client could get them.
	PrefixLeaf  *tlog.Hash
	PrefixProof []tlog.Hash
	// Err says how the check failed.
	Err error
}

func (e *InconsistencyError) Error() string {
	return fmt.Sprintf("client: the log presented two irreconcilable checkpoints (sizes %d and %d): %v", e.Old.Size, e.New.Size, e.Err)
}

// Unwrap returns ErrVerification and the cause.
func (e *InconsistencyError) Unwrap() []error { return []error{ErrVerification, e.Err} }

// Evidence returns the error as an Evidence record.
func (e *InconsistencyError) Evidence() Evidence {
	ev := Evidence{Format: EvidenceFormat, OldCheckpoint: string(e.Old.Note), NewCheckpoint: string(e.New.Note), Reason: e.Err.Error(),
		ConsistencyProof: hashSlices(e.Proof)}
	if e.PrefixLeaf != nil {
		ev.PrefixLeafHash = e.PrefixLeaf[:]
		ev.PrefixProof = hashSlices(e.PrefixProof)
	}
	return ev
}

// EvidenceFormat names the JSON evidence format.
const EvidenceFormat = "tlogd-evidence/v1"

// Evidence is the portable form of an InconsistencyError, written as JSON
// by tlogctl monitor and consistency and checked offline by VerifyEvidence.
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
	// Reason is how the client's check failed; informational.
	Reason string `json:"reason"`
}

// ParseEvidence parses a JSON evidence file strictly.
func ParseEvidence(b []byte) (Evidence, error) {
	var ev Evidence
	if err := strictJSON(b, &ev); err != nil {
		return ev, fmt.Errorf("client: parse evidence: %w", err)
	}
	if ev.Format != EvidenceFormat {
		return ev, fmt.Errorf("client: evidence format %q, want %q", ev.Format, EvidenceFormat)
	}
	return ev, nil
}

// ErrNoProof is wrapped by VerifyEvidence's error when the evidence is
// genuine (both checkpoints signed by the log) but does not prove two
// histories: a rollback, or a wrong proof without the proof that the trees
// differ.
var ErrNoProof = errors.New("client: the evidence does not prove two histories")

// VerifyEvidence checks evidence offline against the log's verifier key and
// returns what it proves. Evidence holds only if it proves, to anyone with
// the key and with nothing taken on trust, that the log signed two trees
// that are not one history:
//
//   - two checkpoints of the same size with different roots;
//   - or, for sizes m < n: leaf m's inclusion proof in the tree of size n,
//     which verifies against the signed root of size n and shows a root at
//     size m other than the one the log signed (tlog.PrefixRoot);
//   - or the log's consistency proof from m to n, which leads to the signed
//     root of size n but to another root at size m (tlog.ConsistencyRoots;
//     for m a power of two the proof must start with the subtree [0, m),
//     which the log's proofs leave out, so such evidence needs the first
//     kind).
//
// A checkpoint not signed by the key is an error; so is evidence whose
// proofs do not lead to the signed roots, or a rollback (a smaller tree
// shown after a larger one: the log showed an older view, which may be
// stale, not forked), both wrapping ErrNoProof.
func VerifyEvidence(ev Evidence, verifierKey string) (string, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", fmt.Errorf("client: verifier key: %w", err)
	}
	old, _, err := tlog.OpenCheckpoint([]byte(ev.OldCheckpoint), v)
	if err != nil {
		return "", fmt.Errorf("client: evidence: old checkpoint: %w", err)
	}
	cur, _, err := tlog.OpenCheckpoint([]byte(ev.NewCheckpoint), v)
	if err != nil {
		return "", fmt.Errorf("client: evidence: new checkpoint: %w", err)
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
		leaf, err1 := tlog.ParseHash(ev.PrefixLeafHash)
		p, err2 := hashes(ev.PrefixProof)
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("client: evidence: prefix proof: %w", err)
		}
		root, err := tlog.PrefixRoot(old.Size, cur.Size, leaf, p, cur.Root)
		if err == nil && root != old.Root {
			return fmt.Sprintf("inconsistent: the log's signed tree of size %d holds a tree of size %d with root %s, but the log signed root %s at size %d",
				cur.Size, old.Size, root, old.Root, old.Size), nil
		}
	}
	if p, err := hashes(ev.ConsistencyProof); err == nil && len(p) > 0 {
		r1, r2, err := tlog.ConsistencyRoots(old.Size, cur.Size, p)
		if err == nil && r2 == cur.Root && r1 != old.Root {
			return fmt.Sprintf("inconsistent: the log's own consistency proof from size %d to %d leads to its signed root of size %d and to root %s at size %d, not the root %s it signed there",
				old.Size, cur.Size, cur.Size, r1, old.Size, old.Root), nil
		}
	}
	return "", fmt.Errorf("%w: no proof in it leads to the signed root of size %d and shows another root at size %d (a log that serves a wrong proof is at fault, but that is not proof of a fork)", ErrNoProof, cur.Size, old.Size)
}
