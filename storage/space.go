package storage

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ballastFile is space the store holds in reserve for a full disk: when a
// write finds no space (ENOSPC) although the free-space check let its batch
// in, the ballast is deleted and the write retried once (vfs.OnDiskFull),
// so the batch completes instead of stopping the writer. Appends are then
// refused (ErrDiskFull) until the filesystem has the reserve free again and
// the ballast has been made again. Its size is a quarter of ReserveBytes,
// written as random bytes (so that no filesystem can store it sparse or
// compressed), under a temporary name renamed once synced.
const ballastFile = "tlogd-ballast"

// space is the state of the free-space checks. Begin owns checked and
// ballast (writeMu); state is also changed by onDiskFull.
type space struct {
	checked time.Time // when the free space was last found above the reserve
	ballast bool      // the ballast exists
	// state counts disk-full events and their ends: odd while the disk is
	// full. onDiskFull, called from whichever goroutine's write found the
	// disk full, makes it odd (or moves it on if it is); recoverSpace makes
	// it even only if no event came since it looked.
	state atomic.Uint64
}

// checkSpace returns ErrDiskFull if the data directory's filesystem has
// less free space than the reserve, or if a write found the disk full and
// space has not come back since. Space found sufficient is checked again
// after 100 ms: the reserve covers what a writer can add in that time.
func (s *Store) checkSpace() error {
	if v := s.space.state.Load(); v%2 == 1 {
		return s.recoverSpace(v)
	}
	now := time.Now()
	if now.Sub(s.space.checked) < 100*time.Millisecond {
		return nil
	}
	u, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		s.space.checked = now // not reported here (ErrUnsupported): nothing to check
		return nil
	}
	if u.AvailBytes < s.opts.ReserveBytes {
		return fmt.Errorf("%w: %d MiB free on the data directory's filesystem, below the %d MiB kept in reserve; appends resume once space is freed",
			ErrDiskFull, u.AvailBytes>>20, s.opts.ReserveBytes>>20)
	}
	if !s.space.ballast {
		s.makeBallast(u.AvailBytes >= s.opts.ReserveBytes+s.ballastBytes()) // logs a failure; tried again at a later check
	}
	s.space.checked = now
	return nil
}

// recoverSpace ends the disk-full state v once the reserve and a new
// ballast fit on the filesystem.
func (s *Store) recoverSpace(v uint64) error {
	need := s.opts.ReserveBytes + s.ballastBytes()
	if u, err := s.fs.GetDiskUsage(s.dir); err == nil && u.AvailBytes < need {
		return fmt.Errorf("%w: a write found the filesystem of the data directory full; %d MiB free now, appends resume once %d MiB are",
			ErrDiskFull, u.AvailBytes>>20, need>>20)
	}
	if err := s.makeBallast(true); err != nil {
		return fmt.Errorf("%w: a write found the filesystem of the data directory full, and the ballast cannot be made again: %v",
			ErrDiskFull, err)
	}
	if !s.space.state.CompareAndSwap(v, v+1) {
		return fmt.Errorf("%w: a write found the filesystem of the data directory full again", ErrDiskFull)
	}
	s.logger().Info("storage: disk space is back; appends resume")
	return nil
}

// onDiskFull is called by the filesystem wrapper when a write fails with
// ENOSPC, with every write held until it returns; the write is then
// retried once.
func (s *Store) onDiskFull() {
	for {
		v := s.space.state.Load()
		if s.space.state.CompareAndSwap(v, v+1+v%2) { // odd, and not v
			break
		}
	}
	err := s.rawFS.Remove(s.rawFS.PathJoin(s.dir, ballastFile))
	l := s.logger()
	if err != nil {
		l.Error("storage: the disk is full, and there is no ballast to free; the write will fail and the writer stop", slog.String("error", err.Error()))
		return
	}
	l.Error("storage: the disk is full: deleted the ballast so that the writes in progress finish; appends are refused until space is freed")
}

func (s *Store) ballastBytes() uint64 { return s.opts.ReserveBytes / 4 }

// makeBallast notes whether the ballast file exists and, if not and room
// says there is space for it, makes it. It runs under writeMu (Begin, or
// Open before the store is shared).
func (s *Store) makeBallast(room bool) error {
	name := s.rawFS.PathJoin(s.dir, ballastFile)
	if _, err := s.rawFS.Stat(name); err == nil {
		s.space.ballast = true
		return nil
	}
	s.space.ballast = false
	if !room {
		return nil
	}
	tmp := name + ".tmp"
	err := s.writeBallast(tmp)
	if err == nil {
		err = s.rawFS.Rename(tmp, name)
	}
	if err != nil {
		s.rawFS.Remove(tmp)
		s.logger().Warn("storage: cannot make the ballast; a full disk will stop the writer", slog.String("error", err.Error()))
		return err
	}
	s.space.ballast = true
	return nil
}

func (s *Store) writeBallast(name string) error {
	f, err := s.rawFS.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{}).Read(buf) // incompressible; the same bytes in every block is enough
	for n := uint64(0); n < s.ballastBytes() && err == nil; n += uint64(len(buf)) {
		_, err = f.Write(buf[:min(uint64(len(buf)), s.ballastBytes()-n)])
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("make %s: %w", ballastFile, err)
	}
	return nil
}

func (s *Store) logger() *slog.Logger {
	if s.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.opts.Logger
}
