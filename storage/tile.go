package storage

import (
	"container/list"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/tlogd/tlogd/tlog"
)

// Node tiles. Tile (L, N) holds the perfect nodes of tree levels 4L … 4L+3
// whose leaves fall in the N-th run of 16^(L+1) leaves: row k holds level
// 4L+k, up to 16>>k nodes (30 hashes, 960 bytes, when full). Every stored
// node lives in exactly one tile. A C2SP tlog-tiles hash tile (L, N) is row 0
// of the 16 consecutive tiles (2L, 16N … 16N+15).
//
// Height 4, not 8: a proof reads one node per level, and a 16-KiB tile of
// height 8 costs a 16-KiB read for 8 hashes, and a 16-KiB rewrite of the
// right-edge tile for every batch; height-4 tiles are 1 KiB.
//
// Encoding: width (2 bytes big-endian, the node count of row 0, 1 … 16),
// then rows 0 … 3, row k holding width>>k hashes. A tile at the right edge of
// the tree is partial and is rewritten, wider, as the tree grows; nodes never
// change once written.
const (
	tileHeight = 4
	tileWidth  = 1 << tileHeight
)

// tileCoord returns the tile holding node id, its row and its column.
func tileCoord(id tlog.NodeID) (level uint8, index uint64, row uint, col uint64) {
	level = uint8(id.Level / tileHeight)
	row = id.Level % tileHeight
	shift := tileHeight - row
	return level, id.Index >> shift, row, id.Index & (1<<shift - 1)
}

// tileWidthOf returns the width of an encoded tile.
func tileWidthOf(t []byte) int { return int(binary.BigEndian.Uint16(t)) }

// checkTile validates an encoded tile's length against its width.
func checkTile(t []byte) error {
	if len(t) < 2 {
		return fmt.Errorf("%w: tile of %d bytes", ErrCorrupt, len(t))
	}
	w := tileWidthOf(t)
	if w < 1 || w > tileWidth {
		return fmt.Errorf("%w: tile width %d", ErrCorrupt, w)
	}
	n := 0
	for k := range tileHeight {
		n += w >> k
	}
	if len(t) != 2+n*tlog.HashSize {
		return fmt.Errorf("%w: tile of width %d has %d bytes, want %d", ErrCorrupt, w, len(t), 2+n*tlog.HashSize)
	}
	return nil
}

// tileNode returns the hash at (row, col) of an encoded tile, or false when
// the tile is not wide enough to hold it.
func tileNode(t []byte, row uint, col uint64) (tlog.Hash, bool) {
	w := uint64(tileWidthOf(t))
	if col >= w>>row {
		return tlog.Hash{}, false
	}
	off := uint64(2)
	for k := range row {
		off += (w >> k) * tlog.HashSize
	}
	off += col * tlog.HashSize
	return tlog.Hash(t[off : off+tlog.HashSize]), true
}

// tileCoversRow reports whether t holds at least n nodes in row.
func tileCoversRow(t []byte, row uint, n uint64) bool {
	return uint64(tileWidthOf(t))>>row >= n
}

// edgeTile is the writer's copy of the right-most tile of one tile level.
type edgeTile struct {
	index uint64
	rows  [tileHeight][]tlog.Hash
	dirty bool
}

func (t *edgeTile) width() int { return len(t.rows[0]) }

func (t *edgeTile) encode() []byte {
	n := 0
	for _, r := range t.rows {
		n += len(r)
	}
	b := make([]byte, 2, 2+n*tlog.HashSize)
	binary.BigEndian.PutUint16(b, uint16(t.width()))
	for _, r := range t.rows {
		for i := range r {
			b = append(b, r[i][:]...)
		}
	}
	return b
}

// decodeEdgeTile loads an encoded tile for further appends.
func decodeEdgeTile(index uint64, b []byte) (*edgeTile, error) {
	if err := checkTile(b); err != nil {
		return nil, err
	}
	t := &edgeTile{index: index}
	w := tileWidthOf(b)
	off := 2
	for k := range tileHeight {
		n := w >> k
		t.rows[k] = make([]tlog.Hash, n, tileWidth>>k)
		for i := range n {
			t.rows[k][i] = tlog.Hash(b[off : off+tlog.HashSize])
			off += tlog.HashSize
		}
	}
	return t, nil
}

type tileID struct {
	level uint8
	index uint64
}

// tileCache keeps recently written or read encoded tiles. A cached tile may
// be replaced only by a wider version of itself, so readers always find
// nodes that are at least as complete as they need.
type tileCache struct {
	mu    sync.Mutex
	max   int
	lru   *list.List // of *cacheItem, most recent first
	items map[tileID]*list.Element
}

type cacheItem struct {
	id   tileID
	tile []byte
}

func newTileCache(max int) *tileCache {
	return &tileCache{max: max, lru: list.New(), items: make(map[tileID]*list.Element)}
}

func (c *tileCache) get(id tileID) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cacheItem).tile
	}
	return nil
}

func (c *tileCache) put(id tileID, tile []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		it := e.Value.(*cacheItem)
		if tileWidthOf(tile) > tileWidthOf(it.tile) {
			it.tile = tile
		}
		c.lru.MoveToFront(e)
		return
	}
	c.items[id] = c.lru.PushFront(&cacheItem{id: id, tile: tile})
	for c.lru.Len() > c.max {
		e := c.lru.Back()
		c.lru.Remove(e)
		delete(c.items, e.Value.(*cacheItem).id)
	}
}

// HashTile returns the first width hashes (1 to 256) of C2SP tlog-tiles
// hash tile (level, index), concatenated: the nodes of tree level 8·level
// from 256·index on. They are row 0 of up to 16 consecutive stored tiles of
// level 2·level. ErrBeyondTree unless the published tree holds them all.
// Full tiles are cached: the caller must not modify the result.
func (s *Store) HashTile(level int, index uint64, width int) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	if err := s.checkTileRange(8*level, index, width); err != nil {
		return nil, err
	}
	id := tileID{uint8(level), index}
	if width == tlog.TileWidth {
		if t := s.hashTiles.get(id); t != nil {
			return t, nil
		}
	}
	out := make([]byte, 0, width*tlog.HashSize)
	const per = tlog.TileWidth / tileWidth // stored tiles per hash tile
	for j := uint64(0); len(out) < cap(out); j++ {
		n := min(tileWidth, (cap(out)-len(out))/tlog.HashSize)
		id := tileID{uint8(2 * level), index*per + j}
		t, err := s.tile(id, 0, uint64(n))
		if err != nil {
			return nil, err
		}
		if !tileCoversRow(t, 0, uint64(n)) {
			return nil, fmt.Errorf("%w: tile %d/%d holds %d nodes, want %d", ErrCorrupt, id.level, id.index, tileWidthOf(t), n)
		}
		out = append(out, t[2:2+n*tlog.HashSize]...)
	}
	if width == tlog.TileWidth {
		s.hashTiles.put(id, out) // a full tile never changes
	}
	return out, nil
}

// fullTileCache keeps recently read full C2SP hash tiles (8 KiB each),
// which never change; the oldest goes first.
type fullTileCache struct {
	mu   sync.Mutex
	m    map[tileID][]byte
	ring []tileID
	next int
}

func newFullTileCache(n int) *fullTileCache {
	return &fullTileCache{m: make(map[tileID][]byte, n), ring: make([]tileID, 0, n)}
}

func (c *fullTileCache) get(id tileID) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *fullTileCache) put(id tileID, t []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok || cap(c.ring) == 0 {
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, id)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = id
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[id] = t
}

// EntryBundle returns C2SP tlog-tiles entry bundle index of width entries (1
// to 256): entries 256·index on, each as a big-endian uint16 length and the
// entry. ErrBeyondTree unless the published tree holds them all.
func (s *Store) EntryBundle(index uint64, width int) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	if err := s.checkTileRange(0, index, width); err != nil {
		return nil, err
	}
	es, err := s.readEntries(index*tlog.TileWidth, width, false, 0)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, e := range es {
		if len(e.Entry) > math.MaxUint16 {
			return nil, fmt.Errorf("%w: entry %d of %d bytes", ErrCorrupt, e.Index, len(e.Entry))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(e.Entry)))
		out = append(out, e.Entry...)
	}
	return out, nil
}

// checkTileRange checks that the published tree holds the width nodes of
// tree level from 256·index on.
func (s *Store) checkTileRange(level int, index uint64, width int) error {
	if width < 1 || width > tlog.TileWidth {
		return fmt.Errorf("storage: tile width %d, want 1 to %d", width, tlog.TileWidth)
	}
	size := s.head.Load().Size
	if level >= 64 || index > (size>>level)/tlog.TileWidth || index*tlog.TileWidth+uint64(width) > size>>level {
		return fmt.Errorf("%w: %d nodes of level %d from %d, published size %d", ErrBeyondTree, width, level, index*tlog.TileWidth, size)
	}
	return nil
}
