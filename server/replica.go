package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// ReplicaConfig makes the server a read replica: it follows the log's
// primary with StreamEntries, keeps in its own store (opened with
// storage.Options.Replica) only what reproduces checkpoints signed by the
// log's key, and serves every read and proof from it. It never appends.
type ReplicaConfig struct {
	// Primary is the primary's address, for messages.
	Primary string
	// Conn is a connection to the primary. Its credentials need the read
	// capability; with read_payloads too, the replica stores payloads (a
	// replica's first batch decides for good).
	Conn grpc.ClientConnInterface
	// Retry is the longest wait between reconnections; default 5 s.
	Retry time.Duration
}

// notPrimary refuses, on a replica, what only the primary does.
func (s *Server) notPrimary() error {
	return status.Errorf(codes.FailedPrecondition,
		"this tlogd is a read replica of %s: appends, erasures, and reads of payloads or events (which the log records) go to the primary", s.cfg.Replica.Primary)
}

// primaryOnly lists the methods a replica refuses outright. Reads that
// return payloads are refused where they would record the read (the
// replica's sequencer refuses every record).
var primaryOnly = map[string]bool{
	tlogv1.LogService_Append_FullMethodName:         true,
	tlogv1.LogService_FindRecord_FullMethodName:     true,
	tlogv1.AuditService_RecordEvents_FullMethodName: true,
	tlogv1.AuditService_GetTimeline_FullMethodName:  true,
	tlogv1.AuditService_QueryEvents_FullMethodName:  true,
	tlogv1.AuditService_EraseSubject_FullMethodName: true,
	tlogv1.AuditService_GetDrift_FullMethodName:     true,
}

func (s *Server) replicaUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if primaryOnly[info.FullMethod] {
		return nil, s.notPrimary()
	}
	return h(ctx, req)
}

// replicaMetrics are a replica's.
type replicaMetrics struct {
	lag, primarySize prometheus.Gauge
	copied           prometheus.Counter
	rejected         prometheus.Counter
	reconnects       prometheus.Counter
}

func newReplicaMetrics(reg *prometheus.Registry) *replicaMetrics {
	m := &replicaMetrics{
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlogd_replica_lag_entries",
			Help: "Entries the primary has published that this replica has not yet copied and published.",
		}),
		primarySize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tlogd_replica_primary_tree_size",
			Help: "Size of the latest checkpoint of the primary this replica has seen.",
		}),
		copied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlogd_replica_copied_entries_total",
			Help: "Entries this replica copied from its primary and made durable.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlogd_replica_rejected_batches_total",
			Help: "Batches from the primary that did not reproduce a checkpoint signed by the log's key, or broke the log's rules; none is stored.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tlogd_replica_reconnects_total",
			Help: "Times the replica's stream from its primary ended and was opened again.",
		}),
	}
	reg.MustRegister(m.lag, m.primarySize, m.copied, m.rejected, m.reconnects)
	return m
}

// runReplica follows the primary until the server stops, reconnecting
// with backoff.
func (s *Server) runReplica(store *storage.Store) {
	defer close(s.replicaDone)
	cfg := s.cfg.Replica
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopping
		cancel()
	}()
	wait := 100 * time.Millisecond
	for {
		before := store.Head().Size
		err := s.follow(ctx, store)
		if ctx.Err() != nil {
			return
		}
		s.metrics.replica.reconnects.Inc()
		if store.Head().Size > before {
			wait = 100 * time.Millisecond
		}
		s.log.Warn("replica: the stream from the primary ended; reconnecting",
			slog.String("primary", cfg.Primary), slog.Uint64("size", store.Head().Size), slog.Duration("retry_in", wait), slog.String("error", errString(err)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, cfg.Retry)
	}
}

func errString(err error) string {
	if err == nil {
		return "the primary ended the stream"
	}
	return err.Error()
}

// follow streams entries from the replica's size on, cuts them at every
// checkpoint the log signed, and hands each run to the store, which checks
// it against the checkpoint. A waiter publishes each batch once durable,
// while the next one is checked and written.
func (s *Server) follow(ctx context.Context, store *storage.Store) error {
	cfg := s.cfg.Replica
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lc := tlogv1.NewLogServiceClient(cfg.Conn)
	if cp, err := lc.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{}); err == nil {
		s.seenPrimary(store, []byte(cp.GetCheckpoint()))
	}
	payloads, decided := store.CopiesPayloads()
	start := store.Head().Size
	stream, err := lc.StreamEntries(ctx, &tlogv1.StreamEntriesRequest{Start: start, IncludePayloads: payloads || !decided, Follow: true, AllCheckpoints: true})
	if err == nil && !decided {
		// A refusal comes before any header: then Header is empty and the
		// first Recv has the status.
		var md metadata.MD
		if md, err = stream.Header(); err == nil && md == nil {
			_, err = stream.Recv()
		}
		if c := status.Code(err); c == codes.PermissionDenied || c == codes.FailedPrecondition {
			s.log.Info("replica: these credentials may not read payloads; storing entries only", slog.String("primary", cfg.Primary))
			payloads = false
			stream, err = lc.StreamEntries(ctx, &tlogv1.StreamEntriesRequest{Start: start, Follow: true, AllCheckpoints: true})
		} else {
			payloads = true
		}
	}
	if err != nil {
		return err
	}

	waits := make(chan *storage.Pending, 2)
	waited := make(chan error, 1)
	go func() {
		var err error
		for p := range waits {
			if err != nil {
				continue
			}
			if _, _, err = p.Wait(); err == nil {
				s.metrics.replica.copied.Add(float64(p.Stats().Records))
				s.updateLag(store)
			}
		}
		waited <- err
	}()
	err = s.copyStream(stream, store, start, payloads, waits)
	close(waits)
	if errors.Is(err, storage.ErrFailed) {
		s.writerFailed(err)
	}
	if werr := <-waited; werr != nil {
		s.writerFailed(werr)
		return werr
	}
	return err
}

// maxUncheckpointed bounds the entries a replica holds in memory waiting
// for a checkpoint; the primary signs one per batch of at most a few
// thousand.
const maxUncheckpointed = 1 << 20

// copyStream reads the stream and begins a copied batch at each
// checkpoint.
func (s *Server) copyStream(stream grpc.ServerStreamingClient[tlogv1.StreamEntriesResponse], store *storage.Store, next uint64, payloads bool, waits chan<- *storage.Pending) error {
	c := &storage.Copy{}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(c.Entries) > maxUncheckpointed {
			return fmt.Errorf("the primary sent %d entries without a checkpoint inside them (does it send all_checkpoints?)", len(c.Entries))
		}
		for _, e := range msg.GetEntries() {
			if e.GetIndex() != next {
				return fmt.Errorf("the primary sent entry %d where %d was due", e.GetIndex(), next)
			}
			next++
			c.Entries = append(c.Entries, e.GetEntry())
			if payloads {
				c.Records = append(c.Records, storage.CopyRecord{Salt: e.GetSalt(), Payload: e.GetPayload(), Erased: e.GetErased(), ErasedBy: e.GetErasedBy()})
			}
		}
		for _, signed := range msg.GetCheckpoints() {
			first := next - uint64(len(c.Entries)) // the index of c's first entry
			cp, err := tlog.ParseCheckpointPrefix([]byte(signed))
			if err != nil || cp.Size <= first || cp.Size > next {
				return fmt.Errorf("the primary sent a checkpoint that does not end inside its chunk (%v)", err)
			}
			n := cp.Size - first
			batch := &storage.Copy{Entries: c.Entries[:n:n], Checkpoint: []byte(signed)}
			if payloads {
				batch.Records = c.Records[:n:n]
				c.Records = c.Records[n:]
			}
			c.Entries = c.Entries[n:]
			p, err := store.BeginCopy(batch)
			if errors.Is(err, storage.ErrRejected) {
				s.metrics.replica.rejected.Inc()
				s.log.Error("replica: refused a batch from the primary", slog.String("primary", s.cfg.Replica.Primary), slog.String("error", err.Error()))
				return err
			}
			if err != nil {
				return err
			}
			waits <- p
			s.seenPrimary(store, []byte(signed))
		}
	}
}

// seenPrimary notes the size of a checkpoint of the primary, for the lag.
func (s *Server) seenPrimary(store *storage.Store, signed []byte) {
	cp, err := tlog.ParseCheckpointPrefix(signed)
	if err != nil {
		return
	}
	if cp.Size > s.primarySize.Load() {
		s.primarySize.Store(cp.Size)
		s.metrics.replica.primarySize.Set(float64(cp.Size))
	}
	s.updateLag(store)
}

func (s *Server) updateLag(store *storage.Store) {
	lag := int64(s.primarySize.Load()) - int64(store.Head().Size)
	s.metrics.replica.lag.Set(float64(max(lag, 0)))
}
