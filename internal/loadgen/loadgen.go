// Package loadgen drives a tlogd server for benchmarks: durable appends over
// gRPC (closed loop, or paced at a fixed rate to measure latency without
// coordinated omission), inclusion-proof and timeline reads, and tile reads
// over the C2SP tlog-tiles HTTP API.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// Config describes one load run.
type Config struct {
	// Conns are the client connections; clients use them round-robin.
	Conns []*grpc.ClientConn
	// Mode is "append", "events", "prove", "timeline" (GetTimeline of
	// Subject in Tenant, pages of 1,000 events with their proofs) or
	// "tiles" (random full level-0 C2SP tiles from TilesURL).
	Mode string
	// TilesURL is the base URL of the tlog-tiles API, for tiles mode.
	TilesURL string
	// Tenant and Subject name the subject of timeline mode.
	Tenant, Subject string
	// Clients is the number of concurrent callers.
	Clients int
	// Batch is the number of records per Append.
	Batch int
	// PayloadBytes is the size of each record's payload (at least 24).
	PayloadBytes int
	// Proofs asks Append for inclusion proofs.
	Proofs bool
	// Rate paces the callers to this many calls per second in total; 0 runs
	// them closed-loop, as fast as the server answers.
	Rate float64
	// Duration is how long to measure, after Warmup.
	Duration, Warmup time.Duration
	// Records stops an append run after this many records (0: no limit).
	Records int64
	// ServerPID, if set, is the server process whose CPU time is reported.
	ServerPID int
	// Progress, if set, is called about once a second with the records (or
	// proofs) done so far.
	Progress func(done int64)
}

// Result is what a run measured.
type Result struct {
	Mode         string        `json:"mode"`
	Clients      int           `json:"clients"`
	Batch        int           `json:"batch"`
	PayloadBytes int           `json:"payload_bytes"`
	Rate         float64       `json:"target_calls_per_second,omitempty"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	Calls        int64         `json:"calls"`
	Items        int64         `json:"items"`
	Errors       int64         `json:"errors"`
	ItemsPerSec  float64       `json:"items_per_second"`
	CallsPerSec  float64       `json:"calls_per_second"`
	P50          time.Duration `json:"p50_ns"`
	P90          time.Duration `json:"p90_ns"`
	P99          time.Duration `json:"p99_ns"`
	Max          time.Duration `json:"max_ns"`
	ClientCPU    float64       `json:"client_cpu_cores"`
	ServerCPU    float64       `json:"server_cpu_cores,omitempty"`
	FirstError   string        `json:"first_error,omitempty"`
}

// String formats r for people.
func (r Result) String() string {
	unit := "records"
	switch r.Mode {
	case "prove":
		unit = "proofs"
	case "timeline":
		unit = "events"
	case "tiles":
		unit = "tiles"
	}
	s := fmt.Sprintf("%s: %d clients, batch %d, %d-byte payloads: %.0f %s/s (%.0f calls/s) over %v\n"+
		"latency p50 %v p90 %v p99 %v max %v; errors %d; cpu: client %.2f cores",
		r.Mode, r.Clients, r.Batch, r.PayloadBytes, r.ItemsPerSec, unit, r.CallsPerSec, r.Elapsed.Round(time.Millisecond),
		r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Errors, r.ClientCPU)
	if r.ServerCPU > 0 {
		s += fmt.Sprintf(", server %.2f cores", r.ServerCPU)
	}
	if r.FirstError != "" {
		s += "\nfirst error: " + r.FirstError
	}
	return s
}

// Run executes the load described by cfg.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if len(cfg.Conns) == 0 || cfg.Clients < 1 {
		return Result{}, errors.New("loadgen: need at least one connection and one client")
	}
	if cfg.Mode == "events" && cfg.Batch < 1 {
		return Result{}, errors.New("loadgen: batch must be at least 1")
	}
	if cfg.Mode == "append" && (cfg.Batch < 1 || cfg.PayloadBytes < 24) {
		return Result{}, errors.New("loadgen: batch must be at least 1 and payloads at least 24 bytes")
	}
	var size uint64
	if cfg.Mode == "prove" {
		cp, err := tlogv1.NewLogServiceClient(cfg.Conns[0]).GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
		if err != nil {
			return Result{}, fmt.Errorf("loadgen: checkpoint: %w", err)
		}
		lines := strings.SplitN(cp.GetCheckpoint(), "\n", 3)
		if len(lines) < 3 {
			return Result{}, errors.New("loadgen: malformed checkpoint")
		}
		if size, err = strconv.ParseUint(lines[1], 10, 64); err != nil || size == 0 {
			return Result{}, errors.New("loadgen: the log is empty; fill it first")
		}
	} else if cfg.Mode == "tiles" {
		var err error
		if size, err = tilesLogSize(ctx, cfg.TilesURL); err != nil {
			return Result{}, err
		}
	} else if cfg.Mode == "timeline" && cfg.Subject == "" {
		return Result{}, errors.New("loadgen: timeline mode needs a subject")
	} else if cfg.Mode != "append" && cfg.Mode != "events" && cfg.Mode != "timeline" {
		return Result{}, fmt.Errorf("loadgen: unknown mode %q", cfg.Mode)
	}

	var (
		measuring atomic.Bool
		items     atomic.Int64 // during measurement
		total     atomic.Int64 // since start, for Records and Progress
		calls     atomic.Int64
		errs      atomic.Int64
		firstErr  atomic.Value
		lats      = make([][]time.Duration, cfg.Clients)
		wg        sync.WaitGroup
	)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := runID()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients}}
	interval := time.Duration(0)
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Clients) / cfg.Rate)
	}
	start := time.Now()
	for c := range cfg.Clients {
		client := tlogv1.NewLogServiceClient(cfg.Conns[c%len(cfg.Conns)])
		audit := tlogv1.NewAuditServiceClient(cfg.Conns[c%len(cfg.Conns)])
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(c), run))
			req := newAppendRequest(cfg, run, c)
			var evReq *tlogv1.RecordEventsRequest
			if cfg.Mode == "events" {
				evReq = newEventsRequest(cfg, rng)
			}
			next := start.Add(time.Duration(c) * interval / time.Duration(cfg.Clients))
			for seq := uint64(0); runCtx.Err() == nil; seq++ {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-runCtx.Done():
							return
						}
					}
				}
				began := time.Now()
				if interval > 0 {
					began = next // latency includes any delay behind schedule
					next = next.Add(interval)
				}
				var n int64
				var err error
				switch cfg.Mode {
				case "append":
					setCounters(req, seq)
					_, err = client.Append(runCtx, req)
					n = int64(len(req.Records))
				case "timeline":
					var r *tlogv1.GetTimelineResponse
					r, err = audit.GetTimeline(runCtx, &tlogv1.GetTimelineRequest{Tenant: cfg.Tenant, SubjectId: cfg.Subject, PageSize: 1000})
					n = int64(len(r.GetEvents()))
				case "tiles":
					err = getTile(runCtx, hc, cfg.TilesURL, rng.Uint64N(size/tlog.TileWidth))
					n = 1
				case "events":
					for i, ev := range evReq.Events {
						ev.EventId = fmt.Sprintf("%x-%d-%d-%d", run, c, seq, i)
					}
					_, err = audit.RecordEvents(runCtx, evReq)
					n = int64(len(evReq.Events))
				default:
					_, err = client.GetInclusionProof(runCtx, &tlogv1.GetInclusionProofRequest{
						Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: rng.Uint64N(size)},
					})
					n = 1
				}
				lat := time.Since(began)
				if err != nil {
					if runCtx.Err() != nil {
						return
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if t := total.Add(n); cfg.Records > 0 && t >= cfg.Records {
					cancel()
				}
				if measuring.Load() {
					items.Add(n)
					calls.Add(1)
					lats[c] = append(lats[c], lat)
				}
			}
		})
	}

	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			defer close(progressDone)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					cfg.Progress(total.Load())
				case <-runCtx.Done():
					return
				}
			}
		}()
	} else {
		close(progressDone)
	}

	wait := func(d time.Duration) {
		if d <= 0 {
			return
		}
		select {
		case <-time.After(d):
		case <-runCtx.Done():
		}
	}
	wait(cfg.Warmup)
	cpu0, scpu0 := selfCPU(), procCPU(cfg.ServerPID)
	t0 := time.Now()
	measuring.Store(true)
	if cfg.Duration > 0 {
		wait(cfg.Duration)
	} else {
		<-runCtx.Done()
	}
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1, scpu1 := selfCPU(), procCPU(cfg.ServerPID)
	cancel()
	wg.Wait()
	<-progressDone

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	r := Result{
		Mode: cfg.Mode, Clients: cfg.Clients, Batch: cfg.Batch, PayloadBytes: cfg.PayloadBytes, Rate: cfg.Rate,
		Elapsed: elapsed, Calls: calls.Load(), Items: items.Load(), Errors: errs.Load(),
		ItemsPerSec: float64(items.Load()) / elapsed.Seconds(), CallsPerSec: float64(calls.Load()) / elapsed.Seconds(),
		P50: pct(0.50), P90: pct(0.90), P99: pct(0.99),
		ClientCPU: (cpu1 - cpu0).Seconds() / elapsed.Seconds(),
	}
	if cfg.Mode == "prove" || cfg.Mode == "timeline" || cfg.Mode == "tiles" {
		r.Batch = 1
	}
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	if cfg.ServerPID > 0 {
		r.ServerCPU = (scpu1 - scpu0).Seconds() / elapsed.Seconds()
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstError = e
	}
	return r, nil
}

// tilesLogSize reads the tree size from a tlog-tiles checkpoint; the log
// must hold at least one full tile.
func tilesLogSize(ctx context.Context, base string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/checkpoint", nil)
	if err != nil {
		return 0, fmt.Errorf("loadgen: tiles mode needs the tlog-tiles URL: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("loadgen: checkpoint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadgen: checkpoint: %s %v", resp.Status, err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 3 {
		return 0, errors.New("loadgen: malformed checkpoint")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || size < tlog.TileWidth {
		return 0, fmt.Errorf("loadgen: the log holds %s leaves; fill it with at least one tile's worth first", lines[1])
	}
	return size, nil
}

// getTile reads full level-0 tile n and checks its length.
func getTile(ctx context.Context, hc *http.Client, base string, n uint64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+tlog.TilePath{Level: 0, Index: n, Width: tlog.TileWidth}.String(), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(b) != tlog.TileWidth*tlog.HashSize {
		return fmt.Errorf("tile %d: %s, %d bytes", n, resp.Status, len(b))
	}
	return nil
}

// runID makes this run's payloads distinct from every other run's, so no
// record is deduplicated.
func runID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// newAppendRequest builds a reusable request whose payloads are random bytes
// with a unique 24-byte prefix: run (8 bytes), client (4), record (4), and a
// call sequence number (8) that setCounters rewrites per call.
func newAppendRequest(cfg Config, run uint64, client int) *tlogv1.AppendRequest {
	req := &tlogv1.AppendRequest{IncludeProofs: cfg.Proofs, Records: make([]*tlogv1.Record, cfg.Batch)}
	for i := range req.Records {
		p := make([]byte, cfg.PayloadBytes)
		rand.Read(p)
		binary.BigEndian.PutUint64(p, run)
		binary.BigEndian.PutUint32(p[8:], uint32(client))
		binary.BigEndian.PutUint32(p[12:], uint32(i))
		req.Records[i] = &tlogv1.Record{Payload: p}
	}
	return req
}

// newEventsRequest builds a reusable batch of user-management events over
// 10 tenants and 100,000 users; the caller sets unique event ids per call.
func newEventsRequest(cfg Config, rng *mrand.Rand) *tlogv1.RecordEventsRequest {
	actions := []tlogv1.Action{tlogv1.Action_ACTION_ROLE_ASSIGNED, tlogv1.Action_ACTION_ROLE_REVOKED, tlogv1.Action_ACTION_LOGIN_FAILED,
		tlogv1.Action_ACTION_LOGIN_SUCCEEDED, tlogv1.Action_ACTION_PERMISSION_GRANTED, tlogv1.Action_ACTION_GROUP_MEMBER_ADDED}
	req := &tlogv1.RecordEventsRequest{IncludeProofs: cfg.Proofs, Events: make([]*tlogv1.AuditEvent, cfg.Batch)}
	for i := range req.Events {
		req.Events[i] = &tlogv1.AuditEvent{
			OccurredAt: timestamppb.Now(),
			Tenant:     fmt.Sprintf("tenant-%d", rng.IntN(10)),
			Actor:      &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: fmt.Sprintf("user-%d", rng.IntN(100000)), SourceIp: "192.0.2.1"},
			Action:     actions[rng.IntN(len(actions))],
			Target:     &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: fmt.Sprintf("user-%d", rng.IntN(100000))},
			Outcome:    tlogv1.Outcome_OUTCOME_SUCCESS,
			Changes:    []*tlogv1.Change{{Attribute: "role", OldValue: "viewer", NewValue: "editor"}},
		}
	}
	return req
}

// setCounters makes each payload of req unique for call number seq.
func setCounters(req *tlogv1.AppendRequest, seq uint64) {
	for _, r := range req.Records {
		binary.BigEndian.PutUint64(r.Payload[16:], seq)
	}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads a process's user+system CPU time from /proc (Linux).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}
