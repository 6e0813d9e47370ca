package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlogd/tlogd/client"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runKeygen runs tlogd keygen with args and returns the verifier key it
// prints (a log's or a cosigner's).
func runKeygen(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"keygen"}, args...), &out, &errb); code != 0 {
		t.Fatalf("keygen %v: %s", args, errb.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if _, v, ok := strings.Cut(l, "verifier key: "); ok {
			return v
		}
	}
	t.Fatalf("keygen printed %q", out.String())
	return ""
}

// TestForkedLogIsCaught is the README's demonstration with real processes:
// two tlogd logs run with the same key on two data directories (a forked
// log: one key, two histories), each cosigned by its own witness; the two
// witnesses gossip, catch the split view, stop cosigning, and serve
// evidence that verifies offline with the log's key alone. In the
// "replicas" variant each witness is also a read replica of the half it
// cosigns: a primary that shows each replica its own history.
func TestForkedLogIsCaught(t *testing.T) {
	bin := buildBinary(t)
	t.Run("witnesses", func(t *testing.T) { forkedLogIsCaught(t, bin, false) })
	t.Run("replicas", func(t *testing.T) { forkedLogIsCaught(t, bin, true) })
}

func forkedLogIsCaught(t *testing.T, bin string, replicas bool) {
	dir := t.TempDir()
	logVkey := runKeygen(t, "-origin", "audit.example.com/log", "-out", filepath.Join(dir, "log.key"))
	wv := []string{runKeygen(t, "-cosigner", "w1.example.com", "-out", filepath.Join(dir, "w1.key")), runKeygen(t, "-cosigner", "w2.example.com", "-out", filepath.Join(dir, "w2.key"))}
	os.WriteFile(filepath.Join(dir, "logs.policy"), []byte("log "+logVkey+"\nquorum none\n"), 0o644)

	addrs := []string{freeAddr(t), freeAddr(t)}
	halves := []string{freeAddr(t), freeAddr(t)}
	var witnesses []*daemon
	for i := range 2 {
		args := []string{"-data-dir", filepath.Join(dir, fmt.Sprintf("w%d", i+1)),
			"-http-listen", addrs[i], "-witness-key", filepath.Join(dir, fmt.Sprintf("w%d.key", i+1)),
			"-witness-logs", filepath.Join(dir, "logs.policy"), "-witness-peers", "http://" + addrs[1-i] + "/witness", "-gossip-interval", "100ms"}
		if replicas {
			args = append(args, "-replica-of", halves[i], "-log-verifier-key", logVkey)
		} else {
			args = append(args, "-origin", fmt.Sprintf("w%d.example.com/own", i+1))
		}
		witnesses = append(witnesses, startDaemon(t, bin, args...))
	}
	// The same key, two data directories: two histories. Each half is
	// cosigned by one witness only.
	var clients []tlogv1.LogServiceClient
	for i := range 2 {
		policy := fmt.Sprintf("log %s\nwitness W %s http://%s\nquorum W\n", logVkey, wv[i], addrs[i])
		pf := filepath.Join(dir, fmt.Sprintf("half%d.policy", i+1))
		os.WriteFile(pf, []byte(policy), 0o644)
		d := startDaemon(t, bin, "-listen", halves[i], "-data-dir", filepath.Join(dir, fmt.Sprintf("half%d", i+1)), "-key-file", filepath.Join(dir, "log.key"), "-witness-policy", pf)
		c, _ := d.client(t)
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	forkSize := 5
	if replicas {
		// Each half first records its replica's payload stream (entry 0);
		// wait until each replica holds it, so the halves fork at size 6.
		for _, w := range witnesses {
			rc, _ := w.client(t)
			for {
				if _, err := rc.GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{}); err == nil {
					break
				} else if ctx.Err() != nil {
					t.Fatalf("the replica copied no checkpoint: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		forkSize = 6
	}
	for i, c := range clients {
		req := &tlogv1.AppendRequest{WaitForWitnesses: true}
		for j := range 5 {
			req.Records = append(req.Records, &tlogv1.Record{Payload: fmt.Appendf(nil, "history %d record %d", i, j)})
		}
		if _, err := c.Append(ctx, req); err != nil {
			t.Fatalf("half %d: %v", i+1, err)
		}
	}

	h := sha256.Sum256([]byte("audit.example.com/log"))
	for i, addr := range addrs {
		url := fmt.Sprintf("http://%s/witness/%x/split-view", addr, h)
		var body []byte
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("witness %d did not catch the fork: %d %s", i+1, resp.StatusCode, body)
			}
		}
		ev, err := client.ParseEvidence(body)
		if err != nil {
			t.Fatalf("witness %d's evidence: %v", i+1, err)
		}
		what, err := client.VerifyEvidence(ev, logVkey)
		if err != nil || !strings.HasPrefix(what, fmt.Sprintf("fork: the log signed two different trees of size %d", forkSize)) {
			t.Fatalf("witness %d's evidence: %q, %v", i+1, what, err)
		}
		if !replicas {
			continue
		}
		// The replica holds the history its primary showed it, and lists
		// the split view over gRPC too.
		_, conn := witnesses[i].client(t)
		want := mustCheckpoint(t, clients[i])
		got, err := tlogv1.NewLogServiceClient(conn).GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{TreeSize: uint64(forkSize)})
		if err != nil || got.GetCheckpoint() != want {
			t.Fatalf("replica %d: checkpoint %v, %v; its primary's is\n%s", i+1, got, err, want)
		}
		list, err := tlogv1.NewWitnessServiceClient(conn).ListSplitViews(ctx, &tlogv1.ListSplitViewsRequest{})
		if err != nil || len(list.GetSplitViews()) != 1 || list.GetSplitViews()[0].GetEvidence() != string(body) {
			t.Fatalf("replica %d: ListSplitViews = %v, %v", i+1, list, err)
		}
	}
	// The witnesses no longer cosign: a waiting append now times out.
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	_, err := clients[0].Append(short, &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: []byte("after")}}, WaitForWitnesses: true})
	if err == nil || !strings.Contains(err.Error(), "the records are durable") {
		t.Fatalf("append after the fork was caught: %v", err)
	}
}
