package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// crashIndexFlush is the -index-flush-records of the kill -9 runs: index
// flushes every 20,000 leaves, so that kills land during and between them
// often, and a restart rebuilds at most 20,000 leaves' indexes, not the
// default 262,144 (which took most of a cycle's 4 s).
const crashIndexFlush = "20000"

// TestKillNine runs tlogd as a child process under load from concurrent
// appenders (records and audit events), kills it with SIGKILL at a random
// moment, restarts it and checks with an oracle: every acknowledged record
// is at its index with the same leaf hash and an inclusion proof in the new
// checkpoint (checked with golang.org/x/mod/sumdb/tlog), no index is given
// twice, and the new checkpoint is consistent with every checkpoint an
// appender was shown before. TLOGD_CRASH_CYCLES sets the number of cycles
// (CI: 25; RELIABILITY.md records a longer run).
func TestKillNine(t *testing.T) {
	cycles := 25
	if v := os.Getenv("TLOGD_CRASH_CYCLES"); v != "" {
		var err error
		if cycles, err = strconv.Atoi(v); err != nil || cycles < 1 {
			t.Fatalf("TLOGD_CRASH_CYCLES=%q", v)
		}
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	var (
		mu     sync.Mutex
		leaves = map[int64]tlog.Hash{} // acknowledged index → leaf hash
		signed = map[int64]tlog.Hash{} // every checkpoint shown → root
		// What the cycle before the restart acknowledged: checked in full
		// after it, with a sample of the older ones.
		newLeaves, newSigned = map[int64]tlog.Hash{}, map[int64]tlog.Hash{}
	)
	var verifier note.Verifier
	lost := 0
	for cycle := range cycles {
		d := startDaemon(t, bin, "-data-dir", data, "-origin", "crash.example/log", "-log-level", "warn", "-index-flush-records", crashIndexFlush)
		if verifier == nil {
			var err error
			if verifier, err = note.NewVerifier(d.vkey); err != nil {
				t.Fatal(err)
			}
		}
		conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		c, _ := d.client(t)
		lost += checkOracle(t, cycle, c, verifier, withSample(newLeaves, leaves, r), withSample(newSigned, signed, r))
		newLeaves, newSigned = map[int64]tlog.Hash{}, map[int64]tlog.Hash{}

		// Load: 8 appenders, records and events, until the kill.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lc, ac := tlogv1.NewLogServiceClient(conn), tlogv1.NewAuditServiceClient(conn)
				for n := 0; ctx.Err() == nil; n++ {
					var results []*tlogv1.AppendResult
					var cp string
					if n%2 == 0 {
						req := &tlogv1.AppendRequest{}
						for i := range 1 + n%17 {
							req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "cycle %d writer %d call %d record %d", cycle, w, n, i)})
						}
						resp, err := lc.Append(ctx, req)
						if err != nil {
							continue // in flight at the kill: may or may not be there
						}
						results, cp = resp.GetResults(), resp.GetCheckpoint()
					} else {
						req := &tlogv1.RecordEventsRequest{}
						for i := range 1 + n%13 {
							req.Events = append(req.Events, crashEvent(fmt.Sprintf("c%d-w%d-n%d-%d", cycle, w, n, i), fmt.Sprintf("user%d", (n+i)%7)))
						}
						resp, err := ac.RecordEvents(ctx, req)
						if err != nil {
							continue
						}
						for _, er := range resp.GetResults() {
							results = append(results, er.GetResult())
						}
						cp = resp.GetCheckpoint()
					}
					ck, _, err := tlog.OpenCheckpoint([]byte(cp), verifier)
					if err != nil {
						t.Errorf("an acknowledged checkpoint does not verify: %v", err)
						return
					}
					mu.Lock()
					if prev, ok := signed[int64(ck.Size)]; ok && prev != ck.Root {
						t.Errorf("cycle %d: two checkpoints of size %d with different roots", cycle, ck.Size)
					}
					signed[int64(ck.Size)], newSigned[int64(ck.Size)] = ck.Root, ck.Root
					for _, res := range results {
						leaf := tlog.Hash(res.GetLeafHash())
						if prev, ok := leaves[int64(res.GetIndex())]; ok && prev != leaf {
							t.Errorf("cycle %d: index %d given to two leaves", cycle, res.GetIndex())
						}
						leaves[int64(res.GetIndex())], newLeaves[int64(res.GetIndex())] = leaf, leaf
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+r.IntN(400)) * time.Millisecond)
		d.cmd.Process.Kill()
		<-d.exited
		cancel()
		wg.Wait()
		conn.Close()
		if t.Failed() {
			return
		}
	}
	// The last restart checks everything ever acknowledged.
	d := startDaemon(t, bin, "-data-dir", data, "-log-level", "warn", "-index-flush-records", crashIndexFlush)
	c, _ := d.client(t)
	lost += checkOracle(t, cycles, c, verifier, leaves, signed)
	d.stop(t)
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost or changed", lost)
	}
	t.Logf("%d kill -9 cycles, %d acknowledged records and %d checkpoints checked, none lost", cycles, len(leaves), len(signed))
}

// withSample returns recent and up to 200 random entries of all.
func withSample(recent, all map[int64]tlog.Hash, r *rand.Rand) map[int64]tlog.Hash {
	out := maps.Clone(recent)
	for k, v := range all {
		if len(out) >= len(recent)+200 {
			break
		}
		if r.IntN(4) == 0 { // map order is random; this spreads the sample
			out[k] = v
		}
	}
	return out
}

// checkOracle checks the restarted log against what was acknowledged and
// returns how many acknowledged records are missing or changed.
func checkOracle(t *testing.T, cycle int, c tlogv1.LogServiceClient, verifier note.Verifier, leaves, signed map[int64]tlog.Hash) int {
	t.Helper()
	ctx := context.Background()
	resp, err := c.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := tlog.OpenCheckpoint([]byte(resp.GetCheckpoint()), verifier)
	if err != nil {
		t.Fatalf("cycle %d: checkpoint after restart: %v", cycle, err)
	}
	size := int64(cp.Size)
	// The tree as an independent implementation sees it: every hash comes
	// from a proof checked against the signed root.
	var lostN atomic.Int64
	parallel(leaves, func(index int64, leaf tlog.Hash) {
		if index >= size {
			t.Errorf("cycle %d: acknowledged index %d is beyond the tree of size %d after the restart", cycle, index, size)
			lostN.Add(1)
			return
		}
		p, err := c.GetInclusionProof(ctx, &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: uint64(index)}, TreeSize: uint64(size)})
		if err != nil {
			t.Errorf("cycle %d: proof of %d: %v", cycle, index, err)
			lostN.Add(1)
			return
		}
		proof := make(sumdb.RecordProof, len(p.GetHashes()))
		for i, h := range p.GetHashes() {
			proof[i] = sumdb.Hash(h)
		}
		if err := sumdb.CheckRecord(proof, size, sumdb.Hash(cp.Root), index, sumdb.Hash(leaf)); err != nil {
			t.Errorf("cycle %d: acknowledged record %d is not in the tree with its leaf hash: %v", cycle, index, err)
			lostN.Add(1)
		}
	})
	parallel(signed, func(old int64, root tlog.Hash) {
		if old > size {
			t.Errorf("cycle %d: a checkpoint of size %d was shown, the log restarted at %d", cycle, old, size)
			return
		}
		if old == 0 || old == size {
			if old == size && root != cp.Root {
				t.Errorf("cycle %d: two checkpoints of size %d with different roots", cycle, size)
			}
			return
		}
		cr, err := c.GetConsistencyProof(ctx, &tlogv1.GetConsistencyProofRequest{FirstTreeSize: uint64(old), SecondTreeSize: uint64(size)})
		if err != nil {
			t.Errorf("cycle %d: consistency %d → %d: %v", cycle, old, size, err)
			return
		}
		proof := make(sumdb.TreeProof, len(cr.GetHashes()))
		for i, h := range cr.GetHashes() {
			proof[i] = sumdb.Hash(h)
		}
		if err := sumdb.CheckTree(proof, size, sumdb.Hash(cp.Root), old, sumdb.Hash(root)); err != nil {
			t.Errorf("cycle %d: the tree of size %d is not consistent with the checkpoint of size %d shown before: %v", cycle, size, old, err)
		}
	})
	return int(lostN.Load())
}

// parallel calls fn for every entry of m from 8 goroutines.
func parallel(m map[int64]tlog.Hash, fn func(int64, tlog.Hash)) {
	type kv struct {
		k int64
		v tlog.Hash
	}
	ch := make(chan kv)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ch {
				fn(e.k, e.v)
			}
		}()
	}
	for k, v := range m {
		ch <- kv{k, v}
	}
	close(ch)
	wg.Wait()
}

func crashEvent(id, user string) *tlogv1.AuditEvent {
	return &tlogv1.AuditEvent{
		EventId:    id,
		OccurredAt: timestamppb.Now(),
		Actor:      &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: "admin"},
		Action:     tlogv1.Action_ACTION_ROLE_ASSIGNED,
		Target:     &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: user},
		Tenant:     "acme",
		Outcome:    tlogv1.Outcome_OUTCOME_SUCCESS,
		Changes:    []*tlogv1.Change{{Attribute: "role", NewValue: "viewer"}},
	}
}
