package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/tlogd/tlogd/tlog"
)

// otherLog is a log this witness witnesses, kept in memory with
// x/mod/sumdb/tlog: signed checkpoints and consistency proofs of any sizes.
type otherLog struct {
	t      *testing.T
	origin string
	signer note.Signer
	vkey   string
	hashes sumdb.HashReader
}

func newOtherLog(t *testing.T, origin string, leaves int, fork bool) *otherLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &otherLog{t: t, origin: origin, signer: signer, vkey: vkey, hashes: otherLeaves(leaves, fork)}
}

// otherLeaves returns the hashes of a tree of n leaves; a forked tree
// differs from leaf 6 on.
func otherLeaves(n int, fork bool) sumdb.HashReader {
	leaves := make([][]byte, n)
	for i := range leaves {
		s := fmt.Sprintf("leaf %d", i)
		if fork && i >= 6 {
			s += " forked"
		}
		h := sumdb.RecordHash([]byte(s))
		leaves[i] = h[:]
	}
	return sumdbLeaves(leaves)
}

func (l *otherLog) root(size int64) tlog.Hash {
	if size == 0 {
		return tlog.EmptyRoot
	}
	h, err := sumdb.TreeHash(size, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	return tlog.Hash(h)
}

// signed returns the signed checkpoint of size, with the root given (the
// tree's when nil), signed by signers (the log's key when none).
func (l *otherLog) signed(size int64, root *tlog.Hash, signers ...note.Signer) []byte {
	r := l.root(size)
	if root != nil {
		r = *root
	}
	if len(signers) == 0 {
		signers = []note.Signer{l.signer}
	}
	msg, err := note.Sign(&note.Note{Text: string(tlog.Checkpoint{Origin: l.origin, Size: uint64(size), Root: r}.Marshal())}, signers...)
	if err != nil {
		l.t.Fatal(err)
	}
	return msg
}

func (l *otherLog) proof(old, size int64) []tlog.Hash {
	if old == 0 || old == size {
		return nil
	}
	p, err := sumdb.ProveTree(size, old, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	out := make([]tlog.Hash, len(p))
	for i := range p {
		out[i] = tlog.Hash(p[i])
	}
	return out
}

// witnessClient keeps enough connections open for TestWitnessIsAtomic to
// send all its requests at once.
var witnessClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// add posts an add-checkpoint request and returns the status and body.
func add(t *testing.T, base string, body []byte) (int, string, http.Header) {
	t.Helper()
	resp, err := witnessClient.Post(base+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func startWitness(t *testing.T, setup func(*Server), logs ...*otherLog) (*testLog, string, *tlog.CosignatureVerifier) {
	t.Helper()
	skey, _, err := tlog.GenerateCosignerKey("witness.example/w1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := tlog.ParseCosignerKey(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&policy, "log %s\n", l.vkey)
	}
	policy.WriteString("quorum none\n")
	p, err := tlog.ParsePolicy([]byte(policy.String()))
	if err != nil {
		t.Fatal(err)
	}
	tl := startLog(t, func(c *Config) { c.Witness = &WitnessConfig{Cosigner: cosigner, Logs: p} }, setup)
	return tl, tl.serveHTTP(t), cosigner.Verifier()
}

// TestWitnessProtocol walks C2SP tlog-witness add-checkpoint through each
// status code of the specification.
func TestWitnessProtocol(t *testing.T) {
	other := newOtherLog(t, "other.example/log", 40, false)
	fresh := newOtherLog(t, "fresh.example/log", 1, false)
	tl, base, wv := startWitness(t, func(*Server) {}, other, fresh)
	req := func(old, size int64, cp []byte, proof []tlog.Hash) []byte {
		if cp == nil {
			cp = other.signed(size, nil)
		}
		if proof == nil {
			proof = other.proof(old, size)
		}
		return tlog.AddCheckpoint{OldSize: uint64(old), Proof: proof, Checkpoint: cp}.Marshal()
	}
	cosigned := func(old, size int64) {
		t.Helper()
		cp := other.signed(size, nil)
		start := time.Now().Add(-time.Second)
		code, body, h := add(t, base, req(old, size, cp, nil))
		if code != http.StatusOK {
			t.Fatalf("old %d → %d: %d %q", old, size, code, body)
		}
		if !strings.HasPrefix(body, "— witness.example/w1 ") || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 {
			t.Fatalf("old %d → %d: body %q is not one signature line", old, size, body)
		}
		if h.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type %q", h.Get("Content-Type"))
		}
		// As the specification suggests: append the line to the
		// checkpoint and open it with the witness key.
		n, err := note.Open(append(cp, body...), note.VerifierList(wv))
		if err != nil || len(n.Sigs) != 1 {
			t.Fatalf("old %d → %d: cosignature does not verify: %v", old, size, err)
		}
		ts, err := tlog.CosignatureTime(n.Sigs[0])
		if err != nil || ts.Before(start.Truncate(time.Second)) || ts.After(time.Now()) {
			t.Fatalf("cosignature time %v, %v", ts, err)
		}
	}
	status := func(body []byte, want int, wantBody string) {
		t.Helper()
		code, got, _ := add(t, base, body)
		if code != want || !strings.Contains(got, wantBody) {
			t.Fatalf("add-checkpoint %q: %d %q, want %d with %q", body, code, got, want, wantBody)
		}
	}

	cosigned(0, 5)
	// The old size must be the latest cosigned one: 409 with that size.
	code, body, h := add(t, base, req(0, 8, nil, nil))
	if code != http.StatusConflict || body != "5\n" || h.Get("Content-Type") != "text/x.tlog.size" {
		t.Fatalf("stale old size: %d %q %q", code, body, h.Get("Content-Type"))
	}
	status(req(3, 8, nil, nil), http.StatusConflict, "5\n")
	cosigned(5, 8)
	cosigned(8, 8) // the same checkpoint again
	cosigned(8, 20)

	// Not consistent: 422, and nothing changes.
	bad := other.proof(20, 30)
	bad[0][0] ^= 1
	status(req(20, 30, nil, bad), http.StatusUnprocessableEntity, "not consistent")
	forked := newOtherLog(t, other.origin, 40, true)
	forked.signer = other.signer
	status(req(20, 30, forked.signed(30, nil), forked.proof(20, 30)), http.StatusUnprocessableEntity, "not consistent")
	root := forked.root(20)
	status(req(20, 20, other.signed(20, &root), []tlog.Hash{}), http.StatusUnprocessableEntity, "was cosigned with root")
	status(req(20, 20, nil, other.proof(8, 20)), http.StatusUnprocessableEntity, "was cosigned with root")
	status(req(20, 30, nil, other.proof(20, 30)[1:]), http.StatusUnprocessableEntity, "not consistent")
	cosigned(20, 40)

	// Unknown log: 404. A checkpoint without a valid signature by the
	// log's key: 403.
	stranger := newOtherLog(t, "stranger.example/log", 4, false)
	status(tlog.AddCheckpoint{OldSize: 0, Checkpoint: stranger.signed(4, nil)}.Marshal(), http.StatusNotFound, "unknown log")
	impostor := newOtherLog(t, other.origin, 40, false)
	status(req(40, 40, impostor.signed(40, nil), nil), http.StatusForbidden, "no valid signature")
	broken := other.signed(40, nil)
	i := strings.LastIndex(string(broken), " ")
	// Another base64 letter (flipping a bit could make it no letter at
	// all: a malformed note, 400).
	if broken[i+3] == 'A' {
		broken[i+3] = 'B'
	} else {
		broken[i+3] = 'A'
	}
	status(req(40, 40, broken, nil), http.StatusForbidden, "no valid signature")

	// Malformed: 400.
	status(req(41, 40, nil, []tlog.Hash{}), http.StatusBadRequest, "beyond the checkpoint")
	status([]byte("old 040\n\n"+string(other.signed(40, nil))), http.StatusBadRequest, "old size")
	status([]byte("old 40\n"+string(other.signed(40, nil))), http.StatusBadRequest, "")
	status([]byte("old 40\n\n"), http.StatusBadRequest, "no checkpoint")
	status([]byte("new 40\n\n"+string(other.signed(40, nil))), http.StatusBadRequest, "old <size>")
	status(req(40, 40, nil, make([]tlog.Hash, 64)), http.StatusBadRequest, "more than 63")
	status([]byte("old 40\n\nother.example/log\n40\n"), http.StatusBadRequest, "checkpoint")

	// Size 0 must have the empty root; old size 0 takes no proof.
	wrong := tlog.Hash(sha256.Sum256([]byte("x")))
	status(tlog.AddCheckpoint{Checkpoint: fresh.signed(0, &wrong)}.Marshal(), http.StatusUnprocessableEntity, "empty tree")
	status(tlog.AddCheckpoint{Proof: []tlog.Hash{wrong}, Checkpoint: fresh.signed(1, nil)}.Marshal(), http.StatusUnprocessableEntity, "no consistency proof")

	// The monitoring endpoint serves the latest cosigned checkpoint with
	// the log's signature and the cosignature; 404 for a log with none, or
	// an unknown origin hash.
	logV, err := note.NewVerifier(other.vkey)
	if err != nil {
		t.Fatal(err)
	}
	hash := func(origin string) string { h := sha256.Sum256([]byte(origin)); return hex.EncodeToString(h[:]) }
	monitored, code, h := httpGet(t, base+"/witness/"+hash(other.origin)+"/checkpoint", "")
	n, err := note.Open(monitored, note.VerifierList(logV, wv))
	if code != http.StatusOK || h.Get("Content-Type") != "text/plain; charset=utf-8" || err != nil || len(n.Sigs) != 2 || !strings.HasPrefix(n.Text, other.origin+"\n40\n") {
		t.Fatalf("monitoring endpoint: %d %q: %v", code, monitored, err)
	}
	for _, origin := range []string{fresh.origin, "stranger.example/log"} {
		if _, code, _ := httpGet(t, base+"/witness/"+hash(origin)+"/checkpoint", ""); code != http.StatusNotFound {
			t.Errorf("monitoring endpoint for %s: %d, want 404", origin, code)
		}
	}
	metrics := scrape(t, tl)
	for _, want := range []string{`tlogd_witness_requests_total{status="OK"} 5`, `tlogd_witness_requests_total{status="Conflict"} 2`, `tlogd_witness_requests_total{status="Unprocessable Entity"} 7`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestWitnessIsAtomic sends many requests from the same old size at once,
// round after round: exactly one may be cosigned each round; the others
// must get 409, never a cosignature that rolls the witness back.
func TestWitnessIsAtomic(t *testing.T) {
	const rounds, per = 10, 20
	other := newOtherLog(t, "other.example/log", 1+rounds*per, false)
	// Widen the window between the check and the update, so that requests
	// overlap in it unless they are serialized.
	_, base, _ := startWitness(t, func(s *Server) {
		s.testHook = func(_ context.Context, method string) {
			if method == "/add-checkpoint" {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}, other)
	// Open the connections first.
	var wg sync.WaitGroup
	for range per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			add(t, base, []byte("warm up"))
		}()
	}
	wg.Wait()
	old := int64(0)
	for round := range rounds {
		codes := make([]int, per)
		start := make(chan struct{})
		for i := range codes {
			size := old + 1 + int64(i)
			body := tlog.AddCheckpoint{OldSize: uint64(old), Proof: other.proof(old, size), Checkpoint: other.signed(size, nil)}.Marshal()
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				codes[i], _, _ = add(t, base, body)
			}()
		}
		close(start)
		wg.Wait()
		won := -1
		for i, c := range codes {
			switch {
			case c == http.StatusOK && won < 0:
				won = i
			case c == http.StatusOK:
				t.Fatalf("round %d: requests from size %d to sizes %d and %d were both cosigned", round, old, old+1+int64(won), old+1+int64(i))
			case c != http.StatusConflict:
				t.Fatalf("round %d: status %d", round, c)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no request from size %d was cosigned", round, old)
		}
		old += 1 + int64(won)
	}
}

// scrape returns the server's metrics in the text format.
func scrape(t *testing.T, tl *testLog) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tl.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}
