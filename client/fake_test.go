package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// fakeLog is an in-memory log server built on package tlog. It is honest
// until told to lie; the client must catch every lie.
type fakeLog struct {
	tlogv1.UnimplementedLogServiceServer
	mu       sync.Mutex
	origin   string
	signer   note.Signer
	vkey     string
	entries  [][]byte
	salts    [][]byte
	payloads [][]byte
	nodes    map[tlog.NodeID]tlog.Hash
	tree     *tlog.Tree
	signed   map[uint64][]byte // checkpoints by size
	latest   uint64
	// consistencyCalls counts GetConsistencyProof calls.
	consistencyCalls int
	// lie selects a lie: "", "wrong-signature", "wrong-proof",
	// "bad-commitment", "rollback", "wrong-entry".
	lie string
}

func newFakeLog(tb testing.TB, origin string) *fakeLog {
	tb.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		tb.Fatal(err)
	}
	s, vkey, err := tlog.ParseSignerKey(skey)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeLog{origin: origin, signer: s, vkey: vkey, signed: map[uint64][]byte{}}
	f.reset()
	return f
}

// reset empties the tree: what a log does when it forks its history.
func (f *fakeLog) reset() {
	f.entries, f.salts, f.payloads = nil, nil, nil
	f.nodes = map[tlog.NodeID]tlog.Hash{}
	f.tree, _ = tlog.NewTree(0, nil)
	f.signed = map[uint64][]byte{}
	f.sign()
}

func (f *fakeLog) sign() {
	cp, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: f.origin, Size: f.tree.Size(), Root: f.tree.Root()}, f.signer)
	if err != nil {
		panic(err)
	}
	f.signed[f.tree.Size()] = cp
	f.latest = f.tree.Size()
}

func (f *fakeLog) add(payload []byte) {
	salt := make([]byte, tlog.SaltSize)
	rand.Read(salt)
	entry := tlog.Entry{Time: uint64(time.Now().UnixMilli()), Commitment: tlog.Commit(salt, payload)}.AppendBinary(nil)
	f.entries = append(f.entries, entry)
	f.salts = append(f.salts, salt)
	f.payloads = append(f.payloads, payload)
	f.tree.Append(tlog.LeafHash(entry), func(id tlog.NodeID, h tlog.Hash) { f.nodes[id] = h })
}

func (f *fakeLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(ids []tlog.NodeID) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ids))
		for i, id := range ids {
			out[i] = f.nodes[id]
		}
		return out, nil
	})
}

func (f *fakeLog) checkpoint(size uint64) []byte {
	cp := f.signed[size]
	switch f.lie {
	case "wrong-signature":
		other, _, _ := note.GenerateKey(rand.Reader, f.origin)
		s, _ := note.NewSigner(other)
		c, _ := tlog.ParseCheckpoint(cp[:indexBlank(cp)+1])
		cp, _ = tlog.SignCheckpoint(c, s)
	case "rollback":
		for s := size; s > 0; s-- {
			if prev, ok := f.signed[s-1]; ok {
				return prev
			}
		}
	}
	return cp
}

func indexBlank(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '\n' && b[i+1] == '\n' {
			return i
		}
	}
	return len(b) - 1
}

func flip(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		h := p[i]
		out[i] = h[:]
	}
	if len(out) > 0 {
		out[0] = append([]byte(nil), out[0]...)
		out[0][0] ^= 1
	}
	return out
}

func plain(p []tlog.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		h := p[i]
		out[i] = h[:]
	}
	return out
}

func (f *fakeLog) proof(p []tlog.Hash) [][]byte {
	if f.lie == "wrong-proof" {
		return flip(p)
	}
	return plain(p)
}

func (f *fakeLog) Append(_ context.Context, req *tlogv1.AppendRequest) (*tlogv1.AppendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := f.tree.Size()
	for _, r := range req.GetRecords() {
		f.add(r.GetPayload())
	}
	f.sign()
	resp := &tlogv1.AppendResponse{Checkpoint: string(f.checkpoint(f.latest))}
	for i := range req.GetRecords() {
		idx := first + uint64(i)
		p, err := tlog.InclusionProof(idx, f.latest, f.reader())
		if err != nil {
			return nil, err
		}
		leaf := tlog.LeafHash(f.entries[idx])
		salt := f.salts[idx]
		if f.lie == "bad-commitment" {
			salt = make([]byte, tlog.SaltSize)
		}
		resp.Results = append(resp.Results, &tlogv1.AppendResult{Index: idx, LeafHash: leaf[:], Entry: f.entries[idx], Salt: salt, InclusionProof: f.proof(p)})
	}
	// The consistency proof is to the size of the checkpoint it sends,
	// which may be a lie.
	sent, _ := tlog.ParseCheckpoint([]byte(resp.Checkpoint[:indexBlank([]byte(resp.Checkpoint))+1]))
	if from := req.GetConsistencyFrom(); from != 0 && from <= sent.Size {
		p, err := tlog.ConsistencyProof(from, sent.Size, f.reader())
		if err != nil {
			return nil, err
		}
		resp.ConsistencyProof = f.proof(p)
	}
	return resp, nil
}

func (f *fakeLog) GetCheckpoint(_ context.Context, req *tlogv1.GetCheckpointRequest) (*tlogv1.GetCheckpointResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := req.GetTreeSize()
	if size == 0 {
		size = f.latest
	}
	if _, ok := f.signed[size]; !ok {
		return nil, status.Error(codes.NotFound, "no checkpoint")
	}
	return &tlogv1.GetCheckpointResponse{Checkpoint: string(f.checkpoint(size))}, nil
}

func (f *fakeLog) GetInclusionProof(_ context.Context, req *tlogv1.GetInclusionProofRequest) (*tlogv1.GetInclusionProofResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := req.GetTreeSize()
	if size == 0 {
		size = f.latest
	}
	p, err := tlog.InclusionProof(req.GetIndex(), size, f.reader())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	return &tlogv1.GetInclusionProofResponse{Index: req.GetIndex(), TreeSize: size, Hashes: f.proof(p), Checkpoint: string(f.checkpoint(size))}, nil
}

func (f *fakeLog) GetConsistencyProof(_ context.Context, req *tlogv1.GetConsistencyProofRequest) (*tlogv1.GetConsistencyProofResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.consistencyCalls++
	size2 := req.GetSecondTreeSize()
	if size2 == 0 {
		size2 = f.latest
	}
	size1 := req.GetFirstTreeSize()
	if size1 > size2 {
		// A log that forked to a smaller tree cannot even form a proof.
		return &tlogv1.GetConsistencyProofResponse{SecondTreeSize: size2, Checkpoint: string(f.checkpoint(size2))}, nil
	}
	p, err := tlog.ConsistencyProof(size1, size2, f.reader())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &tlogv1.GetConsistencyProofResponse{Hashes: f.proof(p), SecondTreeSize: size2, Checkpoint: string(f.checkpoint(size2))}, nil
}

func (f *fakeLog) GetEntries(_ context.Context, req *tlogv1.GetEntriesRequest) (*tlogv1.GetEntriesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &tlogv1.GetEntriesResponse{}
	if req.GetCount() > fakeEntriesPerCall {
		return nil, status.Error(codes.InvalidArgument, "count: over the limit")
	}
	for i := req.GetStart(); i < req.GetStart()+uint64(req.GetCount()) && i < f.latest; i++ {
		e := &tlogv1.Entry{Index: i, Entry: f.entries[i]}
		if f.lie == "wrong-entry" && i == req.GetStart()+1 {
			other := append([]byte(nil), f.entries[i]...)
			other[5] ^= 1
			e.Entry = other
		}
		leaf := tlog.LeafHash(e.Entry)
		e.LeafHash = leaf[:]
		if req.GetIncludePayloads() {
			e.Salt, e.Payload = f.salts[i], f.payloads[i]
		}
		resp.Entries = append(resp.Entries, e)
	}
	return resp, nil
}

func (f *fakeLog) StreamEntries(req *tlogv1.StreamEntriesRequest, stream tlogv1.LogService_StreamEntriesServer) error {
	f.mu.Lock()
	entries, latest, lie := f.entries[:f.latest], f.latest, f.lie
	f.mu.Unlock()
	for next := req.GetStart(); next < latest; {
		msg := &tlogv1.StreamEntriesResponse{}
		for ; next < latest && len(msg.Entries) < fakeEntriesPerCall; next++ {
			e := entries[next]
			if lie == "wrong-entry" && next == 9 {
				e = append([]byte(nil), e...)
				e[5] ^= 1
			}
			msg.Entries = append(msg.Entries, &tlogv1.Entry{Index: next, Entry: e})
		}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// fakeEntriesPerCall is small so that reads span many calls.
const fakeEntriesPerCall = 7

func (f *fakeLog) GetLogInfo(context.Context, *tlogv1.GetLogInfoRequest) (*tlogv1.GetLogInfoResponse, error) {
	return &tlogv1.GetLogInfoResponse{Origin: f.origin, VerifierKey: f.vkey, MaxEntriesPerCall: fakeEntriesPerCall}, nil
}

func (f *fakeLog) FindRecord(_ context.Context, req *tlogv1.FindRecordRequest) (*tlogv1.FindRecordResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.payloads[:f.latest] {
		if h := sha256.Sum256(p); bytes.Equal(h[:], req.GetPayloadHash()) {
			salt := f.salts[i]
			if f.lie == "bad-commitment" {
				salt = make([]byte, tlog.SaltSize)
			}
			return &tlogv1.FindRecordResponse{Entry: &tlogv1.Entry{Index: uint64(i), Entry: f.entries[i], Salt: salt}}, nil
		}
	}
	return nil, status.Error(codes.NotFound, "payload_hash: no record")
}

// serve runs the fake on 127.0.0.1:0 and returns a connection to it.
func (f *fakeLog) serve(tb testing.TB) *grpc.ClientConn {
	tb.Helper()
	s := grpc.NewServer()
	tlogv1.RegisterLogServiceServer(s, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go s.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		s.Stop()
	})
	return conn
}
