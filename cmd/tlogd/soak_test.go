package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"

	"github.com/tlogd/tlogd/internal/loadgen"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// TestSoak runs tlogd as a child process for TLOGD_SOAK (a duration; the
// test is skipped without it: make soak) under a steady load, after filling
// the log with TLOGD_SOAK_FILL records (default 1,200,000) so that its
// bounded caches are full: 4 writers
// appending records and audit events at TLOGD_SOAK_RATE records per second
// in total (default 2000), one goroutine moving a shared checkpoint forward
// every 250 ms after checking the log's consistency proof from the previous
// one, and 4 readers checking inclusion proofs of acknowledged records
// against the shared checkpoint. Proofs are checked with
// golang.org/x/mod/sumdb/tlog. Every 5 s it reads the daemon's goroutine
// count and heap from its metrics. It requires no verification failure and
// no failed call, and that goroutines and heap stay flat: the median over
// the last third of the run no more than the median over the middle third
// plus a margin (8 goroutines; 25% and 32 MiB of heap, in runs of 5 minutes
// or more).
func TestSoak(t *testing.T) {
	v := os.Getenv("TLOGD_SOAK")
	if v == "" {
		t.Skip("set TLOGD_SOAK to a duration to run the soak (make soak)")
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur < 30*time.Second {
		t.Fatalf("TLOGD_SOAK=%q: want a duration of at least 30s", v)
	}
	rate := 2000
	if v := os.Getenv("TLOGD_SOAK_RATE"); v != "" {
		if rate, err = strconv.Atoi(v); err != nil || rate < 40 {
			t.Fatalf("TLOGD_SOAK_RATE=%q: want at least 40 records/s", v)
		}
	}
	bin := buildBinary(t)
	d := startDaemonMetrics(t, bin, "-data-dir", filepath.Join(t.TempDir(), "data"), "-origin", "soak.example/log",
		"-log-format", "json", "-metrics-listen", "127.0.0.1:0", "-cache-mib", "64")
	c, conn := d.client(t)
	ac := tlogv1.NewAuditServiceClient(conn)
	verifier, err := note.NewVerifier(d.vkey)
	if err != nil {
		t.Fatal(err)
	}
	// Memory is watched at a steady state: first fill the log past the
	// point where the bounded caches (the 65,536 tiles of the tile cache
	// hold about a million leaves) are full.
	fill := int64(1_200_000)
	if v := os.Getenv("TLOGD_SOAK_FILL"); v != "" {
		if fill, err = strconv.ParseInt(v, 10, 64); err != nil || fill < 0 {
			t.Fatalf("TLOGD_SOAK_FILL=%q", v)
		}
	}
	if fill > 0 {
		res, err := loadgen.Run(context.Background(), loadgen.Config{Conns: []*grpc.ClientConn{conn}, Mode: "append", Clients: 8, Batch: 1000, PayloadBytes: 256, Records: fill})
		if err != nil || res.Errors > 0 {
			t.Fatalf("fill: %v %s", err, res.FirstError)
		}
		t.Logf("filled the log with %d records at %.0f/s", res.Items, res.ItemsPerSec)
	}

	type acked struct {
		index int64
		leaf  tlog.Hash
	}
	var (
		mu      sync.Mutex
		records []acked // every acknowledged record
		shared  atomic.Pointer[tlog.Checkpoint]
		// Counters.
		appended, proofs, consistency, failures atomic.Int64
	)
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	// Calls run without a deadline and the load stops at stopAt, so that no
	// call fails for the end of the run.
	ctx := context.Background()
	stopAt := time.Now().Add(dur)
	running := func() bool { return time.Now().Before(stopAt) }
	var wg sync.WaitGroup

	// Writers: batches of 10 at a steady rate, records and events in turn.
	const writers, batch = 4, 10
	for w := range writers {
		wg.Go(func() {
			tick := time.NewTicker(time.Duration(float64(time.Second) * writers * batch / float64(rate)))
			defer tick.Stop()
			for n := 0; running(); n++ {
				<-tick.C
				var results []*tlogv1.AppendResult
				if n%2 == 0 {
					req := &tlogv1.AppendRequest{}
					for i := range batch {
						req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "soak writer %d call %d record %d", w, n, i)})
					}
					resp, err := c.Append(ctx, req)
					if err != nil {
						fail("append: %v", err)
						continue
					}
					results = resp.GetResults()
				} else {
					req := &tlogv1.RecordEventsRequest{}
					for i := range batch {
						req.Events = append(req.Events, crashEvent(fmt.Sprintf("soak-%d-%d-%d", w, n, i), fmt.Sprintf("user%d", (n+i)%100)))
					}
					resp, err := ac.RecordEvents(ctx, req)
					if err != nil {
						fail("record events: %v", err)
						continue
					}
					for _, r := range resp.GetResults() {
						results = append(results, r.GetResult())
					}
				}
				mu.Lock()
				for _, r := range results {
					records = append(records, acked{int64(r.GetIndex()), tlog.Hash(r.GetLeafHash())})
				}
				mu.Unlock()
				appended.Add(int64(len(results)))
			}
		})
	}

	// The shared checkpoint moves forward only over a verified consistency
	// proof.
	first, err := c.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cp0, _, err := tlog.OpenCheckpoint([]byte(first.GetCheckpoint()), verifier)
	if err != nil {
		t.Fatal(err)
	}
	shared.Store(&cp0)
	wg.Go(func() {
		for running() {
			time.Sleep(250 * time.Millisecond)
			resp, err := c.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
			if err != nil {
				fail("get checkpoint: %v", err)
				continue
			}
			next, _, err := tlog.OpenCheckpoint([]byte(resp.GetCheckpoint()), verifier)
			if err != nil {
				fail("checkpoint does not verify: %v", err)
				continue
			}
			prev := shared.Load()
			if next.Size < prev.Size || next.Size == prev.Size && next.Root != prev.Root {
				fail("checkpoint went from size %d to %d (or changed root)", prev.Size, next.Size)
				continue
			}
			if prev.Size > 0 && next.Size > prev.Size {
				cr, err := c.GetConsistencyProof(ctx, &tlogv1.GetConsistencyProofRequest{FirstTreeSize: prev.Size, SecondTreeSize: next.Size})
				if err != nil {
					fail("consistency proof: %v", err)
					continue
				}
				if err := sumdb.CheckTree(treeProof(cr.GetHashes()), int64(next.Size), sumdb.Hash(next.Root), int64(prev.Size), sumdb.Hash(prev.Root)); err != nil {
					fail("checkpoint of size %d is not consistent with the one of size %d: %v", next.Size, prev.Size, err)
					continue
				}
				consistency.Add(1)
			}
			shared.Store(&next)
		}
	})

	// Readers: inclusion of a random acknowledged record in the shared
	// checkpoint.
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			for running() {
				cp := shared.Load()
				mu.Lock()
				var rec acked
				ok := false
				for range 4 { // records acknowledged after the checkpoint are not in it
					if len(records) == 0 {
						break
					}
					if rec = records[rng.IntN(len(records))]; uint64(rec.index) < cp.Size {
						ok = true
						break
					}
				}
				mu.Unlock()
				if !ok {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				p, err := c.GetInclusionProof(ctx, &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: uint64(rec.index)}, TreeSize: cp.Size})
				if err != nil {
					fail("inclusion proof of %d: %v", rec.index, err)
					continue
				}
				proof := make(sumdb.RecordProof, len(p.GetHashes()))
				for i, h := range p.GetHashes() {
					proof[i] = sumdb.Hash(h)
				}
				if err := sumdb.CheckRecord(proof, int64(cp.Size), sumdb.Hash(cp.Root), rec.index, sumdb.Hash(rec.leaf)); err != nil {
					fail("record %d is not in the checkpoint of size %d: %v", rec.index, cp.Size, err)
					continue
				}
				proofs.Add(1)
			}
		})
	}

	// The daemon's goroutines and heap, every 5 s.
	var goroutines, heap []float64
	start := time.Now()
	for tick := time.NewTicker(5 * time.Second); running(); {
		<-tick.C
		m, err := scrape(d.metrics, "go_goroutines", "go_memstats_heap_inuse_bytes")
		if err != nil {
			fail("metrics: %v", err)
			continue
		}
		goroutines, heap = append(goroutines, m[0]), append(heap, m[1])
	}
	wg.Wait()
	elapsed := time.Since(start)
	d.stop(t)
	if len(goroutines) < 6 {
		t.Fatalf("only %d metrics samples", len(goroutines))
	}

	t.Logf("%s at a target of %d records/s: %d records appended (%.0f/s), %d inclusion proofs and %d consistency proofs verified, %d failures",
		elapsed.Round(time.Second), rate, appended.Load(), float64(appended.Load())/elapsed.Seconds(), proofs.Load(), consistency.Load(), failures.Load())
	t.Logf("daemon goroutines by thirds of the run (median): %s", thirds(goroutines, 1))
	t.Logf("daemon heap in use by thirds of the run (median, MiB): %s", thirds(heap, 1<<20))
	if failures.Load() > 0 {
		t.Fatalf("%d failures", failures.Load())
	}
	if proofs.Load() == 0 || consistency.Load() == 0 || appended.Load() < int64(rate)*int64(dur/time.Second)/2 {
		t.Fatalf("the soak did too little: %d records, %d inclusion and %d consistency proofs", appended.Load(), proofs.Load(), consistency.Load())
	}
	n := len(goroutines)
	mid, last := median(goroutines[n/3:2*n/3]), median(goroutines[2*n/3:])
	if last > mid+8 {
		t.Errorf("daemon goroutines grew: a median of %.0f in the middle third of the run, %.0f in the last", mid, last)
	}
	// The heap moves with the in-memory index (up to 262,144 leaves, about
	// 40 MiB, between flushes): thirds of a short run hold a few samples of
	// one part of that cycle, so only runs of 5 minutes or more judge it.
	mid, last = median(heap[n/3:2*n/3]), median(heap[2*n/3:])
	if dur >= 5*time.Minute && last > mid*1.25+32<<20 {
		t.Errorf("daemon heap grew: a median of %.0f MiB in the middle third of the run, %.0f MiB in the last", mid/(1<<20), last/(1<<20))
	}
}

func treeProof(hashes [][]byte) sumdb.TreeProof {
	p := make(sumdb.TreeProof, len(hashes))
	for i, h := range hashes {
		p[i] = sumdb.Hash(h)
	}
	return p
}

// thirds formats the median of each third of xs, divided by unit.
func thirds(xs []float64, unit float64) string {
	n := len(xs)
	var out []string
	for i := range 3 {
		out = append(out, fmt.Sprintf("%.0f", median(xs[i*n/3:(i+1)*n/3])/unit))
	}
	return strings.Join(out, " / ")
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// scrape reads the values of unlabelled metrics from a Prometheus endpoint.
func scrape(addr string, names ...string) ([]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if i := slices.Index(names, name); ok && i >= 0 {
			if out[i], err = strconv.ParseFloat(value, 64); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			found++
		}
	}
	if found != len(names) {
		return nil, fmt.Errorf("found %d of %v", found, names)
	}
	return out, sc.Err()
}
