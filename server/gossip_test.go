package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// tilesOf serves l's tree over tlog-tiles, as the log would.
func tilesOf(t *testing.T, l *otherLog) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp, err := tlog.ParseTilePath(r.URL.Path)
		if err != nil || tp.Level == tlog.EntriesLevel {
			http.NotFound(w, r)
			return
		}
		data, err := sumdb.ReadTileData(sumdb.Tile{H: 8, L: tp.Level, N: int64(tp.Index), W: tp.Width}, l.hashes)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestGossipCatchesSplitView runs two witnesses that gossip, and a log
// that shows each of them another history: once at the same size, once at
// different sizes (proven from the log's own tiles). Both witnesses catch
// it within a few gossip intervals, keep evidence that verifies offline
// with only the log's key, count it, and stop cosigning the log.
func TestGossipCatchesSplitView(t *testing.T) {
	same := newOtherLog(t, "same.example/log", 20, false)
	sameFork := newOtherLog(t, same.origin, 20, true)
	sameFork.signer = same.signer
	sized := newOtherLog(t, "sized.example/log", 20, false)
	sizedFork := newOtherLog(t, sized.origin, 20, true)
	sizedFork.signer = sized.signer
	policy := fmt.Sprintf("log %s\nlog %s %s\nquorum none\n", same.vkey, sized.vkey, tilesOf(t, sized))
	logs, err := tlog.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}

	var lis [2]net.Listener
	var bases [2]string
	for i := range lis {
		if lis[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		bases[i] = "http://" + lis[i].Addr().String()
	}
	var ws [2]*testLog
	for i := range ws {
		skey, _, err := tlog.GenerateCosignerKey(fmt.Sprintf("witness.example/w%d", i), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cosigner, err := tlog.ParseCosignerKey(skey, nil)
		if err != nil {
			t.Fatal(err)
		}
		peer := bases[1-i] + "/witness"
		ws[i] = startLog(t, func(c *Config) {
			c.Witness = &WitnessConfig{Cosigner: cosigner, Logs: logs, Peers: []string{peer}, GossipInterval: 20 * time.Millisecond}
		})
		ws[i].serveHTTPOn(t, lis[i])
	}

	// The split: each witness gets its own history of each log.
	for _, sub := range []struct {
		base string
		cp   []byte
	}{
		{bases[0], same.signed(10, nil)}, {bases[1], sameFork.signed(10, nil)},
		{bases[0], sized.signed(20, nil)}, {bases[1], sizedFork.signed(10, nil)},
	} {
		if code, body, _ := add(t, sub.base, tlog.AddCheckpoint{Checkpoint: sub.cp}.Marshal()); code != http.StatusOK {
			t.Fatalf("add-checkpoint: %d %q", code, body)
		}
	}

	for _, l := range []*otherLog{same, sized} {
		h := sha256.Sum256([]byte(l.origin))
		v, err := note.NewVerifier(l.vkey)
		if err != nil {
			t.Fatal(err)
		}
		for i, base := range bases {
			var body []byte
			deadline := time.Now().Add(10 * time.Second)
			for {
				var code int
				body, code, _ = httpGet(t, fmt.Sprintf("%s/witness/%x/split-view", base, h), "")
				if code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("witness %d did not catch the split view of %s: %d %q\n%s", i, l.origin, code, body, ws[i].logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			var ev tlog.Evidence
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatal(err)
			}
			what, err := tlog.VerifyEvidence(ev, v)
			if err != nil {
				t.Fatalf("witness %d's evidence for %s does not hold: %v\n%s", i, l.origin, err, body)
			}
			wantKind := map[string]string{same.origin: "fork:", sized.origin: "inconsistent:"}[l.origin]
			if !strings.HasPrefix(what, wantKind) {
				t.Errorf("witness %d, %s: evidence proves %q, want %s", i, l.origin, what, wantKind)
			}
			// It no longer cosigns the log, whatever is offered.
			code, msg, _ := add(t, base, tlog.AddCheckpoint{OldSize: 10, Checkpoint: l.signed(10, nil)}.Marshal())
			if code != http.StatusUnprocessableEntity || !strings.Contains(msg, "split view") {
				t.Errorf("witness %d still answers %d %q for %s", i, code, msg, l.origin)
			}
			if !strings.Contains(ws[i].logs.String(), `"msg":"split view: the log showed two histories; this witness no longer cosigns it"`) {
				t.Errorf("witness %d logged no split view", i)
			}
			// The same evidence over gRPC.
			list, err := tlogv1.NewWitnessServiceClient(ws[i].conn).ListSplitViews(ctx(t), &tlogv1.ListSplitViewsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(list.GetSplitViews(), func(sv *tlogv1.SplitView) bool {
				return sv.GetOrigin() == l.origin && sv.GetEvidence() == string(body)
			}) {
				t.Errorf("witness %d: ListSplitViews lacks %s: %v", i, l.origin, list)
			}
			if m := scrape(t, ws[i]); !strings.Contains(m, fmt.Sprintf(`tlogd_split_views_total{origin=%q} 1`, l.origin)) {
				t.Errorf("witness %d: tlogd_split_views_total for %s is not 1", i, l.origin)
			}
		}
	}
}

// TestGossipAgrees: witnesses that saw one history, at different sizes,
// record nothing.
func TestGossipAgrees(t *testing.T) {
	l := newOtherLog(t, "honest.example/log", 40, false)
	logs, err := tlog.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", l.vkey, tilesOf(t, l))))
	if err != nil {
		t.Fatal(err)
	}
	var bases [2]string
	var lis [2]net.Listener
	for i := range lis {
		lis[i], _ = net.Listen("tcp", "127.0.0.1:0")
		bases[i] = "http://" + lis[i].Addr().String()
	}
	var ws [2]*testLog
	for i := range ws {
		skey, _, _ := tlog.GenerateCosignerKey(fmt.Sprintf("witness.example/w%d", i), rand.Reader)
		cosigner, _ := tlog.ParseCosignerKey(skey, nil)
		peer := bases[1-i] + "/witness"
		ws[i] = startLog(t, func(c *Config) {
			c.Witness = &WitnessConfig{Cosigner: cosigner, Logs: logs, Peers: []string{peer}, GossipInterval: 10 * time.Millisecond}
		})
		ws[i].serveHTTPOn(t, lis[i])
	}
	add(t, bases[0], tlog.AddCheckpoint{Checkpoint: l.signed(13, nil)}.Marshal())
	add(t, bases[1], tlog.AddCheckpoint{Checkpoint: l.signed(40, nil)}.Marshal())
	time.Sleep(300 * time.Millisecond) // many gossip rounds
	for i, w := range ws {
		if _, err := w.store.SplitView(l.origin); err == nil {
			t.Fatalf("witness %d recorded a split view of one history", i)
		}
	}
	if code, body, _ := add(t, bases[0], tlog.AddCheckpoint{OldSize: 13, Proof: l.proof(13, 40), Checkpoint: l.signed(40, nil)}.Marshal()); code != http.StatusOK {
		t.Fatalf("witness 0 stopped cosigning: %d %q", code, body)
	}
}
