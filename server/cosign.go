package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// CosigningConfig makes the log collect cosignatures of its checkpoints from
// witnesses over the C2SP tlog-witness protocol.
type CosigningConfig struct {
	// Policy is a C2SP tlog-policy: its witness lines, each with its URL
	// (the witness's submission prefix), are the witnesses to ask; its
	// quorum says when a checkpoint counts as cosigned.
	Policy *tlog.Policy
	// Client makes the requests; default: a client with a 10 s timeout.
	Client *http.Client
}

// cosigned is a checkpoint with cosignatures meeting the quorum.
type cosigned struct {
	size uint64
	note []byte // the log's signed checkpoint followed by the cosignature lines
}

// cosigning runs the rounds: after each new checkpoint, once the previous
// round is over, it submits the latest checkpoint to every witness at once.
type cosigning struct {
	srv       *Server
	policy    *tlog.Policy
	client    *http.Client
	witnesses []*remoteWitness
	latest    atomic.Pointer[cosigned]
	mu        sync.Mutex
	changed   chan struct{} // closed when latest changes
}

// remoteWitness is one witness and the latest size it cosigned, as far as
// this log knows (0 at start: a 409 answer tells the truth).
type remoteWitness struct {
	v       *tlog.CosignatureVerifier
	url     string
	size    uint64
	failing bool // the last round failed; logged once per change
}

func newCosigning(srv *Server, cfg *CosigningConfig) *cosigning {
	c := &cosigning{srv: srv, policy: cfg.Policy, client: cfg.Client, changed: make(chan struct{})}
	if c.client == nil {
		c.client = &http.Client{Timeout: 10 * time.Second}
	}
	for _, w := range cfg.Policy.Witnesses() {
		c.witnesses = append(c.witnesses, &remoteWitness{v: w, url: strings.TrimSuffix(cfg.Policy.WitnessURL(w), "/")})
	}
	return c
}

// run does rounds until the server stops.
func (c *cosigning) run(store *storage.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.srv.stopping
		cancel()
	}()
	var done uint64
	for ctx.Err() == nil {
		grown := store.Grown()
		if head := store.Head(); head.Size > 0 && head.Size != done {
			if c.round(ctx, store, head) {
				done = head.Size
			} else {
				// Retry after a pause, even if the log does not grow.
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
				continue
			}
		}
		select {
		case <-grown:
		case <-ctx.Done():
		}
	}
}

// round submits head to every witness and publishes it with their
// cosignatures if they meet the quorum. It reports whether they did.
func (c *cosigning) round(ctx context.Context, store *storage.Store, head storage.Head) bool {
	lines := make([][]byte, len(c.witnesses))
	var wg sync.WaitGroup
	for i, w := range c.witnesses {
		wg.Go(func() {
			line, err := c.submit(ctx, store, w, head)
			result := "ok"
			if err != nil {
				result = "error"
				if !w.failing && ctx.Err() == nil {
					c.srv.log.Warn("witness did not cosign", slog.String("witness", w.v.Name()), slog.String("url", w.url),
						slog.Uint64("tree_size", head.Size), slog.String("error", err.Error()))
				}
			} else if w.failing {
				c.srv.log.Info("witness cosigns again", slog.String("witness", w.v.Name()), slog.Uint64("tree_size", head.Size))
			}
			w.failing = err != nil
			c.srv.metrics.cosignatures.WithLabelValues(w.v.Name(), result).Inc()
			lines[i] = line
		})
	}
	wg.Wait()
	var got []*tlog.CosignatureVerifier
	msg := bytes.Clone(head.Checkpoint)
	for i, l := range lines {
		if l != nil {
			got = append(got, c.witnesses[i].v)
			msg = append(msg, l...)
		}
	}
	if !c.policy.Met(got) {
		return false
	}
	c.mu.Lock()
	c.latest.Store(&cosigned{size: head.Size, note: msg})
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.srv.metrics.cosignedSize.Set(float64(head.Size))
	return true
}

// submit asks one witness to cosign head, learning its latest size from a
// 409 answer, and returns its verified cosignature line.
func (c *cosigning) submit(ctx context.Context, store *storage.Store, w *remoteWitness, head storage.Head) ([]byte, error) {
	for range 2 {
		if w.size > head.Size {
			return nil, fmt.Errorf("the witness cosigned size %d of this log, beyond its size %d", w.size, head.Size)
		}
		var proof []tlog.Hash
		if w.size > 0 && w.size < head.Size {
			var err error
			if proof, err = store.ConsistencyProof(w.size, head.Size); err != nil {
				return nil, err
			}
		}
		body := tlog.AddCheckpoint{OldSize: w.size, Proof: proof, Checkpoint: head.Checkpoint}.Marshal()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url+"/add-checkpoint", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return nil, err
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return cosignatureLine(head.Checkpoint, answer, w.v)
		case http.StatusConflict:
			size, ok := strings.CutSuffix(string(answer), "\n")
			n, err := strconv.ParseUint(size, 10, 64)
			if !ok || err != nil || strconv.FormatUint(n, 10) != size {
				return nil, fmt.Errorf("409 with a malformed size %q", answer)
			}
			w.size = n
		default:
			return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(answer))
		}
	}
	return nil, fmt.Errorf("the witness's latest size keeps changing")
}

// cosignatureLine checks a witness's answer, signature lines, against the
// checkpoint and returns the witness's own line.
func cosignatureLine(checkpoint, answer []byte, v *tlog.CosignatureVerifier) ([]byte, error) {
	n, err := note.Open(append(bytes.Clone(checkpoint), answer...), note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("the answer holds no valid cosignature by %s: %w", v.Name(), err)
	}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			return fmt.Appendf(nil, "— %s %s\n", s.Name, s.Base64), nil
		}
	}
	return nil, fmt.Errorf("the answer holds no cosignature by %s", v.Name())
}

// wait returns the latest cosigned checkpoint once it covers size.
func (c *cosigning) wait(ctx context.Context, size uint64) (*cosigned, error) {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cur := c.latest.Load(); cur != nil && cur.size >= size {
			return cur, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
