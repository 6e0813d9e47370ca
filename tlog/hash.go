package tlog

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// HashSize is the size in bytes of every hash in the log (SHA-256).
const HashSize = sha256.Size

// Hash is a SHA-256 hash of a leaf, a node or a payload.
type Hash [HashSize]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ErrHashSize is returned when a hash does not have exactly HashSize bytes.
var ErrHashSize = errors.New("tlog: hash must be 32 bytes")

// ParseHash copies a 32-byte slice into a Hash.
func ParseHash(b []byte) (Hash, error) {
	var h Hash
	if len(b) != HashSize {
		return h, fmt.Errorf("%w, got %d", ErrHashSize, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// EmptyRoot is the root hash of the empty tree, SHA-256 of no bytes
// (RFC 6962 §2.1).
var EmptyRoot = Hash(sha256.Sum256(nil))

// LeafHash returns the RFC 6962 leaf hash SHA-256(0x00 || entry).
func LeafHash(entry []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0x00})
	h.Write(entry)
	var out Hash
	h.Sum(out[:0])
	return out
}

// NodeHash returns the RFC 6962 interior node hash
// SHA-256(0x01 || left || right).
func NodeHash(left, right Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

func encodeHash(h Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
