package tlog

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Entry format, version 1 (41 bytes):
//
//	version    1 byte   0x01
//	log_time   8 bytes  big-endian Unix milliseconds, never lower than the
//	                    previous entry's
//	commitment 32 bytes SHA-256("tlogd/record/v1\x00" || salt || payload)
//
// The leaf hash is SHA-256(0x00 || entry). Entries carry no payload data, so
// they can be handed to anyone; whoever holds (payload, salt, entry) can check
// the commitment.
const (
	// EntryVersion is the version byte of entries this package writes.
	EntryVersion = 0x01
	// EntrySize is the size in bytes of a version 1 entry.
	EntrySize = 1 + 8 + HashSize
	// SaltSize is the size in bytes of a commitment salt.
	SaltSize = 16
)

// commitmentPrefix domain-separates record commitments from every other
// SHA-256 in the log.
const commitmentPrefix = "tlogd/record/v1\x00"

// ErrMalformedEntry is returned by ParseEntry for bytes that are not an entry.
var ErrMalformedEntry = errors.New("tlog: malformed entry")

// Entry is one leaf's content.
type Entry struct {
	// Time is the log's time at sequencing, in Unix milliseconds.
	Time uint64
	// Commitment is Commit(salt, payload) for the record.
	Commitment Hash
}

// AppendBinary appends the version 1 encoding of e to b.
func (e Entry) AppendBinary(b []byte) []byte {
	b = append(b, EntryVersion)
	b = binary.BigEndian.AppendUint64(b, e.Time)
	return append(b, e.Commitment[:]...)
}

// MarshalBinary returns the version 1 encoding of e.
func (e Entry) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(make([]byte, 0, EntrySize)), nil
}

// ParseEntry decodes an entry, rejecting unknown versions and wrong lengths.
func ParseEntry(b []byte) (Entry, error) {
	if len(b) == 0 {
		return Entry{}, fmt.Errorf("%w: empty", ErrMalformedEntry)
	}
	if b[0] != EntryVersion {
		return Entry{}, fmt.Errorf("%w: unknown version %#02x", ErrMalformedEntry, b[0])
	}
	if len(b) != EntrySize {
		return Entry{}, fmt.Errorf("%w: version 1 entry has %d bytes, want %d", ErrMalformedEntry, len(b), EntrySize)
	}
	var e Entry
	e.Time = binary.BigEndian.Uint64(b[1:9])
	copy(e.Commitment[:], b[9:])
	return e, nil
}

// Commit returns the commitment SHA-256("tlogd/record/v1\x00" || salt || payload).
func Commit(salt, payload []byte) Hash {
	h := sha256.New()
	h.Write([]byte(commitmentPrefix))
	h.Write(salt)
	h.Write(payload)
	var out Hash
	h.Sum(out[:0])
	return out
}

// ErrCommitmentMismatch is returned when a payload and salt do not match an
// entry's commitment.
var ErrCommitmentMismatch = errors.New("tlog: payload and salt do not match the entry's commitment")

// VerifyRecord checks that entry commits to payload under salt.
func VerifyRecord(entry, salt, payload []byte) error {
	e, err := ParseEntry(entry)
	if err != nil {
		return err
	}
	if len(salt) != SaltSize {
		return fmt.Errorf("tlog: salt must be %d bytes, got %d", SaltSize, len(salt))
	}
	if Commit(salt, payload) != e.Commitment {
		return ErrCommitmentMismatch
	}
	return nil
}
