package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/tlog"
)

func newClient(t *testing.T, f *fakeLog, state string) *client.Client {
	t.Helper()
	c, err := client.New(f.serve(t), client.Config{Origin: f.origin, VerifierKey: f.vkey, StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAppendVerifies(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	c := newClient(t, f, "")
	res, cp, err := c.Append(context.Background(), []byte("user alice created"), []byte("role admin granted"))
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 2 || res[0].Index != 0 || res[1].Index != 1 || len(res[1].Proof) != 1 {
		t.Fatalf("results %+v at size %d", res, cp.Size)
	}
	if tr, ok := c.Trusted(); !ok || tr.Size != 2 {
		t.Fatalf("trusted %+v", tr)
	}
}

// TestLyingServer makes the server lie in every way the client must catch.
func TestLyingServer(t *testing.T) {
	for _, lie := range []string{"wrong-signature", "wrong-proof", "bad-commitment"} {
		t.Run(lie, func(t *testing.T) {
			f := newFakeLog(t, "example.com/audit")
			c := newClient(t, f, "")
			if _, _, err := c.Append(context.Background(), []byte("honest")); err != nil {
				t.Fatal(err)
			}
			f.lie = lie
			_, _, err := c.Append(context.Background(), []byte("lied about"))
			var ve *client.VerificationError
			if !errors.Is(err, client.ErrVerification) || !errors.As(err, &ve) {
				t.Fatalf("Append from a server that lies (%s): %v", lie, err)
			}
			if tr, _ := c.Trusted(); tr.Size != 1 {
				t.Fatalf("a lie moved the trusted checkpoint to %d", tr.Size)
			}
		})
	}
	t.Run("forked history", func(t *testing.T) {
		f := newFakeLog(t, "example.com/audit")
		c := newClient(t, f, "")
		if _, _, err := c.Append(context.Background(), []byte("a"), []byte("b"), []byte("c")); err != nil {
			t.Fatal(err)
		}
		old, _ := c.Trusted()
		// The log rewrites its history: a different first record, then more.
		f.mu.Lock()
		f.reset()
		for _, p := range []string{"A", "b", "c", "d"} {
			f.add([]byte(p))
		}
		f.sign()
		f.mu.Unlock()
		_, err := c.Update(context.Background())
		var ie *client.InconsistencyError
		if !errors.As(err, &ie) || !errors.Is(err, client.ErrVerification) {
			t.Fatalf("Update after a fork: %v", err)
		}
		if ie.Old.Size != 3 || ie.New.Size != 4 || string(ie.Old.Note) != string(old.Note) || len(ie.Proof) == 0 {
			t.Fatalf("evidence: %+v", ie)
		}
		// The evidence verifies offline with only the verifier key.
		what, err := client.VerifyEvidence(ie.Evidence(), f.vkey)
		if err != nil {
			t.Fatalf("VerifyEvidence: %v", err)
		}
		t.Log(what)
	})
	t.Run("same size, different root", func(t *testing.T) {
		f := newFakeLog(t, "example.com/audit")
		c := newClient(t, f, "")
		if _, _, err := c.Append(context.Background(), []byte("a"), []byte("b")); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		f.reset()
		f.add([]byte("x"))
		f.add([]byte("y"))
		f.sign()
		f.mu.Unlock()
		_, err := c.Update(context.Background())
		var ie *client.InconsistencyError
		if !errors.As(err, &ie) || ie.Old.Size != 2 || ie.New.Size != 2 {
			t.Fatalf("Update after a same-size fork: %v", err)
		}
		what, err := client.VerifyEvidence(ie.Evidence(), f.vkey)
		if err != nil || what[:4] != "fork" {
			t.Fatalf("VerifyEvidence: %q %v", what, err)
		}
	})
	t.Run("fork seen by Append", func(t *testing.T) {
		f := newFakeLog(t, "example.com/audit")
		c := newClient(t, f, "")
		for _, p := range []string{"a", "b", "c"} {
			if _, _, err := c.Append(context.Background(), []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		if f.consistencyCalls != 0 {
			t.Fatalf("Append fetched %d consistency proofs; the response carries them", f.consistencyCalls)
		}
		f.mu.Lock()
		f.reset()
		f.add([]byte("A"))
		f.add([]byte("b"))
		f.mu.Unlock()
		_, _, err := c.Append(context.Background(), []byte("d"), []byte("e"))
		var ie *client.InconsistencyError
		if !errors.As(err, &ie) || ie.Old.Size != 3 || ie.New.Size != 4 || len(ie.Proof) == 0 {
			t.Fatalf("Append on a forked log: %v", err)
		}
		if _, err := client.VerifyEvidence(ie.Evidence(), f.vkey); err != nil {
			t.Fatalf("evidence from Append: %v", err)
		}
	})
	t.Run("rolled-back size", func(t *testing.T) {
		f := newFakeLog(t, "example.com/audit")
		c := newClient(t, f, "")
		for _, p := range []string{"a", "b"} {
			if _, _, err := c.Append(context.Background(), []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		f.lie = "rollback"
		_, err := c.Update(context.Background())
		var ie *client.InconsistencyError
		if !errors.As(err, &ie) || ie.New.Size != 1 || ie.Old.Size != 2 {
			t.Fatalf("Update after a rollback: %v", err)
		}
	})
	t.Run("wrong entry in a range", func(t *testing.T) {
		f := newFakeLog(t, "example.com/audit")
		c := newClient(t, f, "")
		if _, _, err := c.Append(context.Background(), []byte("a"), []byte("b"), []byte("c"), []byte("d")); err != nil {
			t.Fatal(err)
		}
		cp, _ := c.Trusted()
		f.lie = "wrong-entry"
		n := 0
		var err error
		for _, err = range c.Entries(context.Background(), cp, 0, 0, false) {
			if err != nil {
				break
			}
			n++
		}
		if !errors.Is(err, client.ErrVerification) || n != 0 {
			t.Fatalf("Entries with a changed entry yielded %d entries, then %v", n, err)
		}
	})
	t.Run("forged evidence", func(t *testing.T) {
		f := newFakeLog(t, "example.com/audit")
		other := newFakeLog(t, "example.com/audit")
		ev := client.Evidence{Format: client.EvidenceFormat, OldCheckpoint: string(f.signed[0]), NewCheckpoint: string(other.signed[0])}
		if _, err := client.VerifyEvidence(ev, f.vkey); err == nil {
			t.Fatal("evidence with a checkpoint from another key verified")
		}
	})
}

func TestEntriesVerified(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	c := newClient(t, f, "")
	ps := events(2500)
	if _, _, err := c.Append(context.Background(), ps...); err != nil {
		t.Fatal(err)
	}
	cp, _ := c.Trusted()
	for _, r := range [][2]uint64{{0, 0}, {7, 1300}, {2499, 2500}} {
		var got []client.Entry
		for e, err := range c.Entries(context.Background(), cp, r[0], r[1], true) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		end := r[1]
		if end == 0 {
			end = 2500
		}
		if uint64(len(got)) != end-r[0] || got[0].Index != r[0] || string(got[len(got)-1].Payload) != string(ps[end-1]) {
			t.Fatalf("range %v: %d entries", r, len(got))
		}
	}
}

func TestStatePersists(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	state := filepath.Join(t.TempDir(), "state")
	c := newClient(t, f, state)
	if _, _, err := c.Append(context.Background(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := tlog.ParseCheckpoint(b[:indexBlank(b)+1]); err != nil || cp.Size != 1 {
		t.Fatalf("state %q: %v", b, err)
	}
	// A new client picks the state up and catches a fork against it.
	c2 := newClient(t, f, state)
	if tr, ok := c2.Trusted(); !ok || tr.Size != 1 {
		t.Fatalf("reloaded state: %+v", tr)
	}
	f.mu.Lock()
	f.reset()
	f.add([]byte("b"))
	f.sign()
	f.mu.Unlock()
	var ie *client.InconsistencyError
	if _, err := c2.Update(context.Background()); !errors.As(err, &ie) {
		t.Fatalf("fork against persisted state: %v", err)
	}
	// A corrupted state file is refused, not silently replaced.
	os.WriteFile(state, []byte("garbage"), 0o600)
	if _, err := client.New(f.serve(t), client.Config{VerifierKey: f.vkey, StatePath: state}); err == nil {
		t.Fatal("a corrupted state file was accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	if _, err := client.New(f.serve(t), client.Config{Origin: "example.com/other", VerifierKey: f.vkey}); err == nil {
		t.Fatal("origin and key mismatch accepted")
	}
	if _, err := client.New(f.serve(t), client.Config{VerifierKey: "nonsense"}); err == nil {
		t.Fatal("bad verifier key accepted")
	}
}

func TestProvePayload(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	c := newClient(t, f, "")
	if _, _, err := c.Append(context.Background(), []byte("user alice created"), []byte("role admin granted to alice"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	p, cp, err := c.ProvePayload(context.Background(), []byte("role admin granted to alice"))
	if err != nil || p.Index != 1 || cp.Size != 3 {
		t.Fatalf("ProvePayload: index %d at size %d, %v", p.Index, cp.Size, err)
	}
	// The bundle stands alone: parse it back and check it with the key only.
	back, err := tlog.ParseProof(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	entry, salt, err := tlog.ParseRecordExtra(back.Extra)
	if err != nil || tlog.VerifyRecord(entry, salt, []byte("role admin granted to alice")) != nil {
		t.Fatalf("bundle extra: %v", err)
	}
	v, _ := note.NewVerifier(f.vkey)
	if _, err := back.Verify(tlog.LeafHash(entry), v); err != nil {
		t.Fatalf("bundle does not verify: %v", err)
	}
	if _, _, err := c.ProvePayload(context.Background(), []byte("never appended")); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown payload: %v", err)
	}
	f.lie = "bad-commitment"
	if _, _, err := c.ProvePayload(context.Background(), []byte("x")); !errors.Is(err, client.ErrVerification) {
		t.Fatalf("a wrong salt was not caught: %v", err)
	}
}

// TestConcurrentAppends: answers arrive out of order, which is not a
// rollback.
func TestConcurrentAppends(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	c := newClient(t, f, "")
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			for i := range 20 {
				if _, _, err := c.Append(context.Background(), fmt.Appendf(nil, "g%d-%d", g, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if tr, _ := c.Trusted(); tr.Size != 320 {
		t.Fatalf("trusted size %d, want 320", tr.Size)
	}
}

// TestEvidenceMustProveItself: evidence holds only when it proves two
// histories on its own; honest checkpoints with a made-up proof do not.
func TestEvidenceMustProveItself(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	for _, p := range []string{"a", "b", "c"} {
		f.add([]byte(p))
	}
	f.sign()
	f.add([]byte("d"))
	f.sign()
	three, four := string(f.signed[3]), string(f.signed[4])
	for name, ev := range map[string]client.Evidence{
		"consistent, no proof":       {OldCheckpoint: three, NewCheckpoint: four},
		"consistent, made-up proof":  {OldCheckpoint: three, NewCheckpoint: four, ConsistencyProof: [][]byte{make([]byte, 32)}},
		"consistent, made-up prefix": {OldCheckpoint: three, NewCheckpoint: four, PrefixLeafHash: make([]byte, 32), PrefixProof: [][]byte{make([]byte, 32)}},
		"rollback":                   {OldCheckpoint: four, NewCheckpoint: three},
		"the same checkpoint twice":  {OldCheckpoint: four, NewCheckpoint: four},
	} {
		ev.Format = client.EvidenceFormat
		if what, err := client.VerifyEvidence(ev, f.vkey); !errors.Is(err, client.ErrNoProof) {
			t.Errorf("%s: VerifyEvidence = %q, %v; want ErrNoProof", name, what, err)
		}
	}
	if _, err := client.ParseEvidence([]byte(`{"format":"tlogd-evidence/v1","extra":1}`)); err == nil {
		t.Error("ParseEvidence accepted an unknown field")
	}
}

// TestForkEvidenceForms: the log rewrites entry 1 and grows; the evidence
// holds whether the client could fetch the prefix proof or only had the
// log's consistency proof, except that a consistency proof alone cannot
// prove a fork from a power-of-two size.
func TestForkEvidenceForms(t *testing.T) {
	for _, old := range []int{3, 4} {
		f := newFakeLog(t, "example.com/audit")
		c := newClient(t, f, "")
		for i := range old {
			if _, _, err := c.Append(context.Background(), fmt.Appendf(nil, "r%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		f.mu.Lock()
		f.reset()
		for i := range old + 3 {
			f.add(fmt.Appendf(nil, "forked r%d", i))
		}
		f.sign()
		f.mu.Unlock()
		_, err := c.Update(context.Background())
		var ie *client.InconsistencyError
		if !errors.As(err, &ie) || ie.PrefixLeaf == nil {
			t.Fatalf("old size %d: %v", old, err)
		}
		ev := ie.Evidence()
		if what, err := client.VerifyEvidence(ev, f.vkey); err != nil || !strings.HasPrefix(what, "inconsistent") {
			t.Fatalf("old size %d, with the prefix proof: %q %v", old, what, err)
		}
		ev.PrefixLeafHash, ev.PrefixProof = nil, nil
		what, err := client.VerifyEvidence(ev, f.vkey)
		if tlog.IsPowerOfTwo(uint64(old)) {
			if !errors.Is(err, client.ErrNoProof) {
				t.Fatalf("old size %d, consistency proof only: %q %v", old, what, err)
			}
		} else if err != nil {
			t.Fatalf("old size %d, consistency proof only: %v", old, err)
		}
	}
}

func TestReplay(t *testing.T) {
	f := newFakeLog(t, "example.com/audit")
	c := newClient(t, f, "")
	ps := events(30)
	if _, _, err := c.Append(context.Background(), ps[:12]...); err != nil {
		t.Fatal(err)
	}
	cp12, _ := c.Trusted()
	tree, _ := tlog.NewTree(0, nil)
	n := 0
	if err := c.Replay(context.Background(), tree, cp12, func(client.Entry) error { n++; return nil }); err != nil || n != 12 {
		t.Fatalf("Replay to 12: %d entries, %v", n, err)
	}
	// From where it stopped, to the next checkpoint.
	if _, _, err := c.Append(context.Background(), ps[12:]...); err != nil {
		t.Fatal(err)
	}
	cp30, _ := c.Trusted()
	if err := c.Replay(context.Background(), tree, cp30, nil); err != nil || tree.Size() != 30 {
		t.Fatalf("Replay to 30: size %d, %v", tree.Size(), err)
	}
	// A changed entry changes the root.
	f.lie = "wrong-entry"
	fresh, _ := tlog.NewTree(0, nil)
	if err := c.Replay(context.Background(), fresh, cp30, nil); !errors.Is(err, client.ErrVerification) {
		t.Fatalf("Replay of a changed entry: %v", err)
	}
}

// events returns n distinct payloads.
func events(n int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = fmt.Appendf(nil, "event %d", i)
	}
	return ps
}
