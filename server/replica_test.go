package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
)

// testReplica is a replica server over its own Pebble store, following a
// primary over real gRPC.
type testReplica struct {
	srv    *Server
	store  *storage.Store
	conn   *grpc.ClientConn
	client tlogv1.LogServiceClient
	stop   func()
}

// startReplica starts a replica of the log at primary (whose verifier key
// is vkey) on the store in dir.
func startReplica(t *testing.T, dir, vkey, primary string) *testReplica {
	t.Helper()
	store, err := storage.Open(dir, storage.Options{Replica: true, VerifierKey: vkey, CacheBytes: 8 << 20, MemTableBytes: 4 << 20, IndexFlushRecords: 1000, ReserveBytes: 8 << 20, Reindex: Reindex})
	if err != nil {
		t.Fatal(err)
	}
	up, err := grpc.NewClient(primary, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Store: store, Logger: slog.New(slog.DiscardHandler), Replica: &ReplicaConfig{Primary: primary, Conn: up, Retry: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	r := &testReplica{srv: srv, store: store, conn: conn, client: tlogv1.NewLogServiceClient(conn)}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close replica store: %v", err)
		}
		up.Close()
	}
	t.Cleanup(r.stop)
	return r
}

// caughtUp waits until the replica holds the primary's latest checkpoint
// (the primary may have grown since: a payload stream opening is recorded)
// and returns it.
func caughtUp(t *testing.T, tl *testLog, r *testReplica) string {
	t.Helper()
	want, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	size := tl.openCheckpoint(t, want.GetCheckpoint()).Size
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := r.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{TreeSize: size})
		if err == nil && got.GetCheckpoint() == want.GetCheckpoint() {
			return got.GetCheckpoint()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not catch up: %v, %v\nwant %s", got, err, want.GetCheckpoint())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReplicaFollowsPrimary(t *testing.T) {
	tl := startLog(t, nil)
	ac := tlogv1.NewAuditServiceClient(tl.conn)
	dir := t.TempDir()
	r := startReplica(t, dir, tl.vkey, tl.conn.Target())

	// Before its first checkpoint a replica answers Unavailable.
	if _, err := r.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("GetCheckpoint on an empty replica: %v", err)
	}
	for i := range 20 {
		if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(strings.Repeat("x", i+1), "record "+string(rune('a'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	events := []*tlogv1.AuditEvent{
		testEvent("e0", "admin", "alice", tlogv1.Action_ACTION_ACCOUNT_CREATED),
		testEvent("e1", "admin", "bob", tlogv1.Action_ACTION_ROLE_ASSIGNED),
	}
	if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: events}); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, tl, r)
	if _, err := ac.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{Tenant: "acme", SubjectId: "alice", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	signed := caughtUp(t, tl, r)
	cp := tl.openCheckpoint(t, signed)

	// Every checkpoint the primary signed is on the replica, with the same
	// proofs, verified with x/mod/sumdb/tlog and our own verifier.
	for size := uint64(1); size <= cp.Size; size++ {
		want, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{TreeSize: size})
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{TreeSize: size})
		if err != nil || got.GetCheckpoint() != want.GetCheckpoint() {
			t.Fatalf("checkpoint at %d: replica %v, %v", size, got, err)
		}
	}
	es, err := r.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 0, Count: uint32(cp.Size)})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es.GetEntries() {
		p, err := r.client.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_LeafHash{LeafHash: e.GetLeafHash()}, TreeSize: cp.Size})
		if err != nil {
			t.Fatal(err)
		}
		checkInclusion(t, e.GetIndex(), e.GetLeafHash(), p.GetHashes(), cp)
	}
	// The replica's copy of alice's payloads is erased, like the primary's.
	got, err := r.store.Entries(0, int(cp.Size), true, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tl.store.Entries(0, int(cp.Size), true, math.MaxInt)
	if err != nil {
		t.Fatal(err)
	}
	erased := 0
	for i := range want {
		if !bytes.Equal(got[i].Payload, want[i].Payload) || got[i].Erased != want[i].Erased || got[i].ErasedBy != want[i].ErasedBy {
			t.Fatalf("entry %d: replica erased %v payload %q, primary erased %v payload %q", i, got[i].Erased, got[i].Payload, want[i].Erased, want[i].Payload)
		}
		if got[i].Erased {
			erased++
		}
	}
	if erased == 0 {
		t.Fatal("no entry was erased")
	}

	// What only the primary does is refused, naming the primary.
	primary := tl.conn.Target()
	_, err = r.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("x")})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), primary) {
		t.Fatalf("Append on a replica: %v", err)
	}
	_, err = r.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 0, Count: 1, IncludePayloads: true})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), primary) {
		t.Fatalf("payload read on a replica: %v", err)
	}
	_, err = tlogv1.NewAuditServiceClient(r.conn).GetTimeline(ctx(t), &tlogv1.GetTimelineRequest{Tenant: "acme", SubjectId: "bob"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("GetTimeline on a replica: %v", err)
	}
	_, err = tlogv1.NewWitnessServiceClient(r.conn).ListSplitViews(ctx(t), &tlogv1.ListSplitViewsRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "not a witness") {
		t.Fatalf("ListSplitViews on a tlogd that is not a witness: %v", err)
	}
	if lag := metricValue(t, r.srv.metrics.replica.lag); lag != 0 {
		t.Fatalf("lag %v after catching up", lag)
	}

	// Killed and restarted on the same store, the replica catches up with
	// what the primary appended meanwhile.
	r.stop()
	for i := range 10 {
		if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("after restart " + string(rune('a'+i)))}); err != nil {
			t.Fatal(err)
		}
	}
	r = startReplica(t, dir, tl.vkey, primary)
	signed = caughtUp(t, tl, r)
	if payloads, decided := r.store.CopiesPayloads(); !payloads || !decided {
		t.Fatalf("the replica stores payloads %v (decided %v), want true", payloads, decided)
	}
	// A replica of the replica may not read payloads (a replica refuses
	// them): it stores entries only, and keeps up.
	chained := startReplica(t, t.TempDir(), tl.vkey, r.conn.Target())
	caughtUp(t, tl, chained)
	if payloads, decided := chained.store.CopiesPayloads(); payloads || !decided {
		t.Fatalf("the chained replica stores payloads %v (decided %v), want entries only", payloads, decided)
	}
	cp = tl.openCheckpoint(t, signed)
	p, err := r.client.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 3, SecondTreeSize: cp.Size})
	if err != nil || p.GetCheckpoint() != signed {
		t.Fatalf("consistency proof: %v", err)
	}
}

// A replica given the log's key takes nothing from a server signing with
// another key: it counts the refusals and stays empty.
func TestReplicaRefusesAnotherKey(t *testing.T) {
	tl := startLog(t, nil)
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("a", "b")}); err != nil {
		t.Fatal(err)
	}
	_, vkey, err := note.GenerateKey(rand.Reader, "example.com/test-log")
	if err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, t.TempDir(), vkey, tl.conn.Target())
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, r.srv.metrics.replica.rejected) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not refuse the batches")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h := r.store.Head(); h.Size != 0 || h.Checkpoint != nil {
		t.Fatalf("the replica stored a batch signed by another key: %+v", h)
	}
}

// metricValue reads a gauge or counter.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}
