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

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

var plainTilesLine = regexp.MustCompile(`"msg":"serving http","addr":"([^"]+)","tls":false`)

// TestWitnessAnotherTlogd runs two tlogd processes: a log and a witness of
// it (keygen -cosigner, -witness-key, -witness-logs). The log asks the
// witness for cosignatures (-witness-policy), and an Append that waits for
// the witnesses gets a checkpoint cosigned with the key keygen printed.
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
	wvkey = strings.TrimSpace(wvkey)
	out.Reset()
	if code := run([]string{"keygen", "-origin", "log.example/audit", "-out", filepath.Join(dir, "log.key")}, &out, &errb); code != 0 {
		t.Fatalf("keygen: %s", errb.String())
	}
	_, logVkey, _ := strings.Cut(out.String(), "verifier key: ")
	logVkey = strings.TrimSpace(logVkey)

	os.WriteFile(filepath.Join(dir, "logs.policy"), []byte("# the logs this witness witnesses\nlog "+logVkey+"\nquorum none\n"), 0o644)
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
	policy := fmt.Sprintf("log %s\nwitness W1 %s http://%s\nquorum W1\n", logVkey, wvkey, waddr)
	os.WriteFile(filepath.Join(dir, "witnesses.policy"), []byte(policy), 0o644)
	logd := startDaemon(t, bin, "-data-dir", filepath.Join(dir, "log"), "-key-file", filepath.Join(dir, "log.key"),
		"-witness-policy", filepath.Join(dir, "witnesses.policy"), "-log-format", "json")
	p, err := tlog.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}

	client, _ := logd.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for round := range 3 {
		req := &tlogv1.AppendRequest{WaitForWitnesses: true}
		for i := range 10 {
			req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "round %d record %d", round, i)})
		}
		resp, err := client.Append(ctx, req)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		c, _, cosigners, err := p.Open([]byte(resp.GetCheckpoint()))
		if err != nil || len(cosigners) != 1 || c.Size < uint64(10*(round+1)) {
			t.Fatalf("round %d: checkpoint of size %d with %d cosignatures: %v\n%s", round, c.Size, len(cosigners), err, resp.GetCheckpoint())
		}
	}
	// The witness's latest cosigned size is the log's: a stale old size
	// gets it back.
	r, err := http.Post("http://"+waddr+"/add-checkpoint", "text/plain", strings.NewReader("old 10\n\n"+mustCheckpoint(t, client)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusConflict || string(b) != "30\n" {
		t.Fatalf("stale old size: %d %q", r.StatusCode, b)
	}
	logd.stop(t)
	witness.stop(t)
}

func mustCheckpoint(t *testing.T, client tlogv1.LogServiceClient) string {
	t.Helper()
	resp, err := client.GetCheckpoint(context.Background(), &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCheckpoint()
}
