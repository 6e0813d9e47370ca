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
	// failed is called once when the store stops accepting batches.
	failed func(error)
}

// appendReq is one Append call waiting for its batch to be durable.
type appendReq struct {
	records []storage.Record
	results []storage.Result
	head    storage.Head
	err     error
	done    chan struct{}
}

func newSequencer(store *storage.Store, maxBatch, queue int, now func() time.Time, failed func(error)) *sequencer {
	q := &sequencer{
		store:    store,
		maxBatch: maxBatch,
		now:      now,
		reqs:     make(chan *appendReq, queue),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		failed:   failed,
	}
	go q.run()
	return q
}

// submit queues records and waits until the batch holding them is durable
// and published. If ctx ends first, the records may still be appended: a
// retry finds them as duplicates.
func (q *sequencer) submit(ctx context.Context, records []storage.Record) ([]storage.Result, storage.Head, error) {
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

func (q *sequencer) run() {
	defer close(q.done)
	var (
		batch   []*appendReq
		records []storage.Record
		failed  error
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
		batch = append(batch[:0], first)
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

		var (
			results []storage.Result
			head    storage.Head
			err     = failed
		)
		if err == nil {
			results, head, err = q.store.Apply(&storage.Batch{Time: uint64(q.now().UnixMilli()), Records: records})
			if errors.Is(err, storage.ErrFailed) {
				failed = err
				q.failed(err)
			}
		}
		off := 0
		for _, r := range batch {
			n := len(r.records)
			if err == nil {
				r.results, r.head = results[off:off+n:off+n], head
			}
			r.err = err
			off += n
			close(r.done)
		}
		clear(records) // drop references to payloads
	}
}
