package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tlogd/tlogd/internal/testutil"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// testLog is a real server on 127.0.0.1:0 over a real Pebble store, with a
// real gRPC client.
type testLog struct {
	srv      *Server
	store    *storage.Store
	conn     *grpc.ClientConn
	client   tlogv1.LogServiceClient
	verifier note.Verifier
	vkey     string
	logs     *testutil.SyncBuffer
	// storeMayFail is set by tests that break the store on purpose.
	storeMayFail bool
}

func startLog(t testing.TB, mod func(*Config), setup ...func(*Server)) *testLog {
	t.Helper()
	return startLogFS(t, nil, mod, setup...)
}

// startLogFS is startLog on the given filesystem (nil: a temp dir on disk).
func startLogFS(t testing.TB, fs vfs.FS, mod func(*Config), setup ...func(*Server)) *testLog {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/test-log")
	if err != nil {
		t.Fatal(err)
	}
	return startLogKey(t, fs, skey, mod, setup...)
}

// startLogKey is startLogFS with the given signing key.
func startLogKey(t testing.TB, fs vfs.FS, skey string, mod func(*Config), setup ...func(*Server)) *testLog {
	t.Helper()
	signer, vkey, err := tlog.ParseSignerKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	dir := "data"
	if fs == nil {
		dir = t.TempDir()
	}
	store, err := storage.Open(dir, storage.Options{Signer: signer, VerifierKey: vkey, FS: fs, CacheBytes: 8 << 20, MemTableBytes: 4 << 20, IndexFlushRecords: 1000, ReserveBytes: 8 << 20, Reindex: Reindex})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	cfg := Config{Store: store, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(srv)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		// The tests' CA signs the server's certificate too.
		creds = credentials.NewTLS(&tls.Config{RootCAs: cfg.TLS.ClientCAs, MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{srv: srv, store: store, conn: conn, client: tlogv1.NewLogServiceClient(conn), verifier: verifier, vkey: vkey, logs: logs}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := store.Close(); err != nil && !tl.storeMayFail {
			t.Errorf("close store: %v", err)
		}
	})
	waitServing(t, conn)
	return tl
}

// waitServing waits, with a deadline, until the health service says SERVING.
func waitServing(t testing.TB, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "tlog.v1.LogService"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health status %v", resp.GetStatus())
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func records(payloads ...string) []*tlogv1.Record {
	out := make([]*tlogv1.Record, len(payloads))
	for i, p := range payloads {
		out[i] = &tlogv1.Record{Payload: []byte(p)}
	}
	return out
}

// openCheckpoint verifies a checkpoint with note.Open directly (not through
// our tlog package) and parses its body.
func (tl *testLog) openCheckpoint(t *testing.T, signed string) tlog.Checkpoint {
	t.Helper()
	n, err := note.Open([]byte(signed), note.VerifierList(tl.verifier))
	if err != nil {
		t.Fatalf("checkpoint signature: %v\n%s", err, signed)
	}
	c, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != "example.com/test-log" {
		t.Fatalf("origin %q", c.Origin)
	}
	return c
}

func toSumdb(p [][]byte) []sumdb.Hash {
	out := make([]sumdb.Hash, len(p))
	for i := range p {
		copy(out[i][:], p[i])
	}
	return out
}

func checkInclusion(t *testing.T, index uint64, leaf []byte, proof [][]byte, cp tlog.Checkpoint) {
	t.Helper()
	var l sumdb.Hash
	copy(l[:], leaf)
	if err := sumdb.CheckRecord(toSumdb(proof), int64(cp.Size), sumdb.Hash(cp.Root), int64(index), l); err != nil {
		t.Fatalf("sumdb CheckRecord(index %d, size %d): %v", index, cp.Size, err)
	}
	hs := make([]tlog.Hash, len(proof))
	for i := range proof {
		hs[i] = tlog.Hash(proof[i])
	}
	if err := tlog.VerifyInclusion(index, cp.Size, tlog.Hash(leaf), hs, cp.Root); err != nil {
		t.Fatal(err)
	}
}

func TestAppendReturnsVerifiableResults(t *testing.T) {
	tl := startLog(t, nil)
	payloads := []string{"user alice created", "role admin granted to alice", "user bob deleted"}
	resp, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(payloads...), IncludeProofs: true})
	if err != nil {
		t.Fatal(err)
	}
	cp := tl.openCheckpoint(t, resp.GetCheckpoint())
	if cp.Size != 3 || len(resp.GetResults()) != 3 {
		t.Fatalf("checkpoint size %d, %d results", cp.Size, len(resp.GetResults()))
	}
	for i, r := range resp.GetResults() {
		if r.GetIndex() != uint64(i) || r.GetDuplicate() {
			t.Fatalf("result %d: index %d duplicate %v", i, r.GetIndex(), r.GetDuplicate())
		}
		if err := tlog.VerifyRecord(r.GetEntry(), r.GetSalt(), []byte(payloads[i])); err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
		if lh := tlog.LeafHash(r.GetEntry()); !bytes.Equal(lh[:], r.GetLeafHash()) {
			t.Fatalf("result %d: leaf hash is not SHA-256(0x00 || entry)", i)
		}
		checkInclusion(t, r.GetIndex(), r.GetLeafHash(), r.GetInclusionProof(), cp)
	}

	// Idempotent retry: the same payload comes back as a duplicate with the
	// first index, salt and entry, and the tree does not grow.
	again, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(payloads[1], "user carol created"), IncludeProofs: true})
	if err != nil {
		t.Fatal(err)
	}
	cp2 := tl.openCheckpoint(t, again.GetCheckpoint())
	dup, fresh := again.GetResults()[0], again.GetResults()[1]
	first := resp.GetResults()[1]
	if !dup.GetDuplicate() || dup.GetIndex() != 1 || !bytes.Equal(dup.GetSalt(), first.GetSalt()) || !bytes.Equal(dup.GetEntry(), first.GetEntry()) {
		t.Fatalf("retry answered %v, want the first occurrence", dup)
	}
	if fresh.GetDuplicate() || fresh.GetIndex() != 3 || cp2.Size != 4 {
		t.Fatalf("new record at %d (dup %v), size %d", fresh.GetIndex(), fresh.GetDuplicate(), cp2.Size)
	}
	checkInclusion(t, 1, dup.GetLeafHash(), dup.GetInclusionProof(), cp2)
	checkInclusion(t, 3, fresh.GetLeafHash(), fresh.GetInclusionProof(), cp2)

	// consistency_from: the proof from the caller's trusted size comes with
	// the answer, and checks with sumdb against the earlier checkpoint.
	third, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("user dave created", "user erin created"), ConsistencyFrom: cp.Size})
	if err != nil {
		t.Fatal(err)
	}
	cp3 := tl.openCheckpoint(t, third.GetCheckpoint())
	if err := sumdb.CheckTree(toSumdb(third.GetConsistencyProof()), int64(cp3.Size), sumdb.Hash(cp3.Root), int64(cp.Size), sumdb.Hash(cp.Root)); err != nil || cp3.Size != 6 {
		t.Fatalf("consistency proof %d → %d in the Append answer: %v", cp.Size, cp3.Size, err)
	}
	// Beyond the tree: refused before anything is appended.
	_, err = tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("user frank created"), ConsistencyFrom: 7})
	if st, _ := status.FromError(err); st.Code() != codes.OutOfRange || !strings.Contains(st.Message(), "consistency_from") || tl.store.Head().Size != 6 {
		t.Fatalf("consistency_from beyond the tree: %v (size %d)", err, tl.store.Head().Size)
	}
}

func TestProofsAndCheckpointHistory(t *testing.T) {
	tl := startLog(t, nil)
	var (
		leaves [][]byte
		cps    []tlog.Checkpoint
	)
	for b := range 12 {
		var ps []string
		for i := range b*7 + 1 {
			ps = append(ps, fmt.Sprintf("batch %d record %d", b, i))
		}
		resp, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(ps...)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetResults() {
			leaves = append(leaves, r.GetLeafHash())
		}
		cps = append(cps, tl.openCheckpoint(t, resp.GetCheckpoint()))
	}
	latest, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if c := tl.openCheckpoint(t, latest.GetCheckpoint()); c != cps[len(cps)-1] {
		t.Fatalf("latest checkpoint %+v, want %+v", c, cps[len(cps)-1])
	}
	for _, cp := range cps {
		got, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{TreeSize: cp.Size})
		if err != nil {
			t.Fatal(err)
		}
		if c := tl.openCheckpoint(t, got.GetCheckpoint()); c != cp {
			t.Fatalf("checkpoint at %d: %+v, want %+v", cp.Size, c, cp)
		}
		for _, i := range []uint64{0, cp.Size / 2, cp.Size - 1} {
			p, err := tl.client.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: i}, TreeSize: cp.Size})
			if err != nil {
				t.Fatal(err)
			}
			if p.GetIndex() != i || p.GetTreeSize() != cp.Size || tl.openCheckpoint(t, p.GetCheckpoint()) != cp {
				t.Fatalf("proof for %d at %d answered index %d size %d", i, cp.Size, p.GetIndex(), p.GetTreeSize())
			}
			checkInclusion(t, i, leaves[i], p.GetHashes(), cp)
			// By leaf hash, at the latest size.
			p, err = tl.client.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_LeafHash{LeafHash: leaves[i]}})
			if err != nil {
				t.Fatal(err)
			}
			if p.GetIndex() != i {
				t.Fatalf("leaf hash of %d resolved to %d", i, p.GetIndex())
			}
			checkInclusion(t, i, leaves[i], p.GetHashes(), tl.openCheckpoint(t, p.GetCheckpoint()))
		}
		for _, second := range []tlog.Checkpoint{cp, cps[len(cps)-1]} {
			for _, first := range []uint64{0, 1, cp.Size / 2, cp.Size} {
				p, err := tl.client.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: first, SecondTreeSize: second.Size})
				if err != nil {
					t.Fatal(err)
				}
				if c := tl.openCheckpoint(t, p.GetCheckpoint()); c != second || p.GetSecondTreeSize() != second.Size {
					t.Fatalf("consistency answered checkpoint %+v", c)
				}
				if first == 0 {
					if len(p.GetHashes()) != 0 {
						t.Fatalf("proof from the empty tree has %d hashes", len(p.GetHashes()))
					}
					continue
				}
				// The first root comes from our own recomputation, via sumdb,
				// of the leaves we were given.
				r1, err := sumdb.TreeHash(int64(first), sumdbLeaves(leaves[:first]))
				if err != nil {
					t.Fatal(err)
				}
				if err := sumdb.CheckTree(toSumdb(p.GetHashes()), int64(second.Size), sumdb.Hash(second.Root), int64(first), r1); err != nil {
					t.Fatalf("sumdb CheckTree(%d, %d): %v", first, second.Size, err)
				}
			}
		}
	}
}

// payloadReadRecord decodes a payload as tlogd's own record of a payload
// read, if it is one.
func payloadReadRecord(p []byte) (*tlogv1.AuditEvent, bool) {
	var ev tlogv1.AuditEvent
	if err := proto.Unmarshal(p, &ev); err != nil || ev.GetAction() != tlogv1.Action_ACTION_LOG_PAYLOADS_READ {
		return nil, false
	}
	return &ev, true
}

// sumdbLeaves stores leaf hashes in sumdb's layout for TreeHash.
func sumdbLeaves(leaves [][]byte) sumdb.HashReader {
	var stored []sumdb.Hash
	r := sumdb.HashReaderFunc(func(idx []int64) ([]sumdb.Hash, error) {
		out := make([]sumdb.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, l := range leaves {
		hs, err := sumdb.StoredHashesForRecordHash(int64(i), sumdb.Hash(l), r)
		if err != nil {
			panic(err)
		}
		stored = append(stored, hs...)
	}
	return r
}

func TestEntries(t *testing.T) {
	tl := startLog(t, nil)
	var ps []string
	for i := range 25 {
		ps = append(ps, fmt.Sprintf("permission %d granted", i))
	}
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(ps[:10]...)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(ps[10:]...)}); err != nil {
		t.Fatal(err)
	}
	resp, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 5, Count: 100, IncludePayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEntries()) != 20 {
		t.Fatalf("%d entries, want 20 (clamped to the tree size)", len(resp.GetEntries()))
	}
	for i, e := range resp.GetEntries() {
		if e.GetIndex() != uint64(5+i) || string(e.GetPayload()) != ps[5+i] {
			t.Fatalf("entry %d: index %d payload %q", i, e.GetIndex(), e.GetPayload())
		}
		if err := tlog.VerifyRecord(e.GetEntry(), e.GetSalt(), e.GetPayload()); err != nil {
			t.Fatal(err)
		}
	}
	bare, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 0, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bare.GetEntries() {
		if e.GetPayload() != nil || e.GetSalt() != nil || len(e.GetLeafHash()) != 32 {
			t.Fatalf("entry without payloads carries payload %q salt %x", e.GetPayload(), e.GetSalt())
		}
	}
}

func TestStreamEntriesFollows(t *testing.T) {
	tl := startLog(t, func(c *Config) { c.MaxEntriesPerCall = 4 })
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("a", "b", "c", "d", "e", "f")}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	stream, err := tl.client.StreamEntries(c, &tlogv1.StreamEntriesRequest{Start: 1, IncludePayloads: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var reads []*tlogv1.AuditEvent
	var checkpoints []uint64
	recv := func() {
		t.Helper()
		msg, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(msg.GetEntries()) > 4 {
			t.Fatalf("chunk of %d entries exceeds the limit", len(msg.GetEntries()))
		}
		for _, e := range msg.GetEntries() {
			if ev, ok := payloadReadRecord(e.GetPayload()); ok {
				reads = append(reads, ev)
				continue
			}
			got = append(got, string(e.GetPayload()))
		}
		if msg.GetCheckpoint() != "" {
			cp := tl.openCheckpoint(t, msg.GetCheckpoint())
			last := msg.GetEntries()[len(msg.GetEntries())-1].GetIndex()
			if cp.Size != last+1 {
				t.Fatalf("chunk ending at %d carries checkpoint of size %d", last, cp.Size)
			}
			checkpoints = append(checkpoints, cp.Size)
		}
	}
	recv() // b c d e
	recv() // f + checkpoint 6, and this stream's own payload-read record (7)
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("g", "h")}); err != nil {
		t.Fatal(err)
	}
	recv() // g h + checkpoint 9
	if strings.Join(got, "") != "bcdefgh" || fmt.Sprint(checkpoints) != "[7 9]" {
		t.Fatalf("streamed %q with checkpoints %v", got, checkpoints)
	}
	if len(reads) != 1 || !strings.Contains(reads[0].GetReason(), "from entry 1, following") {
		t.Fatalf("payload-read records in the stream: %v", reads)
	}

	// Without follow the stream ends at the latest checkpoint.
	s2, err := tl.client.StreamEntries(ctx(t), &tlogv1.StreamEntriesRequest{Start: tl.store.Head().Size})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Recv(); err != io.EOF {
		t.Fatalf("stream from the end: %v, want EOF", err)
	}
}

func TestGetLogInfo(t *testing.T) {
	tl := startLog(t, func(c *Config) { c.MaxPayloadBytes = 1234 })
	info, err := tl.client.GetLogInfo(ctx(t), &tlogv1.GetLogInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(info.GetVerifierKey())
	if err != nil || v.KeyHash() != tl.verifier.KeyHash() {
		t.Fatalf("verifier key %q: %v", info.GetVerifierKey(), err)
	}
	if info.GetOrigin() != "example.com/test-log" || info.GetMaxPayloadBytes() != 1234 || info.GetMaxRecordsPerAppend() != 1000 ||
		info.GetMaxEntriesPerCall() != 1000 || info.GetMaxRequestBytes() != 16<<20 {
		t.Fatalf("log info %v", info)
	}
}

// TestBadInput asserts the exact code and the named field for every row of
// the README's bad-input table.
func TestBadInput(t *testing.T) {
	tl := startLog(t, func(c *Config) {
		c.MaxRecordsPerAppend = 10
		c.MaxPayloadBytes = 100
		c.MaxEntriesPerCall = 50
		c.MaxRequestBytes = 4096
		c.MaxBatchRecords = 10
	})
	resp, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("one", "two", "three", "four", "five")})
	if err != nil {
		t.Fatal(err)
	}
	leaf := resp.GetResults()[0].GetLeafHash()
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("six", "seven")}); err != nil {
		t.Fatal(err)
	}
	// Signed sizes are 0, 5 and 7.
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	c := tl.client
	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		prefix string // the message starts with this (the README's table)
	}{
		{"empty batch", func() error { _, err := c.Append(ctx(t), &tlogv1.AppendRequest{}); return err }, codes.InvalidArgument, "records: must hold at least 1 record"},
		{"oversize batch", func() error { _, err := c.Append(ctx(t), &tlogv1.AppendRequest{Records: records(many...)}); return err }, codes.InvalidArgument, "records: 11 records exceed the limit of 10 per Append"},
		{"empty payload", func() error { _, err := c.Append(ctx(t), &tlogv1.AppendRequest{Records: records("x", "")}); return err }, codes.InvalidArgument, "records[1].payload: must not be empty"},
		{"oversize payload", func() error {
			_, err := c.Append(ctx(t), &tlogv1.AppendRequest{Records: records(strings.Repeat("x", 101))})
			return err
		}, codes.InvalidArgument, "records[0].payload: 101 bytes exceed the limit of 100"},
		{"oversize request", func() error {
			_, err := c.Append(ctx(t), &tlogv1.AppendRequest{Records: records(strings.Repeat("x", 5000))})
			return err
		}, codes.ResourceExhausted, "grpc: received message larger than max"},
		{"checkpoint size beyond tree", func() error { _, err := c.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{TreeSize: 8}); return err }, codes.OutOfRange, "tree_size: 8 is beyond the latest tree size 7"},
		{"checkpoint size never signed", func() error { _, err := c.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{TreeSize: 6}); return err }, codes.NotFound, "tree_size: the log signed no checkpoint at size 6"},
		{"inclusion without leaf", func() error { _, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{}); return err }, codes.InvalidArgument, "leaf: set either index or leaf_hash"},
		{"index at tree size", func() error {
			_, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 7}})
			return err
		}, codes.OutOfRange, "index: 7 is not below the tree size 7"},
		{"index beyond requested size", func() error {
			_, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 5}, TreeSize: 5})
			return err
		}, codes.OutOfRange, "index: 5 is not below the tree size 5"},
		{"inclusion tree size beyond tree", func() error {
			_, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 0}, TreeSize: 100})
			return err
		}, codes.OutOfRange, "tree_size: 100 is beyond the latest tree size 7"},
		{"inclusion tree size never signed", func() error {
			_, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 0}, TreeSize: 6})
			return err
		}, codes.NotFound, "tree_size: the log signed no checkpoint at size 6"},
		{"leaf hash of 31 bytes", func() error {
			_, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_LeafHash{LeafHash: make([]byte, 31)}})
			return err
		}, codes.InvalidArgument, "leaf_hash: must be 32 bytes, got 31"},
		{"unknown leaf hash", func() error {
			_, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_LeafHash{LeafHash: make([]byte, 32)}})
			return err
		}, codes.NotFound, "leaf_hash: no leaf with hash 0000000000000000000000000000000000000000000000000000000000000000 is in the log"},
		{"leaf hash beyond requested size", func() error {
			r, err := c.Append(ctx(t), &tlogv1.AppendRequest{Records: records("eight")})
			if err != nil {
				return err
			}
			_, err = c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_LeafHash{LeafHash: r.GetResults()[0].GetLeafHash()}, TreeSize: 7})
			return err
		}, codes.OutOfRange, "leaf_hash: the leaf is at index 7, not below the tree size 7"},
		{"first > second", func() error {
			_, err := c.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 6, SecondTreeSize: 5})
			return err
		}, codes.InvalidArgument, "first_tree_size: 6 exceeds second_tree_size 5"},
		{"second beyond tree", func() error {
			_, err := c.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 1, SecondTreeSize: 100})
			return err
		}, codes.OutOfRange, "second_tree_size: 100 is beyond the latest tree size"},
		{"second never signed", func() error {
			_, err := c.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 1, SecondTreeSize: 6})
			return err
		}, codes.NotFound, "second_tree_size: the log signed no checkpoint at size 6"},
		{"first beyond latest", func() error {
			_, err := c.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 100})
			return err
		}, codes.OutOfRange, "first_tree_size: 100 is beyond the latest tree size"},
		{"count 0", func() error { _, err := c.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 0}); return err }, codes.InvalidArgument, "count: must be at least 1"},
		{"count too large", func() error { _, err := c.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 51}); return err }, codes.InvalidArgument, "count: 51 exceeds the limit of 50 entries per call"},
		{"start at tree size", func() error {
			_, err := c.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 100, Count: 1})
			return err
		}, codes.OutOfRange, "start: 100 is not below the tree size"},
		{"stream start beyond tree", func() error {
			s, err := c.StreamEntries(ctx(t), &tlogv1.StreamEntriesRequest{Start: 100})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.OutOfRange, "start: 100 is beyond the tree size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, ok := status.FromError(err)
			if !ok || st.Code() != tc.code {
				t.Fatalf("got %v, want code %v", err, tc.code)
			}
			if !strings.HasPrefix(st.Message(), tc.prefix) {
				t.Fatalf("message %q does not start with %q", st.Message(), tc.prefix)
			}
		})
	}
	// Valid edge cases around the same rows succeed.
	if p, err := c.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 0, SecondTreeSize: 5}); err != nil || len(p.GetHashes()) != 0 {
		t.Fatalf("consistency from 0: %v, %d hashes", err, len(p.GetHashes()))
	}
	if _, err := c.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_LeafHash{LeafHash: leaf}, TreeSize: 5}); err != nil {
		t.Fatal(err)
	}
	// The server is still healthy after all of it.
	waitServing(t, tl.conn)
}

func TestEmptyLog(t *testing.T) {
	tl := startLog(t, nil)
	resp, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cp := tl.openCheckpoint(t, resp.GetCheckpoint()); cp.Size != 0 || cp.Root != tlog.EmptyRoot {
		t.Fatalf("empty log checkpoint %+v", cp)
	}
	_, err = tl.client.GetInclusionProof(ctx(t), &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 0}})
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("inclusion in the empty log: %v", err)
	}
	p, err := tl.client.GetConsistencyProof(ctx(t), &tlogv1.GetConsistencyProofRequest{})
	if err != nil || len(p.GetHashes()) != 0 || p.GetSecondTreeSize() != 0 {
		t.Fatalf("consistency 0 → 0: %v %v", p, err)
	}
	_, err = tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 1})
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("entries of the empty log: %v", err)
	}
}

// TestConcurrentAppendsShareBatches checks group commit: many concurrent
// callers all get verifiable, distinct indexes, and fewer checkpoints are
// signed than there were calls.
func TestConcurrentAppendsShareBatches(t *testing.T) {
	tl := startLog(t, nil)
	const callers, each = 32, 20
	type got struct {
		index uint64
		leaf  []byte
		cp    string
	}
	results := make(chan got, callers*each)
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			for i := range each {
				resp, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(fmt.Sprintf("w%d-%d", w, i)), IncludeProofs: true})
				if err != nil {
					t.Error(err)
					return
				}
				r := resp.GetResults()[0]
				cp := tl.openCheckpoint(t, resp.GetCheckpoint())
				checkInclusion(t, r.GetIndex(), r.GetLeafHash(), r.GetInclusionProof(), cp)
				results <- got{r.GetIndex(), r.GetLeafHash(), resp.GetCheckpoint()}
			}
		})
	}
	wg.Wait()
	close(results)
	seen := map[uint64]bool{}
	checkpoints := map[string]bool{}
	for r := range results {
		if seen[r.index] {
			t.Fatalf("index %d handed out twice", r.index)
		}
		seen[r.index] = true
		checkpoints[r.cp] = true
	}
	if len(seen) != callers*each || tl.store.Head().Size != callers*each {
		t.Fatalf("%d distinct indexes, tree size %d", len(seen), tl.store.Head().Size)
	}
	t.Logf("%d appends shared %d checkpoints", callers*each, len(checkpoints))
}

func TestPanicBecomesGenericInternal(t *testing.T) {
	tl := startLog(t, nil, func(s *Server) {
		s.testHook = func(_ context.Context, method string) {
			if method == "/tlog.v1.LogService/GetLogInfo" {
				panic("secret detail at /etc/tlogd")
			}
		}
	})
	_, err := tl.client.GetLogInfo(ctx(t), &tlogv1.GetLogInfoRequest{})
	st, _ := status.FromError(err)
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("panic answered %v", err)
	}
	if len(st.Details()) != 0 {
		t.Fatalf("panic answer carries details %v", st.Details())
	}
	if !strings.Contains(tl.logs.String(), "secret detail") || !strings.Contains(tl.logs.String(), "goroutine") {
		t.Fatal("the panic and its stack were not logged on the server")
	}
	waitServing(t, tl.conn)
}

func TestAccessLogNamesCalls(t *testing.T) {
	tl := startLog(t, nil)
	if _, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 0}); status.Code(err) != codes.InvalidArgument {
		t.Fatal(err)
	}
	logs := tl.logs.String()
	for _, want := range []string{`"grpc.method":"GetEntries"`, `"grpc.code":"InvalidArgument"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("access log lacks %s:\n%s", want, logs)
		}
	}
}

func TestStopDrainsAndRefuses(t *testing.T) {
	tl := startLog(t, nil)
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("before stop")}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tl.srv.Stop(c)
	_, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("after stop")})
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("append after stop: %v", err)
	}
	if tl.store.Head().Size != 1 {
		t.Fatalf("size %d after stop", tl.store.Head().Size)
	}
}

// TestWriterFailureIsFailStop breaks WAL fsyncs under the store: the append
// in flight and every later one get Unavailable, health reports NOT_SERVING
// for the log service, nothing unsynced is published, and reads go on.
func TestWriterFailureIsFailStop(t *testing.T) {
	var broken errorfs.Toggle
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.HasSuffix(op.Path, ".log") {
			return broken.MaybeError(op)
		}
		return nil
	}))
	broken.Injector = errorfs.ErrInjected
	tl := startLogFS(t, fs, nil)
	tl.storeMayFail = true
	good, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("before the disk broke")})
	if err != nil {
		t.Fatal(err)
	}
	broken.On()
	for _, p := range []string{"lost 1", "lost 2"} {
		_, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(p)})
		st, _ := status.FromError(err)
		if st.Code() != codes.Unavailable || !strings.HasPrefix(st.Message(), "log writer stopped after a storage error") {
			t.Fatalf("append after a failed fsync: %v", err)
		}
	}
	h, err := healthpb.NewHealthClient(tl.conn).Check(ctx(t), &healthpb.HealthCheckRequest{Service: "tlog.v1.LogService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after the writer stopped: %v %v", h.GetStatus(), err)
	}
	cp, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if cp.GetCheckpoint() != good.GetCheckpoint() {
		t.Fatalf("published checkpoint moved past the durable tree:\n%s", cp.GetCheckpoint())
	}
	if !strings.Contains(tl.logs.String(), "log writer stopped") {
		t.Fatal("the failure was not logged")
	}
}

// TestDiskFull: below the free-space reserve, appends fail with
// ResourceExhausted saying so, reads go on, health stays SERVING (nothing is
// broken), and appends resume once space is back.
func TestDiskFull(t *testing.T) {
	mem := vfs.NewMem()
	plenty := vfs.DiskUsage{AvailBytes: 10 << 30, TotalBytes: 20 << 30}
	mem.TestingSetDiskUsage(plenty)
	tl := startLogFS(t, mem, nil)
	first, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("before the disk filled")})
	if err != nil {
		t.Fatal(err)
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 5 << 20, TotalBytes: 20 << 30})
	time.Sleep(150 * time.Millisecond) // the store checks free space every 100 ms
	_, err = tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("refused")})
	if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted ||
		st.Message() != "disk full: 5 MiB free on the data directory's filesystem, below the 8 MiB kept in reserve; appends resume once space is freed" {
		t.Fatalf("append on a full disk: %v", err)
	}
	if cp, err := tl.client.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{}); err != nil || cp.GetCheckpoint() != first.GetCheckpoint() {
		t.Fatalf("GetCheckpoint on a full disk: %v", err)
	}
	h, err := healthpb.NewHealthClient(tl.conn).Check(ctx(t), &healthpb.HealthCheckRequest{Service: "tlog.v1.LogService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health on a full disk: %v %v", h.GetStatus(), err)
	}
	mem.TestingSetDiskUsage(plenty)
	r, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records("after space was freed")})
	if err != nil {
		t.Fatalf("append once space is back: %v", err)
	}
	if got := r.GetResults()[0].GetIndex(); got != 1 {
		t.Fatalf("index after space came back: %d, want 1", got)
	}
}

func TestWatchDoesNotHoldUpStop(t *testing.T) {
	tl := startLog(t, nil)
	w, err := healthpb.NewHealthClient(tl.conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}
	stopped := make(chan struct{})
	go func() {
		// A long drain deadline: Stop must not need it.
		c, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		tl.srv.Stop(c)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("Stop waited on an open health Watch")
	}
}

func TestStreamEndsOnStop(t *testing.T) {
	tl := startLog(t, nil)
	s, err := tl.client.StreamEntries(ctx(t), &tlogv1.StreamEntriesRequest{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	// The stream is open once the server has sent its headers.
	if _, err := s.Header(); err != nil {
		t.Fatal(err)
	}
	go tl.srv.Stop(context.Background())
	_, err = s.Recv()
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || !strings.HasPrefix(st.Message(), "server is shutting down") {
		t.Fatalf("following stream at stop: %v", err)
	}
}

func TestEntriesStayWithinResponseBytes(t *testing.T) {
	tl := startLog(t, func(c *Config) { c.MaxPayloadBytes = 60000 })
	var ps []string
	for i := range 100 {
		ps = append(ps, fmt.Sprintf("%03d", i)+strings.Repeat("x", 59000))
	}
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(ps[:50]...)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(ps[50:]...)}); err != nil {
		t.Fatal(err)
	}
	// The client keeps gRPC's default 4 MiB receive limit.
	resp, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 100, IncludePayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetEntries()); n == 0 || n >= 100 {
		t.Fatalf("GetEntries returned %d entries of 59 KB", n)
	}
	s, err := tl.client.StreamEntries(ctx(t), &tlogv1.StreamEntriesRequest{IncludePayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var sizes []uint64
	for {
		msg, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range msg.GetEntries() {
			if _, ok := payloadReadRecord(e.GetPayload()); !ok {
				got = append(got, string(e.GetPayload()))
			}
		}
		if msg.GetCheckpoint() != "" {
			sizes = append(sizes, tl.openCheckpoint(t, msg.GetCheckpoint()).Size)
		}
	}
	if len(got) != 100 || got[99] != ps[99] {
		t.Fatalf("streamed %d payloads", len(got))
	}
	// Chunks of about 69 entries: the first holds signed size 50, the
	// second reaches the latest size: 100 records, the GetEntries above and
	// this stream's payload-read records.
	if fmt.Sprint(sizes) != "[50 102]" {
		t.Fatalf("stream checkpoints at sizes %v, want [50 102]", sizes)
	}
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
