package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// Gossip: a witness compares, every GossipInterval, the latest checkpoint
// it cosigned for each log with the ones its peers cosigned (their C2SP
// tlog-witness monitoring endpoints). Two checkpoints the log signed that
// are not one history are a split view: the witness keeps the evidence
// (tlog.Evidence, checkable offline), logs it, counts it and stops
// cosigning that log.
//
// Same size with different roots is evidence by itself. For different
// sizes the evidence needs the larger tree's view of the smaller size: the
// witness reads the log's tlog-tiles (the URL of the log's line in the
// policy), checks them against the larger checkpoint's root, and proves the
// root at the smaller size from them. If the log serves tiles of another
// view, or none, nothing can be proven yet and the next round tries again.

// runGossip does gossip rounds until the server stops.
func (s *Server) runGossip(store *storage.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopping
		cancel()
	}()
	tick := time.NewTicker(s.cfg.Witness.GossipInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.gossipRound(ctx, store)
		case <-ctx.Done():
			return
		}
	}
}

// gossipRound compares every witnessed log's latest cosigned checkpoint
// with every peer's.
func (s *Server) gossipRound(ctx context.Context, store *storage.Store) {
	for _, v := range s.cfg.Witness.Logs.Logs() {
		origin := v.Name()
		if _, err := store.SplitView(origin); err == nil {
			continue // caught already
		}
		for _, peer := range s.cfg.Witness.Peers {
			theirs, err := s.fetchWitnessed(ctx, peer, origin)
			if err != nil {
				s.log.Debug("gossip: peer unreadable", slog.String("peer", peer), slog.String("origin", origin), slog.String("error", err.Error()))
				continue
			}
			if theirs == nil {
				continue
			}
			if _, _, err := tlog.OpenCheckpoint(theirs, v); err != nil {
				s.log.Warn("gossip: a peer serves a checkpoint the log did not sign", slog.String("peer", peer), slog.String("origin", origin), slog.String("error", err.Error()))
				continue
			}
			if s.compareWithPeer(ctx, store, v, peer, theirs) {
				break
			}
		}
	}
}

// compareWithPeer compares theirs with this witness's latest cosigned
// checkpoint of the log v and records a split view; it reports whether it
// found one.
func (s *Server) compareWithPeer(ctx context.Context, store *storage.Store, v note.Verifier, peer string, theirs []byte) bool {
	origin := v.Name()
	// The evidence holds by itself, whatever this witness cosigns
	// meanwhile, so it is sought without the witness lock (it may read
	// the log's tiles); it is recorded under it, which add-checkpoint
	// checks under it too.
	mine, err := store.Witnessed(origin)
	if err != nil {
		return false // none yet (or unreadable: the next round retries)
	}
	ev, err := s.splitView(ctx, v, mine, theirs)
	if err != nil {
		s.log.Warn("gossip: views differ but no proof yet", slog.String("peer", peer), slog.String("origin", origin), slog.String("error", err.Error()))
		return false
	}
	if ev == nil {
		return false
	}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return false
	}
	s.witnessMu.Lock()
	err = store.SetSplitView(origin, append(b, '\n'))
	s.witnessMu.Unlock()
	if err != nil {
		s.log.Error("gossip: record split view", slog.String("origin", origin), slog.String("error", err.Error()))
		return false
	}
	s.metrics.splitViews.WithLabelValues(origin).Inc()
	s.log.Error("split view: the log showed two histories; this witness no longer cosigns it", slog.String("origin", origin),
		slog.String("peer", peer), slog.String("evidence", ev.Reason))
	return true
}

// splitView returns the evidence that mine and theirs, both signed by the
// log v, are not one history; nil if they are; an error if they may not be
// but it cannot be proven now.
func (s *Server) splitView(ctx context.Context, v note.Verifier, mine, theirs []byte) (*tlog.Evidence, error) {
	a, _, err := tlog.OpenCheckpoint(mine, v)
	if err != nil {
		return nil, err
	}
	b, _, err := tlog.OpenCheckpoint(theirs, v)
	if err != nil {
		return nil, err
	}
	small, large, smallNote, largeNote := a, b, mine, theirs
	if a.Size > b.Size {
		small, large, smallNote, largeNote = b, a, theirs, mine
	}
	ev := &tlog.Evidence{Format: tlog.EvidenceFormat, OldCheckpoint: string(smallNote), NewCheckpoint: string(largeNote)}
	switch {
	case small.Size == large.Size && small.Root == large.Root:
		return nil, nil
	case small.Size == large.Size:
		ev.Reason = fmt.Sprintf("two checkpoints of size %d with different roots", small.Size)
		return ev, nil
	case small.Size == 0:
		return nil, nil
	}
	url := s.cfg.Witness.Logs.LogURL(v.Name())
	if url == "" {
		return nil, errors.New("different sizes, and the policy gives no tlog-tiles URL for the log to compare them")
	}
	r := &tileFetcher{ctx: ctx, client: s.gossipClient(), base: strings.TrimSuffix(url, "/")}
	hr := sumdb.TileHashReader(sumdb.Tree{N: int64(large.Size), Hash: sumdb.Hash(large.Root)}, r)
	leaf, err := hr.ReadHashes([]int64{sumdb.StoredHashIndex(0, int64(small.Size))})
	if err != nil {
		return nil, fmt.Errorf("the log's tiles do not match its checkpoint of size %d: %w", large.Size, err)
	}
	p, err := sumdb.ProveRecord(int64(large.Size), int64(small.Size), hr)
	if err != nil {
		return nil, fmt.Errorf("the log's tiles do not match its checkpoint of size %d: %w", large.Size, err)
	}
	proof := make([]tlog.Hash, len(p))
	for i := range p {
		proof[i] = tlog.Hash(p[i])
	}
	root, err := tlog.PrefixRoot(small.Size, large.Size, tlog.Hash(leaf[0]), proof, large.Root)
	if err != nil {
		return nil, err
	}
	if root == small.Root {
		return nil, nil
	}
	ev.PrefixLeafHash = leaf[0][:]
	ev.PrefixProof = hashBytes(proof)
	ev.Reason = fmt.Sprintf("the log's tree of size %d holds a tree of size %d with root %s, not the root %s it signed", large.Size, small.Size, root, small.Root)
	return ev, nil
}

func (s *Server) gossipClient() *http.Client {
	if c := s.cfg.Witness.Client; c != nil {
		return c
	}
	return defaultGossipClient
}

// defaultGossipClient bounds every gossip request.
var defaultGossipClient = &http.Client{Timeout: 10 * time.Second}

// fetchWitnessed reads a peer's latest cosigned checkpoint of origin from
// its monitoring prefix: nil when it has none.
func (s *Server) fetchWitnessed(ctx context.Context, prefix, origin string) ([]byte, error) {
	h := sha256.Sum256([]byte(origin))
	body, code, err := httpGetBody(ctx, s.gossipClient(), strings.TrimSuffix(prefix, "/")+"/"+hex.EncodeToString(h[:])+"/checkpoint")
	switch {
	case err != nil:
		return nil, err
	case code == http.StatusNotFound:
		return nil, nil
	case code != http.StatusOK:
		return nil, fmt.Errorf("status %d: %s", code, bytes.TrimSpace(body))
	}
	return body, nil
}

func httpGetBody(ctx context.Context, c *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b, resp.StatusCode, err
}

// tileFetcher reads tlog-tiles hash tiles over HTTP for sumdb's tile
// reader, which checks them against a checkpoint's root.
type tileFetcher struct {
	ctx    context.Context
	client *http.Client
	base   string
}

func (f *tileFetcher) Height() int { return 8 }

func (f *tileFetcher) ReadTiles(tiles []sumdb.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := tlog.TilePath{Level: t.L, Index: uint64(t.N), Width: t.W}.String()
		b, code, err := httpGetBody(f.ctx, f.client, f.base+"/"+path)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", path, code)
		}
		out[i] = b
	}
	return out, nil
}

func (f *tileFetcher) SaveTiles([]sumdb.Tile, [][]byte) {}

// splitViewEvidence serves GET /witness/<origin hash>/split-view: the
// evidence of a split view this witness caught, as JSON (tlogctl verify
// -evidence checks it offline); 404 when there is none.
func (s *Server) splitViewEvidence(w http.ResponseWriter, r *http.Request) {
	s.serveWitnessRecord(w, r, (*storage.Store).SplitView, "application/json",
		"this witness has caught no split view of a log with that origin hash")
}

// witnessService serves tlog.v1.WitnessService.
type witnessService struct {
	tlogv1.UnimplementedWitnessServiceServer
	srv *Server
}

func (w *witnessService) ListSplitViews(ctx context.Context, _ *tlogv1.ListSplitViewsRequest) (*tlogv1.ListSplitViewsResponse, error) {
	s := w.srv
	if s.cfg.Witness == nil {
		return nil, status.Error(codes.FailedPrecondition, "this tlogd is not a witness (tlogd serve -witness-key): it keeps no split views")
	}
	store := s.store.Load()
	if store == nil {
		return nil, errNotReady
	}
	resp := &tlogv1.ListSplitViewsResponse{}
	for _, v := range s.cfg.Witness.Logs.Logs() {
		ev, err := store.SplitView(v.Name())
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, s.status(ctx, err)
		}
		resp.SplitViews = append(resp.SplitViews, &tlogv1.SplitView{Origin: v.Name(), Evidence: string(ev)})
	}
	return resp, nil
}

// witnessedOrigin returns the origin of the witnessed log whose origin has
// the given lower-case hex SHA-256.
func (s *Server) witnessedOrigin(hash string) (string, bool) {
	for _, v := range s.cfg.Witness.Logs.Logs() {
		if h := sha256.Sum256([]byte(v.Name())); hex.EncodeToString(h[:]) == hash {
			return v.Name(), true
		}
	}
	return "", false
}
