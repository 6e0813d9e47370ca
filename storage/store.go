package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

var (
	// ErrNotFound is returned when a checkpoint, leaf or payload does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrBeyondTree is returned for an index or size beyond the published tree.
	ErrBeyondTree = errors.New("storage: beyond the published tree")
	// ErrFailed is returned by Apply after a write failed: the writer has
	// stopped and the process must restart to recover.
	ErrFailed = errors.New("storage: writer stopped after a storage error")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("storage: store is closed")
	// ErrWrongKey is returned by Open when the data directory holds a log of
	// another origin or key.
	ErrWrongKey = errors.New("storage: data directory belongs to another log key")
	// ErrCorrupt is returned when stored data is inconsistent.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrLocked is returned by Open when another process has the data
	// directory open.
	ErrLocked = errors.New("storage: data directory is locked by another process")
	// ErrDiskFull is returned by Begin while the filesystem of the data
	// directory has less free space than Options.ReserveBytes, or after a
	// write found it full until space is back (see ballastFile). Nothing was
	// written; the writer goes on once space is freed.
	ErrDiskFull = errors.New("storage: disk full")
	// ErrReplica is returned by Begin on a replica: only the primary
	// sequences records.
	ErrReplica = errors.New("storage: this log is a replica; only its primary appends")
	// ErrRejected is returned by BeginCopy for a batch that does not match
	// the log's signed checkpoints or the replica's state. Nothing was
	// written and the replica goes on.
	ErrRejected = errors.New("storage: copied batch rejected")
	// errNoCheckpoint: the store holds no checkpoint (an empty replica).
	errNoCheckpoint = fmt.Errorf("%w: no checkpoint", ErrCorrupt)
)

// Options configures a Store.
type Options struct {
	// Signer signs checkpoints; its name is the log origin. Required,
	// except for a replica.
	Signer note.Signer
	// VerifierKey is the note verifier key of the log. Required. A data
	// directory created with another key is refused.
	VerifierKey string
	// Replica makes the store a copy of a log sequenced elsewhere: it
	// takes only entries the log signed (BeginCopy), never Begin, and
	// needs no Signer. A data directory is a replica's or a primary's for
	// good; Open refuses the other role.
	Replica bool
	// FS is the filesystem; nil means the operating system's.
	FS vfs.FS
	// CacheBytes is the size of Pebble's block cache; 0 means 256 MiB. It
	// holds the tree tiles that proofs read: about 60 bytes per leaf.
	CacheBytes int64
	// MemTableBytes is the size of one Pebble memtable; 0 means 64 MiB.
	MemTableBytes uint64
	// TileCacheTiles is how many node tiles (up to 962 bytes each) to keep
	// in memory; 0 means 65536. Tiles above the leaf level are few and read
	// by every proof; leaf-level tiles are cached when written, so proofs
	// of new records are served from memory.
	TileCacheTiles int
	// IndexFlushRecords is how many new leaves' hash-index entries (and
	// events' postings) are kept in memory before they are written to
	// Pebble in the background; 0 means 262144 (about 40 MiB of maps, and
	// for audit events about 200 bytes more per event). Open rebuilds at
	// most this many.
	IndexFlushRecords int
	// ReserveBytes is the free space Begin keeps on the data directory's
	// filesystem: below it, batches are refused with ErrDiskFull before
	// anything is written, so that Pebble's flushes and compactions still
	// have room. A quarter of it is held in a ballast file for writes that
	// find the disk full anyway (see ballastFile). 0 means 256 MiB.
	// Filesystems that cannot report their free space are not checked.
	ReserveBytes uint64
	// Logger receives Pebble's own messages (informational ones at debug
	// level). nil discards them.
	Logger *slog.Logger
	// Reindex derives from a stored record's entry and payload what the
	// caller gave when appending it: its dedup key (Record.PayloadHash),
	// Subjects and Postings, for Open to rebuild the in-memory indexes of
	// the records past the index watermark. It must give what the caller
	// gave. nil means records have the SHA-256 of the payload as dedup key,
	// and no subjects or postings.
	Reindex func(entry, payload []byte, r *Record)
}

// Head is a published state of the log.
type Head struct {
	// Size is the number of leaves.
	Size uint64
	// Root is the root hash of the tree of Size leaves.
	Root tlog.Hash
	// Checkpoint is the signed checkpoint of Size.
	Checkpoint []byte
	// Time is the log time of the latest leaf; zero for the empty tree.
	Time time.Time
}

// Store is a log stored in Pebble. Apply must be called from one goroutine at
// a time; reads may run concurrently with it and with each other. Callers
// MUST call Close.
type Store struct {
	db       *pebble.DB
	opts     Options
	popts    *pebble.Options
	fs       vfs.FS // Options.FS, behind the disk-full handler (see ballastFile)
	rawFS    vfs.FS // Options.FS
	dir      string
	cache    *pebble.Cache
	origin   string
	signer   note.Signer
	verifier note.Verifier
	vkey     string

	// Read side.
	closeMu sync.RWMutex // held for reading by every read; Close takes it for writing
	closed  bool
	head    atomic.Pointer[Head]
	// anyErased is set once any payload has been erased.
	anyErased atomic.Bool
	tiles     *tileCache
	hashTiles *fullTileCache // full C2SP hash tiles served over HTTP
	idx       *hashIndex
	guard     *guard // the checkpoint record; written by Wait
	// corruptions counts the damaged blocks Pebble found.
	corruptions *atomic.Int64
	notify      struct {
		sync.Mutex
		ch chan struct{}
	}

	failMu sync.Mutex
	failed error // the first storage error; the writer has stopped

	// Write side, owned by Begin.
	writeMu  sync.Mutex
	last     *Pending       // the latest batch begun
	inflight sync.WaitGroup // batches begun and not yet waited for
	tree     *tlog.Tree
	edge     []*edgeTile
	lastTime uint64
	filter   dedupFilter          // every payload hash in the log, approximately
	subjects map[tlog.Hash]uint64 // every event subject's latest index
	full     []fullTile           // edge tiles that filled up during the current batch
	copies   string               // a replica's metaCopies
	space    space
}

// Open opens the log in dir, creating it if the directory holds no log. It
// checks that the log belongs to opts.Signer, restores the tree from the
// latest checkpoint, checks that the stored nodes reproduce its root, that
// the last entries hash to the stored leaves, and that the tree holds the
// latest checkpoint the log published (see guardFile).
func Open(dir string, opts Options) (*Store, error) {
	if opts.VerifierKey == "" || (opts.Signer == nil) != opts.Replica {
		return nil, errors.New("storage: VerifierKey is required, and a Signer for a primary (not for a replica)")
	}
	verifier, err := note.NewVerifier(opts.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("storage: parse verifier key: %w", err)
	}
	if opts.Signer != nil && (verifier.Name() != opts.Signer.Name() || verifier.KeyHash() != opts.Signer.KeyHash()) {
		return nil, errors.New("storage: verifier key does not match the signer")
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 256 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 64 << 20
	}
	if opts.TileCacheTiles == 0 {
		opts.TileCacheTiles = 1 << 16
	}
	if opts.IndexFlushRecords == 0 {
		opts.IndexFlushRecords = 1 << 18
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.ReserveBytes == 0 {
		opts.ReserveBytes = 256 << 20
	}
	// Writes that find the disk full free the ballast and retry once; the
	// handler needs the Store, which exists only once Pebble is open.
	var opened atomic.Pointer[Store]
	fs := vfs.OnDiskFull(opts.FS, func() {
		if s := opened.Load(); s != nil {
			s.onDiskFull()
		}
	})
	cache := pebble.NewCache(opts.CacheBytes)
	po := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		MemTableSize:       opts.MemTableBytes,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{opts.Logger},
		// Never stop writes for a deep L0 (the index tables are ingested
		// there): a write stall holds every Append for seconds, while more
		// L0 files only cost reads a few bloom-filter checks. Compactions
		// catch up when the load drops.
		L0StopWritesThreshold:       1000,
		MemTableStopWritesThreshold: 4,
	}
	// Pebble's default for a damaged block is to end the process. The read
	// that found it fails anyway, with an error naming the file; ending the
	// process would only turn one bad block into a crash loop for every
	// client. Log it, count it, and serve what is intact.
	var corruptions atomic.Int64
	po.EventListener = &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		corruptions.Add(1)
		if opts.Logger != nil {
			opts.Logger.Error("storage: damaged data found; the read that found it failed",
				slog.String("file", info.Path), slog.String("error", info.Details.Error()))
		}
	}}
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Bundles and tiles are large values under keys that interleave with
	// every other batch's, so each compaction would rewrite them. Value
	// separation keeps them in blob files that compactions do not copy.
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           1024,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
	po.EnsureDefaults() // the index tables are written with these options
	db, err := pebble.Open(dir, po)
	if err != nil {
		cache.Unref()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("storage: open pebble in %s: %w", dir, err)
	}
	s := &Store{
		db:        db,
		popts:     po,
		fs:        fs,
		rawFS:     opts.FS,
		dir:       dir,
		cache:     cache,
		origin:    verifier.Name(),
		signer:    opts.Signer,
		verifier:  verifier,
		vkey:      opts.VerifierKey,
		tiles:     newTileCache(opts.TileCacheTiles),
		hashTiles: newFullTileCache(4096), // 32 MiB
		idx:       newHashIndex(0, opts.IndexFlushRecords),
		opts:      opts,
	}
	s.corruptions = &corruptions
	s.notify.ch = make(chan struct{})
	if err := s.removeStaleIndexTables(); err != nil {
		db.Close()
		cache.Unref()
		return nil, err
	}
	if err := s.load(); err != nil {
		if s.guard != nil {
			s.guard.f.Close()
		}
		db.Close()
		cache.Unref()
		return nil, err
	}
	// The ballast, if there is room for it; otherwise a later free-space
	// check makes it.
	u, err := s.fs.GetDiskUsage(dir)
	s.makeBallast(err != nil || u.AvailBytes >= opts.ReserveBytes+s.ballastBytes())
	opened.Store(s)
	return s, nil
}

// load initializes an empty store or restores the writer's state.
func (s *Store) load() error {
	schema, err := s.get(metaSchema)
	if errors.Is(err, ErrNotFound) {
		return s.create()
	}
	if err != nil {
		return err
	}
	if string(schema) != schemaVersion {
		return fmt.Errorf("storage: data directory has schema version %q, this build reads %q", schema, schemaVersion)
	}
	origin, err := s.get(metaOrigin)
	if err != nil {
		return fmt.Errorf("storage: read origin: %w", err)
	}
	vkey, err := s.get(metaVerifier)
	if err != nil {
		return fmt.Errorf("storage: read verifier key: %w", err)
	}
	if string(origin) != s.origin || string(vkey) != s.vkey {
		return fmt.Errorf("%w: the data directory holds log %q with verifier key %s, but the key file is for %q with verifier key %s",
			ErrWrongKey, origin, vkey, s.origin, s.vkey)
	}
	if err := s.checkRole(); err != nil {
		return err
	}

	signed, err := s.lastCheckpoint()
	if errors.Is(err, errNoCheckpoint) && s.opts.Replica {
		return s.loadEmptyReplica()
	}
	if err != nil {
		return err
	}
	cp, _, err := tlog.OpenCheckpoint(signed, s.verifier)
	if err != nil {
		return fmt.Errorf("%w: latest checkpoint: %w", ErrCorrupt, err)
	}
	ids := tlog.TreeNodes(cp.Size)
	hashes, err := s.readHashes(ids)
	if err != nil {
		return fmt.Errorf("storage: restore tree of size %d: %w", cp.Size, err)
	}
	tree, err := tlog.NewTree(cp.Size, hashes)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if root := tree.Root(); root != cp.Root {
		return fmt.Errorf("%w: stored nodes give root %s at size %d, the signed checkpoint says %s", ErrCorrupt, root, cp.Size, cp.Root)
	}
	s.tree = tree
	if err := s.loadEdge(cp.Size); err != nil {
		return err
	}
	if err := s.checkLastEntries(cp.Size); err != nil {
		return err
	}
	if err := s.loadSubjects(); err != nil {
		return err
	}
	if err := s.loadIndex(cp.Size); err != nil {
		return err
	}
	if err := s.loadErased(); err != nil {
		return err
	}
	h := &Head{Size: cp.Size, Root: cp.Root, Checkpoint: signed}
	if cp.Size > 0 {
		h.Time = time.UnixMilli(int64(s.lastTime))
	}
	s.head.Store(h)
	return s.loadGuard()
}

// checkLastEntries reads the entries of the last partial leaf tile (at
// least the last entry) and checks that they hash to the stored leaves, so
// a damaged latest batch is found at start, not by the first reader. It
// sets lastTime from the last entry.
func (s *Store) checkLastEntries(size uint64) error {
	if size == 0 {
		return nil
	}
	leaves := s.edge[0].rows[0]
	if len(leaves) == 0 { // the last leaf tile is full: check the last leaf
		h, err := s.readHashes([]tlog.NodeID{{Level: 0, Index: size - 1}})
		if err != nil {
			return fmt.Errorf("storage: read the last leaf: %w", err)
		}
		leaves = h
	}
	n := len(leaves)
	entries, err := s.readEntries(size-uint64(n), n, false, 0)
	if err != nil {
		return fmt.Errorf("storage: read the last entries: %w", err)
	}
	if len(entries) != n {
		return fmt.Errorf("%w: %d of the last %d entries are missing", ErrCorrupt, n-len(entries), n)
	}
	for i, h := range leaves {
		if tlog.LeafHash(entries[i].Entry) != h {
			return fmt.Errorf("%w: entry %d does not hash to the stored leaf", ErrCorrupt, size-uint64(n)+uint64(i))
		}
	}
	e, err := tlog.ParseEntry(entries[n-1].Entry)
	if err != nil {
		return fmt.Errorf("%w: last entry: %w", ErrCorrupt, err)
	}
	s.lastTime = e.Time
	return nil
}

// loadGuard checks the restored tree against the checkpoint record and
// brings the record up to date.
func (s *Store) loadGuard() error {
	rec, slot, err := s.readRecord()
	if err != nil {
		return err
	}
	if err := s.checkGuard(rec); err != nil {
		return err
	}
	h := s.Head()
	if rec == nil {
		if h.Size > 0 {
			s.logger().Warn("storage: the checkpoint record was missing; it is written again from the log's latest checkpoint, which could not be checked against it",
				slog.String("file", guardFile), slog.Uint64("size", h.Size))
		}
		if err := s.createRecord(h.Checkpoint); err != nil {
			return err
		}
	}
	g, err := s.openRecord(1 - slot) // a new record: both slots hold the head
	if err != nil {
		return err
	}
	s.guard = g
	if rec != nil && rec.Size < h.Size {
		if err := g.record(h.Checkpoint); err != nil {
			return err
		}
		if err := g.f.Sync(); err != nil {
			return fmt.Errorf("storage: sync checkpoint record: %w", err)
		}
	}
	return nil
}

// create writes the metadata and the signed checkpoint of the empty tree.
func (s *Store) create() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("storage: check empty: %w", err)
	}
	nonEmpty := it.First()
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: check empty: %w", err)
	}
	if nonEmpty {
		return fmt.Errorf("%w: data directory has data but no schema version", ErrCorrupt)
	}
	if s.opts.Replica {
		return s.createReplica()
	}
	signed, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: s.origin, Size: 0, Root: tlog.EmptyRoot}, s.signer)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, kv := range [][2][]byte{
		{metaSchema, []byte(schemaVersion)},
		{metaOrigin, []byte(s.origin)},
		{metaVerifier, []byte(s.vkey)},
		{metaRole, []byte(rolePrimary)},
		{indexKey(prefixCheckpoint, 0), signed},
	} {
		if err := b.Set(kv[0], kv[1], nil); err != nil {
			return fmt.Errorf("storage: create log: %w", err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: create log: %w", err)
	}
	tree, err := tlog.NewTree(0, nil)
	if err != nil {
		return err
	}
	s.tree = tree
	s.subjects = map[tlog.Hash]uint64{}
	s.head.Store(&Head{Size: 0, Root: tlog.EmptyRoot, Checkpoint: signed})
	return s.loadGuard()
}

// loadEdge loads the right-most partial tile of every tile level.
func (s *Store) loadEdge(size uint64) error {
	s.edge = nil
	for level := uint8(0); ; level++ {
		count := size >> (tileHeight * uint(level)) // nodes at level 4·level
		if count == 0 {
			return nil
		}
		index, w := count/tileWidth, int(count%tileWidth)
		t := &edgeTile{index: index}
		if w > 0 {
			b, err := s.get(tileKey(level, index))
			if err != nil {
				return fmt.Errorf("%w: edge tile %d/%d: %w", ErrCorrupt, level, index, err)
			}
			if t, err = decodeEdgeTile(index, b); err != nil {
				return fmt.Errorf("edge tile %d/%d: %w", level, index, err)
			}
			if t.width() != w {
				return fmt.Errorf("%w: edge tile %d/%d has width %d, the tree of size %d needs %d", ErrCorrupt, level, index, t.width(), size, w)
			}
		}
		s.edge = append(s.edge, t)
	}
}

// loadFilter fills the dedup filter from the payload-hash index.
func (s *Store) loadFilter() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDedup}, UpperBound: prefixEnd(prefixDedup)})
	if err != nil {
		return fmt.Errorf("storage: scan dedup index: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 9+tlog.HashSize {
			it.Close()
			return fmt.Errorf("%w: dedup key of %d bytes", ErrCorrupt, len(k))
		}
		h := tlog.Hash(k[9:])
		s.filter.add(&h)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("storage: scan dedup index: %w", err)
	}
	return nil
}

// lastCheckpoint returns the checkpoint with the highest size.
func (s *Store) lastCheckpoint() ([]byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCheckpoint}, UpperBound: prefixEnd(prefixCheckpoint)})
	if err != nil {
		return nil, fmt.Errorf("storage: find latest checkpoint: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("storage: find latest checkpoint: %w", err)
		}
		return nil, errNoCheckpoint
	}
	return bytes.Clone(it.Value()), nil
}

// get returns a copy of the value of key, or ErrNotFound.
func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get %q: %w", key[:1], err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// getIndex reads an 8-byte index value.
func (s *Store) getIndex(key []byte) (uint64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("storage: get %q: %w", key[:1], err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: index value of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Origin returns the log origin.
func (s *Store) Origin() string { return s.origin }

// VerifierKey returns the note verifier key of the log.
func (s *Store) VerifierKey() string { return s.vkey }

// Head returns the latest published state.
func (s *Store) Head() Head { return *s.head.Load() }

// Grown returns a channel that is closed when a state newer than the current
// Head is published.
func (s *Store) Grown() <-chan struct{} {
	s.notify.Lock()
	defer s.notify.Unlock()
	return s.notify.ch
}

func (s *Store) publish(h *Head) {
	s.head.Store(h)
	s.notify.Lock()
	close(s.notify.ch)
	s.notify.ch = make(chan struct{})
	s.notify.Unlock()
}

// Close closes Pebble after waiting for running reads, any Begin, and the
// Wait of every batch begun. Reads and Begin after Close return ErrClosed.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.inflight.Wait()
	var ierr error
	if s.failure() == nil {
		ierr = s.flushIndex()
	} else {
		s.reapFlush(true)
	}
	var gerr error
	if s.guard != nil { // an empty replica has no checkpoint record yet
		gerr = s.guard.close()
	}
	err := s.db.Close()
	s.cache.Unref()
	if err != nil {
		err = fmt.Errorf("storage: close pebble: %w", err)
	}
	return errors.Join(err, ierr, gerr)
}

// rlock takes the read side of closeMu; it fails after Close.
func (s *Store) rlock() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

// pebbleLogger routes Pebble's messages to slog. Pebble calls Fatalf when it
// cannot continue safely (a broken commit pipeline, a failed MANIFEST write):
// the process exits. A failed WAL fsync instead comes back from SyncWait,
// and Wait stops the writer (ErrFailed). Both are fail-stop.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), slog.String("component", "pebble"))
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), slog.String("component", "pebble"))
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg, slog.String("component", "pebble"), slog.Bool("fatal", true))
	} else {
		fmt.Fprintln(os.Stderr, "pebble: fatal:", msg)
	}
	os.Exit(70)
}
