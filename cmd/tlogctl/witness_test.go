package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlogd/tlogd/server"
	"github.com/tlogd/tlogd/tlog"
)

// TestWitnessPolicy runs a log whose checkpoints a witness cosigns, and
// tlogctl with -witness-policy: append waits for the cosigned checkpoint,
// prove writes bundles that carry the cosignature, and verify requires the
// policy's quorum offline.
func TestWitnessPolicy(t *testing.T) {
	k := newKey(t, "example.com/audit")
	cskey, cvkey, err := tlog.GenerateCosignerKey("witness.example/w1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := tlog.ParseCosignerKey(cskey, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := tlog.ParsePolicy([]byte("log " + k.vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := startLog(t, newKey(t, "witness.example/own-log"), t.TempDir(), func(c *server.Config) {
		c.Witness = &server.WitnessConfig{Cosigner: cosigner, Logs: logs}
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: w.srv.HTTPHandler()}
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close() })

	dir := t.TempDir()
	policyText := fmt.Sprintf("log %s\nwitness W1 %s http://%s\nquorum W1\n", k.vkey, cvkey, lis.Addr())
	policyFile := filepath.Join(dir, "witnesses.policy")
	os.WriteFile(policyFile, []byte(policyText), 0o644)
	policy, err := tlog.ParsePolicy([]byte(policyText))
	if err != nil {
		t.Fatal(err)
	}
	l := startLog(t, k, t.TempDir(), func(c *server.Config) { c.Cosigning = &server.CosigningConfig{Policy: policy} })
	conn := []string{"-addr", l.addr, "-vkey", k.vkey, "-witness-policy", policyFile}

	bundles := filepath.Join(dir, "bundles")
	r := must(t, 0, "", append([]string{"append", "-bundle-dir", bundles}, append(conn, "user alice created", "role admin granted to alice")...)...)
	if !strings.Contains(r.stdout, "index 1: verified") {
		t.Fatalf("append: %s", r.stdout)
	}
	b1 := filepath.Join(bundles, "record-1.tlog-proof")
	text, _ := os.ReadFile(b1)
	if !strings.Contains(string(text), "— witness.example/w1 ") {
		t.Fatalf("the bundle carries no cosignature:\n%s", text)
	}
	must(t, 0, "", "verify", "-vkey", k.vkey, "-witness-policy", policyFile, b1)
	checkIndependently(t, b1)

	p0 := filepath.Join(dir, "p0")
	must(t, 0, "", append([]string{"prove", "-index", "0", "-out", p0}, conn...)...)
	must(t, 0, "", "verify", "-vkey", k.vkey, "-witness-policy", policyFile, p0+".tlog-proof")
	// checkpoint prints the cosigned checkpoint, cosignature included.
	r = must(t, 0, "", append([]string{"checkpoint"}, conn...)...)
	if !strings.HasPrefix(r.stdout, "example.com/audit\n") || !strings.Contains(r.stdout, "— witness.example/w1 ") {
		t.Fatalf("checkpoint:\n%s", r.stdout)
	}

	// A policy whose quorum needs another witness too: the same bundle
	// fails offline, and the client refuses the log's cosigned checkpoint.
	_, other, _ := tlog.GenerateCosignerKey("witness.example/w2", rand.Reader)
	strict := filepath.Join(dir, "strict.policy")
	os.WriteFile(strict, []byte(policyText[:strings.Index(policyText, "quorum")]+"witness W2 "+other+" http://127.0.0.1:9\ngroup G all W1 W2\nquorum G\n"), 0o644)
	r = must(t, 1, "", "verify", "-vkey", k.vkey, "-witness-policy", strict, b1)
	if !strings.Contains(r.stderr, "witness quorum not met") {
		t.Fatalf("verify with a stricter policy: %s", r.stderr)
	}
	must(t, 1, "", "checkpoint", "-addr", l.addr, "-vkey", k.vkey, "-witness-policy", strict)
	// A bundle without cosignatures fails a policy with a quorum.
	plain := filepath.Join(dir, "plain")
	must(t, 0, "", "prove", "-index", "0", "-out", plain, "-addr", l.addr, "-vkey", k.vkey)
	must(t, 1, "", "verify", "-vkey", k.vkey, "-witness-policy", policyFile, plain+".tlog-proof")
	// A policy that does not list the log is refused.
	os.WriteFile(strict, []byte("witness W1 "+cvkey+"\nquorum W1\n"), 0o644)
	must(t, 2, "", "verify", "-vkey", k.vkey, "-witness-policy", strict, b1)
}
