package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// TestPrimaryReplicasAndWitness runs the README's deployment with real
// processes: a primary, two read replicas that also witness it, and an
// independent witness, under append load. Appends wait for two of the three
// cosignatures; one replica is killed with SIGKILL mid-load and restarted,
// and catches up; both replicas end with the primary's checkpoint and serve
// proofs that verify against it.
func TestPrimaryReplicasAndWitness(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	logVkey := runKeygen(t, "-origin", "audit.example.com/log", "-out", path("log.key"))
	names := []string{"replica1", "replica2", "witness"}
	var cosigners []string
	for _, n := range names {
		cosigners = append(cosigners, runKeygen(t, "-cosigner", n+".example.com", "-out", path(n+".key")))
	}
	os.WriteFile(path("logs.policy"), []byte("log "+logVkey+"\nquorum none\n"), 0o644)
	primaryAddr := freeAddr(t)
	httpAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	policy := "log " + logVkey + "\n"
	for i, n := range names {
		policy += fmt.Sprintf("witness %s %s http://%s\n", n, cosigners[i], httpAddrs[i])
	}
	policy += "group two-of-three 2 replica1 replica2 witness\nquorum two-of-three\n"
	os.WriteFile(path("primary.policy"), []byte(policy), 0o644)
	pol, err := tlog.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}

	primary := startDaemon(t, bin, "-listen", primaryAddr, "-data-dir", path("primary"), "-key-file", path("log.key"), "-witness-policy", path("primary.policy"))
	peers := func(i int) string {
		var ps []string
		for j, a := range httpAddrs {
			if j != i {
				ps = append(ps, "http://"+a+"/witness")
			}
		}
		return strings.Join(ps, ",")
	}
	witnessArgs := func(i int) []string {
		return []string{"-http-listen", httpAddrs[i], "-witness-key", path(names[i] + ".key"), "-witness-logs", path("logs.policy"),
			"-witness-peers", peers(i), "-gossip-interval", "200ms"}
	}
	replicaArgs := func(i int) []string {
		return append([]string{"-data-dir", path(names[i]), "-replica-of", primaryAddr, "-log-verifier-key", logVkey}, witnessArgs(i)...)
	}
	replicas := []*daemon{startDaemon(t, bin, replicaArgs(0)...), startDaemon(t, bin, replicaArgs(1)...)}
	startDaemon(t, bin, append([]string{"-data-dir", path("witness"), "-origin", "witness.example.com/own"}, witnessArgs(2)...)...)

	pc, _ := primary.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		wg       sync.WaitGroup
		appended atomic.Int64
		stop     atomic.Bool
		errs     = make(chan error, 4)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				req := &tlogv1.AppendRequest{WaitForWitnesses: i%10 == 0}
				for j := range 50 {
					req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "writer %d call %d record %d", w, i, j)})
				}
				resp, err := pc.Append(ctx, req)
				if err != nil {
					errs <- err
					return
				}
				if req.WaitForWitnesses {
					// The quorum wait returns a checkpoint with two of the
					// three cosignatures at least.
					c, _, cs, err := pol.Open([]byte(resp.GetCheckpoint()))
					if err != nil || len(cs) < 2 || c.Size <= resp.GetResults()[49].GetIndex() {
						errs <- fmt.Errorf("cosigned checkpoint of size %d with %d cosignatures: %v", c.Size, len(cs), err)
						return
					}
				}
				appended.Add(50)
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("2,000 records", func() bool { return appended.Load() >= 2000 })
	// Kill a replica under load, let the primary go on, restart it.
	replicas[0].cmd.Process.Kill()
	<-replicas[0].exited
	before := appended.Load()
	waitFor("2,000 more records", func() bool { return appended.Load() >= before+2000 })
	replicas[0] = startDaemon(t, bin, replicaArgs(0)...)
	waitFor("2,000 more records after the restart", func() bool { return appended.Load() >= before+4000 })
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	verifier, err := note.NewVerifier(logVkey)
	if err != nil {
		t.Fatal(err)
	}
	latest := mustCheckpoint(t, pc)
	head, _, err := tlog.OpenCheckpoint([]byte(latest), verifier)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range replicas {
		rc, _ := r.client(t)
		waitFor(fmt.Sprintf("replica %d to catch up", i+1), func() bool {
			resp, err := rc.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{TreeSize: head.Size})
			return err == nil && resp.GetCheckpoint() == latest
		})
		for _, index := range []uint64{0, head.Size / 3, head.Size - 1} {
			p, err := rc.GetInclusionProof(ctx, &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: index}, TreeSize: head.Size})
			if err != nil {
				t.Fatalf("replica %d: inclusion proof of %d: %v", i+1, index, err)
			}
			es, err := pc.GetEntries(ctx, &tlogv1.GetEntriesRequest{Start: index, Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			hs := make([]tlog.Hash, len(p.GetHashes()))
			for j, h := range p.GetHashes() {
				hs[j] = tlog.Hash(h)
			}
			if err := tlog.VerifyInclusion(index, head.Size, tlog.LeafHash(es.GetEntries()[0].GetEntry()), hs, head.Root); err != nil {
				t.Fatalf("replica %d: inclusion of %d: %v", i+1, index, err)
			}
		}
		_, err := rc.Append(ctx, &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: []byte("to a replica")}}})
		if err == nil || !strings.Contains(err.Error(), "read replica of "+primaryAddr) {
			t.Fatalf("replica %d took an append: %v", i+1, err)
		}
	}
	resp, err := pc.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, cs, err := pol.Open([]byte(resp.GetCosignedCheckpoint())); err != nil || len(cs) < 2 {
		t.Fatalf("cosigned checkpoint: %d cosignatures, %v", len(cs), err)
	}
	t.Logf("%d records appended; the killed replica caught up to size %d", appended.Load(), head.Size)
}
