package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

var plainTilesLine = regexp.MustCompile(`"msg":"serving tlog-tiles","addr":"([^"]+)","tls":false`)

// TestWitnessAnotherTlogd runs two tlogd processes: one a log, the other a
// witness of it (keygen -cosigner, -witness-key, -witness-logs). The log's
// checkpoints and consistency proofs, taken over gRPC, are submitted to the
// witness, whose cosignatures verify with the key keygen printed.
func TestWitnessAnotherTlogd(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "-cosigner", "witness.example/w1", "-out", filepath.Join(dir, "w1.key")}, &out, &errb); code != 0 {
		t.Fatalf("keygen -cosigner: %s", errb.String())
	}
	_, wvkey, ok := strings.Cut(out.String(), "cosigner verifier key: ")
	if !ok {
		t.Fatalf("keygen -cosigner printed %q", out.String())
	}
	wv, err := tlog.NewCosignatureVerifier(strings.TrimSpace(wvkey))
	if err != nil {
		t.Fatal(err)
	}

	logd := startDaemon(t, bin, "-data-dir", filepath.Join(dir, "log"), "-origin", "log.example/audit", "-log-format", "json")
	os.WriteFile(filepath.Join(dir, "logs.policy"), []byte("# the logs this witness witnesses\nlog "+logd.vkey+"\nquorum none\n"), 0o644)
	witness := startDaemon(t, bin, "-data-dir", filepath.Join(dir, "witness"), "-origin", "witness.example/own-log", "-log-format", "json",
		"-http-listen", "127.0.0.1:0", "-witness-key", filepath.Join(dir, "w1.key"), "-witness-logs", filepath.Join(dir, "logs.policy"))
	var waddr string
	for deadline := time.Now().Add(10 * time.Second); waddr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := plainTilesLine.FindStringSubmatch(witness.stderrText()); m != nil {
			waddr = m[1]
		}
	}
	if waddr == "" {
		t.Fatalf("no HTTP address in the witness's log:\n%s", witness.stderrText())
	}

	client, _ := logd.client(t)
	ctx := context.Background()
	logVerifier, err := note.NewVerifier(logd.vkey)
	if err != nil {
		t.Fatal(err)
	}
	var old uint64
	for round := range 3 {
		req := &tlogv1.AppendRequest{}
		for i := range 10 {
			req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "round %d record %d", round, i)})
		}
		resp, err := client.Append(ctx, &tlogv1.AppendRequest{Records: req.Records, ConsistencyFrom: old})
		if err != nil {
			t.Fatal(err)
		}
		proof := make([]tlog.Hash, len(resp.GetConsistencyProof()))
		for i, h := range resp.GetConsistencyProof() {
			proof[i] = tlog.Hash(h)
		}
		if old == 0 {
			proof = nil
		}
		body := tlog.AddCheckpoint{OldSize: old, Proof: proof, Checkpoint: []byte(resp.GetCheckpoint())}.Marshal()
		r, err := http.Post("http://"+waddr+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		cosig, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("round %d: add-checkpoint: %d %s", round, r.StatusCode, cosig)
		}
		n, err := note.Open(append([]byte(resp.GetCheckpoint()), cosig...), note.VerifierList(logVerifier, wv))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("round %d: the cosigned checkpoint does not verify: %v", round, err)
		}
		c, err := tlog.ParseCheckpoint([]byte(n.Text))
		if err != nil {
			t.Fatal(err)
		}
		old = c.Size
	}
	// A stale old size gets the witness's latest size back.
	r, err := http.Post("http://"+waddr+"/add-checkpoint", "text/plain", strings.NewReader("old 10\n\n"+mustCheckpoint(t, client)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusConflict || string(b) != "30\n" {
		t.Fatalf("stale old size: %d %q", r.StatusCode, b)
	}
	witness.stop(t)
	logd.stop(t)
}

func mustCheckpoint(t *testing.T, client tlogv1.LogServiceClient) string {
	t.Helper()
	resp, err := client.GetCheckpoint(context.Background(), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCheckpoint()
}
