package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedRequest is returned for an add-checkpoint request body that
// does not follow C2SP tlog-witness.
var ErrMalformedRequest = errors.New("tlog: malformed add-checkpoint request")

// maxWitnessProof is the most consistency proof lines a request may carry.
const maxWitnessProof = 63

// AddCheckpoint is the body of a C2SP tlog-witness add-checkpoint request:
// the size of the latest checkpoint the client believes the witness
// cosigned, a consistency proof from it, and the new signed checkpoint.
type AddCheckpoint struct {
	OldSize    uint64
	Proof      []Hash
	Checkpoint []byte
}

// Marshal returns the request body.
func (r AddCheckpoint) Marshal() []byte {
	b := fmt.Appendf(nil, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b = append(b, encodeHash(h)...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, r.Checkpoint...)
}

// ParseAddCheckpoint parses an add-checkpoint request body. It checks the
// framing only; the checkpoint's signature and contents are the caller's.
func ParseAddCheckpoint(body []byte) (AddCheckpoint, error) {
	var r AddCheckpoint
	fail := func(why string) (AddCheckpoint, error) {
		return AddCheckpoint{}, fmt.Errorf("%w: %s", ErrMalformedRequest, why)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return fail("no old size line")
	}
	old, ok := strings.CutPrefix(string(line), "old ")
	if !ok {
		return fail(`the first line must be "old <size>"`)
	}
	n, ok := canonicalDecimal(old)
	if !ok {
		return fail(fmt.Sprintf("old size %q is not a decimal without leading zeros", old))
	}
	r.OldSize = n
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return fail("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(r.Proof) == maxWitnessProof {
			return fail(fmt.Sprintf("more than %d consistency proof lines", maxWitnessProof))
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != HashSize {
			return fail(fmt.Sprintf("consistency proof line %d is not a base64 32-byte hash", len(r.Proof)+1))
		}
		r.Proof = append(r.Proof, Hash(h))
	}
	if len(rest) == 0 {
		return fail("no checkpoint")
	}
	r.Checkpoint = rest
	return r, nil
}

// ParseCheckpointPrefix parses the first three lines of a checkpoint body
// as ParseCheckpoint does, allowing extension lines after them (other logs'
// checkpoints may carry them; they are covered by the signatures and
// otherwise ignored).
func ParseCheckpointPrefix(text []byte) (Checkpoint, error) {
	end := 0
	for range 3 {
		i := bytes.IndexByte(text[end:], '\n')
		if i < 0 {
			return Checkpoint{}, fmt.Errorf("%w: want at least 3 lines", ErrMalformedCheckpoint)
		}
		end += i + 1
	}
	return ParseCheckpoint(text[:end])
}
