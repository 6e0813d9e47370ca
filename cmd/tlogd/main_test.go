package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/internal/testutil"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

// buildBinary compiles tlogd once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tlogd")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build tlogd: %v", err)
	}
	return bin
}

// daemon is a running tlogd process.
type daemon struct {
	cmd     *exec.Cmd
	addr    string
	metrics string
	vkey    string
	stderr  *testutil.SyncBuffer
	exited  chan error
}

func (d *daemon) stderrText() string { return d.stderr.String() }

var (
	serveLine   = regexp.MustCompile(`tlogd serving log \S+ on (\S+)`)
	metricsLine = regexp.MustCompile(`"msg":"serving metrics","addr":"([^"]+)"`)
	tilesLine   = regexp.MustCompile(`"msg":"serving http","addr":"([^"]+)","tls":true`)
)

func startDaemon(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "-listen", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &testutil.SyncBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.exited <- cmd.Wait()
	}()
	deadline := time.After(30 * time.Second)
	for d.addr == "" || d.vkey == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tlogd exited before serving: %v\n%s", <-d.exited, d.stderr)
			}
			if m := serveLine.FindStringSubmatch(l); m != nil {
				d.addr = m[1]
			}
			if v, ok := strings.CutPrefix(l, "verifier key: "); ok {
				d.vkey = v
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("tlogd did not start\n%s", d.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	return d
}

// startDaemonMetrics starts tlogd with -metrics-listen and JSON logs among
// args; it waits for the gRPC address and the metrics address.
func startDaemonMetrics(t *testing.T, bin string, args ...string) *daemon {
	t.Helper()
	d := startDaemon(t, bin, args...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := metricsLine.FindStringSubmatch(d.stderrText()); m != nil {
			d.metrics = m[1]
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no metrics address in the log:\n%s", d.stderrText())
	return nil
}

// dialTLS connects with the client certificate of name ("" for none).
func (d *daemon) dialTLS(t *testing.T, certs, name string) *grpc.ClientConn {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(certs, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if name != "" {
		c, err := tls.LoadX509KeyPair(filepath.Join(certs, "client-"+name+".pem"), filepath.Join(certs, "client-"+name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (d *daemon) client(t *testing.T) (tlogv1.LogServiceClient, *grpc.ClientConn) {
	t.Helper()
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("health: %v", err)
	}
	return tlogv1.NewLogServiceClient(conn), conn
}

// stop sends SIGTERM and requires a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("tlogd exited with %v after SIGTERM\n%s", err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tlogd did not stop after SIGTERM")
	}
}

func TestServeDefaultRestartAndWrongKey(t *testing.T) {
	bin := buildBinary(t)
	work := t.TempDir()
	data := filepath.Join(work, "tlogd-data")

	d := startDaemon(t, bin, "-data-dir", data, "-origin", "test.example/log")
	st, err := os.Stat(filepath.Join(data, "log.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	verifier, err := note.NewVerifier(d.vkey)
	if err != nil || verifier.Name() != "test.example/log" {
		t.Fatalf("printed verifier key %q: %v", d.vkey, err)
	}
	c, _ := d.client(t)
	ctx := context.Background()
	resp, err := c.Append(ctx, &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: []byte("role admin granted to alice")}, {Payload: []byte("user bob deleted")}}})
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := tlog.OpenCheckpoint([]byte(resp.GetCheckpoint()), verifier)
	if err != nil || first.Size != 2 {
		t.Fatalf("checkpoint %+v: %v", first, err)
	}
	d.stop(t)
	if !strings.Contains(d.stderr.String(), "stopped") {
		t.Fatalf("no clean shutdown in the log:\n%s", d.stderr)
	}

	// Restart: the same tree continues, proofs span the restart.
	d = startDaemon(t, bin, "-data-dir", data)
	c, _ = d.client(t)
	resp, err = c.Append(ctx, &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: []byte("user carol created")}}})
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := tlog.OpenCheckpoint([]byte(resp.GetCheckpoint()), verifier)
	if err != nil || second.Size != 3 || resp.GetResults()[0].GetIndex() != 2 {
		t.Fatalf("after restart: %+v, %v", second, err)
	}
	cons, err := c.GetConsistencyProof(ctx, &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]tlog.Hash, len(cons.GetHashes()))
	for i, h := range cons.GetHashes() {
		p[i] = tlog.Hash(h)
	}
	if err := tlog.VerifyConsistency(2, 3, p, first.Root, second.Root); err != nil {
		t.Fatal(err)
	}
	d.stop(t)

	// A different key for the same data directory is refused, clearly.
	other := filepath.Join(work, "other.key")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "-origin", "test.example/log", "-out", other}, &out, &errb); code != 0 {
		t.Fatalf("keygen exit %d: %s", code, errb.String())
	}
	cmd := exec.Command(bin, "serve", "-listen", "127.0.0.1:0", "-data-dir", data, "-key-file", other)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "refusing to start") || !strings.Contains(string(msg), d.vkey) {
		t.Fatalf("serve with another key: %v\n%s", err, msg)
	}

	// A second tlogd on a directory in use is refused, saying why.
	d = startDaemon(t, bin, "-data-dir", data)
	msg, err = exec.Command(bin, "serve", "-listen", "127.0.0.1:0", "-data-dir", data).CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "locked by another process") {
		t.Fatalf("second tlogd on the same directory: %v\n%s", err, msg)
	}
	d.stop(t)
}

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "log.key")
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "-origin", "audit.example.com/log", "-out", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	vkey := strings.TrimSpace(strings.TrimPrefix(out.String()[strings.Index(out.String(), "verifier key: "):], "verifier key: "))
	skey, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, derived, err := tlog.ParseSignerKey(string(skey))
	if err != nil || derived != vkey {
		t.Fatalf("printed vkey %q, key file gives %q (%v)", vkey, derived, err)
	}
	// Never overwrite a key.
	errb.Reset()
	if code := run([]string{"keygen", "-origin", "audit.example.com/log", "-out", path}, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "refusing to overwrite") {
		t.Fatalf("second keygen: exit %d: %s", code, errb.String())
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, skey) {
		t.Fatal("the key file changed")
	}
}

func TestConfigFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlogd.yaml")
	os.WriteFile(conf, []byte("listen: 0.0.0.0:0\nmax-records-per-append: 5\n"), 0o644)
	var errb bytes.Buffer
	// The file's listen address applies, and is refused without TLS.
	if code := run([]string{"serve", "-config", conf}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "-listen 0.0.0.0:0 is not a loopback") {
		t.Fatalf("config file: exit %d: %s", code, errb.String())
	}
	// The environment wins over the file.
	t.Setenv("TLOGD_MAX_RECORDS_PER_APPEND", "0")
	errb.Reset()
	if code := run([]string{"serve", "-config", conf}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "-max-records-per-append 0") {
		t.Fatalf("environment over file: exit %d: %s", code, errb.String())
	}
	// The command line wins over both.
	errb.Reset()
	if code := run([]string{"serve", "-config", conf, "-max-records-per-append", "20000"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "-max-records-per-append 20000") {
		t.Fatalf("command line over environment: exit %d: %s", code, errb.String())
	}
	os.WriteFile(conf, []byte("lissten: 127.0.0.1:0\n"), 0o644)
	errb.Reset()
	if code := run([]string{"serve", "-config", conf}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), `unknown setting "lissten"`) {
		t.Fatalf("misspelt setting: exit %d: %s", code, errb.String())
	}
}

// TestServeWithMutualTLSAndTokens follows the README: make certificates,
// a token and a policy, run tlogd with them, and call it as each principal.
func TestServeWithMutualTLSAndTokens(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	var out, errb bytes.Buffer
	if code := run([]string{"devcerts", "-out", certs, "-client", "billing", "-client", "alice"}, &out, &errb); code != 0 {
		t.Fatalf("devcerts: %s", errb.String())
	}
	out.Reset()
	if code := run([]string{"token", "-principal", "bob"}, &out, &errb); code != 0 {
		t.Fatalf("token: %s", errb.String())
	}
	var tok, line string
	for _, l := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "token (give it to the client; it is not stored anywhere): "); ok {
			tok = v
		}
		if v, ok := strings.CutPrefix(l, "line for -token-file: "); ok {
			line = v
		}
	}
	if tok == "" || line == "" || strings.Contains(line, tok) {
		t.Fatalf("token output: %q", out.String())
	}
	os.WriteFile(filepath.Join(dir, "tokens"), []byte(line+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte("principals:\n  spiffe://tlogd.local/billing: [appender]\n  spiffe://tlogd.local/alice: [auditor]\n  bob: [reader]\n"), 0o644)

	d := startDaemonMetrics(t, bin, "-data-dir", filepath.Join(dir, "data"),
		"-tls-cert", filepath.Join(certs, "server.pem"), "-tls-key", filepath.Join(certs, "server-key.pem"),
		"-tls-client-ca", filepath.Join(certs, "ca.pem"), "-token-file", filepath.Join(dir, "tokens"),
		"-policy", filepath.Join(dir, "policy.yaml"), "-metrics-listen", "127.0.0.1:0", "-http-listen", "127.0.0.1:0")
	client := func(name string) tlogv1.LogServiceClient {
		return tlogv1.NewLogServiceClient(d.dialTLS(t, certs, name))
	}
	ctx := context.Background()
	if _, err := client("billing").Append(ctx, &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: []byte("user carol created")}}}); err != nil {
		t.Fatalf("billing appends: %v", err)
	}
	_, err := client("alice").Append(ctx, &tlogv1.AppendRequest{Records: []*tlogv1.Record{{Payload: []byte("x")}}})
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), `"spiffe://tlogd.local/alice" (roles auditor) lacks capability "append"`) {
		t.Fatalf("auditor appending: %v", err)
	}
	_, err = client("").GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "credentials required") {
		t.Fatalf("anonymous read: %v", err)
	}
	bob := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	if _, err := client("").GetCheckpoint(bob, &tlogv1.GetCheckpointRequest{}); err != nil {
		t.Fatalf("bob reads with his token: %v", err)
	}
	if _, err := client("").GetEntries(bob, &tlogv1.GetEntriesRequest{Count: 1, IncludePayloads: true}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob reads payloads: %v", err)
	}
	resp, err := client("alice").GetEntries(ctx, &tlogv1.GetEntriesRequest{Count: 1, IncludePayloads: true})
	if err != nil || string(resp.GetEntries()[0].GetPayload()) != "user carol created" {
		t.Fatalf("alice reads payloads: %v", err)
	}
	// Metrics are served, and count the payload read.
	m, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{"tlogd_tree_size 2", "tlogd_payload_reads_total 1", `grpc_server_handled_total{grpc_code="PermissionDenied",grpc_method="Append"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The tlog-tiles API is served over TLS with the same certificate and
	// without credentials: it holds no personal data.
	tm := tilesLine.FindStringSubmatch(d.stderrText())
	if tm == nil {
		t.Fatalf("no tlog-tiles address in the log:\n%s", d.stderrText())
	}
	caPEM, _ := os.ReadFile(filepath.Join(certs, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	cp, err := client("alice").GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/checkpoint": cp.GetCheckpoint(), "/tile/0/000.p/2": ""} {
		r, err := hc.Get("https://" + tm[1] + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || (want != "" && string(body) != want) || (want == "" && len(body) != 64) {
			t.Errorf("GET %s: %d %q", path, r.StatusCode, body)
		}
	}
	d.stop(t)
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // expected in stdout (code 0) or stderr
	}{
		{[]string{"--help"}, 0, "Usage:"},
		{[]string{"serve", "-help"}, 0, "-data-dir"},
		{[]string{"keygen", "--help"}, 0, "-origin"},
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "-no-such-flag"}, 2, "no-such-flag"},
		{[]string{"serve", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"keygen", "-origin", "x"}, 2, "-out and one of -origin and -cosigner are required"},
		{[]string{"keygen", "-origin", "x", "-cosigner", "w", "-out", "k"}, 2, "-out and one of -origin and -cosigner are required"},
		{[]string{"keygen", "-cosigner", "has space", "-out", filepath.Join(t.TempDir(), "k")}, 2, "cosigner name"},
		{[]string{"serve", "-witness-key", "k"}, 2, "-witness-key and -witness-logs go together"},
		{[]string{"serve", "-witness-peers", "http://x/witness"}, 2, "-witness-peers needs -witness-key"},
		{[]string{"serve", "-witness-key", "k", "-witness-logs", "l"}, 2, "-witness-key needs -http-listen"},
		{[]string{"serve", "-http-listen", "0.0.0.0:0"}, 2, "-http-listen 0.0.0.0:0 is not a loopback address"},
		{[]string{"keygen", "-origin", "has space", "-out", filepath.Join(t.TempDir(), "k")}, 2, "cannot name a note key"},
		{[]string{"serve", "-log-level", "loud"}, 2, "-log-level"},
		{[]string{"serve", "-max-records-per-append", "20000", "-data-dir", filepath.Join(t.TempDir(), "never")}, 2, "-max-records-per-append 20000: want 1 to 10000"},
		{[]string{"serve", "-max-payload-bytes", "0"}, 2, "-max-payload-bytes 0"},
		{[]string{"serve", "-listen", "0.0.0.0:0"}, 2, "-listen 0.0.0.0:0 is not a loopback address"},
		{[]string{"serve", "-token-file", "t"}, 2, "-policy is required"},
		{[]string{"serve", "-tls-client-ca", "ca.pem", "-policy", "p"}, 2, "-tls-client-ca needs -tls-cert"},
		{[]string{"serve", "-policy", "p"}, 2, "-policy needs -tls-client-ca or -token-file"},
		{[]string{"serve", "-tls-cert", "c.pem"}, 2, "-tls-cert and -tls-key go together"},
		{[]string{"serve", "-session-ttl", "0"}, 2, "-session-ttl 0s: want 1m to 720h"},
		{[]string{"serve", "-session-ttl", "-1h"}, 2, "-session-ttl -1h0m0s: want 1m to 720h"},
		{[]string{"serve", "-trusted-proxy", "127.0.0.1"}, 2, "-trusted-proxy is for the dashboard"},
		{[]string{"serve", "-trusted-proxy", "::/0", "-http-listen", "127.0.0.1:0"}, 2, "would trust every peer"},
		{[]string{"serve", "-trusted-proxy", "10.0.0.0/8,proxy.example", "-http-listen", "127.0.0.1:0"}, 2, `"proxy.example" is not an address or CIDR`},
		{[]string{"serve", "-dashboard-host", "a.example,b.example/x"}, 2, `"b.example/x" is not a host name`},
		{[]string{"token"}, 2, "-principal is required"},
		{[]string{"token", "-principal", "has space"}, 2, "spaces"},
		{[]string{"devcerts", "-help"}, 0, "-client"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		text := errb.String()
		if tc.code == 0 {
			text = out.String()
		}
		if code != tc.code || !strings.Contains(text, tc.out) {
			t.Errorf("tlogd %v: exit %d, output %q; want exit %d with %q", tc.args, code, text, tc.code, tc.out)
		}
	}
}

// TestREADMEFlags checks that the README's flag table names every flag of
// tlogd serve, so that the two do not drift apart.
func TestREADMEFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "-help"}, &out, &errb); code != 0 {
		t.Fatalf("serve -help: exit %d: %s", code, errb.String())
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(out.String(), -1)
	if len(flags) < 30 {
		t.Fatalf("only %d flags in serve -help:\n%s", len(flags), out.String())
	}
	for _, f := range flags {
		if !regexp.MustCompile(`(?m)^  (.*, )?` + regexp.QuoteMeta(f[1]) + `[ ,=]`).Match(readme) {
			t.Errorf("the README's flag table lacks %s", f[1])
		}
	}
}
