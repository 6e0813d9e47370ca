// Package storage keeps a tlogd log in Pebble. It is the only package that
// imports Pebble.
//
// One writer applies batches of records (Apply): it assigns indexes, builds
// entries, extends the Merkle tree, signs a checkpoint for the new size and
// commits all of it in one synced Pebble batch. A replica's writer instead
// takes batches copied from the log's primary, each ending at a checkpoint
// the log signed (BeginCopy, see replica.go). Readers see only what has been
// published: the tree as of the last batch whose commit returned.
//
// Key schema (every integer is 8 bytes big-endian):
//
//	c <size>             signed checkpoint (C2SP tlog-checkpoint note) of that size
//	e <first index>      entries of one batch: count (4 bytes), then uvarint length + entry each
//	m <name>             metadata: origin, verifier key, schema version, role (primary or
//	                     replica), what a replica copies (payloads or entries), and
//	                     "index": the index epochs and the size below which x and y are complete
//	p <first index>      records of one batch: count (4 bytes), then salt (16 bytes) + uvarint length + payload each
//	t <level> <index>    node tile (1 byte level): the perfect nodes of levels 4·level … 4·level+3
//	                     above leaves [16^(level+1)·index, 16^(level+1)·(index+1)); see tile.go
//	x <epoch> <SHA-256(payload)> index of the first leaf with that payload (dedup)
//	y <epoch> <leaf hash>        index of the leaf
//
// Only perfect subtrees are stored, never right-border (ephemeral) nodes.
//
// The x and y keys are not written with the batches: they are kept in memory
// for recent leaves and written behind the tree, one epoch at a time, as
// sorted sstables (index-<x|y>-<size>.sst, removed once Pebble has ingested
// them) that Pebble never compacts; see index.go.
package storage
