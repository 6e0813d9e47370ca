package storage

import "encoding/binary"

const (
	prefixCheckpoint = 'c'
	prefixDedup      = 'd'
	prefixEntries    = 'e'
	prefixLeaf       = 'h'
	prefixMeta       = 'm'
	prefixPayloads   = 'p'
	prefixTile       = 't'
)

// schemaVersion is stored under m/schema; Open refuses other versions.
const schemaVersion = "1"

var (
	metaOrigin   = []byte{prefixMeta, 'o', 'r', 'i', 'g', 'i', 'n'}
	metaVerifier = []byte{prefixMeta, 'v', 'k', 'e', 'y'}
	metaSchema   = []byte{prefixMeta, 's', 'c', 'h', 'e', 'm', 'a'}
)

// indexKey returns prefix || big-endian n.
func indexKey(prefix byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, n)
}

// hashKey appends prefix || h to dst.
func hashKey(dst []byte, prefix byte, h []byte) []byte {
	return append(append(dst[:0], prefix), h...)
}

func tileKey(level uint8, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixTile, level}, index)
}

// prefixEnd returns the first key after every key with the one-byte prefix.
func prefixEnd(prefix byte) []byte { return []byte{prefix + 1} }
