package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/tlogd/tlogd/internal/devcert"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/storage"
	"github.com/tlogd/tlogd/tlog"
)

const testPolicy = `
principals:
  spiffe://example.org/billing: [appender]   # URI SAN
  auditor.example.org: [auditor]             # DNS SAN
  CN=ops: [admin]                            # subject only
  reader-token: [reader]                     # bearer token
  auditor-token: [auditor]
anonymous: [reader]
`

// pki is a CA with the certificates the tests present.
type pki struct {
	ca     *devcert.CA
	server devcert.Pair
	certs  map[string]tls.Certificate // by principal
	pool   *x509.CertPool
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca, err := devcert.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, certs: map[string]tls.Certificate{}, pool: x509.NewCertPool()}
	p.pool.AddCert(ca.Cert)
	if p.server, err = ca.Issue(devcert.Leaf{CommonName: "tlogd", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}); err != nil {
		t.Fatal(err)
	}
	for name, leaf := range map[string]devcert.Leaf{
		"spiffe://example.org/billing": {CommonName: "billing", URIs: []string{"spiffe://example.org/billing"}, DNSNames: []string{"ignored.example.org"}, Client: true},
		"auditor.example.org":          {CommonName: "auditor", DNSNames: []string{"auditor.example.org"}, Client: true},
		"CN=ops":                       {CommonName: "ops", Client: true},
		"spiffe://example.org/nobody":  {URIs: []string{"spiffe://example.org/nobody"}, Client: true},
		"expired":                      {URIs: []string{"spiffe://example.org/billing"}, Client: true, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)},
	} {
		p.certs[name] = p.issue(t, ca, leaf)
	}
	other, err := devcert.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.certs["wrong CA"] = p.issue(t, other, devcert.Leaf{URIs: []string{"spiffe://example.org/billing"}, Client: true})
	return p
}

func (p *pki) issue(t testing.TB, ca *devcert.CA, l devcert.Leaf) tls.Certificate {
	t.Helper()
	pair, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secureLog is a server with mutual TLS, tokens and a policy on 127.0.0.1:0.
type secureLog struct {
	*testLog
	pki    *pki
	addr   string
	tokens map[string]string // principal → token
}

func startSecureLog(t testing.TB, policy string, mod func(*Config), setup ...func(*Server)) *secureLog {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/test-log")
	if err != nil {
		t.Fatal(err)
	}
	return startSecureLogKey(t, skey, policy, mod, setup...)
}

// startSecureLogKey is startSecureLog with the given signing key.
func startSecureLogKey(t testing.TB, skey, policy string, mod func(*Config), setup ...func(*Server)) *secureLog {
	t.Helper()
	p := newPKI(t)
	srvCert, err := tls.X509KeyPair(p.server.CertPEM, p.server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	toks := map[string]string{}
	var lines []string
	for _, name := range []string{"reader-token", "auditor-token", "unlisted-token"} {
		tok := "tok-" + name + "-" + rand.Text()
		toks[name] = tok
		lines = append(lines, TokenLine(tok, name))
	}
	tokens := &Tokens{byHash: map[[32]byte]string{}}
	for _, l := range lines {
		e, err := ParseTokenLine(l)
		if err != nil {
			t.Fatal(err)
		}
		tokens.byHash[e.hash] = e.Principal
	}
	var addr string
	tl := startLogKey(t, nil, skey, func(c *Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: p.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
		c.Tokens = tokens
		c.Policy = pol
		if mod != nil {
			mod(c)
		}
	}, setup...)
	addr = tl.conn.Target()
	return &secureLog{testLog: tl, pki: p, addr: addr, tokens: toks}
}

// dial connects with a client certificate (the principal's, or none when
// who is "" or a token name).
func (sl *secureLog) dial(t testing.TB, who string) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: sl.pki.pool, MinVersion: tls.VersionTLS12}
	if c, ok := sl.pki.certs[who]; ok {
		// Send it whatever the server asks for: Go's client would
		// otherwise hold back a certificate from another CA.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	conn, err := grpc.NewClient(sl.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// callCtx returns a context carrying who's bearer token, if who is a token
// principal.
func (sl *secureLog) callCtx(t *testing.T, who string) context.Context {
	c := ctx(t)
	if tok, ok := sl.tokens[who]; ok {
		c = metadata.AppendToOutgoingContext(c, "authorization", "Bearer "+tok)
	}
	return c
}

// rpc is one call a test makes, returning its error.
type rpc struct {
	name string
	need Capability // what the method (with its options) requires
	call func(context.Context, *grpc.ClientConn) error
}

func allRPCs() []rpc {
	lc := func(c *grpc.ClientConn) tlogv1.LogServiceClient { return tlogv1.NewLogServiceClient(c) }
	stream := func(payloads bool) func(context.Context, *grpc.ClientConn) error {
		return func(ctx context.Context, c *grpc.ClientConn) error {
			s, err := lc(c).StreamEntries(ctx, &tlogv1.StreamEntriesRequest{IncludePayloads: payloads})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					if err == io.EOF {
						return nil
					}
					return err
				}
			}
		}
	}
	return []rpc{
		{"Append", CapAppend, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).Append(ctx, &tlogv1.AppendRequest{Records: records("role granted " + rand.Text())})
			return err
		}},
		{"GetCheckpoint", CapRead, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).GetCheckpoint(ctx, &tlogv1.GetCheckpointRequest{})
			return err
		}},
		{"GetInclusionProof", CapRead, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).GetInclusionProof(ctx, &tlogv1.GetInclusionProofRequest{Leaf: &tlogv1.GetInclusionProofRequest_Index{Index: 0}})
			return err
		}},
		{"GetConsistencyProof", CapRead, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).GetConsistencyProof(ctx, &tlogv1.GetConsistencyProofRequest{FirstTreeSize: 1})
			return err
		}},
		{"GetEntries", CapRead, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).GetEntries(ctx, &tlogv1.GetEntriesRequest{Count: 2})
			return err
		}},
		{"GetEntries with payloads", CapReadPayloads, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).GetEntries(ctx, &tlogv1.GetEntriesRequest{Count: 2, IncludePayloads: true})
			return err
		}},
		{"StreamEntries", CapRead, stream(false)},
		{"StreamEntries with payloads", CapReadPayloads, stream(true)},
		{"GetLogInfo", CapDiscover, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := lc(c).GetLogInfo(ctx, &tlogv1.GetLogInfoRequest{})
			return err
		}},
		{"FindRecord", CapReadPayloads, func(ctx context.Context, c *grpc.ClientConn) error {
			h := sha256.Sum256([]byte("a"))
			_, err := lc(c).FindRecord(ctx, &tlogv1.FindRecordRequest{PayloadHash: h[:]})
			return err
		}},
		{"RecordEvents", CapAppend, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := tlogv1.NewAuditServiceClient(c).RecordEvents(ctx, &tlogv1.RecordEventsRequest{Events: []*tlogv1.AuditEvent{testEvent(rand.Text(), "admin", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED)}})
			return err
		}},
		{"GetTimeline", CapReadPayloads, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := tlogv1.NewAuditServiceClient(c).GetTimeline(ctx, &tlogv1.GetTimelineRequest{SubjectId: "alice"})
			return err
		}},
		{"QueryEvents", CapReadPayloads, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := tlogv1.NewAuditServiceClient(c).QueryEvents(ctx, &tlogv1.QueryEventsRequest{Tenant: "acme"})
			return err
		}},
		{"EraseSubject", CapAdmin, func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := tlogv1.NewAuditServiceClient(c).EraseSubject(ctx, &tlogv1.EraseSubjectRequest{SubjectId: "nobody-" + rand.Text(), Reason: "test"})
			if status.Code(err) == codes.NotFound {
				return nil // allowed, nothing to erase
			}
			return err
		}},
		{"reflection", CapDiscover, func(ctx context.Context, c *grpc.ClientConn) error {
			s, err := reflectionpb.NewServerReflectionClient(c).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			// A refused stream may fail Send with io.EOF; its status
			// comes from Recv either way.
			_ = s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = s.Recv()
			return err
		}},
		{"health", "", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
	}
}

// TestEveryRoleAgainstEveryMethod runs every call as every kind of caller
// and checks the code the policy implies.
func TestEveryRoleAgainstEveryMethod(t *testing.T) {
	sl := startSecureLog(t, testPolicy, nil)
	// Two leaves to prove and read.
	billing := sl.dial(t, "spiffe://example.org/billing")
	if _, err := tlogv1.NewLogServiceClient(billing).Append(ctx(t), &tlogv1.AppendRequest{Records: records("a", "b")}); err != nil {
		t.Fatal(err)
	}
	roles := map[string][]string{
		"spiffe://example.org/billing": {"appender"},
		"auditor.example.org":          {"auditor"},
		"CN=ops":                       {"admin"},
		"reader-token":                 {"reader"},
		"auditor-token":                {"auditor"},
		"spiffe://example.org/nobody":  nil, // authenticated, no role
		"unlisted-token":               nil,
		"":                             nil, // anonymous: the policy grants reader
	}
	for who, rs := range roles {
		var caps capSet
		for _, r := range rs {
			for _, c := range BuiltinRoles[r] {
				caps |= capBit(c)
			}
		}
		anonymous := who == ""
		if anonymous {
			caps = capBit(CapRead) | capBit(CapDiscover)
		}
		conn := sl.dial(t, who)
		for _, r := range allRPCs() {
			name := who
			if anonymous {
				name = "anonymous"
			}
			t.Run(name+"/"+r.name, func(t *testing.T) {
				err := r.call(sl.callCtx(t, who), conn)
				want := codes.OK
				switch {
				case r.need == "" || caps.has(r.need):
				case anonymous:
					want = codes.Unauthenticated
				default:
					want = codes.PermissionDenied
				}
				if got := status.Code(err); got != want {
					t.Fatalf("got %v (%v), want %v", got, err, want)
				}
			})
		}
	}
}

// TestEveryMethodHasARule enumerates every registered method: each must
// have an explicit rule (only health is exempt), and no rule may name a
// method that does not exist.
func TestEveryMethodHasARule(t *testing.T) {
	tl := startLog(t, nil)
	registered := map[string]bool{}
	for svc, info := range tl.srv.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			registered[full] = true
			if svc == healthpb.Health_ServiceDesc.ServiceName {
				continue
			}
			if _, ok := methodRules[full]; !ok {
				t.Errorf("%s has no access rule", full)
			}
		}
	}
	for m := range methodRules {
		if !registered[m] {
			t.Errorf("rule for %s, which is not registered", m)
		}
	}
	if len(registered) < 10 {
		t.Fatalf("only %d methods registered: %v", len(registered), registered)
	}
}

func TestBadCredentials(t *testing.T) {
	sl := startSecureLog(t, testPolicy, nil)
	for _, who := range []string{"expired", "wrong CA"} {
		t.Run(who, func(t *testing.T) {
			_, err := tlogv1.NewLogServiceClient(sl.dial(t, who)).GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
			// With TLS 1.3 the client may see the server's alert
			// ("bad certificate") or only the closed connection.
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("TLS handshake with a bad client certificate: %v", err)
			}
		})
	}
	t.Run("unknown token", func(t *testing.T) {
		c := metadata.AppendToOutgoingContext(ctx(t), "authorization", "Bearer not-a-token")
		_, err := tlogv1.NewLogServiceClient(sl.dial(t, "")).GetCheckpoint(c, &tlogv1.GetCheckpointRequest{})
		if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || st.Message() != "authorization: unknown bearer token" {
			t.Fatalf("unknown token: %v", err)
		}
	})
	t.Run("malformed header", func(t *testing.T) {
		c := metadata.AppendToOutgoingContext(ctx(t), "authorization", "Basic abc")
		_, err := tlogv1.NewLogServiceClient(sl.dial(t, "")).GetCheckpoint(c, &tlogv1.GetCheckpointRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("malformed authorization: %v", err)
		}
	})
	t.Run("plaintext to a TLS server", func(t *testing.T) {
		conn, err := grpc.NewClient(sl.addr, grpc.WithTransportCredentials(insecureCreds()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = tlogv1.NewLogServiceClient(conn).GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("plaintext client: %v", err)
		}
	})
}

func TestNoAnonymousAccessWithoutPolicyGrant(t *testing.T) {
	sl := startSecureLog(t, "principals:\n  reader-token: [reader]\n", nil)
	_, err := tlogv1.NewLogServiceClient(sl.dial(t, "")).GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || !strings.HasPrefix(st.Message(), "credentials required") {
		t.Fatalf("anonymous read without a grant: %v", err)
	}
	// Health stays open.
	if _, err := healthpb.NewHealthClient(sl.dial(t, "")).Check(ctx(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without credentials: %v", err)
	}
}

func TestRateLimitPerPrincipal(t *testing.T) {
	sl := startSecureLog(t, testPolicy, func(c *Config) { c.RateLimit, c.RateBurst = 0.001, 3 })
	reader := tlogv1.NewLogServiceClient(sl.dial(t, ""))
	auditor := tlogv1.NewLogServiceClient(sl.dial(t, "auditor.example.org"))
	for i := range 3 {
		if _, err := reader.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{}); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	_, err := reader.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), `principal "anonymous"`) {
		t.Fatalf("call over the limit: %v", err)
	}
	// Another principal has its own budget.
	if _, err := auditor.GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{}); err != nil {
		t.Fatalf("another principal: %v", err)
	}
}

func TestPayloadReadsAreRecorded(t *testing.T) {
	sl := startSecureLog(t, testPolicy, nil)
	billing := tlogv1.NewLogServiceClient(sl.dial(t, "spiffe://example.org/billing"))
	if _, err := billing.Append(ctx(t), &tlogv1.AppendRequest{Records: records("user alice created", "role admin granted to alice")}); err != nil {
		t.Fatal(err)
	}
	auditor := tlogv1.NewLogServiceClient(sl.dial(t, "auditor.example.org"))
	resp, err := auditor.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 2, IncludePayloads: true})
	if err != nil || len(resp.GetEntries()) != 2 {
		t.Fatalf("auditor read: %v", err)
	}
	// The read is entry 2, durable before the payloads were sent.
	after, err := auditor.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 2, Count: 1, IncludePayloads: true})
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := payloadReadRecord(after.GetEntries()[0].GetPayload())
	if !ok {
		t.Fatalf("entry 2 is not a payload-read record: %q", after.GetEntries()[0].GetPayload())
	}
	if ev.GetActor().GetId() != "auditor.example.org" || ev.GetActor().GetType() != tlogv1.ActorType_ACTOR_TYPE_SERVICE ||
		ev.GetActor().GetSourceIp() != "127.0.0.1" || ev.GetLabels()["first_index"] != "0" || ev.GetLabels()["last_index"] != "1" ||
		ev.GetTarget().GetType() != tlogv1.TargetType_TARGET_TYPE_LOG || ev.GetOccurredAt() == nil || ev.GetEventId() == "" {
		t.Fatalf("payload-read record: %v", ev)
	}
	if err := tlog.VerifyRecord(after.GetEntries()[0].GetEntry(), after.GetEntries()[0].GetSalt(), after.GetEntries()[0].GetPayload()); err != nil {
		t.Fatal(err)
	}
	// FindRecord is recorded whether it finds the payload or not.
	h := sha256.Sum256([]byte("role admin granted to alice"))
	found, err := auditor.FindRecord(ctx(t), &tlogv1.FindRecordRequest{PayloadHash: h[:]})
	if err != nil || found.GetEntry().GetIndex() != 1 || found.GetEntry().GetPayload() != nil ||
		tlog.VerifyRecord(found.GetEntry().GetEntry(), found.GetEntry().GetSalt(), []byte("role admin granted to alice")) != nil {
		t.Fatalf("FindRecord: %v, %v", found, err)
	}
	miss := sha256.Sum256([]byte("never appended"))
	if _, err := auditor.FindRecord(ctx(t), &tlogv1.FindRecordRequest{PayloadHash: miss[:]}); status.Code(err) != codes.NotFound {
		t.Fatalf("FindRecord of an unknown payload: %v", err)
	}
	if _, err := auditor.FindRecord(ctx(t), &tlogv1.FindRecordRequest{PayloadHash: miss[:5]}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "payload_hash") {
		t.Fatalf("FindRecord with a short hash: %v", err)
	}
	// Entry 3 records the read of entry 2; 4 and 5 the two lookups.
	reads, err := auditor.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Start: 4, Count: 2, IncludePayloads: true})
	if err != nil || len(reads.GetEntries()) != 2 {
		t.Fatalf("reading the FindRecord records: %v", err)
	}
	for i, want := range []string{"true", "false"} {
		ev, ok := payloadReadRecord(reads.GetEntries()[i].GetPayload())
		if !ok || ev.GetLabels()["method"] != "FindRecord" || ev.GetLabels()["found"] != want {
			t.Fatalf("entry %d: %v, want a FindRecord record with found=%s", 4+i, ev, want)
		}
	}

	// A read refused for lack of the capability records nothing.
	reader := tlogv1.NewLogServiceClient(sl.dial(t, ""))
	size := sl.store.Head().Size
	if _, err := reader.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 1, IncludePayloads: true}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous payload read: %v", err)
	}
	if sl.store.Head().Size != size {
		t.Fatal("a refused read was recorded")
	}
}

func TestMetricsAreExported(t *testing.T) {
	tl := startLog(t, nil)
	web := httptest.NewServer(tl.srv.MetricsHandler())
	defer web.Close()
	scrape := func() map[string]float64 {
		t.Helper()
		resp, err := web.Client().Get(web.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		families, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("parse metrics: %v", err)
		}
		out := map[string]float64{}
		for name, f := range families {
			for _, m := range f.GetMetric() {
				// name[,method[,code]]
				var method, code string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "grpc_method":
						method = l.GetValue()
					case "grpc_code":
						code = l.GetValue()
					}
				}
				key := name
				for _, v := range []string{method, code} {
					if v != "" {
						key += "," + v
					}
				}
				switch {
				case m.GetCounter() != nil:
					out[key] += m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					out[key] += m.GetGauge().GetValue()
				case m.GetHistogram() != nil:
					out[key+"_count"] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return out
	}
	before := scrape()
	for i := range 3 {
		if _, err := tl.client.Append(ctx(t), &tlogv1.AppendRequest{Records: records(fmt.Sprint("m", i), fmt.Sprint("n", i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tl.client.GetEntries(ctx(t), &tlogv1.GetEntriesRequest{Count: 1, IncludePayloads: true}); err != nil {
		t.Fatal(err)
	}
	after := scrape()
	for _, name := range []string{
		"tlogd_ready", "tlogd_checkpoint_age_seconds", "tlogd_pebble_disk_bytes", "tlogd_pebble_read_amplification",
		"tlogd_pebble_memtable_bytes", "tlogd_index_pending_leaves", "go_goroutines", "process_resident_memory_bytes",
	} {
		if _, ok := after[name]; !ok {
			t.Errorf("series %s missing", name)
		}
	}
	for name, delta := range map[string]float64{
		"tlogd_tree_size":                               7, // 6 records and the payload-read record
		"grpc_server_handled_total,Append,OK":           3,
		"grpc_server_handled_total,GetEntries,OK":       1,
		"tlogd_batch_records_count":                     4,
		"tlogd_batch_fsync_seconds_count":               4,
		"tlogd_append_duration_seconds_count":           3,
		"tlogd_payload_reads_total":                     1,
		"grpc_server_handling_seconds,Append_count":     3,
		"grpc_server_handling_seconds,GetLogInfo_count": 0,
	} {
		if got := after[name] - before[name]; got != delta {
			t.Errorf("%s moved by %v, want %v", name, got, delta)
		}
	}
	if after["tlogd_ready"] != 1 {
		t.Errorf("tlogd_ready = %v", after["tlogd_ready"])
	}
}

func TestNotServingUntilAttached(t *testing.T) {
	skey, _, _ := note.GenerateKey(rand.Reader, "example.com/late")
	signer, vkey, err := tlog.ParseSignerKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop(context.Background())
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := healthpb.NewHealthClient(conn).Check(ctx(t), &healthpb.HealthCheckRequest{Service: "tlog.v1.LogService"}, grpc.WaitForReady(true))
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before the log is open: %v %v", h.GetStatus(), err)
	}
	_, err = tlogv1.NewLogServiceClient(conn).GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "still opening") {
		t.Fatalf("log call before the log is open: %v", err)
	}
	store, err := storage.Open(t.TempDir(), storage.Options{Signer: signer, VerifierKey: vkey, CacheBytes: 8 << 20, Reindex: Reindex})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv.Attach(store)
	waitServing(t, conn)
	if _, err := tlogv1.NewLogServiceClient(conn).GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{}); err != nil {
		t.Fatal(err)
	}
	srv.Stop(context.Background())
}

func TestCallDeadlineIsCapped(t *testing.T) {
	tl := startLog(t, func(c *Config) { c.MaxCallDuration = 50 * time.Millisecond }, func(s *Server) {
		s.testHook = func(ctx context.Context, method string) {
			if method == "/tlog.v1.LogService/GetLogInfo" {
				<-ctx.Done() // a handler stuck until the server's cap ends it
			}
		}
	})
	// The client asks for a minute; the server's cap ends the call.
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := tl.client.GetLogInfo(c, &tlogv1.GetLogInfoRequest{}); status.Code(err) != codes.DeadlineExceeded && status.Code(err) != codes.OK {
		t.Fatalf("capped call: %v", err)
	}
	if c.Err() != nil {
		t.Fatal("the client's own deadline ended the call, not the server's cap")
	}
}

func TestAccessLogEscapesPrincipals(t *testing.T) {
	if got := logSafe("CN=evil\nlevel=ERROR msg=forged"); strings.ContainsAny(got, "\n") || !strings.Contains(got, `\n`) {
		t.Fatalf("logSafe left a newline: %q", got)
	}
	if got := logSafe("spiffe://example.org/ok"); got != "spiffe://example.org/ok" {
		t.Fatalf("logSafe changed a clean name: %q", got)
	}
	sl := startSecureLog(t, testPolicy, nil)
	if _, err := tlogv1.NewLogServiceClient(sl.dial(t, "auditor.example.org")).GetCheckpoint(ctx(t), &tlogv1.GetCheckpointRequest{}); err != nil {
		t.Fatal(err)
	}
	logs := sl.logs.String()
	if !strings.Contains(logs, `"principal":"auditor.example.org"`) {
		t.Fatalf("access log does not name the principal:\n%s", logs)
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{
		{"principals:\n  a: [superuser]\n", `unknown role "superuser"`},
		{"roles:\n  x: [fly]\n", `unknown capability "fly"`},
		{"roles:\n  reader: [read]\n", "redefines a built-in role"},
		{"anonymous: [appender]\n", "anonymous: may only hold read and discover"},
		{"anonymous: [auditor]\n", "read_payloads"},
		{"principal:\n  a: [reader]\n", "field principal not found"},
		{"principals:\n  \"a b\": [reader]\n", "spaces or control characters"},
	} {
		if _, err := ParsePolicy([]byte(tc.policy)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePolicy(%q) = %v, want an error with %q", tc.policy, err, tc.want)
		}
	}
	p, err := ParsePolicy([]byte("roles:\n  exporter: [read, read_payloads]\nprincipals:\n  x: [exporter, appender]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := p.principals["x"]; !c.has(CapRead) || !c.has(CapReadPayloads) || !c.has(CapAppend) || c.has(CapAdmin) {
		t.Fatalf("custom role capabilities: %v", c.names())
	}
}

func TestTokenLines(t *testing.T) {
	line := TokenLine("secret", "svc")
	e, err := ParseTokenLine(line)
	if err != nil || e.Principal != "svc" || strings.Contains(line, "secret") {
		t.Fatalf("token line %q: %+v %v", line, e, err)
	}
	for _, bad := range []string{"sha256:abcd svc", "md5:" + strings.Repeat("0", 64) + " svc", "sha256:" + strings.Repeat("0", 64), "sha256:" + strings.Repeat("0", 64) + " a b"} {
		if _, err := ParseTokenLine(bad); err == nil {
			t.Errorf("ParseTokenLine(%q) succeeded", bad)
		}
	}
}

func TestOpenModeNeedsNoPolicyButAuthDoes(t *testing.T) {
	_, err := New(Config{Tokens: &Tokens{}, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "Policy is required") {
		t.Fatalf("tokens without a policy: %v", err)
	}
}
