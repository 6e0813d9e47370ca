package server

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

// dashboardPolicy has no anonymous role: a browser without a session may
// do nothing.
const dashboardPolicy = `
principals:
  spiffe://example.org/billing: [appender]
  CN=ops: [admin]
  auditor.example.org: [auditor]
  reader-token: [reader]
  auditor-token: [auditor]
`

// serveDashboard serves the dashboard and the tiles API of sl on
// 127.0.0.1:0, like tlogd serve -http-listen, and returns its base URL.
func serveDashboard(t *testing.T, srv *Server) string {
	t.Helper()
	dash, err := srv.DashboardHandler()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", dash)
	mux.Handle("/", srv.HTTPHandler())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close() })
	return "http://" + lis.Addr().String()
}

// seedHistory records a small user-management history in tenant acme:
// accounts, role and permission changes, failed logins, and the erasure of
// dave. It returns the number of events recorded.
func seedHistory(t *testing.T, sl *secureLog) int {
	t.Helper()
	ac := tlogv1.NewAuditServiceClient(sl.dial(t, "spiffe://example.org/billing"))
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	var events []*tlogv1.AuditEvent
	add := func(actor, target string, action tlogv1.Action, outcome tlogv1.Outcome, changes ...*tlogv1.Change) {
		n := len(events)
		events = append(events, &tlogv1.AuditEvent{
			EventId:       fmt.Sprintf("ev-%03d", n),
			OccurredAt:    timestamppb.New(at.Add(time.Duration(n) * 7 * time.Minute)),
			Actor:         &tlogv1.Actor{Type: tlogv1.ActorType_ACTOR_TYPE_USER, Id: actor, SourceIp: "192.0.2.7", DisplayName: strings.ToUpper(actor[:1]) + actor[1:]},
			Action:        action,
			Target:        &tlogv1.Target{Type: tlogv1.TargetType_TARGET_TYPE_USER, Id: target},
			Tenant:        "acme",
			Outcome:       outcome,
			Changes:       changes,
			SourceService: "accounts",
		})
	}
	ok, failed := tlogv1.Outcome_OUTCOME_SUCCESS, tlogv1.Outcome_OUTCOME_FAILURE
	role := func(old, new string) *tlogv1.Change {
		return &tlogv1.Change{Attribute: "role", OldValue: old, NewValue: new}
	}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		add("admin", u, tlogv1.Action_ACTION_ACCOUNT_CREATED, ok)
	}
	add("admin", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED, ok, role("", "viewer"))
	add("admin", "bob", tlogv1.Action_ACTION_ROLE_ASSIGNED, ok, role("", "editor"))
	for i := range 5 {
		add("mallory", "mallory", tlogv1.Action_ACTION_LOGIN_FAILED, failed)
		add("alice", "alice", tlogv1.Action_ACTION_LOGIN_SUCCEEDED, ok)
		if i == 2 {
			add("admin", "alice", tlogv1.Action_ACTION_ROLE_ASSIGNED, ok, role("viewer", "admin"))
			add("admin", "carol", tlogv1.Action_ACTION_PERMISSION_GRANTED, ok, &tlogv1.Change{Attribute: "permission", NewValue: "billing:write"})
		}
	}
	add("alice", "dave", tlogv1.Action_ACTION_ROLE_ASSIGNED, ok, role("", "auditor"))
	add("admin", "bob", tlogv1.Action_ACTION_ROLE_REVOKED, ok, role("editor", ""))
	add("admin", "alice", tlogv1.Action_ACTION_ROLE_REVOKED, ok, role("admin", "viewer"))
	if _, err := ac.RecordEvents(ctx(t), &tlogv1.RecordEventsRequest{Events: events}); err != nil {
		t.Fatal(err)
	}
	ops := tlogv1.NewAuditServiceClient(sl.dial(t, "CN=ops"))
	if _, err := ops.EraseSubject(ctx(t), &tlogv1.EraseSubjectRequest{Tenant: "acme", SubjectId: "dave", Reason: "GDPR art. 17 request #42"}); err != nil {
		t.Fatal(err)
	}
	return len(events)
}

// browser is a dashboard client: an HTTP client with a cookie jar.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, hc: &http.Client{Jar: jar}}
}

// do sends a request and returns the status and decoded JSON body.
func (b *browser) do(method, path, body string, hdr map[string]string) (int, map[string]any) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		}
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			b.t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

// signIn signs in with token and keeps the CSRF token.
func (b *browser) signIn(token string) (int, map[string]any) {
	b.t.Helper()
	code, out := b.do("POST", "/ui/api/session", fmt.Sprintf(`{"token":%q}`, token), nil)
	if code == http.StatusOK {
		b.csrf, _ = out["csrf_token"].(string)
	}
	return code, out
}

// call calls an RPC through the dashboard API with the session's CSRF token.
func (b *browser) call(method, body string) (int, map[string]any) {
	b.t.Helper()
	return b.do("POST", "/ui/api/rpc/"+method, body, map[string]string{csrfHeader: b.csrf})
}

func TestDashboardSessions(t *testing.T) {
	sl := startSecureLog(t, dashboardPolicy, nil)
	seedHistory(t, sl)
	base := serveDashboard(t, sl.srv)

	t.Run("static files and headers", func(t *testing.T) {
		resp, err := http.Get(base + "/ui/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /ui/: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for h, want := range map[string]string{"Content-Security-Policy": contentSecurityPolicy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	})

	t.Run("no session", func(t *testing.T) {
		b := newBrowser(t, base)
		if code, out := b.do("GET", "/ui/api/session", "", nil); code != 401 || out["code"] != "Unauthenticated" {
			t.Errorf("GET session without cookie: %d %v", code, out)
		}
		if code, _ := b.call("tlog.v1.LogService/GetCheckpoint", "{}"); code != 401 {
			t.Errorf("RPC without a session: %d, want 401", code)
		}
		if code, out := b.signIn(""); code != 401 || !strings.Contains(out["message"].(string), "needs an access token") {
			t.Errorf("sign-in without a token where anonymous has no role: %d %v", code, out)
		}
		if code, out := b.signIn("not-a-token"); code != 401 || out["message"] != "unknown access token" {
			t.Errorf("sign-in with a wrong token: %d %v", code, out)
		}
		if code, out := b.do("GET", "/ui/api/info", "", nil); code != 200 || out["verifier_key"] != sl.vkey || out["tokens"] != true || out["open"] != false {
			t.Errorf("info: %d %v", code, out)
		}
	})

	t.Run("reader may not read payloads", func(t *testing.T) {
		b := newBrowser(t, base)
		if code, out := b.signIn(sl.tokens["reader-token"]); code != 200 || out["principal"] != "reader-token" {
			t.Fatalf("sign-in: %d %v", code, out)
		}
		if code, out := b.call("tlog.v1.LogService/GetCheckpoint", "{}"); code != 200 || !strings.HasPrefix(out["checkpoint"].(string), "example.com/test-log\n") {
			t.Errorf("GetCheckpoint as reader: %d %v", code, out)
		}
		code, out := b.call("tlog.v1.AuditService/QueryEvents", `{"tenant":"acme"}`)
		if code != 403 || out["code"] != "PermissionDenied" || !strings.Contains(out["message"].(string), `principal "reader-token" (roles reader) lacks capability "read_payloads"`) {
			t.Errorf("QueryEvents as reader: %d %v", code, out)
		}
		if code, _ := b.call("tlog.v1.LogService/GetEntries", `{"start":"0","count":1,"include_payloads":true}`); code != 403 {
			t.Errorf("GetEntries with payloads as reader: %d, want 403", code)
		}
	})

	t.Run("CSRF and origin", func(t *testing.T) {
		b := newBrowser(t, base)
		b.signIn(sl.tokens["auditor-token"])
		if code, out := b.do("POST", "/ui/api/rpc/tlog.v1.LogService/GetCheckpoint", "{}", nil); code != 403 || !strings.Contains(out["message"].(string), csrfHeader) {
			t.Errorf("no CSRF token: %d %v", code, out)
		}
		if code, _ := b.do("POST", "/ui/api/rpc/tlog.v1.LogService/GetCheckpoint", "{}", map[string]string{csrfHeader: b.csrf + "x"}); code != 403 {
			t.Errorf("wrong CSRF token: %d", code)
		}
		if code, _ := b.do("POST", "/ui/api/rpc/tlog.v1.LogService/GetCheckpoint", "{}", map[string]string{csrfHeader: b.csrf, "Origin": "https://evil.example"}); code != 403 {
			t.Errorf("cross-origin call: %d", code)
		}
		if code, _ := b.do("POST", "/ui/api/session", `{"token":"x"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}); code != 403 {
			t.Errorf("cross-site sign-in: %d", code)
		}
		if code, _ := b.do("POST", "/ui/api/logout", "", nil); code != 403 {
			t.Errorf("logout without CSRF token: %d", code)
		}
		if code, _ := b.call("tlog.v1.LogService/GetCheckpoint", "{}"); code != 200 {
			t.Errorf("with the CSRF token: %d", code)
		}
		if code, out := b.call("tlog.v1.LogService/Append", `{"records":[{"payload":"aGk="}]}`); code != 404 || !strings.Contains(out["message"].(string), "cannot call") {
			t.Errorf("Append through the dashboard: %d %v", code, out)
		}
		if code, out := b.call("tlog.v1.LogService/GetCheckpoint", `{"tree_size":"x"}`); code != 400 || !strings.Contains(out["message"].(string), "tree") {
			t.Errorf("bad request body: %d %v", code, out)
		}
		if code, _ := b.do("POST", "/ui/api/logout", "", map[string]string{csrfHeader: b.csrf}); code != 204 {
			t.Errorf("logout: %d", code)
		}
		if code, _ := b.call("tlog.v1.LogService/GetCheckpoint", "{}"); code != 401 {
			t.Errorf("after logout: %d, want 401", code)
		}
	})

	t.Run("payload reads are recorded with the principal", func(t *testing.T) {
		b := newBrowser(t, base)
		b.signIn(sl.tokens["auditor-token"])
		code, out := b.call("tlog.v1.AuditService/GetTimeline", `{"tenant":"acme","subject_id":"alice"}`)
		if code != 200 {
			t.Fatalf("GetTimeline: %d %v", code, out)
		}
		var resp tlogv1.GetTimelineResponse
		raw, _ := json.Marshal(out)
		if err := protojson.Unmarshal(raw, &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.GetEvents()) != 10 || resp.GetEvents()[0].GetEvent().GetAction() != tlogv1.Action_ACTION_ACCOUNT_CREATED {
			t.Fatalf("alice's timeline has %d events", len(resp.GetEvents()))
		}
		size := sl.openCheckpoint(t, resp.GetCheckpoint()).Size
		// The read is the entry after the checkpoint the page was answered at.
		entries, err := tlogv1.NewLogServiceClient(sl.conn).GetEntries(sl.callCtx(t, "auditor-token"), &tlogv1.GetEntriesRequest{Start: size, Count: 1, IncludePayloads: true})
		if err != nil {
			t.Fatal(err)
		}
		rec, ok := payloadReadRecordAny(entries.GetEntries()[0].GetPayload())
		if !ok || rec.GetActor().GetId() != "auditor-token" || rec.GetLabels()["via"] != "dashboard" || rec.GetActor().GetSourceIp() != "127.0.0.1" || rec.GetLabels()["method"] != "GetTimeline" {
			t.Errorf("payload read record: %v", rec)
		}
	})
}

func TestDashboardCookie(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	sl := startSecureLog(t, dashboardPolicy, func(c *Config) {
		c.SessionTTL = time.Minute
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	dash, err := sl.srv.DashboardHandler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(dash)
	defer ts.Close()
	b := newBrowser(t, ts.URL)
	b.hc = ts.Client()
	b.hc.Jar, _ = cookiejar.New(nil)
	req, _ := http.NewRequest("POST", ts.URL+"/ui/api/session", strings.NewReader(fmt.Sprintf(`{"token":%q}`, sl.tokens["auditor-token"])))
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("%d cookies", len(cs))
	}
	c := cs[0]
	if !strings.HasPrefix(c.Name, "tlogd_session_") || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" || c.MaxAge != 60 || len(c.Value) < 40 {
		t.Errorf("cookie %+v", c)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS header over TLS")
	}
	if code, _ := b.do("GET", "/ui/api/session", "", nil); code != 200 {
		t.Errorf("session before expiry: %d", code)
	}
	now.Add(int64(61 * time.Second))
	if code, _ := b.do("GET", "/ui/api/session", "", nil); code != 401 {
		t.Errorf("session after expiry: %d, want 401", code)
	}
}

// serveDashboardTLS serves the dashboard of sl over TLS as sl's gRPC
// server does (client certificates asked for, optional), and returns its
// base URL.
func serveDashboardTLS(t *testing.T, sl *secureLog) string {
	t.Helper()
	dash, err := sl.srv.DashboardHandler()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(dash)
	ts.TLS = sl.srv.cfg.TLS.Clone()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.URL
}

// tlsBrowser is a browser of base that trusts sl's CA and presents who's
// certificate ("": none).
func tlsBrowser(t *testing.T, sl *secureLog, base, who string) *browser {
	cfg := &tls.Config{RootCAs: sl.pki.pool, MinVersion: tls.VersionTLS12}
	if c, ok := sl.pki.certs[who]; ok {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	b := newBrowser(t, base)
	b.hc.Transport = &http.Transport{TLSClientConfig: cfg}
	return b
}

func TestDashboardClientCertificate(t *testing.T) {
	sl := startSecureLog(t, dashboardPolicy, nil)
	base := serveDashboardTLS(t, sl)
	browserWith := func(who string) *browser { return tlsBrowser(t, sl, base, who) }
	auditor := browserWith("auditor.example.org")
	if code, out := auditor.do("GET", "/ui/api/info", "", nil); code != 200 || out["certificate"] != "auditor.example.org" {
		t.Errorf("info with a certificate: %d %v", code, out)
	}
	code, out := auditor.signIn("")
	if code != 200 || out["principal"] != "auditor.example.org" || out["via"] != "mtls" {
		t.Fatalf("sign-in with a certificate: %d %v", code, out)
	}
	// The session runs as the certificate's principal, which may read
	// events.
	if code, out := auditor.call("tlog.v1.AuditService/GetTimeline", `{"tenant":"acme","subject_id":"alice"}`); code != 200 {
		t.Errorf("GetTimeline as auditor.example.org: %d %v", code, out)
	}
	if code, out := browserWith("CN=ops").signIn(""); code != 200 || out["principal"] != "CN=ops" {
		t.Errorf("sign-in as CN=ops: %d %v", code, out)
	}
	// A token still names the principal when both are given.
	if code, out := browserWith("CN=ops").signIn(sl.tokens["reader-token"]); code != 200 || out["principal"] != "reader-token" {
		t.Errorf("sign-in with a token and a certificate: %d %v", code, out)
	}
	if code, out := browserWith("spiffe://example.org/nobody").signIn(""); code != 403 || !strings.Contains(fmt.Sprint(out["message"]), "client certificate") {
		t.Errorf("sign-in with a certificate of no role: %d %v", code, out)
	}
	none := browserWith("")
	if code, out := none.do("GET", "/ui/api/info", "", nil); code != 200 || out["certificate"] != "" {
		t.Errorf("info without a certificate: %d %v", code, out)
	}
	if code, out := none.signIn(""); code != 401 {
		t.Errorf("sign-in without a token or a certificate: %d %v", code, out)
	}
}

func TestDashboardBehindProxy(t *testing.T) {
	// The test's requests come from 127.0.0.1, the proxy; the browser is
	// at 198.51.100.7 and opened https://audit.example.com/ui/.
	proxied := func(t *testing.T, proxies []netip.Prefix) (sl *secureLog, base string, send func(method, path, body, client, cookie, csrf string) *http.Response) {
		sl = startSecureLog(t, dashboardPolicy, func(c *Config) { c.TrustedProxies = proxies })
		base = serveDashboard(t, sl.srv)
		return sl, base, func(method, path, body, client, cookie, csrf string) *http.Response {
			t.Helper()
			req, err := http.NewRequest(method, base+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "audit.example.com"
			req.Header.Set("Origin", "https://audit.example.com")
			req.Header.Set("X-Forwarded-Proto", "https")
			// What the browser claims comes first; each proxy appends
			// the address it saw.
			req.Header.Set("X-Forwarded-For", "203.0.113.66, "+client+", 127.0.0.1")
			req.Header.Set("Content-Type", "application/json")
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			if csrf != "" {
				req.Header.Set(csrfHeader, csrf)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			return resp
		}
	}

	t.Run("trusted", func(t *testing.T) {
		sl, _, send := proxied(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
		seedHistory(t, sl)
		token := sl.tokens["auditor-token"]
		resp := send("POST", "/ui/api/session", fmt.Sprintf(`{"token":%q}`, token), "198.51.100.7", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("sign-in through the proxy: %d", resp.StatusCode)
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Error("no HSTS header behind a TLS proxy")
		}
		var sess map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&sess); err != nil {
			t.Fatal(err)
		}
		cs := resp.Cookies()
		if len(cs) != 1 || !cs[0].Secure {
			t.Fatalf("cookies behind a TLS proxy: %+v, want one Secure cookie", cs)
		}
		cookie := cs[0].Name + "=" + cs[0].Value
		// The audit trail names the browser, not the proxy.
		r := send("POST", "/ui/api/rpc/tlog.v1.AuditService/GetTimeline", `{"tenant":"acme","subject_id":"alice"}`, "198.51.100.7", cookie, sess["csrf_token"].(string))
		if r.StatusCode != 200 {
			t.Fatalf("a call through the proxy: %d", r.StatusCode)
		}
		raw, _ := io.ReadAll(r.Body)
		var tl tlogv1.GetTimelineResponse
		if err := protojson.Unmarshal(raw, &tl); err != nil {
			t.Fatal(err)
		}
		size := sl.openCheckpoint(t, tl.GetCheckpoint()).Size
		entries, err := tlogv1.NewLogServiceClient(sl.conn).GetEntries(sl.callCtx(t, "auditor-token"), &tlogv1.GetEntriesRequest{Start: size, Count: 1, IncludePayloads: true})
		if err != nil {
			t.Fatal(err)
		}
		if rec, ok := payloadReadRecordAny(entries.GetEntries()[0].GetPayload()); !ok || rec.GetActor().GetSourceIp() != "198.51.100.7" {
			t.Errorf("payload read record through the proxy: %v", rec)
		}
		// Sign-ins are limited per browser address, not per proxy.
		throttled := 0
		for range 3 * signInBurst {
			if send("POST", "/ui/api/session", `{"token":""}`, "198.51.100.8", "", "").StatusCode == 429 {
				throttled++
			}
		}
		if throttled == 0 {
			t.Error("one browser's sign-ins were not limited")
		}
		if r := send("POST", "/ui/api/session", fmt.Sprintf(`{"token":%q}`, token), "198.51.100.9", "", ""); r.StatusCode != 200 {
			t.Errorf("another browser behind the same proxy: %d", r.StatusCode)
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		sl, base, send := proxied(t, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
		// From a peer that is not a trusted proxy, the headers are the
		// caller's word: plain HTTP, under a name it does not answer to.
		if r := send("POST", "/ui/api/session", fmt.Sprintf(`{"token":%q}`, sl.tokens["auditor-token"]), "198.51.100.7", "", ""); r.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("forwarded headers from an untrusted peer: %d, want 421", r.StatusCode)
		}
		// Nor does a made-up X-Forwarded-For give it fresh sign-ins.
		throttled := 0
		for i := range 3 * signInBurst {
			if code, _ := newBrowser(t, base).do("POST", "/ui/api/session", `{"token":""}`, map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)}); code == 429 {
				throttled++
			}
		}
		if throttled == 0 {
			t.Error("sign-ins with made-up X-Forwarded-For addresses were not limited")
		}
	})

	t.Run("a proxy's own TLS is not the browser's", func(t *testing.T) {
		sl := startSecureLog(t, dashboardPolicy, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
		// The proxy connects over TLS with a client certificate of its
		// own, for a browser on plain HTTP (the last X-Forwarded-Proto).
		b := tlsBrowser(t, sl, serveDashboardTLS(t, sl), "auditor.example.org")
		hdr := map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https, http"}
		if code, out := b.do("GET", "/ui/api/info", "", hdr); code != 200 || out["certificate"] != "" || out["tls"] != false {
			t.Errorf("info through a TLS proxy for a plain-HTTP browser: %d %v", code, out)
		}
		if code, out := b.do("POST", "/ui/api/session", `{"token":""}`, hdr); code != 401 {
			t.Errorf("sign-in without a token through a proxy with a certificate: %d %v, want 401", code, out)
		}
	})
}

func TestDashboardOpenServer(t *testing.T) {
	tl := startLog(t, nil)
	b := newBrowser(t, serveDashboard(t, tl.srv))
	if code, out := b.do("GET", "/ui/api/info", "", nil); code != 200 || out["open"] != true {
		t.Fatalf("info: %d %v", code, out)
	}
	code, out := b.signIn("")
	if code != 200 || out["via"] != "open" || len(out["capabilities"].([]any)) != len(allCapabilities) {
		t.Fatalf("sign-in on an open server: %d %v", code, out)
	}
	if code, out := b.call("tlog.v1.AuditService/QueryEvents", `{"tenant":"acme"}`); code != 200 || out["checkpoint"] == "" {
		t.Errorf("QueryEvents: %d %v", code, out)
	}
}

func TestDashboardHardening(t *testing.T) {
	policy := dashboardPolicy + "  josé: [auditor]\nanonymous: [reader]\n"
	sl := startSecureLog(t, policy, func(c *Config) { c.DashboardHosts = []string{"audit.example.org"} })
	jose := "tok-josé-" + rand.Text()
	e, err := ParseTokenLine(TokenLine(jose, "josé"))
	if err != nil {
		t.Fatal(err)
	}
	sl.srv.auth.tokens.byHash[e.hash] = e.Principal
	seedHistory(t, sl)
	base := serveDashboard(t, sl.srv)

	t.Run("DNS rebinding", func(t *testing.T) {
		b := newBrowser(t, base)
		for host, want := range map[string]int{"attacker.example:80": 421, "audit.example.org": 200, "localhost:1": 200, "[::1]:8": 200} {
			if code, out := b.do("GET", "/ui/api/info", "", map[string]string{"Host": host}); code != want {
				t.Errorf("Host %s: %d %v, want %d", host, code, out, want)
			}
		}
		req, _ := http.NewRequest("GET", base+"/ui/", nil)
		req.Host = "attacker.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 421 {
			t.Errorf("the page itself for a rebound name: %d, want 421", resp.StatusCode)
		}
	})

	t.Run("names and agents beyond ASCII", func(t *testing.T) {
		b := newBrowser(t, base)
		if code, out := b.signIn(jose); code != 200 || out["principal"] != "josé" {
			t.Fatalf("sign-in: %d %v", code, out)
		}
		code, out := b.do("POST", "/ui/api/rpc/tlog.v1.AuditService/QueryEvents", `{"tenant":"acme","actor_id":"mallory"}`,
			map[string]string{csrfHeader: b.csrf, "User-Agent": "Müller-Browser/1.0"})
		if code != 200 {
			t.Fatalf("QueryEvents as josé: %d %v", code, out)
		}
		size := sl.openCheckpoint(t, out["checkpoint"].(string)).Size
		entries, err := sl.client.GetEntries(sl.callCtx(t, "auditor-token"), &tlogv1.GetEntriesRequest{Start: size, Count: 1, IncludePayloads: true})
		if err != nil {
			t.Fatal(err)
		}
		rec, ok := payloadReadRecordAny(entries.GetEntries()[0].GetPayload())
		if !ok || rec.GetActor().GetId() != "josé" || rec.GetActor().GetUserAgent() != "Müller-Browser/1.0" {
			t.Errorf("payload read record: %v", rec)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		auditor := newBrowser(t, base)
		auditor.signIn(sl.tokens["auditor-token"])
		first := auditor.csrf
		anon := newBrowser(t, base)
		code, out := anon.signIn("")
		if code != 200 || out["via"] != "anonymous" {
			t.Fatalf("anonymous sign-in: %d %v", code, out)
		}
		// A signed-in session that lacks a capability is refused with 403,
		// not told to sign in again.
		if code, out := anon.call("tlog.v1.AuditService/GetTimeline", `{"tenant":"acme","subject_id":"alice"}`); code != 403 || out["code"] != "PermissionDenied" {
			t.Errorf("anonymous timeline: %d %v", code, out)
		}
		// Signing in again ends the session before.
		old := auditor.hc.Jar.Cookies(mustURL(t, base+"/ui/"))
		if code, _ := auditor.signIn(sl.tokens["auditor-token"]); code != 200 || auditor.csrf == first {
			t.Fatalf("second sign-in: %d", code)
		}
		stale := newBrowser(t, base)
		stale.hc.Jar.SetCookies(mustURL(t, base+"/ui/"), old)
		if code, _ := stale.do("GET", "/ui/api/session", "", nil); code != 401 {
			t.Errorf("the session before a new sign-in: %d, want 401", code)
		}
		// A crowd of sign-ins from one address is slowed down, does not
		// sign out the auditor, and does not slow down another address
		// (127.0.0.2 reaches a listener on 127.0.0.1 on Linux).
		throttled := 0
		for range 300 {
			if code, _ := newBrowser(t, base).signIn(""); code == 429 {
				throttled++
			}
		}
		if throttled < 200 { // a slow run refills a few
			t.Errorf("%d of 300 sign-ins in a row throttled", throttled)
		}
		if code, _ := auditor.do("GET", "/ui/api/session", "", nil); code != 200 {
			t.Errorf("the auditor's session after the crowd: %d", code)
		}
		other := newBrowser(t, base)
		other.hc.Transport = &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
		if code, out := other.signIn(sl.tokens["auditor-token"]); code != 200 {
			t.Errorf("a sign-in from another address during the crowd: %d %v", code, out)
		}
	})

	t.Run("no directory listings", func(t *testing.T) {
		for path, want := range map[string]int{"/ui/js/": 404, "/ui/js/verify.js": 200, "/ui/": 200} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
			}
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDashboardSessionClasses(t *testing.T) {
	d := &dashboard{s: &Server{cfg: Config{Now: time.Now}}, sessions: make(map[[32]byte]*session)}
	via := map[bool]string{true: "anonymous", false: "token"}
	add := func(anonymous bool, age time.Duration) [32]byte {
		k := [32]byte{}
		rand.Read(k[:])
		d.sessions[k] = &session{principal: Principal{Via: via[anonymous]}, expires: time.Now().Add(time.Hour - age)}
		return k
	}
	token := add(false, time.Hour-time.Minute) // the oldest of all
	expired := add(false, 2*time.Hour)
	oldestAnon := add(true, 30*time.Minute)
	for range maxAnonymousSessions - 1 {
		add(true, 0)
	}
	d.prune(&session{principal: Principal{Via: "anonymous"}})
	if _, ok := d.sessions[token]; !ok {
		t.Error("an anonymous sign-in evicted a token session")
	}
	if _, ok := d.sessions[expired]; ok {
		t.Error("an expired session was kept")
	}
	if _, ok := d.sessions[oldestAnon]; ok {
		t.Error("the oldest anonymous session was kept at the limit")
	}
	if len(d.sessions) != maxAnonymousSessions {
		t.Errorf("%d sessions after pruning, want %d", len(d.sessions), maxAnonymousSessions)
	}
}

func TestDashboardSessionsPerPrincipal(t *testing.T) {
	d := &dashboard{s: &Server{cfg: Config{Now: time.Now}}, sessions: make(map[[32]byte]*session)}
	add := func(name string, age time.Duration) [32]byte {
		k := [32]byte{}
		rand.Read(k[:])
		d.sessions[k] = &session{principal: Principal{Name: name, Via: "token"}, expires: time.Now().Add(time.Hour - age)}
		return k
	}
	bob := add("bob", 50*time.Minute) // older than all of alice's
	oldest := add("alice", 40*time.Minute)
	for range maxPrincipalSessions - 1 {
		add("alice", 0)
	}
	d.prune(&session{principal: Principal{Name: "alice", Via: "token"}})
	if _, ok := d.sessions[oldest]; ok {
		t.Error("alice's oldest session was kept at her limit")
	}
	if _, ok := d.sessions[bob]; !ok {
		t.Error("alice's sign-in evicted bob's session")
	}
	if len(d.sessions) != maxPrincipalSessions {
		t.Errorf("%d sessions after pruning, want %d", len(d.sessions), maxPrincipalSessions)
	}
	// Below her limit, alice's sign-in evicts no one.
	d.prune(&session{principal: Principal{Name: "alice", Via: "token"}})
	if len(d.sessions) != maxPrincipalSessions {
		t.Errorf("%d sessions after pruning below the limit, want %d", len(d.sessions), maxPrincipalSessions)
	}
}

func TestDashboardSignInLimits(t *testing.T) {
	d := &dashboard{signIns: make(map[netip.Prefix]*rate.Limiter), allSignIns: rate.NewLimiter(allSignInRate, allSignInBurst)}
	drain := func(remote string) int {
		n := 0
		for range 3 * signInBurst {
			if d.allowSignIn(remote) {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		remote string
		want   int // allowed in a burst (a few more may refill meanwhile)
	}{
		{"192.0.2.1:1000", signInBurst},
		{"192.0.2.1:2000", 0},                   // the same address, another port
		{"[::ffff:192.0.2.1]:3000", 0},          // the same, IPv4-mapped
		{"192.0.2.2:1000", signInBurst},         // another address
		{"[2001:db8:1:2::1]:1000", signInBurst}, // an IPv6 client
		{"[2001:db8:1:2:ffff::9]:1000", 0},      // the same /64
		{"[2001:db8:1:3::1]:1000", signInBurst}, // another /64
		{"not an address", 0},
	} {
		if got := drain(c.remote); got < c.want || got > c.want+1 {
			t.Errorf("%s: %d sign-ins allowed in a burst, want %d", c.remote, got, c.want)
		}
	}
	for i := range maxSignInClients + 10 {
		d.allowSignIn(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1).String())
	}
	if len(d.signIns) > maxSignInClients {
		t.Errorf("%d sign-in limiters kept, want at most %d", len(d.signIns), maxSignInClients)
	}
	// Ten thousand addresses drained the limit over all of them: a new
	// address waits too.
	if d.allowSignIn("198.51.100.1:1") {
		t.Error("a crowd of addresses was not limited as a whole")
	}
}
