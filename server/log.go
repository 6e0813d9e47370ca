package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// logService implements tlog.v1.LogService.
type logService struct {
	tlogv1.UnimplementedLogServiceServer
	srv *Server
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func outOfRange(format string, args ...any) error {
	return status.Errorf(codes.OutOfRange, format, args...)
}

func (l *logService) Append(ctx context.Context, req *tlogv1.AppendRequest) (*tlogv1.AppendResponse, error) {
	s := l.srv
	recs := req.GetRecords()
	switch {
	case len(recs) == 0:
		return nil, invalid("records: must hold at least 1 record")
	case len(recs) > s.cfg.MaxRecordsPerAppend:
		return nil, invalid("records: %d records exceed the limit of %d per Append", len(recs), s.cfg.MaxRecordsPerAppend)
	}
	for i, r := range recs {
		switch n := len(r.GetPayload()); {
		case n == 0:
			return nil, invalid("records[%d].payload: must not be empty", i)
		case n > s.cfg.MaxPayloadBytes:
			return nil, invalid("records[%d].payload: %d bytes exceed the limit of %d", i, n, s.cfg.MaxPayloadBytes)
		}
	}
	payloads := make([][]byte, len(recs))
	for i, r := range recs {
		payloads[i] = r.GetPayload()
	}
	if req.GetWaitForWitnesses() && s.cosign == nil {
		return nil, status.Error(codes.FailedPrecondition, "wait_for_witnesses: this log has no witness policy (tlogd serve -witness-policy)")
	}
	out, err := s.sequence(ctx, newRecords(payloads, true), req.GetIncludeProofs(), req.GetConsistencyFrom(), req.GetWaitForWitnesses())
	if err != nil {
		return nil, err
	}
	return &tlogv1.AppendResponse{Results: out.results, Checkpoint: out.checkpoint, ConsistencyProof: out.consistency}, nil
}

// sequenced is what Append and RecordEvents answer.
type sequenced struct {
	results     []*tlogv1.AppendResult
	stored      []storage.Result
	checkpoint  string
	consistency [][]byte
}

// sequence appends prepared records and builds the answer: per record its
// result (with its inclusion proof if asked), the checkpoint, and the
// consistency proof from consistencyFrom when it is not 0.
//
// With waitWitnesses, it then waits for a checkpoint covering the records
// whose cosignatures meet the witness policy, and answers with that one.
func (s *Server) sequence(ctx context.Context, records []storage.Record, includeProofs bool, from uint64, waitWitnesses bool) (*sequenced, error) {
	store, seq, err := s.attached()
	if err != nil {
		return nil, err
	}
	if size := store.Head().Size; from > size {
		// Checked before appending: the proof is always possible after.
		return nil, outOfRange("consistency_from: %d is beyond the tree size %d", from, size)
	}
	start := time.Now()
	results, head, err := seq.submit(ctx, records)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	s.metrics.appendDuration.Observe(time.Since(start).Seconds())
	if waitWitnesses {
		var last uint64
		for _, r := range results {
			last = max(last, r.Index)
		}
		// Give up a little before the caller's deadline, so that the
		// answer saying why reaches it.
		waitCtx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithDeadline(ctx, dl.Add(-min(time.Second, time.Until(dl)/10)))
			defer cancel()
		}
		cs, err := s.cosign.wait(waitCtx, last+1)
		if errors.Is(err, context.Canceled) {
			return nil, status.FromContextError(err).Err()
		}
		if err != nil {
			return nil, status.Errorf(codes.DeadlineExceeded, "the records are durable, at indexes up to %d, but no checkpoint covering them met the witness quorum before the deadline; the same call again returns them as duplicates", last)
		}
		head = storage.Head{Size: cs.size, Checkpoint: cs.note}
	}
	out := &sequenced{results: make([]*tlogv1.AppendResult, len(results)), stored: results, checkpoint: string(head.Checkpoint)}
	all := make([]tlogv1.AppendResult, len(results))
	for i := range results {
		r := &results[i]
		res := &all[i]
		res.Index = r.Index
		res.LeafHash = r.LeafHash[:]
		res.Entry = r.Entry
		res.Salt = r.Salt[:]
		res.Duplicate = r.Duplicate
		if includeProofs {
			p, err := store.InclusionProof(r.Index, head.Size)
			if err != nil {
				return nil, s.status(ctx, fmt.Errorf("inclusion proof of new leaf %d: %w", r.Index, err))
			}
			res.InclusionProof = hashBytes(p)
		}
		out.results[i] = res
	}
	if from != 0 {
		p, err := store.ConsistencyProof(from, head.Size)
		if err != nil {
			return nil, s.status(ctx, fmt.Errorf("consistency proof %d → %d: %w", from, head.Size, err))
		}
		out.consistency = hashBytes(p)
	}
	return out, nil
}

// newRecords prepares payloads for the sequencer: a random salt, the
// commitment and, with byPayload, the dedup key (the payload's SHA-256;
// audit events get theirs from eventRecord). It runs in the calling
// handler, in parallel across calls, so the single writer only sequences.
func newRecords(payloads [][]byte, byPayload bool) []storage.Record {
	salts := make([]byte, len(payloads)*tlog.SaltSize)
	rand.Read(salts)
	records := make([]storage.Record, len(payloads))
	for i, p := range payloads {
		rec := &records[i]
		rec.Payload = p
		copy(rec.Salt[:], salts[i*tlog.SaltSize:])
		rec.Commitment = tlog.Commit(rec.Salt[:], p)
		if byPayload {
			rec.PayloadHash = sha256.Sum256(p)
		}
	}
	return records
}

func hashBytes(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// checkpointAt resolves a requested tree size (0 = latest) to a published
// size with a signed checkpoint. field names the request field for errors.
func checkpointAt(store *storage.Store, field string, size uint64) (uint64, []byte, error) {
	head := store.Head()
	if size == 0 {
		return head.Size, head.Checkpoint, nil
	}
	if size > head.Size {
		return 0, nil, outOfRange("%s: %d is beyond the latest tree size %d", field, size, head.Size)
	}
	cp, err := store.CheckpointAt(size)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil, status.Errorf(codes.NotFound, "%s: the log signed no checkpoint at size %d (use a size from a checkpoint, or 0 for the latest)", field, size)
	}
	if err != nil {
		return 0, nil, err
	}
	return size, cp, nil
}

func (l *logService) GetCheckpoint(ctx context.Context, req *tlogv1.GetCheckpointRequest) (*tlogv1.GetCheckpointResponse, error) {
	store, _, err := l.srv.attached()
	if err != nil {
		return nil, err
	}
	_, cp, err := checkpointAt(store, "tree_size", req.GetTreeSize())
	if err != nil {
		return nil, l.srv.status(ctx, err)
	}
	resp := &tlogv1.GetCheckpointResponse{Checkpoint: string(cp)}
	if c := l.srv.cosign; c != nil && req.GetTreeSize() == 0 {
		if cs := c.latest.Load(); cs != nil {
			resp.CosignedCheckpoint = string(cs.note)
		}
	}
	return resp, nil
}

func (l *logService) GetInclusionProof(ctx context.Context, req *tlogv1.GetInclusionProofRequest) (*tlogv1.GetInclusionProofResponse, error) {
	s := l.srv
	store, _, err := s.attached()
	if err != nil {
		return nil, err
	}
	var (
		index    uint64
		fromHash bool
	)
	switch leaf := req.GetLeaf().(type) {
	case *tlogv1.GetInclusionProofRequest_Index:
		index = leaf.Index
	case *tlogv1.GetInclusionProofRequest_LeafHash:
		h, err := tlog.ParseHash(leaf.LeafHash)
		if err != nil {
			return nil, invalid("leaf_hash: must be 32 bytes, got %d", len(leaf.LeafHash))
		}
		index, err = store.LeafIndex(h)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "leaf_hash: no leaf with hash %s is in the log", h)
		}
		if err != nil {
			return nil, s.status(ctx, err)
		}
		fromHash = true
	default:
		return nil, invalid("leaf: set either index or leaf_hash")
	}
	size, cp, err := checkpointAt(store, "tree_size", req.GetTreeSize())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if index >= size {
		if fromHash {
			return nil, outOfRange("leaf_hash: the leaf is at index %d, not below the tree size %d", index, size)
		}
		return nil, outOfRange("index: %d is not below the tree size %d", index, size)
	}
	p, err := store.InclusionProof(index, size)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &tlogv1.GetInclusionProofResponse{Index: index, TreeSize: size, Hashes: hashBytes(p), Checkpoint: string(cp)}, nil
}

func (l *logService) GetConsistencyProof(ctx context.Context, req *tlogv1.GetConsistencyProofRequest) (*tlogv1.GetConsistencyProofResponse, error) {
	s := l.srv
	store, _, err := s.attached()
	if err != nil {
		return nil, err
	}
	size2, cp, err := checkpointAt(store, "second_tree_size", req.GetSecondTreeSize())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	size1 := req.GetFirstTreeSize()
	if latest := store.Head().Size; size1 > latest {
		return nil, outOfRange("first_tree_size: %d is beyond the latest tree size %d", size1, latest)
	}
	if size1 > size2 {
		return nil, invalid("first_tree_size: %d exceeds second_tree_size %d", size1, size2)
	}
	p, err := store.ConsistencyProof(size1, size2)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &tlogv1.GetConsistencyProofResponse{Hashes: hashBytes(p), Checkpoint: string(cp), SecondTreeSize: size2}, nil
}

func (l *logService) GetEntries(ctx context.Context, req *tlogv1.GetEntriesRequest) (*tlogv1.GetEntriesResponse, error) {
	s := l.srv
	count := req.GetCount()
	switch {
	case count == 0:
		return nil, invalid("count: must be at least 1")
	case count > uint32(s.cfg.MaxEntriesPerCall):
		return nil, invalid("count: %d exceeds the limit of %d entries per call", count, s.cfg.MaxEntriesPerCall)
	}
	store, seq, err := s.attached()
	if err != nil {
		return nil, err
	}
	if req.GetIncludePayloads() {
		if err := s.auth.requirePayloads(ctx); err != nil {
			return nil, err
		}
	}
	if size := store.Head().Size; req.GetStart() >= size {
		return nil, outOfRange("start: %d is not below the tree size %d", req.GetStart(), size)
	}
	es, err := store.Entries(req.GetStart(), int(count), req.GetIncludePayloads(), s.cfg.entryBudget())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if req.GetIncludePayloads() {
		// No payload leaves the server before the read is durably recorded.
		reason, labels := entriesRead("GetEntries", es)
		if err := s.recordPayloadRead(ctx, store, seq, reason, labels); err != nil {
			return nil, s.status(ctx, err)
		}
	}
	return &tlogv1.GetEntriesResponse{Entries: entriesProto(es)}, nil
}

func entriesProto(es []storage.Entry) []*tlogv1.Entry {
	out := make([]*tlogv1.Entry, len(es))
	all := make([]tlogv1.Entry, len(es))
	for i, e := range es {
		leaf := tlog.LeafHash(e.Entry)
		all[i] = tlogv1.Entry{Index: e.Index, Entry: e.Entry, LeafHash: leaf[:], Salt: e.Salt, Payload: e.Payload, Erased: e.Erased, ErasedBy: e.ErasedBy}
		out[i] = &all[i]
	}
	return out
}

func (l *logService) StreamEntries(req *tlogv1.StreamEntriesRequest, stream tlogv1.LogService_StreamEntriesServer) error {
	s := l.srv
	ctx := stream.Context()
	store, seq, err := s.attached()
	if err != nil {
		return err
	}
	if req.GetIncludePayloads() {
		if err := s.auth.requirePayloads(ctx); err != nil {
			return err
		}
	}
	next := req.GetStart()
	if size := store.Head().Size; next > size {
		return outOfRange("start: %d is beyond the tree size %d", next, size)
	}
	if req.GetIncludePayloads() {
		// Record the stream before any payload is sent, then what it sent
		// when it ends. Not a record per chunk: a follower would read its
		// own records forever.
		reason := fmt.Sprintf("StreamEntries opened with payloads from entry %d up to the tree size %d", next, store.Head().Size)
		if req.GetFollow() {
			reason = fmt.Sprintf("StreamEntries opened with payloads from entry %d, following the log", next)
		}
		labels := map[string]string{"method": "StreamEntries", "first_index": fmt.Sprint(next), "follow": fmt.Sprint(req.GetFollow())}
		if err := s.recordPayloadRead(ctx, store, seq, reason, labels); err != nil {
			return s.status(ctx, err)
		}
		first := next
		defer func() {
			if next == first {
				return
			}
			// The stream's context may be gone; the record must still land.
			c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			reason := fmt.Sprintf("StreamEntries sent the payloads of entries %d to %d", first, next-1)
			labels := map[string]string{"method": "StreamEntries", "first_index": fmt.Sprint(first), "last_index": fmt.Sprint(next - 1)}
			if err := s.recordPayloadRead(c, store, seq, reason, labels); err != nil {
				s.log.ErrorContext(ctx, "could not record the end of a payload stream", slog.String("error", err.Error()), slog.String("reason", reason))
			}
		}()
	}
	// Send headers now, so a follower knows the stream is open before the
	// first entry exists.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	for {
		grown := store.Grown()
		head := store.Head()
		for next < head.Size {
			n := min(head.Size-next, uint64(s.cfg.MaxEntriesPerCall))
			es, err := store.Entries(next, int(n), req.GetIncludePayloads(), s.cfg.entryBudget())
			if err != nil {
				return s.status(ctx, err)
			}
			msg := &tlogv1.StreamEntriesResponse{Entries: entriesProto(es)}
			first := next
			next += uint64(len(es))
			// Each chunk carries the latest checkpoint signed at a size
			// inside it, so a receiver can check the root at that size
			// (with all_checkpoints, it is the last of them).
			if req.GetAllCheckpoints() {
				if msg.Checkpoints, err = store.CheckpointsIn(first, next); err != nil {
					return s.status(ctx, err)
				}
				if n := len(msg.Checkpoints); n > 0 {
					msg.Checkpoint = msg.Checkpoints[n-1]
				}
			} else {
				cp, ok, err := store.LatestCheckpointIn(first, next)
				if err != nil {
					return s.status(ctx, err)
				}
				if ok {
					msg.Checkpoint = string(cp)
				}
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		if !req.GetFollow() {
			return nil
		}
		select {
		case <-grown:
		case <-s.stopping:
			return status.Error(codes.Unavailable, "server is shutting down; resume the stream from the next index")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (l *logService) GetLogInfo(context.Context, *tlogv1.GetLogInfoRequest) (*tlogv1.GetLogInfoResponse, error) {
	s := l.srv
	store, _, err := s.attached()
	if err != nil {
		return nil, err
	}
	return &tlogv1.GetLogInfoResponse{
		Origin:              store.Origin(),
		VerifierKey:         store.VerifierKey(),
		MaxRecordsPerAppend: uint32(s.cfg.MaxRecordsPerAppend),
		MaxPayloadBytes:     uint32(s.cfg.MaxPayloadBytes),
		MaxEntriesPerCall:   uint32(s.cfg.MaxEntriesPerCall),
		MaxRequestBytes:     uint32(s.cfg.MaxRequestBytes),
		MaxResponseBytes:    uint32(s.cfg.MaxResponseBytes),
	}, nil
}

func (l *logService) FindRecord(ctx context.Context, req *tlogv1.FindRecordRequest) (*tlogv1.FindRecordResponse, error) {
	s := l.srv
	h, err := tlog.ParseHash(req.GetPayloadHash())
	if err != nil {
		return nil, invalid("payload_hash: must be 32 bytes (SHA-256), got %d", len(req.GetPayloadHash()))
	}
	store, seq, err := s.attached()
	if err != nil {
		return nil, err
	}
	e, err := store.FindPayload(h)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, s.status(ctx, err)
	}
	// A miss tells as much about the log's contents as a hit: record both,
	// and answer only once the record is durable.
	reason, labels := "FindRecord found no record for a payload hash", map[string]string{"method": "FindRecord", "found": "false"}
	if found {
		reason = fmt.Sprintf("FindRecord returned the entry and salt of entry %d", e.Index)
		labels = map[string]string{"method": "FindRecord", "found": "true", "first_index": fmt.Sprint(e.Index), "last_index": fmt.Sprint(e.Index)}
	}
	if err := s.recordPayloadRead(ctx, store, seq, reason, labels); err != nil {
		return nil, s.status(ctx, err)
	}
	if !found {
		return nil, status.Error(codes.NotFound, "payload_hash: no record with this payload is in the log")
	}
	e.Payload = nil
	return &tlogv1.FindRecordResponse{Entry: entriesProto([]storage.Entry{e})[0]}, nil
}
