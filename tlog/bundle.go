package tlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrMalformedProof is returned for text that is not a C2SP tlog-proof.
var ErrMalformedProof = errors.New("tlog: malformed tlog-proof")

const proofHeader = "c2sp.org/tlog-proof@v1"

// Proof is a C2SP tlog-proof@v1: an offline-verifiable proof that a leaf is
// in a log, made of a signed checkpoint, the leaf's index and its inclusion
// proof. tlogd puts the entry and the commitment salt in Extra (see
// RecordExtra), so the proof also binds a payload.
type Proof struct {
	// Extra is opaque application data; nil when absent.
	Extra []byte
	// Index is the leaf's index.
	Index uint64
	// Hashes is the inclusion proof, from the leaf level up.
	Hashes []Hash
	// Checkpoint is the signed checkpoint the proof is against.
	Checkpoint []byte
}

// Marshal returns the proof's text form.
func (p Proof) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(proofHeader + "\n")
	if p.Extra != nil {
		fmt.Fprintf(&b, "extra %s\n", base64.StdEncoding.EncodeToString(p.Extra))
	}
	fmt.Fprintf(&b, "index %d\n", p.Index)
	for _, h := range p.Hashes {
		b.WriteString(encodeHash(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseProof parses a tlog-proof strictly. It does not verify it.
func ParseProof(text []byte) (Proof, error) {
	var p Proof
	head, cp, ok := bytes.Cut(text, []byte("\n\n"))
	if !ok {
		return p, fmt.Errorf("%w: no blank line before the checkpoint", ErrMalformedProof)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != proofHeader {
		return p, fmt.Errorf("%w: first line is not %q", ErrMalformedProof, proofHeader)
	}
	lines = lines[1:]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return p, fmt.Errorf("%w: extra is not base64", ErrMalformedProof)
		}
		p.Extra = extra
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return p, fmt.Errorf("%w: no index line", ErrMalformedProof)
	}
	n, err := parseSize(strings.TrimPrefix(lines[0], "index "))
	if err != nil {
		return p, fmt.Errorf("%w: bad index", ErrMalformedProof)
	}
	p.Index = n
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != HashSize {
			return p, fmt.Errorf("%w: proof line %q is not a base64 hash", ErrMalformedProof, l)
		}
		p.Hashes = append(p.Hashes, Hash(h))
	}
	if len(p.Hashes) > 64 {
		return p, fmt.Errorf("%w: %d proof hashes", ErrMalformedProof, len(p.Hashes))
	}
	p.Checkpoint = cp
	return p, nil
}

// Verify checks the proof's checkpoint signature against the log's
// verifier and that leaf is at the proof's index in that tree. It returns
// the checkpoint.
func (p Proof) Verify(leaf Hash, v note.Verifier) (Checkpoint, error) {
	cp, _, err := OpenCheckpoint(p.Checkpoint, v)
	if err != nil {
		return Checkpoint{}, err
	}
	if err := VerifyInclusion(p.Index, cp.Size, leaf, p.Hashes, cp.Root); err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// RecordExtra encodes tlogd's extra data: the entry (uvarint length, then
// the bytes) and the commitment salt.
func RecordExtra(entry, salt []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(entry)))
	b = append(b, entry...)
	return append(b, salt...)
}

// ParseRecordExtra decodes RecordExtra.
func ParseRecordExtra(extra []byte) (entry, salt []byte, err error) {
	n, k := binary.Uvarint(extra)
	if k <= 0 || n > uint64(len(extra)-k) {
		return nil, nil, fmt.Errorf("%w: extra does not hold an entry", ErrMalformedProof)
	}
	if k != len(binary.AppendUvarint(nil, n)) {
		// One encoding per bundle: a padded length would give the same
		// record another extra.
		return nil, nil, fmt.Errorf("%w: extra's entry length is not minimally encoded", ErrMalformedProof)
	}
	entry, salt = extra[k:k+int(n)], extra[k+int(n):]
	if len(salt) != SaltSize {
		return nil, nil, fmt.Errorf("%w: extra holds a %d-byte salt, want %d", ErrMalformedProof, len(salt), SaltSize)
	}
	return entry, salt, nil
}
