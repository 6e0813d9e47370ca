package storage

import "encoding/binary"

const (
	prefixCheckpoint = 'c'
	prefixEntries    = 'e'
	prefixMeta       = 'm'
	prefixPayloads   = 'p'
	prefixSubject    = 's'
	prefixTile       = 't'
	prefixWitness    = 'w'
	prefixSplitView  = 'f'
	prefixErased     = 'z'
	// The hash indexes sort after every other key, so that no table of
	// other keys can span them (see index.go).
	prefixDedup = 'x'
	prefixLeaf  = 'y'
	// Posting tables sort after erasure marks, the last keys a memtable
	// holds (see events.go).
	prefixPosting = '{'
)

// schemaVersion is stored under m/schema; Open refuses other versions.
const schemaVersion = "2"

var (
	metaOrigin   = []byte("morigin")
	metaVerifier = []byte("mvkey")
	metaSchema   = []byte("mschema")
	// metaRole is "primary" or "replica" (see Options.Replica); a log
	// created before roles existed has none and is a primary's.
	metaRole = []byte("mrole")
	// metaCopies is, for a replica, "payloads" or "entries": whether it
	// stores the records' salts and payloads or only the entries. Set by
	// the first copied batch.
	metaCopies = []byte("mcopies")
	// metaEpochs lists the first leaf index of every index epoch (8 bytes
	// each, ascending); the tree size below which the index is complete
	// follows as the last 8 bytes.
	metaEpochs = []byte("mindex")
)

// indexKey returns prefix || big-endian n.
func indexKey(prefix byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, n)
}

// indexEntryKey appends prefix || epoch || h to dst.
func indexEntryKey(dst []byte, prefix byte, epoch uint64, h []byte) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst[:0], prefix), epoch)
	return append(dst, h...)
}

func tileKey(level uint8, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixTile, level}, index)
}

// prefixEnd returns the first key after every key with the one-byte prefix.
func prefixEnd(prefix byte) []byte { return []byte{prefix + 1} }
