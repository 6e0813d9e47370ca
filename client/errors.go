package client

import (
	"encoding/json"
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
// than one it signed before (a rollback). It carries the evidence: both
// signed checkpoints, and the consistency proof the log served, so that a
// third party holding the log's verifier key can check it offline (see
// Evidence).
type InconsistencyError struct {
	// Old is the checkpoint the client trusted; New the one that does not
	// extend it.
	Old, New Checkpoint
	// Proof is the consistency proof from Old to New the log served (none
	// for a same-size fork or a rollback).
	Proof []tlog.Hash
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
	ev := Evidence{Format: EvidenceFormat, OldCheckpoint: string(e.Old.Note), NewCheckpoint: string(e.New.Note), Reason: e.Err.Error()}
	for _, h := range e.Proof {
		ev.ConsistencyProof = append(ev.ConsistencyProof, h[:])
	}
	return ev
}

// EvidenceFormat names the JSON evidence format.
const EvidenceFormat = "tlogd-evidence/v1"

// Evidence is the portable form of an InconsistencyError, written as JSON
// by tlogctl monitor and checked offline by VerifyEvidence.
type Evidence struct {
	Format           string   `json:"format"`
	OldCheckpoint    string   `json:"old_checkpoint"`
	NewCheckpoint    string   `json:"new_checkpoint"`
	ConsistencyProof [][]byte `json:"consistency_proof,omitempty"`
	Reason           string   `json:"reason"`
}

// ParseEvidence parses a JSON evidence file.
func ParseEvidence(b []byte) (Evidence, error) {
	var ev Evidence
	if err := json.Unmarshal(b, &ev); err != nil {
		return ev, fmt.Errorf("client: parse evidence: %w", err)
	}
	if ev.Format != EvidenceFormat {
		return ev, fmt.Errorf("client: evidence format %q, want %q", ev.Format, EvidenceFormat)
	}
	return ev, nil
}

// VerifyEvidence checks evidence offline against the log's verifier key.
// It returns a description of the misbehaviour it proves, or an error when
// the evidence is forged (a checkpoint not signed by the key) or shows
// nothing wrong (for example a consistency proof that does verify).
//
// Two checkpoints of the same size with different roots prove a fork
// outright. For different sizes the evidence is the log's own consistency
// proof failing: the log could refute it only with a valid proof, and none
// exists if the trees diverged. A smaller tree after a larger one is a
// rollback: the client was shown an older view, which is not by itself
// proof of a fork.
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
	switch {
	case old.Size == cur.Size && old.Root != cur.Root:
		return fmt.Sprintf("fork: the log signed two different trees of size %d (roots %s and %s)", old.Size, old.Root, cur.Root), nil
	case old.Size == cur.Size:
		return "", errors.New("client: evidence shows the same checkpoint twice: nothing wrong")
	case cur.Size < old.Size:
		return fmt.Sprintf("rollback: after tree size %d the log presented tree size %d; not proof of a fork by itself", old.Size, cur.Size), nil
	}
	p := make([]tlog.Hash, len(ev.ConsistencyProof))
	for i, h := range ev.ConsistencyProof {
		if p[i], err = tlog.ParseHash(h); err != nil {
			return "", fmt.Errorf("client: evidence: consistency proof: %w", err)
		}
	}
	if err := tlog.VerifyConsistency(old.Size, cur.Size, p, old.Root, cur.Root); err == nil {
		return "", errors.New("client: evidence: the consistency proof verifies: the trees are consistent")
	}
	return fmt.Sprintf("inconsistent: the log signed trees of sizes %d and %d and its consistency proof between them does not verify", old.Size, cur.Size), nil
}
