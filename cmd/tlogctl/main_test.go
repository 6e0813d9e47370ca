package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tlogd/tlogd/internal/devcert"
	"github.com/tlogd/tlogd/internal/testutil"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/server"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

// testKey is a log key: the signer key text and its verifier key.
type testKey struct{ skey, vkey string }

func newKey(t testing.TB, origin string) testKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{skey, vkey}
}

// testLog is a real tlogd (Pebble store, gRPC server on 127.0.0.1:0).
type testLog struct {
	addr  string
	store *storage.Store
	srv   *server.Server
	stop  func()
}

func startLog(t testing.TB, k testKey, dir string, mod func(*server.Config)) *testLog {
	t.Helper()
	return startLogAt(t, k, dir, "127.0.0.1:0", mod)
}

// startLogAt starts a log listening on addr.
func startLogAt(t testing.TB, k testKey, dir, addr string, mod func(*server.Config)) *testLog {
	t.Helper()
	signer, vkey, err := tlog.ParseSignerKey(k.skey)
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.Open(dir, storage.Options{Signer: signer, VerifierKey: vkey, CacheBytes: 16 << 20, MemTableBytes: 4 << 20, Reindex: server.Reindex})
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Store: store, Logger: discardLogger()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	stopped := false
	l := &testLog{addr: lis.Addr().String(), store: store, srv: srv}
	l.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Stop(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	}
	t.Cleanup(l.stop)
	return l
}

// result is one run of tlogctl.
type result struct {
	code           int
	stdout, stderr string
}

// tlogctl runs the command in-process, with stdin.
func tlogctl(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// must runs tlogctl and fails the test unless it exits with code.
func must(t testing.TB, code int, stdin string, args ...string) result {
	t.Helper()
	r := tlogctl(t, stdin, args...)
	if r.code != code {
		t.Fatalf("tlogctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// jsonLines decodes every line of s.
func jsonLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAppendProveVerify(t *testing.T) {
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), nil)
	dir := t.TempDir()
	conn := []string{"-addr", l.addr, "-vkey", k.vkey}

	// Arguments, then JSON lines on stdin with bundles.
	r := must(t, 0, "", append([]string{"append", "-json"}, append(conn, "user alice created", "role admin granted to alice")...)...)
	res := jsonLines(t, r.stdout)
	if len(res) != 2 || res[0]["index"] != 0.0 || res[1]["index"] != 1.0 || res[1]["verified"] != true {
		t.Fatalf("append results: %v", res)
	}
	bundles := filepath.Join(dir, "bundles")
	stdin := "{\"action\":\"LOGIN_FAILED\",\"actor\":\"bob\"}\n\n{\"action\":\"ROLE_REVOKED\"}\n"
	r = must(t, 0, stdin, append([]string{"append", "-bundle-dir", bundles}, conn...)...)
	if !strings.Contains(r.stdout, "index 2: verified") || !strings.Contains(r.stdout, "index 3: verified") {
		t.Fatalf("append from stdin: %s", r.stdout)
	}
	// A retry is idempotent and says so.
	r = must(t, 0, "", append([]string{"append"}, append(conn, "user alice created")...)...)
	if !strings.Contains(r.stdout, "index 0 (duplicate") {
		t.Fatalf("duplicate append: %s", r.stdout)
	}

	// The bundle verifies offline; an independent implementation agrees.
	b2 := filepath.Join(bundles, "record-2.tlog-proof")
	r = must(t, 0, "", "verify", "-vkey", k.vkey, b2)
	if !strings.Contains(r.stdout, "OK: record 2 of example.com/audit") || !strings.Contains(r.stdout, "commits to the payload (39 bytes)") {
		t.Fatalf("verify: %s", r.stdout)
	}
	checkIndependently(t, b2)

	// Every kind of tampering is a verification failure (exit 1).
	payload2, _ := os.ReadFile(filepath.Join(bundles, "record-2.payload"))
	bad := filepath.Join(dir, "bad.payload")
	os.WriteFile(bad, append(payload2, ' '), 0o600)
	must(t, 1, "", "verify", "-vkey", k.vkey, "-payload-file", bad, b2)
	proofText, _ := os.ReadFile(b2)
	lines := strings.Split(string(proofText), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "index ") {
			lines[i] = "index 3" // the proof of 2 does not prove 3
		}
	}
	moved := filepath.Join(dir, "moved.tlog-proof")
	os.WriteFile(moved, []byte(strings.Join(lines, "\n")), 0o644)
	must(t, 1, "", "verify", "-vkey", k.vkey, "-payload-file", filepath.Join(bundles, "record-2.payload"), moved)
	other := newKey(t, "example.com/audit")
	r = must(t, 1, "", "verify", "-vkey", other.vkey, b2)
	if !strings.Contains(r.stderr, "VERIFICATION FAILED") {
		t.Fatalf("wrong key: %s", r.stderr)
	}

	// prove by index and by payload; both verify offline.
	p1 := filepath.Join(dir, "p1")
	must(t, 0, "", append([]string{"prove", "-index", "1", "-out", p1}, conn...)...)
	got, _ := os.ReadFile(p1 + ".payload")
	if string(got) != "role admin granted to alice" {
		t.Fatalf("prove wrote payload %q", got)
	}
	must(t, 0, "", "verify", "-vkey", k.vkey, p1+".tlog-proof")
	checkIndependently(t, p1+".tlog-proof")
	pay := filepath.Join(dir, "alice.txt")
	os.WriteFile(pay, []byte("user alice created"), 0o600)
	p0 := filepath.Join(dir, "p0")
	r = must(t, 0, "", append([]string{"prove", "-payload-file", pay, "-out", p0, "-json"}, conn...)...)
	if m := jsonLines(t, r.stdout)[0]; m["index"] != 0.0 || m["payload_checked"] != true {
		t.Fatalf("prove -payload-file: %v", m)
	}
	must(t, 0, "", "verify", "-vkey", k.vkey, p0+".tlog-proof")
	os.WriteFile(pay, []byte("user mallory created"), 0o600)
	r = must(t, 3, "", append([]string{"prove", "-payload-file", pay, "-out", p0}, conn...)...)
	if !strings.Contains(r.stderr, "NotFound") {
		t.Fatalf("prove of a payload not in the log: %s", r.stderr)
	}
	must(t, 2, "", append([]string{"prove", "-index", "99"}, conn...)...)
}

// checkIndependently checks a bundle with golang.org/x/mod/sumdb/tlog.
func checkIndependently(t *testing.T, bundle string) {
	t.Helper()
	text, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tlog.ParseProof(text)
	if err != nil {
		t.Fatal(err)
	}
	entry, _, err := tlog.ParseRecordExtra(p.Extra)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := tlog.ParseCheckpoint(text[bytes.Index(text, []byte("\n\n"))+2 : bytes.LastIndex(text, []byte("\n\n"))+1])
	if err != nil {
		t.Fatal(err)
	}
	rp := make(sumdb.RecordProof, len(p.Hashes))
	for i, h := range p.Hashes {
		rp[i] = sumdb.Hash(h)
	}
	if err := sumdb.CheckRecord(rp, int64(cp.Size), sumdb.Hash(cp.Root), int64(p.Index), sumdb.RecordHash(entry)); err != nil {
		t.Fatalf("sumdb/tlog rejects the bundle's proof: %v", err)
	}
}

func TestCheckpointAndConsistency(t *testing.T) {
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), nil)
	dir := t.TempDir()
	conn := []string{"-addr", l.addr, "-vkey", k.vkey}
	must(t, 0, "", append([]string{"append"}, append(conn, "a", "b", "c")...)...)
	cp3 := filepath.Join(dir, "cp3")
	r := must(t, 0, "", append([]string{"checkpoint", "-out", cp3}, conn...)...)
	if !strings.HasPrefix(r.stdout, "example.com/audit\n3\n") {
		t.Fatalf("checkpoint: %q", r.stdout)
	}
	must(t, 0, "", append([]string{"append"}, append(conn, "d", "e")...)...)
	r = must(t, 0, "", append([]string{"consistency", "-old", cp3}, conn...)...)
	if !strings.Contains(r.stdout, "size 3") || !strings.Contains(r.stdout, "size 5") {
		t.Fatalf("consistency -old: %s", r.stdout)
	}
	must(t, 0, "", append([]string{"consistency", "3", "5"}, conn...)...)
	r = must(t, 0, "", append([]string{"checkpoint", "-size", "3", "-json"}, conn...)...)
	if m := jsonLines(t, r.stdout)[0]; m["size"] != 3.0 || m["verified"] != true {
		t.Fatalf("checkpoint -size 3: %v", m)
	}
	// info needs no key; with a pinned key, another one is a failure.
	r = must(t, 0, "", "info", "-addr", l.addr)
	if !strings.Contains(r.stdout, "verifier key: "+k.vkey) {
		t.Fatalf("info: %s", r.stdout)
	}
	must(t, 0, "", "info", "-addr", l.addr, "-vkey", k.vkey, "-json")
	// A checkpoint signed by another key is refused.
	other := newKey(t, "example.com/audit")
	must(t, 1, "", "checkpoint", "-addr", l.addr, "-vkey", other.vkey)
	must(t, 1, "", "info", "-addr", l.addr, "-vkey", other.vkey)
	r = must(t, 1, "", "checkpoint", "-addr", l.addr, "-vkey", other.vkey, "-json")
	if m := jsonLines(t, r.stdout); len(m) != 1 || m[0]["exit_code"] != 1.0 || m[0]["verification_failed"] != true {
		t.Fatalf("a failure with -json: %q", r.stdout)
	}
	// Usage errors exit 2, unreachable servers 3.
	must(t, 2, "", "checkpoint", "-addr", l.addr)
	must(t, 2, "", append([]string{"consistency", "x"}, conn...)...)
	must(t, 2, "", append([]string{"checkpoint", "-no-such-flag"}, conn...)...)
	must(t, 3, "", "checkpoint", "-addr", "127.0.0.1:1", "-vkey", k.vkey, "-timeout", "2s")
}

// TestMonitorCatchesFork runs the monitor against a log, then against a
// log with the same key and a different history: the monitor exits 1 with
// evidence that tlogctl verify -evidence accepts.
func TestMonitorCatchesFork(t *testing.T) {
	for _, tc := range []struct {
		name      string
		forkSize  int // records in the forked log
		full      bool
		wantClaim string
	}{
		{"larger fork", 5, false, "inconsistent"},
		{"same size fork", 3, false, "fork"},
		{"larger fork, full mode", 6, true, "inconsistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, "example.com/audit")
			dir := t.TempDir()
			state := filepath.Join(dir, "monitor.state")
			evidence := filepath.Join(dir, "evidence.json")
			mon := func(l *testLog, code int) result {
				args := []string{"monitor", "-addr", l.addr, "-vkey", k.vkey, "-state", state, "-evidence", evidence}
				if tc.full {
					args = append(args, "-full")
				}
				return must(t, code, "", args...)
			}
			honest := startLog(t, k, filepath.Join(dir, "honest"), nil)
			conn := []string{"-addr", honest.addr, "-vkey", k.vkey}
			must(t, 0, "", append([]string{"append"}, append(conn, "a", "b")...)...)
			r := mon(honest, 0)
			if !strings.Contains(r.stdout, "trusted the first checkpoint: size 2") {
				t.Fatalf("first run: %s", r.stdout)
			}
			must(t, 0, "", append([]string{"append"}, append(conn, "c")...)...)
			r = mon(honest, 0)
			if !strings.Contains(r.stdout, "size 2 → 3: consistent") {
				t.Fatalf("second run: %s", r.stdout)
			}
			if tc.full && !strings.Contains(r.stdout, "recomputed the root from 1 new entries") {
				t.Fatalf("full mode did not replay just the new entry: %s", r.stdout)
			}
			honest.stop()

			// The same key signs another history.
			forked := startLog(t, k, filepath.Join(dir, "forked"), nil)
			var ps []string
			for i := range tc.forkSize {
				ps = append(ps, fmt.Sprintf("forked %d", i))
			}
			must(t, 0, "", append([]string{"append", "-addr", forked.addr, "-vkey", k.vkey}, ps...)...)
			r = mon(forked, 1)
			if !strings.Contains(r.stdout, "INCONSISTENT") || !strings.Contains(r.stderr, "VERIFICATION FAILED") {
				t.Fatalf("fork not reported: %s\n%s", r.stdout, r.stderr)
			}
			r = must(t, 0, "", "verify", "-vkey", k.vkey, "-evidence", evidence)
			if !strings.Contains(r.stdout, "EVIDENCE HOLDS: "+tc.wantClaim) {
				t.Fatalf("verify -evidence: %s", r.stdout)
			}
			// The evidence does not hold under another key, and the monitor
			// did not move its trust to the fork.
			must(t, 1, "", "verify", "-vkey", newKey(t, "example.com/audit").vkey, "-evidence", evidence)
			st, _ := os.ReadFile(state)
			if !bytes.HasPrefix(st, []byte("example.com/audit\n3\n")) {
				t.Fatalf("state after the fork: %q", st)
			}
		})
	}
}

// TestMonitorFollowsThroughAFork keeps a monitor running while the server
// behind its address is replaced by one serving another history signed by
// the same key: it rides out the outage, then exits 1 with evidence.
func TestMonitorFollowsThroughAFork(t *testing.T) {
	k := newKey(t, "example.com/audit")
	dir := t.TempDir()
	honest := startLog(t, k, filepath.Join(dir, "honest"), nil)
	conn := []string{"-addr", honest.addr, "-vkey", k.vkey}
	must(t, 0, "", append([]string{"append"}, append(conn, "a", "b", "c")...)...)
	evidence := filepath.Join(dir, "evidence.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type outcome struct {
		code           int
		stdout, stderr string
	}
	done := make(chan outcome, 1)
	var out, errb testutil.SyncBuffer
	go func() {
		code := run(ctx, append([]string{"monitor", "-follow", "-interval", "50ms", "-full", "-timeout", "2s",
			"-state", filepath.Join(dir, "state"), "-evidence", evidence}, conn...), strings.NewReader(""), &out, &errb)
		done <- outcome{code, out.String(), errb.String()}
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "size 3") })
	must(t, 0, "", append([]string{"append"}, append(conn, "d")...)...)
	waitFor(t, func() bool { return strings.Contains(out.String(), "size 3 → 4: consistent") })

	honest.stop()
	waitFor(t, func() bool { return strings.Contains(errb.String(), "retrying") })
	forked := startLogAt(t, k, filepath.Join(dir, "forked"), honest.addr, nil)
	must(t, 0, "", "append", "-addr", forked.addr, "-vkey", k.vkey, "A", "b", "c", "d", "e")
	select {
	case o := <-done:
		if o.code != exitVerify || !strings.Contains(o.stdout, "INCONSISTENT") {
			t.Fatalf("monitor ended with %d:\n%s\n%s", o.code, o.stdout, o.stderr)
		}
	case <-ctx.Done():
		t.Fatalf("the monitor did not catch the fork:\n%s\n%s", out.String(), errb.String())
	}
	r := must(t, 0, "", "verify", "-vkey", k.vkey, "-evidence", evidence)
	if !strings.Contains(r.stdout, "EVIDENCE HOLDS: inconsistent: the log's signed tree of size 5 holds a tree of size 4 with root") {
		t.Fatalf("verify -evidence: %s", r.stdout)
	}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out waiting")
}

func TestExportVerifyExport(t *testing.T) {
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), nil)
	dir := t.TempDir()
	conn := []string{"-addr", l.addr, "-vkey", k.vkey}
	var stdin strings.Builder
	for i := range 2500 {
		fmt.Fprintf(&stdin, "{\"event\":%d}\n", i)
	}
	must(t, 0, stdin.String(), append([]string{"append"}, conn...)...)

	all := filepath.Join(dir, "all.jsonl")
	must(t, 0, "", append([]string{"export", "-out", all}, conn...)...)
	r := must(t, 0, "", "verify-export", "-vkey", k.vkey, "-json", all)
	if m := jsonLines(t, r.stdout)[0]; m["records"] != 2500.0 || m["payloads"] != true {
		t.Fatalf("verify-export: %v", m)
	}
	part := filepath.Join(dir, "part.jsonl")
	must(t, 0, "", append([]string{"export", "-out", part, "-from", "10", "-to", "1500", "-payloads=false"}, conn...)...)
	r = must(t, 0, "", "verify-export", "-vkey", k.vkey, part)
	if !strings.Contains(r.stdout, "OK: 1490 entries") {
		t.Fatalf("verify-export of a range: %s", r.stdout)
	}

	// Tampering: a changed payload, a dropped line, a reordered pair, and
	// another key each fail with exit 1.
	text, _ := os.ReadFile(all)
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	tamper := func(name string, change func([]string) []string) {
		t.Helper()
		ls := change(append([]string(nil), lines...))
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(strings.Join(ls, "\n")+"\n"), 0o644)
		must(t, 1, "", "verify-export", "-vkey", k.vkey, f)
	}
	tamper("payload.jsonl", func(ls []string) []string {
		var rec map[string]any
		json.Unmarshal([]byte(ls[100]), &rec)
		rec["payload"] = []byte(`{"event":"forged"}`)
		b, _ := json.Marshal(rec)
		ls[100] = string(b)
		return ls
	})
	tamper("dropped.jsonl", func(ls []string) []string { return append(ls[:50], ls[51:]...) })
	tamper("truncated.jsonl", func(ls []string) []string { return ls[:len(ls)-1] })
	tamper("swapped.jsonl", func(ls []string) []string {
		ls[5], ls[6] = ls[6], ls[5]
		return ls
	})
	must(t, 1, "", "verify-export", "-vkey", newKey(t, "example.com/audit").vkey, all)
	must(t, 2, "", "verify-export", "-vkey", k.vkey)
	must(t, 2, "", append([]string{"export", "-out", part, "-from", "3000"}, conn...)...)
}

// TestCredentials talks to a server that requires mutual TLS or a token,
// with the same flags as tlogd's clients.
func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	ca, err := devcert.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srvPair, _ := ca.Issue(devcert.Leaf{CommonName: "localhost", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	cliPair, _ := ca.Issue(devcert.Leaf{CommonName: "auditor", URIs: []string{"spiffe://example.org/auditor"}, Client: true})
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.CertPEM)
	certFile, keyFile := write("client.pem", cliPair.CertPEM), write("client.key", cliPair.KeyPEM)
	tokenFile := write("token", []byte("tlogd_test_token_for_billing\n"))
	tokens, err := server.LoadTokens(write("tokens", []byte(server.TokenLine("tlogd_test_token_for_billing", "billing")+"\n")))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := server.ParsePolicy([]byte("principals:\n  spiffe://example.org/auditor: [auditor]\n  billing: [appender]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(srvPair.CertPEM, srvPair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), func(c *server.Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
		c.Tokens, c.Policy = tokens, policy
	})
	base := []string{"-addr", l.addr, "-vkey", k.vkey, "-tls-ca", caFile}
	// The appender appends with its token; it may not read payloads.
	must(t, 0, "", append(append([]string{"append"}, base...), "-token-file", tokenFile, "user carol created")...)
	r := must(t, 3, "", append(append([]string{"prove"}, base...), "-token-file", tokenFile, "-index", "0")...)
	if !strings.Contains(r.stderr, "PermissionDenied") {
		t.Fatalf("appender reading payloads: %s", r.stderr)
	}
	// The auditor proves with its certificate, and monitors.
	must(t, 0, "", append(append([]string{"prove"}, base...), "-tls-cert", certFile, "-tls-key", keyFile, "-index", "0", "-out", filepath.Join(dir, "p"))...)
	must(t, 0, "", append(append([]string{"monitor"}, base...), "-tls-cert", certFile, "-tls-key", keyFile, "-state", filepath.Join(dir, "state"), "-full")...)
	// Without credentials: Unauthenticated, exit 3.
	r = must(t, 3, "", append([]string{"checkpoint"}, base...)...)
	if !strings.Contains(r.stderr, "Unauthenticated") {
		t.Fatalf("no credentials: %s", r.stderr)
	}
}

func TestHelpAndUsage(t *testing.T) {
	for _, c := range commands {
		r := must(t, 0, "", c.name, "-help")
		if !strings.Contains(r.stdout, "Usage: tlogctl "+c.name) || !strings.Contains(r.stdout, "Flags:") {
			t.Errorf("%s -help: %s", c.name, r.stdout)
		}
	}
	must(t, 0, "", "help")
	must(t, 2, "")
	must(t, 2, "", "no-such-command")
	must(t, 2, "", "append", "-vkey", "not a key", "x")
	must(t, 2, "", "verify", "-vkey", newKey(t, "example.com/a").vkey)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestRollbackAndForgedEvidence: a log restored to an older state is a
// rollback (exit 1), whose evidence does not claim a fork; consistency
// between checkpoints of two forks writes evidence that holds; made-up
// evidence does not hold.
func TestRollbackAndForgedEvidence(t *testing.T) {
	k := newKey(t, "example.com/audit")
	dir := t.TempDir()
	vkeyFile := filepath.Join(dir, "log.vkey")
	os.WriteFile(vkeyFile, []byte(k.vkey+"\n"), 0o644)
	state := filepath.Join(dir, "state")
	evidence := filepath.Join(dir, "evidence.json")

	a := startLog(t, k, filepath.Join(dir, "a"), nil)
	connA := []string{"-addr", a.addr, "-vkey-file", vkeyFile}
	must(t, 0, "", append([]string{"append"}, append(connA, "a", "b", "c")...)...)
	cpA := filepath.Join(dir, "cpA")
	must(t, 0, "", append([]string{"checkpoint", "-out", cpA}, connA...)...)
	must(t, 0, "", append([]string{"monitor", "-state", state}, connA...)...)
	a.stop()

	// Another history with the same key, smaller: a rollback.
	b := startLog(t, k, filepath.Join(dir, "b"), nil)
	connB := []string{"-addr", b.addr, "-vkey-file", vkeyFile}
	must(t, 0, "", append([]string{"append"}, append(connB, "A", "B")...)...)
	r := must(t, 1, "", append([]string{"monitor", "-state", state, "-evidence", evidence}, connB...)...)
	if !strings.Contains(r.stdout, "rolled back") {
		t.Fatalf("rollback: %s", r.stdout)
	}
	r = must(t, 1, "", "verify", "-vkey-file", vkeyFile, "-evidence", evidence)
	if !strings.Contains(r.stderr, "rollback") || !strings.Contains(r.stderr, "does not prove two histories") {
		t.Fatalf("rollback evidence: %s", r.stderr)
	}

	// Grow B past A: consistency from A's saved checkpoint fails, with
	// evidence that holds.
	must(t, 0, "", append([]string{"append"}, append(connB, "C", "D", "E")...)...)
	r = must(t, 1, "", append([]string{"consistency", "-old", cpA, "-evidence", evidence}, connB...)...)
	if !strings.Contains(r.stdout, "INCONSISTENT") {
		t.Fatalf("consistency across forks: %s", r.stdout)
	}
	must(t, 0, "", "verify", "-vkey-file", vkeyFile, "-evidence", evidence)

	// Made up: two honest checkpoints of B and a proof of nothing.
	cp2, cp5 := filepath.Join(dir, "cp2"), filepath.Join(dir, "cp5")
	must(t, 0, "", append([]string{"checkpoint", "-size", "2", "-out", cp2}, connB...)...)
	must(t, 0, "", append([]string{"checkpoint", "-size", "5", "-out", cp5}, connB...)...)
	must(t, 0, "", append([]string{"consistency", "-old", cp2, "-new", cp5}, connB...)...)
	old, _ := os.ReadFile(cp2)
	cur, _ := os.ReadFile(cp5)
	forged, _ := json.Marshal(map[string]any{"format": "tlogd-evidence/v1", "old_checkpoint": string(old), "new_checkpoint": string(cur),
		"consistency_proof": [][]byte{make([]byte, 32)}, "reason": "made up"})
	os.WriteFile(evidence, forged, 0o644)
	r = must(t, 1, "", "verify", "-vkey-file", vkeyFile, "-evidence", evidence)
	if !strings.Contains(r.stderr, "does not prove two histories") {
		t.Fatalf("forged evidence: %s", r.stderr)
	}
	os.WriteFile(evidence, []byte("{not json"), 0o644)
	must(t, 1, "", "verify", "-vkey-file", vkeyFile, "-evidence", evidence)

	// A damaged state file is a local problem: exit 3, naming the file.
	os.WriteFile(state, []byte("garbage"), 0o644)
	r = must(t, 3, "", append([]string{"monitor", "-state", state}, connB...)...)
	if !strings.Contains(r.stderr, state) {
		t.Fatalf("damaged state: %s", r.stderr)
	}
}

// TestAppendLimitsAndEnvironment: batches stay within the server's request
// size; an oversize payload is a usage error naming it; a key from the
// environment yields to one on the command line.
func TestAppendLimitsAndEnvironment(t *testing.T) {
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), func(c *server.Config) {
		c.MaxRequestBytes = 64 << 10
		c.MaxPayloadBytes = 30 << 10
	})
	var stdin strings.Builder
	for i := range 10 {
		fmt.Fprintf(&stdin, "{\"i\":%d,\"pad\":%q}\n", i, strings.Repeat("x", 20<<10))
	}
	conn := []string{"-addr", l.addr, "-vkey", k.vkey, "-json"}
	r := must(t, 0, stdin.String(), append([]string{"append"}, conn...)...)
	if res := jsonLines(t, r.stdout); len(res) != 10 || res[9]["index"] != 9.0 {
		t.Fatalf("append of 10 × 20 KiB: %v", r.stdout)
	}
	r = must(t, 2, "{}\n{\"big\":\""+strings.Repeat("y", 31<<10)+"\"}\n", append([]string{"append"}, conn...)...)
	if !strings.Contains(r.stderr, "stdin line 2: 31") {
		t.Fatalf("oversize payload: %s", r.stderr)
	}
	// TLOGCTL_VKEY_FILE names a file with another key; -vkey wins.
	other := filepath.Join(t.TempDir(), "other.vkey")
	os.WriteFile(other, []byte(newKey(t, "example.com/audit").vkey), 0o644)
	t.Setenv("TLOGCTL_VKEY_FILE", other)
	must(t, 0, "", "checkpoint", "-addr", l.addr, "-vkey", k.vkey)
	must(t, 1, "", "checkpoint", "-addr", l.addr) // the environment's key
	must(t, 2, "", "checkpoint", "-addr", l.addr, "-timeout", "0s")
}

// droppingAudit forwards GetTimeline to a real server and drops the event
// at position drop of the first page (and, with last, lowers latest_index
// to hide the dropped tail).
type droppingAudit struct {
	tlogv1.UnimplementedAuditServiceServer
	real      tlogv1.AuditServiceClient
	drop      int
	last      bool
	fakeErase bool // instead of dropping the event, pass it off as erased
	// driftLie, for GetDrift: "swap" gives the first item the second's
	// event; "status" turns a revoked item unapproved; "invent" adds an
	// unapproved grant citing an event of another grant.
	driftLie string
}

func (d *droppingAudit) GetDrift(ctx context.Context, req *tlogv1.GetDriftRequest) (*tlogv1.GetDriftResponse, error) {
	resp, err := d.real.GetDrift(ctx, req)
	if err != nil {
		return resp, err
	}
	var withEvent []*tlogv1.DriftItem
	for _, it := range resp.Items {
		if it.Event != nil {
			withEvent = append(withEvent, it)
		}
	}
	switch d.driftLie {
	case "swap":
		withEvent[0].Event = withEvent[1].Event
	case "status":
		for _, it := range resp.Items {
			if it.Status == tlogv1.DriftStatus_DRIFT_STATUS_REVOKED {
				it.Status = tlogv1.DriftStatus_DRIFT_STATUS_UNAPPROVED
			}
		}
	case "invent":
		resp.Items = append(resp.Items, &tlogv1.DriftItem{SubjectId: "zoe", Kind: tlogv1.GrantKind_GRANT_KIND_ROLE, Name: "root",
			Status: tlogv1.DriftStatus_DRIFT_STATUS_UNAPPROVED, Event: withEvent[0].Event})
	}
	return resp, nil
}

func (d *droppingAudit) GetTimeline(ctx context.Context, req *tlogv1.GetTimelineRequest) (*tlogv1.GetTimelineResponse, error) {
	resp, err := d.real.GetTimeline(ctx, req)
	if err != nil || d.drop < 0 || d.drop >= len(resp.Events) {
		return resp, err
	}
	if d.fakeErase {
		e := resp.Events[d.drop]
		e.Event, e.Entry.Salt, e.Entry.Payload, e.Entry.Erased, e.Entry.ErasedBy, e.SubjectRoles = nil, nil, nil, true, e.Entry.Index+1, 2
		return resp, nil
	}
	resp.Events = append(resp.Events[:d.drop], resp.Events[d.drop+1:]...)
	if d.last && d.drop == len(resp.Events) && d.drop > 0 {
		resp.LatestIndex = resp.Events[d.drop-1].GetEntry().GetIndex()
	}
	return resp, nil
}

// forwardLog passes the LogService calls a timeline check makes to a real
// server, unchanged.
type forwardLog struct {
	tlogv1.UnimplementedLogServiceServer
	real tlogv1.LogServiceClient
}

func (f forwardLog) GetLogInfo(ctx context.Context, r *tlogv1.GetLogInfoRequest) (*tlogv1.GetLogInfoResponse, error) {
	return f.real.GetLogInfo(ctx, r)
}

func (f forwardLog) GetEntries(ctx context.Context, r *tlogv1.GetEntriesRequest) (*tlogv1.GetEntriesResponse, error) {
	return f.real.GetEntries(ctx, r)
}

func (f forwardLog) GetInclusionProof(ctx context.Context, r *tlogv1.GetInclusionProofRequest) (*tlogv1.GetInclusionProofResponse, error) {
	return f.real.GetInclusionProof(ctx, r)
}

func (f forwardLog) GetConsistencyProof(ctx context.Context, r *tlogv1.GetConsistencyProofRequest) (*tlogv1.GetConsistencyProofResponse, error) {
	return f.real.GetConsistencyProof(ctx, r)
}

func TestRecordAndTimeline(t *testing.T) {
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), nil)
	conn := []string{"-addr", l.addr, "-vkey", k.vkey}
	ev := func(id, actor, action, target, change string) string {
		s := fmt.Sprintf(`{"eventId":%q,"occurredAt":"2026-11-26T09:00:00Z","tenant":"acme","actor":{"type":"ACTOR_TYPE_USER","id":%q},"action":%q,"target":{"type":"TARGET_TYPE_USER","id":%q},"outcome":"OUTCOME_SUCCESS"`, id, actor, action, target)
		if change != "" {
			s += `,"changes":[` + change + `]`
		}
		return s + "}\n"
	}
	stdin := ev("e1", "admin", "ACTION_ACCOUNT_CREATED", "alice", "") +
		ev("e2", "admin", "ACTION_ACCOUNT_CREATED", "bob", "") +
		ev("e3", "admin", "ACTION_ROLE_ASSIGNED", "alice", `{"attribute":"role","oldValue":"viewer","newValue":"admin"}`) +
		ev("e4", "alice", "ACTION_LOGIN_FAILED", "alice", "") +
		ev("e5", "admin", "ACTION_ROLE_REVOKED", "alice", `{"attribute":"role","oldValue":"admin","newValue":"viewer"}`)
	r := must(t, 0, stdin, append([]string{"record"}, conn...)...)
	if strings.Count(r.stdout, "verified") != 5 {
		t.Fatalf("record: %s", r.stdout)
	}
	// The same id with other content is a conflict, not a second event.
	r = must(t, 2, ev("e1", "mallory", "ACTION_ACCOUNT_DELETED", "alice", ""), append([]string{"record"}, conn...)...)
	if !strings.Contains(r.stdout, "index 0: CONFLICT") {
		t.Fatalf("conflicting event id: %s", r.stdout)
	}
	r = must(t, 2, `{"eventId":"x","bogus":1}`+"\n", append([]string{"record"}, conn...)...)
	if !strings.Contains(r.stderr, "stdin line 1") {
		t.Fatalf("bad JSON: %s", r.stderr)
	}
	r = must(t, 2, `{"eventId":"x"}`+"\n", append([]string{"record"}, conn...)...)
	if !strings.Contains(r.stderr, "events[0].occurred_at: required") {
		t.Fatalf("invalid event: %s", r.stderr)
	}

	r = must(t, 0, "", append([]string{"timeline", "-tenant", "acme", "alice"}, conn...)...)
	if !strings.Contains(r.stdout, `timeline of "alice" in tenant "acme": 4 events`) ||
		!strings.Contains(r.stdout, `ROLE_ASSIGNED          admin → user alice  SUCCESS  role: "viewer" → "admin"`) ||
		!strings.Contains(r.stdout, "LOGIN_FAILED") {
		t.Fatalf("timeline: %s", r.stdout)
	}
	r = must(t, 0, "", append([]string{"timeline", "-tenant", "acme", "-json", "carol"}, conn...)...)
	if m := jsonLines(t, r.stdout); len(m) != 1 || m[0]["events"] != 0.0 {
		t.Fatalf("empty timeline: %s", r.stdout)
	}

	// Queries, verified: alice's failed logins; admin's actions.
	r = must(t, 0, "", append([]string{"query", "-tenant", "acme", "-subject", "alice", "-action", "login_failed"}, conn...)...)
	if !strings.Contains(r.stdout, "LOGIN_FAILED") || !strings.Contains(r.stdout, "1 event, each verified") {
		t.Fatalf("query: %s", r.stdout)
	}
	r = must(t, 0, "", append([]string{"query", "-tenant", "acme", "-actor", "admin", "-json"}, conn...)...)
	if m := jsonLines(t, r.stdout); len(m) != 5 || m[3]["index"] != 4.0 || m[4]["events"] != 4.0 {
		t.Fatalf("query -actor admin: %s", r.stdout)
	}
	if strings.Contains(r.stdout, ", ") {
		t.Fatalf("query -json is not compact: %s", r.stdout)
	}
	must(t, 2, "", append([]string{"query", "-action", "no_such"}, conn...)...)
	must(t, 2, "", append([]string{"query", "-occurred-from", "yesterday"}, conn...)...)

	// A server that leaves an event out is caught, naming the link.
	for _, tc := range []struct {
		drop      int
		last      bool
		fakeErase bool
		want      string
	}{
		{2, false, true, "erasure of entry 3 does not verify: entry 4 is not an erasure record"},
		{1, false, false, "entry 3 links back to entry 2, but the previous event returned is entry 0"},
		{0, false, false, "entry 2 links back to entry 0, but no earlier event was returned"},
		{3, false, false, "the timeline ends at entry 3, but the log says \"alice\"'s latest event is entry 4"},
	} {
		addr := lyingProxy(t, l.addr, &droppingAudit{drop: tc.drop, last: tc.last, fakeErase: tc.fakeErase})
		r := must(t, 1, "", "timeline", "-addr", addr, "-vkey", k.vkey, "-tenant", "acme", "alice")
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("drop %d: %s", tc.drop, r.stderr)
		}
	}
}

// lyingProxy serves on 127.0.0.1:0 the LogService of the server at addr,
// unchanged, and audit, whose real is set to that server's AuditService.
func lyingProxy(t *testing.T, addr string, audit *droppingAudit) string {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	audit.real = tlogv1.NewAuditServiceClient(conn)
	proxy := grpc.NewServer()
	tlogv1.RegisterLogServiceServer(proxy, forwardLog{real: tlogv1.NewLogServiceClient(conn)})
	tlogv1.RegisterAuditServiceServer(proxy, audit)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(lis)
	t.Cleanup(proxy.Stop)
	return lis.Addr().String()
}

func TestDrift(t *testing.T) {
	k := newKey(t, "example.com/audit")
	l := startLog(t, k, t.TempDir(), nil)
	conn := []string{"-addr", l.addr, "-vkey", k.vkey}
	n := 0
	ev := func(tenant, action, target, outcome, attr, old, new string) string {
		n++
		s := fmt.Sprintf(`{"eventId":"d%d","occurredAt":"2026-11-26T09:00:00Z","tenant":%q,"actor":{"type":"ACTOR_TYPE_USER","id":"admin"},"action":%q,"target":{"type":"TARGET_TYPE_USER","id":%q},"outcome":%q`, n, tenant, action, target, outcome)
		if attr != "" {
			s += fmt.Sprintf(`,"changes":[{"attribute":%q,"oldValue":%q,"newValue":%q}]`, attr, old, new)
		}
		return s + "}\n"
	}
	stdin := ev("acme", "ACTION_ROLE_ASSIGNED", "alice", "OUTCOME_SUCCESS", "role", "", "viewer") +
		ev("acme", "ACTION_ROLE_ASSIGNED", "alice", "OUTCOME_SUCCESS", "role", "viewer", "admin") +
		ev("acme", "ACTION_PERMISSION_GRANTED", "bob", "OUTCOME_SUCCESS", "permission", "", "reports.read") +
		ev("acme", "ACTION_PERMISSION_REVOKED", "bob", "OUTCOME_SUCCESS", "permission", "reports.read", "") +
		ev("acme", "ACTION_ROLE_ASSIGNED", "dave", "OUTCOME_SUCCESS", "role", "", "editor") +
		ev("acme", "ACTION_ACCOUNT_DELETED", "dave", "OUTCOME_SUCCESS", "", "", "") +
		ev("acme", "ACTION_ROLE_ASSIGNED", "erin", "OUTCOME_DENIED", "role", "", "admin") +
		ev("acme", "ACTION_ROLE_ASSIGNED", "frank", "OUTCOME_SUCCESS", "", "", "") +
		ev("globex", "ACTION_ROLE_ASSIGNED", "alice", "OUTCOME_SUCCESS", "role", "", "superuser")
	must(t, 0, stdin, append([]string{"record"}, conn...)...)
	baseline := filepath.Join(t.TempDir(), "baseline.yaml")
	os.WriteFile(baseline, []byte(`tenant: acme
subjects:
  alice: {roles: [viewer, admin-but-not-this-one]}
  bob: {permissions: [reports.read]}
  carol: {groups: [eng]}
  dave: {roles: [editor]}
`), 0o644)
	r := must(t, 0, "", append([]string{"drift", "-baseline", baseline, "-json"}, conn...)...)
	got := jsonLines(t, r.stdout)
	var lines []string
	for _, m := range got[:len(got)-1] {
		lines = append(lines, fmt.Sprintf("%v %v %v %v %v", m["subject"], m["kind"], m["name"], m["status"], m["action"]))
	}
	want := []string{
		"alice role admin unapproved ACTION_ROLE_ASSIGNED",
		"alice role admin-but-not-this-one never-granted <nil>",
		"bob permission reports.read revoked ACTION_PERMISSION_REVOKED",
		"carol group eng never-granted <nil>",
		"dave role editor revoked ACTION_ACCOUNT_DELETED",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("drift:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if sum := got[len(got)-1]; sum["events"] != 7.0 || sum["unreadable"] != 1.0 {
		t.Fatalf("summary: %v", sum)
	}
	r = must(t, 0, "", append([]string{"drift", "-baseline", baseline}, conn...)...)
	if !strings.Contains(r.stdout, "UNAPPROVED: granted by admin") || !strings.Contains(r.stdout, "5 differences from the baseline") {
		t.Fatalf("drift text: %s", r.stdout)
	}
	// From every entry, and from the server, the same report.
	for _, mode := range []string{"-complete", "-server"} {
		r2 := must(t, 0, "", append([]string{"drift", mode, "-baseline", baseline, "-json"}, conn...)...)
		got2 := jsonLines(t, r2.stdout)
		if len(got2) != len(got) {
			t.Fatalf("%s: %d lines, want %d", mode, len(got2), len(got))
		}
		for i := range got {
			for _, f := range []string{"subject", "kind", "name", "status", "index", "actor", "action", "events", "unreadable", "differences"} {
				if got[i][f] != got2[i][f] {
					t.Fatalf("%s differs at %d in %s: %v vs %v", mode, i, f, got[i], got2[i])
				}
			}
		}
	}
	must(t, 2, "", append([]string{"drift", "-complete", "-server", "-baseline", baseline}, conn...)...)
	// A server cannot show drift its events do not cause.
	for lie, want := range map[string]string{
		"swap":   `drift item alice role "admin" does not verify: entry 3 (ACTION_PERMISSION_REVOKED of "bob" in tenant "acme") does not make it unapproved`,
		"status": `drift item bob permission "reports.read" does not verify: unapproved, but the baseline approves it: true`,
		"invent": `drift item zoe role "root" does not verify: entry 1 (ACTION_ROLE_ASSIGNED of "alice" in tenant "acme") does not make it unapproved`,
	} {
		addr := lyingProxy(t, l.addr, &droppingAudit{drop: -1, driftLie: lie})
		r := must(t, 1, "", "drift", "-server", "-baseline", baseline, "-addr", addr, "-vkey", k.vkey)
		if !strings.Contains(r.stderr, want) {
			t.Errorf("%s: %s", lie, r.stderr)
		}
	}
	r = must(t, 0, "", append([]string{"drift", "-server", "-baseline", baseline}, conn...)...)
	if !strings.Contains(r.stdout, "the server replayed 7 grant events") || !strings.Contains(r.stdout, "the server could have left items out") {
		t.Fatalf("drift -server summary: %s", r.stdout)
	}
	for content, want := range map[string]string{
		"tenant: acme\nsubjects:\n  alice: {rolez: [x]}\n": "field rolez not found",
		"": "the file is empty",
		"tenant: acme\nsubjects:\n  \"\": {roles: [x]}\n":    "an empty subject id",
		"tenant: acme\nsubjects:\n  bob: {groups: [\"\"]}\n": `subjects["bob"].groups[0]: empty`,
	} {
		os.WriteFile(baseline, []byte(content), 0o644)
		if r := must(t, 2, "", append([]string{"drift", "-baseline", baseline}, conn...)...); !strings.Contains(r.stderr, want) {
			t.Errorf("baseline %q: %s", content, r.stderr)
		}
	}
}

func TestErase(t *testing.T) {
	k := newKey(t, "example.com/audit")
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte(server.TokenLine("tlogd_admin_token", "ops")+"\n"+server.TokenLine("tlogd_auditor_token", "auditor")+"\n"), 0o600)
	toks, err := server.LoadTokens(tokens)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := server.ParsePolicy([]byte("principals:\n  ops: [admin]\n  auditor: [auditor, appender]\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := startLog(t, k, t.TempDir(), func(c *server.Config) { c.Tokens, c.Policy = toks, policy })
	dir := t.TempDir()
	adminTok, auditorTok := filepath.Join(dir, "admin"), filepath.Join(dir, "auditor")
	os.WriteFile(adminTok, []byte("tlogd_admin_token"), 0o600)
	os.WriteFile(auditorTok, []byte("tlogd_auditor_token"), 0o600)
	auditor := []string{"-addr", l.addr, "-vkey", k.vkey, "-token-file", auditorTok, "-insecure"}
	admin := []string{"-addr", l.addr, "-vkey", k.vkey, "-token-file", adminTok, "-insecure"}
	stdin := `{"eventId":"a1","occurredAt":"2026-11-26T09:00:00Z","tenant":"acme","actor":{"type":"ACTOR_TYPE_USER","id":"bob"},"action":"ACTION_ROLE_ASSIGNED","target":{"type":"TARGET_TYPE_USER","id":"alice"},"outcome":"OUTCOME_SUCCESS"}
{"eventId":"a2","occurredAt":"2026-11-26T09:00:00Z","tenant":"acme","actor":{"type":"ACTOR_TYPE_USER","id":"bob"},"action":"ACTION_LOGIN_SUCCEEDED","target":{"type":"TARGET_TYPE_USER","id":"bob"},"outcome":"OUTCOME_SUCCESS"}
`
	must(t, 0, stdin, append([]string{"record"}, auditor...)...)
	must(t, 2, "", append([]string{"erase", "-tenant", "acme", "alice"}, admin...)...)
	r := must(t, 3, "", append([]string{"erase", "-tenant", "acme", "-reason", "request 7", "alice"}, auditor...)...)
	if !strings.Contains(r.stderr, "PermissionDenied") {
		t.Fatalf("erase as an auditor: %s", r.stderr)
	}
	r = must(t, 0, "", append([]string{"erase", "-tenant", "acme", "-reason", "request 7", "alice"}, admin...)...)
	if !strings.Contains(r.stdout, "erased the payloads of 1 event naming \"alice\"; the erasure is recorded at entry 2") {
		t.Fatalf("erase: %s", r.stdout)
	}
	// bob's timeline still verifies, through the erased event.
	r = must(t, 0, "", append([]string{"timeline", "-tenant", "acme", "bob"}, auditor...)...)
	if !strings.Contains(r.stdout, "ERASED by entry 2") || !strings.Contains(r.stdout, "LOGIN_SUCCEEDED") {
		t.Fatalf("bob's timeline: %s", r.stdout)
	}
	// An export verifies, counting the erased record.
	exp := filepath.Join(dir, "exp.jsonl")
	must(t, 0, "", append([]string{"export", "-out", exp}, auditor...)...)
	r = must(t, 0, "", "verify-export", "-vkey", k.vkey, exp)
	if !strings.Contains(r.stdout, "(1 erased") {
		t.Fatalf("verify-export: %s", r.stdout)
	}
	// The erasure record says who, why and what.
	r = must(t, 0, "", append([]string{"query", "-action", "subject_erased", "-json"}, auditor...)...)
	if !strings.Contains(r.stdout, `"reason":"request 7"`) || !strings.Contains(r.stdout, `"erased_entries":"0"`) || !strings.Contains(r.stdout, `"id":"ops"`) {
		t.Fatalf("erasure record: %s", r.stdout)
	}
}
