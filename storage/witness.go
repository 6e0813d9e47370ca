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
	return s.getOrigin(prefixWitness, origin)
}

// SetWitnessed durably records signed as the latest checkpoint cosigned for
// origin. The caller orders calls for one origin: the check against the
// previous one and this write must be atomic together. A failed write stops
// the store's writer like any failed write (fail-stop).
func (s *Store) SetWitnessed(origin string, signed []byte) error {
	return s.setOrigin(prefixWitness, origin, signed, false)
}

// SplitView returns the evidence recorded for origin by SetSplitView, or
// ErrNotFound.
func (s *Store) SplitView(origin string) ([]byte, error) {
	return s.getOrigin(prefixSplitView, origin)
}

// SetSplitView durably records the evidence that origin showed a split
// view. The first evidence is kept: later calls do nothing.
func (s *Store) SetSplitView(origin string, evidence []byte) error {
	return s.setOrigin(prefixSplitView, origin, evidence, true)
}

// getOrigin reads the value of a log's key under prefix.
func (s *Store) getOrigin(prefix byte, origin string) ([]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.closeMu.RUnlock()
	return s.get(append([]byte{prefix}, origin...))
}

// setOrigin durably writes the value of a log's key under prefix; with
// keepFirst, an existing value stays.
func (s *Store) setOrigin(prefix byte, origin string, value []byte, keepFirst bool) error {
	if err := s.rlock(); err != nil {
		return err
	}
	defer s.closeMu.RUnlock()
	if err := s.failure(); err != nil {
		return err
	}
	key := append([]byte{prefix}, origin...)
	if keepFirst {
		if _, err := s.get(key); err == nil {
			return nil
		}
	}
	if err := s.db.Set(key, value, pebble.Sync); err != nil {
		err = fmt.Errorf("storage: record witness state %q of %q: %w", prefix, origin, err)
		s.fail(err)
		return err
	}
	return nil
}
