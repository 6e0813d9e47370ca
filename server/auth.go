package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Capability is something a caller may do. Roles are sets of capabilities.
type Capability string

// The capabilities. Every RPC requires exactly one (see methodRules);
// reading payloads additionally requires CapReadPayloads.
const (
	// CapAppend allows appending records.
	CapAppend Capability = "append"
	// CapRead allows checkpoints, proofs, log info and entries without
	// payloads: nothing personal.
	CapRead Capability = "read"
	// CapReadPayloads allows entries with their salts and payloads; every
	// such read is recorded in the log.
	CapReadPayloads Capability = "read_payloads"
	// CapAdmin allows erasure and operations.
	CapAdmin Capability = "admin"
	// CapDiscover allows server reflection, so tools such as grpcurl work,
	// and GetLogInfo (the log's identity and limits).
	CapDiscover Capability = "discover"
)

var allCapabilities = []Capability{CapAppend, CapRead, CapReadPayloads, CapAdmin, CapDiscover}

// BuiltinRoles are the roles every policy knows.
var BuiltinRoles = map[string][]Capability{
	"appender": {CapAppend, CapDiscover},
	"reader":   {CapRead, CapDiscover},
	"auditor":  {CapRead, CapReadPayloads, CapDiscover},
	"admin":    {CapAdmin, CapDiscover},
}

// methodRules names the capability every RPC requires. A method missing here
// is refused (default deny); TestEveryMethodHasARule checks that every
// registered method has a rule. The health service is exempt.
var methodRules = map[string]Capability{
	"/tlog.v1.LogService/Append":              CapAppend,
	"/tlog.v1.LogService/GetCheckpoint":       CapRead,
	"/tlog.v1.LogService/GetInclusionProof":   CapRead,
	"/tlog.v1.LogService/GetConsistencyProof": CapRead,
	"/tlog.v1.LogService/GetEntries":          CapRead,     // CapReadPayloads too with payloads
	"/tlog.v1.LogService/StreamEntries":       CapRead,     // CapReadPayloads too with payloads
	"/tlog.v1.LogService/GetLogInfo":          CapDiscover, // limits every client needs, appenders too
	"/tlog.v1.LogService/FindRecord":          CapReadPayloads,

	"/tlog.v1.AuditService/RecordEvents": CapAppend,
	"/tlog.v1.AuditService/GetTimeline":  CapReadPayloads,
	"/tlog.v1.AuditService/QueryEvents":  CapReadPayloads,
	"/tlog.v1.AuditService/GetDrift":     CapReadPayloads,
	"/tlog.v1.AuditService/EraseSubject": CapAdmin,

	"/tlog.v1.WitnessService/ListSplitViews": CapRead,

	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      CapDiscover,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": CapDiscover,
}

// capSet is a set of capabilities.
type capSet uint8

func capBit(c Capability) capSet {
	return 1 << slices.Index(allCapabilities, c)
}

func (s capSet) has(c Capability) bool { return s&capBit(c) != 0 }

func (s capSet) names() []string {
	var out []string
	for _, c := range allCapabilities {
		if s.has(c) {
			out = append(out, string(c))
		}
	}
	return out
}

// Policy maps principals to roles. Load one with LoadPolicy.
type Policy struct {
	principals map[string]capSet
	roles      map[string][]string // principal → role names, for messages
	anonymous  capSet
}

// policyFile is the YAML form of a policy.
type policyFile struct {
	// Roles defines extra roles as lists of capabilities.
	Roles map[string][]string `yaml:"roles"`
	// Principals grants roles to authenticated principals.
	Principals map[string][]string `yaml:"principals"`
	// Anonymous grants roles to callers without credentials; only roles
	// whose capabilities are read and discover are allowed.
	Anonymous []string `yaml:"anonymous"`
}

// LoadPolicy reads a YAML policy file:
//
//	roles:                 # optional: extra roles, as capability lists
//	  exporter: [read, read_payloads]
//	principals:            # principal → roles
//	  spiffe://example.org/billing: [appender]
//	  alice@example.org: [auditor]
//	anonymous: [reader]    # optional: roles for callers without credentials
//
// Built-in roles: appender, reader, auditor, admin (see BuiltinRoles).
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return ParsePolicy(b)
}

// ParsePolicy parses the YAML form described at LoadPolicy, strictly:
// unknown fields, roles and capabilities are errors.
func ParsePolicy(b []byte) (*Policy, error) {
	var f policyFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	roles := make(map[string]capSet)
	for name, caps := range BuiltinRoles {
		for _, c := range caps {
			roles[name] |= capBit(c)
		}
	}
	for name, caps := range f.Roles {
		if _, ok := BuiltinRoles[name]; ok {
			return nil, fmt.Errorf("policy: roles.%s: redefines a built-in role", name)
		}
		if len(caps) == 0 {
			return nil, fmt.Errorf("policy: roles.%s: no capabilities", name)
		}
		for _, c := range caps {
			if !slices.Contains(allCapabilities, Capability(c)) {
				return nil, fmt.Errorf("policy: roles.%s: unknown capability %q (known: %s)", name, c, capNames())
			}
			roles[name] |= capBit(Capability(c))
		}
	}
	grant := func(field string, names []string) (capSet, error) {
		var set capSet
		for _, r := range names {
			caps, ok := roles[r]
			if !ok {
				return 0, fmt.Errorf("policy: %s: unknown role %q", field, r)
			}
			set |= caps
		}
		return set, nil
	}
	p := &Policy{principals: make(map[string]capSet), roles: make(map[string][]string)}
	for name, rs := range f.Principals {
		if err := CheckPrincipal(name); err != nil {
			return nil, fmt.Errorf("policy: principals: %w", err)
		}
		set, err := grant("principals."+name, rs)
		if err != nil {
			return nil, err
		}
		p.principals[name] = set
		p.roles[name] = rs
	}
	anon, err := grant("anonymous", f.Anonymous)
	if err != nil {
		return nil, err
	}
	if anon&^(capBit(CapRead)|capBit(CapDiscover)) != 0 {
		return nil, fmt.Errorf("policy: anonymous: may only hold read and discover, not %s", strings.Join((anon&^(capBit(CapRead)|capBit(CapDiscover))).names(), ", "))
	}
	p.anonymous = anon
	return p, nil
}

func capNames() string {
	var n []string
	for _, c := range allCapabilities {
		n = append(n, string(c))
	}
	return strings.Join(n, ", ")
}

// CheckPrincipal rejects principal names that could not come from a credential
// or would corrupt logs.
func CheckPrincipal(name string) error {
	if name == "" || len(name) > 1024 {
		return fmt.Errorf("principal name must have 1 to 1024 bytes")
	}
	if strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return fmt.Errorf("principal %q contains spaces or control characters", name)
	}
	return nil
}

// Tokens maps SHA-256 hashes of bearer tokens to principals. The file never
// holds the tokens themselves. Load one with LoadTokens.
type Tokens struct {
	byHash map[[sha256.Size]byte]string
}

// LoadTokens reads a token file: one "sha256:<hex> <principal>" per line;
// blank lines and lines starting with # are ignored. `tlogd token` prints
// such lines.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	defer f.Close()
	t := &Tokens{byHash: make(map[[sha256.Size]byte]string)}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		e, err := ParseTokenLine(text)
		if err != nil {
			return nil, fmt.Errorf("token file %s:%d: %w", path, line, err)
		}
		if _, dup := t.byHash[e.hash]; dup {
			return nil, fmt.Errorf("token file %s:%d: the same token hash appears twice", path, line)
		}
		t.byHash[e.hash] = e.Principal
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	return t, nil
}

// TokenEntry is one line of a token file.
type TokenEntry struct {
	// Principal is who the token authenticates.
	Principal string
	hash      [sha256.Size]byte
}

// ParseTokenLine parses "sha256:<64 hex digits> <principal>".
func ParseTokenLine(text string) (TokenEntry, error) {
	fields := strings.Fields(text)
	if len(fields) != 2 || !strings.HasPrefix(fields[0], "sha256:") {
		return TokenEntry{}, fmt.Errorf("want \"sha256:<64 hex digits> <principal>\"")
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(fields[0], "sha256:"))
	if err != nil || len(raw) != sha256.Size {
		return TokenEntry{}, fmt.Errorf("the hash must be 64 hex digits")
	}
	if err := CheckPrincipal(fields[1]); err != nil {
		return TokenEntry{}, err
	}
	return TokenEntry{Principal: fields[1], hash: [sha256.Size]byte(raw)}, nil
}

// TokenLine returns the token-file line for a token and principal.
func TokenLine(token, principal string) string {
	h := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(h[:]) + " " + principal
}

// Principal is the caller of an RPC, as authentication established it.
type Principal struct {
	// Name identifies the caller: a certificate identity, a token's
	// principal, or "anonymous".
	Name string
	// Via says how: "mtls", "token", "dashboard" (a token exchanged for a
	// dashboard session), "anonymous", or "open" when the server runs
	// without authentication.
	Via  string
	caps capSet
}

type principalKey struct{}

// PrincipalFrom returns the principal of a call.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// principalSlot is put in the context before authentication, so that the
// access log, which wraps the authentication step, can name the principal.
type principalSlot struct{ name string }

type slotKey struct{}

// openPrincipal is everyone when the server runs without authentication.
var openPrincipal = Principal{Name: "anonymous", Via: "open", caps: ^capSet(0)}

// authenticator establishes the principal of a call and checks it against
// the policy.
type authenticator struct {
	tokens *Tokens // nil: no bearer tokens
	mtls   bool    // client certificates are verified by the TLS layer
	policy *Policy // nil: open mode
}

// authenticate finds the caller's principal. It fails only for credentials
// that are presented but invalid; no credentials give the anonymous
// principal.
func (a *authenticator) authenticate(ctx context.Context) (Principal, error) {
	if a.policy == nil {
		return openPrincipal, nil
	}
	if p, ok := a.uiPrincipal(ctx); ok {
		return p, nil
	}
	if vals := metadata.ValueFromIncomingContext(ctx, "authorization"); len(vals) > 0 {
		if a.tokens == nil {
			return Principal{}, status.Error(codes.Unauthenticated, "bearer tokens are not accepted by this server")
		}
		tok, ok := strings.CutPrefix(vals[0], "Bearer ")
		if !ok || len(vals) > 1 {
			return Principal{}, status.Error(codes.Unauthenticated, `authorization: want one "Bearer <token>" header`)
		}
		name, ok := a.tokens.byHash[sha256.Sum256([]byte(tok))]
		if !ok {
			return Principal{}, status.Error(codes.Unauthenticated, "authorization: unknown bearer token")
		}
		return Principal{Name: name, Via: "token", caps: a.policy.principals[name]}, nil
	}
	if p, ok := peer.FromContext(ctx); ok && a.mtls {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			if name := certPrincipal(a, &ti.State); name != "" {
				return Principal{Name: name, Via: "mtls", caps: a.policy.principals[name]}, nil
			}
		}
	}
	return Principal{Name: "anonymous", Via: "anonymous", caps: a.policy.anonymous}, nil
}

// certPrincipal is the principal named by the verified client certificate
// of cs, or "" (none, or the server takes no certificates).
func certPrincipal(a *authenticator, cs *tls.ConnectionState) string {
	if !a.mtls || cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	return CertificateIdentity(cs.VerifiedChains[0][0])
}

// CertificateIdentity names the principal of a client certificate: its first
// URI SAN, else its first DNS SAN, else its subject.
func CertificateIdentity(c *x509.Certificate) string {
	switch {
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// authorize checks that p may call method: Unauthenticated for anonymous
// callers, PermissionDenied for authenticated ones.
func (a *authenticator) authorize(p Principal, method string) error {
	need, ok := methodRules[method]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s has no access rule and is refused", method)
	}
	return a.require(p, need, method)
}

// require checks that p holds capability c, needed for what (a method or a
// request option).
func (a *authenticator) require(p Principal, c Capability, what string) error {
	if p.caps.has(c) {
		return nil
	}
	if p.Via == "anonymous" {
		return status.Errorf(codes.Unauthenticated, "credentials required: %s needs capability %q; present a client certificate or a bearer token", what, c)
	}
	roles := slices.Clone(a.policy.roles[p.Name])
	sort.Strings(roles)
	if len(roles) == 0 {
		return status.Errorf(codes.PermissionDenied, "principal %q has no role in the policy; %s needs capability %q", p.Name, what, c)
	}
	return status.Errorf(codes.PermissionDenied, "principal %q (roles %s) lacks capability %q for %s", p.Name, strings.Join(roles, ", "), c, what)
}

// authFunc is the go-grpc-middleware auth function: it authenticates,
// authorizes the method, and records the principal in the context.
func (a *authenticator) authFunc(ctx context.Context) (context.Context, error) {
	method, _ := grpc.Method(ctx)
	p, err := a.authenticate(ctx)
	if slot, ok := ctx.Value(slotKey{}).(*principalSlot); ok && err == nil {
		slot.name = logSafe(p.Name)
	}
	if err != nil {
		return nil, err
	}
	if err := a.authorize(p, method); err != nil {
		return nil, err
	}
	return context.WithValue(ctx, principalKey{}, p), nil
}

// logSafe escapes control characters and invalid UTF-8 in a caller-supplied
// string, so that it cannot forge or break log lines.
func logSafe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) < 0 {
		return s
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

// requirePayloads checks, in a handler, that the caller may read payloads.
func (a *authenticator) requirePayloads(ctx context.Context) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return status.Error(codes.Internal, "internal error")
	}
	return a.require(p, CapReadPayloads, "include_payloads")
}
