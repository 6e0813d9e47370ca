package tlog

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Entry format, version 1 (41 bytes), for records:
//
//	version    1 byte   0x01
//	log_time   8 bytes  big-endian Unix milliseconds, never lower than the
//	                    previous entry's
//	commitment 32 bytes SHA-256("tlogd/record/v1\x00" || salt || payload)
//
// Version 2 (50 or 58 bytes), for audit events, adds per-subject back-links:
//
//	version    1 byte   0x02
//	log_time   8 bytes  as in version 1
//	commitment 32 bytes as in version 1
//	links      1 byte   n, the number of subjects the event names: 1 or 2
//	           n × 8 bytes big-endian: for each subject, in the event's order
//	                    (actor, then target), the index of the previous entry
//	                    that named the same subject, or 2^64-1 if none did
//
// The leaf hash is SHA-256(0x00 || entry). Entries carry no payload data, so
// they can be handed to anyone; whoever holds (payload, salt, entry) can check
// the commitment. Because the back-links are inside the leaf hash, a
// subject's timeline whose events do not link to each other is provably
// incomplete.
const (
	// EntryVersion is the version byte of record entries.
	EntryVersion = 0x01
	// EventEntryVersion is the version byte of audit event entries.
	EventEntryVersion = 0x02
	// EntrySize is the size in bytes of a version 1 entry.
	EntrySize = 1 + 8 + HashSize
	// MaxLinks is the most back-links an entry holds.
	MaxLinks = 2
	// SaltSize is the size in bytes of a commitment salt.
	SaltSize = 16
)

// NoLink is the back-link of a subject's first event.
const NoLink = ^uint64(0)

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
	// Links are an audit event's back-links, one per subject it names (a
	// version 2 entry); nil for a record (version 1).
	Links []uint64
}

// Size returns the length of e's encoding.
func (e Entry) Size() int {
	if e.Links == nil {
		return EntrySize
	}
	return EntrySize + 1 + 8*len(e.Links)
}

// AppendBinary appends the encoding of e to b: version 2 when e has links.
// It panics if e has more than MaxLinks links, or an empty non-nil list.
func (e Entry) AppendBinary(b []byte) []byte {
	if e.Links == nil {
		b = append(b, EntryVersion)
	} else {
		if len(e.Links) == 0 || len(e.Links) > MaxLinks {
			panic(fmt.Sprintf("tlog: an entry holds 1 to %d links, not %d", MaxLinks, len(e.Links)))
		}
		b = append(b, EventEntryVersion)
	}
	b = binary.BigEndian.AppendUint64(b, e.Time)
	b = append(b, e.Commitment[:]...)
	if e.Links != nil {
		b = append(b, byte(len(e.Links)))
		for _, l := range e.Links {
			b = binary.BigEndian.AppendUint64(b, l)
		}
	}
	return b
}

// MarshalBinary returns the encoding of e.
func (e Entry) MarshalBinary() ([]byte, error) {
	if e.Links != nil && (len(e.Links) == 0 || len(e.Links) > MaxLinks) {
		return nil, fmt.Errorf("%w: %d links, want 1 to %d", ErrMalformedEntry, len(e.Links), MaxLinks)
	}
	return e.AppendBinary(make([]byte, 0, e.Size())), nil
}

// ParseEntry decodes an entry, rejecting unknown versions and wrong lengths.
func ParseEntry(b []byte) (Entry, error) {
	if len(b) == 0 {
		return Entry{}, fmt.Errorf("%w: empty", ErrMalformedEntry)
	}
	var e Entry
	switch b[0] {
	case EntryVersion:
		if len(b) != EntrySize {
			return Entry{}, fmt.Errorf("%w: version 1 entry has %d bytes, want %d", ErrMalformedEntry, len(b), EntrySize)
		}
	case EventEntryVersion:
		if len(b) < EntrySize+1 {
			return Entry{}, fmt.Errorf("%w: version 2 entry has %d bytes", ErrMalformedEntry, len(b))
		}
		n := int(b[EntrySize])
		if n == 0 || n > MaxLinks || len(b) != EntrySize+1+8*n {
			return Entry{}, fmt.Errorf("%w: version 2 entry of %d bytes with %d links", ErrMalformedEntry, len(b), n)
		}
		e.Links = make([]uint64, n)
		for i := range e.Links {
			e.Links[i] = binary.BigEndian.Uint64(b[EntrySize+1+8*i:])
		}
	default:
		return Entry{}, fmt.Errorf("%w: unknown version %#02x", ErrMalformedEntry, b[0])
	}
	e.Time = binary.BigEndian.Uint64(b[1:9])
	copy(e.Commitment[:], b[9:EntrySize])
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
