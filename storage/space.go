package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ballastFile is space the store holds in reserve for a full disk: when a
// write finds no space (ENOSPC) although the free-space check let its batch
// in, the ballast is deleted and the write retried once (vfs.OnDiskFull),
// so the batch completes instead of stopping the writer. Appends are then
// refused (ErrDiskFull) until the filesystem has the reserve free again and
// the ballast has been made again. Its size is a quarter of ReserveBytes.
const ballastFile = "tlogd-ballast"

// space is the state of the free-space checks; Begin owns it (writeMu).
type space struct {
	checked time.Time // when the free space was last found above the reserve
	// full is set by onDiskFull, from whichever goroutine's write found the
	// disk full, and cleared by checkSpace once space is back.
	full atomic.Bool
}

// checkSpace returns ErrDiskFull if the data directory's filesystem has
// less free space than the reserve, or if a write found the disk full and
// space has not come back since. Space found sufficient is checked again
// after 100 ms: the reserve covers what a writer can add in that time.
func (s *Store) checkSpace() error {
	if s.space.full.Load() {
		return s.recoverSpace()
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
	s.space.checked = now
	return nil
}

// recoverSpace clears the disk-full state once the reserve and a new
// ballast fit on the filesystem.
func (s *Store) recoverSpace() error {
	need := s.opts.ReserveBytes + s.ballastBytes()
	if u, err := s.fs.GetDiskUsage(s.dir); err == nil && u.AvailBytes < need {
		return fmt.Errorf("%w: a write found the filesystem of the data directory full; %d MiB free now, appends resume once %d MiB are",
			ErrDiskFull, u.AvailBytes>>20, need>>20)
	}
	if err := s.makeBallast(); err != nil {
		return fmt.Errorf("%w: a write found the filesystem of the data directory full, and the ballast cannot be made again: %v",
			ErrDiskFull, err)
	}
	s.space.full.Store(false)
	s.logger().Info("storage: disk space is back; appends resume")
	return nil
}

// onDiskFull is called by the filesystem wrapper when a write fails with
// ENOSPC, with every write held until it returns; the write is then
// retried once.
func (s *Store) onDiskFull() {
	s.space.full.Store(true)
	err := s.rawFS.Remove(s.rawFS.PathJoin(s.dir, ballastFile))
	l := s.logger()
	if err != nil {
		l.Error("storage: the disk is full, and there is no ballast to free; the write will fail and the writer stop", slog.String("error", err.Error()))
		return
	}
	l.Error("storage: the disk is full: deleted the ballast so that the writes in progress finish; appends are refused until space is freed")
}

func (s *Store) ballastBytes() uint64 { return s.opts.ReserveBytes / 4 }

// makeBallast makes the ballast file if it does not exist, with fallocate
// where the filesystem has it and by writing zeros otherwise.
func (s *Store) makeBallast() error {
	name := s.rawFS.PathJoin(s.dir, ballastFile)
	if _, err := s.rawFS.Stat(name); err == nil {
		return nil
	}
	f, err := s.rawFS.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	size := int64(s.ballastBytes())
	err = f.Preallocate(0, size)
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		zeros := make([]byte, 1<<20)
		err = nil
		for n := int64(0); n < size && err == nil; n += int64(len(zeros)) {
			_, err = f.Write(zeros[:min(int64(len(zeros)), size-n)])
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.rawFS.Remove(name)
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
