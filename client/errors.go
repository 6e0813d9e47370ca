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

// EvidenceFormat names the JSON evidence format (see tlog.Evidence).
const EvidenceFormat = tlog.EvidenceFormat

// Evidence is the portable form of an InconsistencyError, written as JSON
// by tlogctl monitor and consistency and checked offline by VerifyEvidence.
type Evidence = tlog.Evidence

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
// genuine but does not prove two histories (see tlog.VerifyEvidence).
var ErrNoProof = tlog.ErrNoProof

// VerifyEvidence checks evidence offline against the log's verifier key and
// returns what it proves; see tlog.VerifyEvidence.
func VerifyEvidence(ev Evidence, verifierKey string) (string, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", fmt.Errorf("client: verifier key: %w", err)
	}
	what, err := tlog.VerifyEvidence(ev, v)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	return what, nil
}
