package server

import (
	"context"
	"errors"
	"time"

	"github.com/tlogd/tlogd/storage"
)

// errStopping is returned to appends that arrive while the server stops.
var errStopping = errors.New("server: shutting down")

// sequencer is the single writer: it groups the records of concurrent
// Append calls into one storage batch, so one fsync and one checkpoint
// signature serve them all. While a batch is being committed the next one
// fills up; no timer is involved.
type sequencer struct {
	store    *storage.Store
	maxBatch int
	now      func() time.Time
	reqs     chan *appendReq
	stopping chan struct{}
	done     chan struct{}
	// failed is called when the store stops accepting batches; it may be
	// called more than once.
	failed func(error)
	// observe receives the figures of every durable batch.
	observe func(storage.BatchStats)
	// refuse, if set, is what every submit returns: a replica's
	// sequencer appends nothing.
	refuse error
}

// refusingSequencer is a replica's: every submit fails with err.
func refusingSequencer(err error) *sequencer {
	q := &sequencer{refuse: err, stopping: make(chan struct{}), done: make(chan struct{})}
	close(q.done)
	return q
}

// appendReq is one Append call waiting for its batch to be durable.
type appendReq struct {
	records []storage.Record
	results []storage.Result
	head    storage.Head
	err     error
	done    chan struct{}
}

func newSequencer(store *storage.Store, maxBatch, queue int, now func() time.Time, failed func(error), observe func(storage.BatchStats)) *sequencer {
	q := &sequencer{
		store:    store,
		maxBatch: maxBatch,
		now:      now,
		reqs:     make(chan *appendReq, queue),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		failed:   failed,
		observe:  observe,
	}
	go q.run()
	return q
}

// submit queues records and waits until the batch holding them is durable
// and published. If ctx ends first, the records may still be appended: a
// retry finds them as duplicates.
func (q *sequencer) submit(ctx context.Context, records []storage.Record) ([]storage.Result, storage.Head, error) {
	if q.refuse != nil {
		return nil, storage.Head{}, q.refuse
	}
	r := &appendReq{records: records, done: make(chan struct{})}
	select {
	case q.reqs <- r:
	case <-q.stopping:
		return nil, storage.Head{}, errStopping
	case <-ctx.Done():
		return nil, storage.Head{}, ctx.Err()
	}
	select {
	case <-r.done:
		return r.results, r.head, r.err
	case <-q.done:
		// The writer exited after stop without reaching this request.
		select {
		case <-r.done:
			return r.results, r.head, r.err
		default:
			return nil, storage.Head{}, errStopping
		}
	case <-ctx.Done():
		return nil, storage.Head{}, ctx.Err()
	}
}

// stop refuses new appends, lets the queued ones finish and waits for the
// writer to exit.
func (q *sequencer) stop() {
	close(q.stopping)
	<-q.done
}

// inFlight is how many begun batches may wait for their fsync while the
// next one is sequenced.
const inFlight = 2

// begun is a batch handed to storage whose fsync may still be running.
type begun struct {
	pending *storage.Pending
	reqs    []*appendReq
	err     error
}

func (q *sequencer) run() {
	defer close(q.done)
	waits := make(chan begun, inFlight)
	answered := make(chan struct{})
	go q.answer(waits, answered)
	defer func() {
		close(waits)
		<-answered
	}()
	var (
		records []storage.Record
		failErr error // once set, the store refuses batches for good
	)
	for {
		var first *appendReq
		select {
		case first = <-q.reqs:
		case <-q.stopping:
			// Drain what was queued before stop, then exit.
			select {
			case first = <-q.reqs:
			default:
				return
			}
		}
		batch := []*appendReq{first}
		records = append(records[:0], first.records...)
	fill:
		for len(records) < q.maxBatch {
			select {
			case r := <-q.reqs:
				batch = append(batch, r)
				records = append(records, r.records...)
			default:
				break fill
			}
		}
		b := begun{reqs: batch, err: failErr}
		if failErr == nil {
			b.pending, b.err = q.store.Begin(&storage.Batch{Time: uint64(q.now().UnixMilli()), Records: records})
			if errors.Is(b.err, storage.ErrFailed) {
				failErr = b.err
				q.failed(b.err)
			}
		}
		clear(records) // Begin copied what it keeps; drop references to payloads
		waits <- b
	}
}

// answer waits for each begun batch in order and answers its callers.
func (q *sequencer) answer(waits <-chan begun, answered chan<- struct{}) {
	defer close(answered)
	for b := range waits {
		var (
			results []storage.Result
			head    storage.Head
			err     = b.err
		)
		if b.pending != nil {
			results, head, err = b.pending.Wait()
			if errors.Is(err, storage.ErrFailed) {
				q.failed(err)
			}
			if err == nil {
				q.observe(b.pending.Stats())
			}
		}
		off := 0
		for _, r := range b.reqs {
			n := len(r.records)
			if err == nil {
				r.results, r.head = results[off:off+n:off+n], head
			}
			r.err = err
			off += n
			close(r.done)
		}
	}
}
