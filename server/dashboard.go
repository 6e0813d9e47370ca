package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/ui"
)

// The dashboard's JSON API calls the gRPC services through an in-process
// connection, so that every call passes the same interceptors as a network
// call: authorization by the same method rules, rate limits, the replica's
// refusals, access logs, metrics, and the recording of payload reads. The
// session's principal travels in metadata that the authenticator trusts only
// on that connection (peer address uiAddr), which nothing outside the
// process can open.
const (
	// Binary (-bin) keys: principal names and user agents need not be
	// ASCII, which text metadata must be.
	mdUIPrincipal = "x-tlogd-ui-principal-bin"
	mdUIAnonymous = "x-tlogd-ui-anonymous"
	mdUIRemote    = "x-tlogd-ui-remote-addr"
	mdUIAgent     = "x-tlogd-ui-user-agent-bin"
)

// uiMethods are the RPCs the dashboard may call: reads only. Appends and
// erasures stay with the gRPC API and tlogctl.
var uiMethods = map[string]func() (req, resp proto.Message){
	"tlog.v1.LogService/GetCheckpoint": func() (proto.Message, proto.Message) {
		return &tlogv1.GetCheckpointRequest{}, &tlogv1.GetCheckpointResponse{}
	},
	"tlog.v1.LogService/GetInclusionProof": func() (proto.Message, proto.Message) {
		return &tlogv1.GetInclusionProofRequest{}, &tlogv1.GetInclusionProofResponse{}
	},
	"tlog.v1.LogService/GetConsistencyProof": func() (proto.Message, proto.Message) {
		return &tlogv1.GetConsistencyProofRequest{}, &tlogv1.GetConsistencyProofResponse{}
	},
	"tlog.v1.LogService/GetEntries": func() (proto.Message, proto.Message) {
		return &tlogv1.GetEntriesRequest{}, &tlogv1.GetEntriesResponse{}
	},
	"tlog.v1.LogService/GetLogInfo": func() (proto.Message, proto.Message) {
		return &tlogv1.GetLogInfoRequest{}, &tlogv1.GetLogInfoResponse{}
	},
	"tlog.v1.AuditService/QueryEvents": func() (proto.Message, proto.Message) {
		return &tlogv1.QueryEventsRequest{}, &tlogv1.QueryEventsResponse{}
	},
	"tlog.v1.AuditService/GetTimeline": func() (proto.Message, proto.Message) {
		return &tlogv1.GetTimelineRequest{}, &tlogv1.GetTimelineResponse{}
	},
	"tlog.v1.AuditService/GetDrift": func() (proto.Message, proto.Message) {
		return &tlogv1.GetDriftRequest{}, &tlogv1.GetDriftResponse{}
	},
	"tlog.v1.WitnessService/ListSplitViews": func() (proto.Message, proto.Message) {
		return &tlogv1.ListSplitViewsRequest{}, &tlogv1.ListSplitViewsResponse{}
	},
}

// contentSecurityPolicy allows the dashboard's own files and API only: no
// inline scripts or styles, no framing, no other origin (blob: URLs are the
// files the page made itself, for download).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const (
	csrfHeader = "X-CSRF-Token"
	// maxSessions bounds the sessions signed in with a token, and
	// maxAnonymousSessions those without (anyone can make those); when a
	// class is full, its oldest session goes. maxPrincipalSessions bounds
	// one principal's token sessions, so that one token cannot sign
	// the others out: its own oldest goes first.
	maxSessions          = 10000
	maxAnonymousSessions = 1000
	maxPrincipalSessions = 32
	// Each client address (an IPv6 /64) may sign in signInRate times a
	// second, in bursts of signInBurst; the limiters of at most
	// maxSignInClients addresses are kept.
	signInRate       = 2
	signInBurst      = 10
	maxSignInClients = 10000
	// All addresses together may sign in allSignInRate times a second,
	// in bursts of allSignInBurst: a hundred clients at their limit.
	allSignInRate  = 200
	allSignInBurst = 1000
	// maxUIRequestBytes bounds a JSON API request body (a drift baseline
	// of 10,000 subjects fits).
	maxUIRequestBytes = 8 << 20
)

// session is a signed-in browser. Sessions live in memory: a restart
// signs everyone out.
type session struct {
	principal Principal
	roles     []string
	csrf      string
	expires   time.Time
}

// anonymous reports whether the session was made without credentials
// (anyone can make those): neither a token nor a client certificate.
func (s *session) anonymous() bool {
	return s.principal.Via != "token" && s.principal.Via != "mtls"
}

// dashboard serves the auditor dashboard under /ui/.
type dashboard struct {
	s    *Server
	conn *grpc.ClientConn
	mu   sync.Mutex
	// sessions are keyed by the SHA-256 of the cookie value.
	sessions map[[sha256.Size]byte]*session
	// signIns bounds each client address's sign-ins, so that nobody can
	// churn sessions (or guess tokens) fast, nor slow down the others;
	// allSignIns bounds them all, loosely. limitMu guards signIns.
	limitMu    sync.Mutex
	signIns    map[netip.Prefix]*rate.Limiter
	allSignIns *rate.Limiter
}

// DashboardHandler serves the auditor dashboard: its static files under
// /ui/ (embedded in the binary) and its JSON API under /ui/api/. Sign-in
// exchanges a bearer token (or none, where the policy lets anonymous
// callers read, or the server runs open) for a session cookie (HttpOnly,
// SameSite=Strict, Secure over TLS, expiring after Config.SessionTTL);
// every API call needs the session and its CSRF token, and runs as the
// session's principal through the same interceptors as a gRPC call. Over
// plain HTTP it answers only to IP addresses, localhost and
// Config.DashboardHosts (against DNS rebinding). From
// Config.TrustedProxies, X-Forwarded-For and X-Forwarded-Proto are
// believed. Without a token, a verified client certificate names the
// principal. Mount it on an HTTP listener beside HTTPHandler; call it
// once.
func (s *Server) DashboardHandler() (http.Handler, error) {
	creds := insecure.NewCredentials()
	if t := s.cfg.TLS; t != nil {
		if t.ClientAuth == tls.RequireAnyClientCert || t.ClientAuth == tls.RequireAndVerifyClientCert {
			return nil, errors.New("server: the dashboard needs Config.TLS to accept calls without a client certificate (VerifyClientCertIfGiven)")
		}
		// The server speaks TLS on every listener, this one too. The
		// connection is a net.Pipe inside this process: there is no one
		// in the middle whose certificate could be refused.
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	}
	lis := newPipeListener()
	go s.grpc.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///tlogd-dashboard",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.dial(ctx) }),
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(s.cfg.MaxResponseBytes+1<<20)),
	)
	if err != nil {
		return nil, err
	}
	d := &dashboard{s: s, conn: conn, sessions: make(map[[sha256.Size]byte]*session), signIns: make(map[netip.Prefix]*rate.Limiter),
		allSignIns: rate.NewLimiter(allSignInRate, allSignInBurst)}
	s.dashConn.Store(conn)
	static, err := fs.Sub(ui.Static, "static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(noDirs{static}))
	mux := http.NewServeMux()
	mux.Handle("GET /ui/", files)
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.HandleFunc("GET /ui/api/info", d.info)
	mux.HandleFunc("GET /ui/api/session", d.getSession)
	mux.HandleFunc("POST /ui/api/session", d.signIn)
	mux.HandleFunc("POST /ui/api/logout", d.logout)
	mux.HandleFunc("POST /ui/api/rpc/{service}/{method}", d.rpc)
	notFound := func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, codes.NotFound, "no such dashboard API: "+r.Method+" "+r.URL.Path)
	}
	mux.HandleFunc("GET /ui/api/", notFound)
	mux.HandleFunc("POST /ui/api/", notFound)
	return d.forwarded(securityHeaders(d.checkHost(mux))), nil
}

// checkHost refuses, over plain HTTP, requests for a host name the
// dashboard was not told about: a web page whose name an attacker rebinds
// to this address (DNS rebinding) would otherwise be same-origin with it.
// IP addresses and localhost are always answered; over TLS the
// certificate already pins the names.
func (d *dashboard) checkHost(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if name, _, err := net.SplitHostPort(host); err == nil {
			host = name
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		if secure(r) || net.ParseIP(host) != nil || host == "localhost" || slices.Contains(d.s.cfg.DashboardHosts, host) {
			h.ServeHTTP(w, r)
			return
		}
		apiError(w, http.StatusMisdirectedRequest, codes.PermissionDenied,
			fmt.Sprintf("this dashboard does not answer to the name %q over plain HTTP: use its IP address, serve TLS, or name it with -dashboard-host", host))
	})
}

// proxied marks, in a request's context, a request from a trusted proxy:
// the value says whether the browser reached the proxy over TLS.
type proxied struct{}

// secure reports whether the browser reached the dashboard over TLS: to
// this server, or to a trusted proxy in front of it (then only the
// proxy's word counts, not the proxy's own connection to this server).
func secure(r *http.Request) bool {
	if https, ok := r.Context().Value(proxied{}).(bool); ok {
		return https
	}
	return r.TLS != nil
}

// browserTLS is the TLS state of the browser's own connection, or nil
// (plain HTTP, or through a proxy, whose client certificate is its own).
func browserTLS(r *http.Request) *tls.ConnectionState {
	if _, ok := r.Context().Value(proxied{}).(bool); ok {
		return nil
	}
	return r.TLS
}

// forwarded believes the X-Forwarded-For and X-Forwarded-Proto headers of
// requests from Config.TrustedProxies: the browser's address is the last
// one in X-Forwarded-For that is not a trusted proxy's, and the last
// X-Forwarded-Proto says whether the browser used TLS.
func (d *dashboard) forwarded(h http.Handler) http.Handler {
	proxies := d.s.cfg.TrustedProxies
	trusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(proxies, func(p netip.Prefix) bool { return p.Contains(a.Unmap()) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if len(proxies) == 0 || err != nil || !trusted(peer.Addr()) {
			h.ServeHTTP(w, r)
			return
		}
		hops := listHeader(r, "X-Forwarded-For")
		protos := listHeader(r, "X-Forwarded-Proto")
		https := len(protos) > 0 && strings.EqualFold(protos[len(protos)-1], "https")
		r = r.WithContext(context.WithValue(r.Context(), proxied{}, https))
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(hops[i])
			if err != nil {
				break // not an address: trust nothing further left
			}
			r.RemoteAddr = netip.AddrPortFrom(a, 0).String()
			if !trusted(a) {
				break
			}
		}
		h.ServeHTTP(w, r)
	})
}

// listHeader is the comma-separated items of every value of the header
// name, in order.
func listHeader(r *http.Request, name string) []string {
	var items []string
	for _, v := range r.Header.Values(name) {
		for item := range strings.SplitSeq(v, ",") {
			items = append(items, strings.TrimSpace(item))
		}
	}
	return items
}

// noDirs hides the directories of the static files: no listings.
type noDirs struct{ fs.FS }

func (n noDirs) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil || name == "." {
		return f, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// cookieName names the session cookie after the port the dashboard is
// reached on: cookies are shared by every port of a host, and a primary
// and its replicas may run on one.
func cookieName(r *http.Request) string {
	_, port, _ := net.SplitHostPort(r.Host)
	if port == "" {
		port = "default"
	}
	return "tlogd_session_" + port
}

// securityHeaders sets the headers every dashboard response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cache-Control", "no-cache")
		if secure(r) {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// info tells the sign-in page what the server accepts, and the verifier
// key it claims: the page asks the user to pin a key, and only suggests
// this one.
func (d *dashboard) info(w http.ResponseWriter, r *http.Request) {
	store, _, err := d.s.attached()
	if err != nil {
		d.fail(w, r, err)
		return
	}
	a := d.s.auth
	writeJSON(w, http.StatusOK, map[string]any{
		"origin":       store.Origin(),
		"verifier_key": store.VerifierKey(),
		"open":         a.policy == nil,
		"tokens":       a.tokens != nil,
		"anonymous":    a.policy != nil && a.policy.anonymous != 0,
		"tls":          secure(r),
		"certificate":  certPrincipal(a, browserTLS(r)),
	})
}

func (d *dashboard) getSession(w http.ResponseWriter, r *http.Request) {
	sess := d.session(r)
	if sess == nil {
		apiError(w, http.StatusUnauthorized, codes.Unauthenticated, "not signed in")
		return
	}
	writeJSON(w, http.StatusOK, sessionJSON(sess))
}

func sessionJSON(sess *session) map[string]any {
	return map[string]any{
		"principal":    sess.principal.Name,
		"via":          sess.principal.Via,
		"roles":        sess.roles,
		"capabilities": sess.principal.caps.names(),
		"csrf_token":   sess.csrf,
		"expires_at":   sess.expires.UTC().Format(time.RFC3339),
	}
}

// signIn exchanges a token for a session. An empty token signs in as the
// anonymous principal, when the policy gives it a role, or as everyone on
// an open server.
func (d *dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		apiError(w, http.StatusForbidden, codes.PermissionDenied, "cross-origin sign-in refused")
		return
	}
	if !d.allowSignIn(r.RemoteAddr) {
		apiError(w, http.StatusTooManyRequests, codes.ResourceExhausted, "too many sign-ins from this address; retry in a few seconds")
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := readJSON(r, &body); err != nil {
		apiError(w, http.StatusBadRequest, codes.InvalidArgument, err.Error())
		return
	}
	p, err := d.principal(body.Token, browserTLS(r))
	if err != nil {
		st := status.Convert(err)
		d.s.log.InfoContext(r.Context(), "dashboard sign-in refused", slog.String("remote", r.RemoteAddr), slog.String("reason", st.Message()))
		apiError(w, httpStatus(st.Code()), st.Code(), st.Message())
		return
	}
	sess := &session{principal: p, csrf: randomToken(), expires: d.s.cfg.Now().Add(d.s.cfg.SessionTTL)}
	if a := d.s.auth; a.policy != nil && p.Via != "anonymous" {
		sess.roles = slices.Sorted(slices.Values(a.policy.roles[p.Name]))
	}
	id := randomToken()
	d.mu.Lock()
	if old, err := r.Cookie(cookieName(r)); err == nil {
		delete(d.sessions, sha256.Sum256([]byte(old.Value))) // signing in again ends the session before
	}
	d.prune(sess)
	d.sessions[sha256.Sum256([]byte(id))] = sess
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: id, Path: "/ui/",
		Expires: sess.expires, MaxAge: int(d.s.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
	d.s.log.InfoContext(r.Context(), "dashboard sign-in", slog.String("principal", logSafe(p.Name)), slog.String("via", p.Via), slog.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, sessionJSON(sess))
}

// principal resolves a sign-in token as the gRPC authenticator resolves a
// bearer token. Without a token, a client certificate the browser
// presented (cs: the connection's TLS state, nil over plain HTTP) names
// the principal, as for a gRPC call.
func (d *dashboard) principal(token string, cs *tls.ConnectionState) (Principal, error) {
	a := d.s.auth
	switch {
	case a.policy == nil:
		return openPrincipal, nil
	case token == "":
		if name := certPrincipal(a, cs); name != "" {
			p := Principal{Name: name, Via: "mtls", caps: a.policy.principals[name]}
			if p.caps == 0 {
				return Principal{}, status.Errorf(codes.PermissionDenied, "principal %q (your browser's client certificate) has no role in the policy", name)
			}
			return p, nil
		}
		if a.policy.anonymous == 0 {
			return Principal{}, status.Error(codes.Unauthenticated, "this server needs an access token or a client certificate: callers without one may do nothing")
		}
		return Principal{Name: "anonymous", Via: "anonymous", caps: a.policy.anonymous}, nil
	case a.tokens == nil:
		return Principal{}, status.Error(codes.Unauthenticated, "this server accepts no access tokens (it authenticates with client certificates); sign in without one")
	}
	name, ok := a.tokens.byHash[sha256.Sum256([]byte(token))]
	if !ok {
		return Principal{}, status.Error(codes.Unauthenticated, "unknown access token")
	}
	p := Principal{Name: name, Via: "token", caps: a.policy.principals[name]}
	if p.caps == 0 {
		return Principal{}, status.Errorf(codes.PermissionDenied, "principal %q has no role in the policy", name)
	}
	return p, nil
}

// allowSignIn reports whether the client at remote (host:port) may sign
// in now. Addresses are limited one by one; IPv6 ones by /64, which one
// client usually holds whole. A loose limit over all addresses stops a
// crowd of addresses.
func (d *dashboard) allowSignIn(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	client, _ := addr.Prefix(bits)
	d.limitMu.Lock()
	defer d.limitMu.Unlock()
	l := d.signIns[client]
	if l == nil {
		if len(d.signIns) >= maxSignInClients {
			// Forget the addresses that are back to a full bucket (they
			// would get one anyway), then any, down to 90%: one sweep
			// makes room for many new addresses.
			for k, l := range d.signIns {
				if l.Tokens() >= signInBurst {
					delete(d.signIns, k)
				}
			}
			for k := range d.signIns {
				if len(d.signIns) < maxSignInClients*9/10 {
					break
				}
				delete(d.signIns, k)
			}
		}
		l = rate.NewLimiter(signInRate, signInBurst)
		d.signIns[client] = l
	}
	return l.Allow() && d.allSignIns.Allow()
}

// prune drops expired sessions, and makes room for sess: when its
// principal has maxPrincipalSessions token sessions, its oldest goes;
// otherwise, when sess's class (anonymous or token) is full, the class's
// oldest goes. A crowd of anonymous sign-ins cannot sign out those made
// with a token, nor one principal's sign-ins another principal.
// d.mu must be held.
func (d *dashboard) prune(sess *session) {
	now := d.s.cfg.Now()
	var class, own sessionCount
	for k, s := range d.sessions {
		switch {
		case !now.Before(s.expires):
			delete(d.sessions, k)
		case s.anonymous() == sess.anonymous():
			class.add(k, s)
			if !sess.anonymous() && s.principal.Name == sess.principal.Name {
				own.add(k, s)
			}
		}
	}
	limit := maxSessions
	if sess.anonymous() {
		limit = maxAnonymousSessions
	}
	switch {
	case own.n >= maxPrincipalSessions:
		delete(d.sessions, own.oldest)
	case class.n >= limit:
		delete(d.sessions, class.oldest)
	}
}

// sessionCount counts sessions, and keeps the one that expires first.
type sessionCount struct {
	n      int
	oldest [sha256.Size]byte
	at     time.Time
}

func (c *sessionCount) add(k [sha256.Size]byte, s *session) {
	c.n++
	if c.at.IsZero() || s.expires.Before(c.at) {
		c.oldest, c.at = k, s.expires
	}
}

// session returns the request's live session, or nil.
func (d *dashboard) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName(r))
	if err != nil {
		return nil
	}
	key := sha256.Sum256([]byte(c.Value))
	d.mu.Lock()
	defer d.mu.Unlock()
	sess := d.sessions[key]
	if sess == nil {
		return nil
	}
	if !d.s.cfg.Now().Before(sess.expires) {
		delete(d.sessions, key)
		return nil
	}
	return sess
}

// checked returns the session of a state-changing request: signed in, same
// origin, with the session's CSRF token. It answers the request itself
// when it returns nil.
func (d *dashboard) checked(w http.ResponseWriter, r *http.Request) *session {
	sess := d.session(r)
	switch {
	case sess == nil:
		apiError(w, http.StatusUnauthorized, codes.Unauthenticated, "not signed in, or the session expired: sign in again")
		return nil
	case !sameOrigin(r):
		apiError(w, http.StatusForbidden, codes.PermissionDenied, "cross-origin request refused")
		return nil
	case subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(sess.csrf)) != 1:
		apiError(w, http.StatusForbidden, codes.PermissionDenied, "missing or wrong "+csrfHeader+" header: reload the page")
		return nil
	}
	return sess
}

func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if d.checked(w, r) == nil {
		return
	}
	c, _ := r.Cookie(cookieName(r))
	d.mu.Lock()
	delete(d.sessions, sha256.Sum256([]byte(c.Value)))
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// uiJSON is how API responses are written: proto field names, every field
// present, so that the page needs no knowledge of proto3 defaults.
var uiJSON = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// rpc runs one allowed RPC as the session's principal: the body is the
// request in proto JSON, the answer the response in proto JSON.
func (d *dashboard) rpc(w http.ResponseWriter, r *http.Request) {
	sess := d.checked(w, r)
	if sess == nil {
		return
	}
	method := r.PathValue("service") + "/" + r.PathValue("method")
	mk, ok := uiMethods[method]
	if !ok {
		apiError(w, http.StatusNotFound, codes.NotFound, "the dashboard cannot call "+method)
		return
	}
	req, resp := mk()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxUIRequestBytes))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "request body over 8 MiB")
		return
	}
	if len(body) > 0 {
		if err := protojson.Unmarshal(body, req); err != nil {
			apiError(w, http.StatusBadRequest, codes.InvalidArgument, "request body: "+err.Error())
			return
		}
	}
	md := metadata.Pairs(mdUIRemote, r.RemoteAddr, mdUIAgent, truncate(r.UserAgent(), 512))
	if sess.principal.Via == "anonymous" {
		md.Set(mdUIAnonymous, "1")
	} else {
		md.Set(mdUIPrincipal, sess.principal.Name)
	}
	ctx := metadata.NewOutgoingContext(r.Context(), md)
	err = d.conn.Invoke(ctx, "/"+method, req, resp)
	if h := d.s.uiHook; h != nil {
		err = h(method, resp, err)
	}
	if err != nil {
		st := status.Convert(err)
		code := st.Code()
		if code == codes.Unauthenticated {
			// The session is signed in: it lacks a capability, and
			// signing in again without a token would not help.
			code = codes.PermissionDenied
		}
		apiError(w, httpStatus(code), code, st.Message())
		return
	}
	b, err := uiJSON.Marshal(resp)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// fail answers with err mapped as for gRPC.
func (d *dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(d.s.status(r.Context(), err))
	apiError(w, httpStatus(st.Code()), st.Code(), st.Message())
}

// uiPrincipal returns the principal of a call made by the dashboard: ok is
// false for every other call.
func (a *authenticator) uiPrincipal(ctx context.Context) (Principal, bool) {
	if !fromDashboard(ctx) {
		return Principal{}, false
	}
	if len(metadata.ValueFromIncomingContext(ctx, mdUIAnonymous)) > 0 {
		return Principal{Name: "anonymous", Via: "anonymous", caps: a.policy.anonymous}, true
	}
	names := metadata.ValueFromIncomingContext(ctx, mdUIPrincipal)
	if len(names) != 1 {
		return Principal{Name: "anonymous", Via: "anonymous"}, true
	}
	return Principal{Name: names[0], Via: "dashboard", caps: a.policy.principals[names[0]]}, true
}

// fromDashboard reports whether a call came over the dashboard's
// in-process connection, the only one whose peer address is uiAddr.
func fromDashboard(ctx context.Context) bool {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	_, ok = pr.Addr.(uiAddr)
	return ok
}

// uiCaller returns, for a call made by the dashboard, the browser's address
// and user agent.
func uiCaller(ctx context.Context) (addr, agent string, ok bool) {
	if !fromDashboard(ctx) {
		return "", "", false
	}
	if v := metadata.ValueFromIncomingContext(ctx, mdUIRemote); len(v) > 0 {
		addr = v[0]
	}
	if v := metadata.ValueFromIncomingContext(ctx, mdUIAgent); len(v) > 0 {
		agent = v[0]
	}
	return addr, agent, true
}

// httpStatus maps gRPC codes to the dashboard API's HTTP statuses.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound, codes.OutOfRange:
		return http.StatusNotFound
	case codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

func apiError(w http.ResponseWriter, httpCode int, code codes.Code, msg string) {
	writeJSON(w, httpCode, map[string]string{"code": code.String(), "message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// readJSON decodes a small JSON request body strictly.
func readJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return errors.New("the body must be application/json")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("request body: " + err.Error())
	}
	return nil
}

// sameOrigin refuses requests a browser marks as sent by another site: the
// session cookie is SameSite=Strict already, and the CSRF token is checked
// too; this refuses a forged sign-in as well.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	scheme := "http://"
	if secure(r) {
		scheme = "https://"
	}
	return origin == scheme+r.Host
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// uiAddr is the peer address of the dashboard's in-process connections.
type uiAddr struct{}

func (uiAddr) Network() string { return "tlogd-dashboard" }
func (uiAddr) String() string  { return "tlogd-dashboard" }

// pipeListener is a net.Listener of in-process connections (net.Pipe),
// which only the dashboard dials.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return uiAddr{} }

func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- pipeConn{server}:
		return pipeConn{client}, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipeConn is a net.Pipe end whose addresses are uiAddr.
type pipeConn struct{ net.Conn }

func (pipeConn) LocalAddr() net.Addr  { return uiAddr{} }
func (pipeConn) RemoteAddr() net.Addr { return uiAddr{} }
