package storage

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Witness state: for each log this node witnesses, the latest checkpoint it
// cosigned, under prefixWitness || origin, and the evidence of a split view
// once one is found, under prefixSplitView || origin.

// Witnessed returns the latest signed checkpoint recorded for origin by
// SetWitnessed, or ErrNotFound.
func (s *Store) Witnessed(origin string) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	return s.get(witnessKey(origin))
}

// SetWitnessed durably records signed as the latest checkpoint cosigned for
// origin. The caller orders calls for one origin: the check against the
// previous one and this write must be atomic together. A failed write stops
// the store's writer like any failed write (fail-stop).
func (s *Store) SetWitnessed(origin string, signed []byte) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failure(); err != nil {
		return err
	}
	if err := s.db.Set(witnessKey(origin), signed, pebble.Sync); err != nil {
		err = fmt.Errorf("storage: record witnessed checkpoint of %q: %w", origin, err)
		s.fail(err)
		return err
	}
	return nil
}

// SplitView returns the evidence recorded for origin by SetSplitView, or
// ErrNotFound.
func (s *Store) SplitView(origin string) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	return s.get(append([]byte{prefixSplitView}, origin...))
}

// SetSplitView durably records the evidence that origin showed a split
// view. The first evidence is kept: later calls do nothing.
func (s *Store) SetSplitView(origin string, evidence []byte) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failure(); err != nil {
		return err
	}
	key := append([]byte{prefixSplitView}, origin...)
	if _, err := s.get(key); err == nil {
		return nil
	}
	if err := s.db.Set(key, evidence, pebble.Sync); err != nil {
		err = fmt.Errorf("storage: record split view of %q: %w", origin, err)
		s.fail(err)
		return err
	}
	return nil
}

func witnessKey(origin string) []byte {
	return append([]byte{prefixWitness}, origin...)
}
