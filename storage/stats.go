package storage

// DBStats are figures about the store's Pebble database, for metrics.
type DBStats struct {
	// DiskBytes is the space the store uses on disk.
	DiskBytes uint64
	// MemTableBytes is the size of the memtables.
	MemTableBytes uint64
	// L0Files and L0Sublevels describe the top level of the LSM.
	L0Files, L0Sublevels int64
	// ReadAmp is how many sorted runs a point read may visit.
	ReadAmp int64
	// CompactionDebtBytes is Pebble's estimate of the bytes compactions
	// still have to write.
	CompactionDebtBytes uint64
	// Compactions, Flushes and Ingestions count those operations since
	// Open.
	Compactions, Flushes, Ingestions int64
	// WALBytesWritten counts the bytes written to the WAL since Open.
	WALBytesWritten uint64
	// BlockCacheBytes, BlockCacheHits and BlockCacheMisses describe the
	// block cache.
	BlockCacheBytes, BlockCacheHits, BlockCacheMisses int64
	// IndexEpochs is how many index epochs are on disk; IndexPending how
	// many recent leaves are indexed only in memory.
	IndexEpochs, IndexPending int64
	// Corruptions counts the damaged blocks Pebble found since Open.
	Corruptions int64
	// AvailBytes is the free space on the data directory's filesystem,
	// and ReserveBytes the part of it appends leave free (Options).
	// AvailBytes is 0 if the filesystem cannot report it.
	AvailBytes, ReserveBytes uint64
}

// Stats returns figures about the database. It is safe to call at any time;
// after Close it returns zeros.
func (s *Store) Stats() DBStats {
	if err := s.rlock(); err != nil {
		return DBStats{}
	}
	defer s.closeMu.RUnlock()
	m := s.db.Metrics()
	st := DBStats{
		DiskBytes:           m.DiskSpaceUsage(),
		MemTableBytes:       m.MemTable.Size,
		L0Files:             m.Levels[0].TablesCount,
		L0Sublevels:         int64(m.Levels[0].Sublevels),
		ReadAmp:             int64(m.ReadAmp()),
		CompactionDebtBytes: m.Compact.EstimatedDebt,
		Compactions:         m.Compact.Count,
		Flushes:             m.Flush.Count,
		Ingestions:          int64(m.Ingest.Count),
		WALBytesWritten:     m.WAL.BytesWritten,
		BlockCacheBytes:     m.BlockCache.Size,
		BlockCacheHits:      m.BlockCache.Hits,
		BlockCacheMisses:    m.BlockCache.Misses,
		Corruptions:         s.corruptions.Load(),
		ReserveBytes:        s.opts.ReserveBytes,
	}
	if u, err := s.fs.GetDiskUsage(s.dir); err == nil {
		st.AvailBytes = u.AvailBytes
	}
	x := s.idx
	x.mu.RLock()
	st.IndexEpochs = int64(len(x.epochs))
	st.IndexPending = int64(len(x.leaf.hashes))
	if x.frozenLeaf != nil {
		st.IndexPending += int64(len(x.frozenLeaf.hashes))
	}
	x.mu.RUnlock()
	return st
}
