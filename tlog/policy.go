package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// ErrMalformedPolicy is returned for policy text that does not follow C2SP
// tlog-policy.
var ErrMalformedPolicy = errors.New("tlog: malformed policy")

// ErrQuorum is returned for a checkpoint whose cosignatures do not meet a
// policy's quorum.
var ErrQuorum = errors.New("tlog: witness quorum not met")

// Policy limits, above the C2SP recommendation of 32 logs, 32 witnesses and
// 32 groups.
const (
	maxPolicyLogs      = 64
	maxPolicyWitnesses = 256
	maxPolicyGroups    = 256
)

// Policy is a C2SP tlog-policy: the logs whose checkpoints are accepted, the
// witnesses, and the quorum of witnesses that must have cosigned a
// checkpoint for it to count.
type Policy struct {
	logs      []note.Verifier
	witnesses []*CosignatureVerifier
	urls      map[*CosignatureVerifier]string
	logURLs   map[string]string // by origin
	quorum    *quorumNode       // nil for "quorum none"
}

// quorumNode is a witness (w set) or a group: at least k of its members.
type quorumNode struct {
	w       *CosignatureVerifier
	k       int
	members []*quorumNode
}

// ParsePolicy parses a C2SP tlog-policy file: log, witness, group and quorum
// lines, comments and empty lines. Errors name the line.
func ParsePolicy(text []byte) (*Policy, error) {
	p := &Policy{urls: map[*CosignatureVerifier]string{}, logURLs: map[string]string{}}
	names := map[string]*quorumNode{}
	keys := map[string]bool{} // public keys, to refuse duplicates
	groups := 0
	quorumSeen := false
	for i, line := range bytes.Split(text, []byte("\n")) {
		lineNo := i + 1
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrMalformedPolicy, lineNo, fmt.Sprintf(format, args...))
		}
		for _, b := range line {
			if b < 0x20 && b != '\t' || b == 0x7f {
				return nil, fail("control character 0x%02x", b)
			}
		}
		fields := strings.FieldsFunc(string(line), func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch kw, args := fields[0], fields[1:]; kw {
		case "log":
			if len(args) < 1 || len(args) > 2 {
				return nil, fail("want: log <vkey> [<url>]")
			}
			v, err := note.NewVerifier(args[0])
			if err != nil {
				return nil, fail("log key: %v", err)
			}
			if raw := vkeyMaterial(args[0]); keys[raw] {
				return nil, fail("log key listed twice")
			} else {
				keys[raw] = true
			}
			if _, dup := p.Log(v.Name()); dup {
				return nil, fail("a second log with origin %q: a checkpoint names its log by its origin alone", v.Name())
			}
			if len(p.logs) == maxPolicyLogs {
				return nil, fail("more than %d logs", maxPolicyLogs)
			}
			p.logs = append(p.logs, v)
			if len(args) == 2 {
				p.logURLs[v.Name()] = args[1]
			}
		case "witness":
			if len(args) < 2 || len(args) > 3 {
				return nil, fail("want: witness <name> <vkey> [<url>]")
			}
			name := args[0]
			if name == "none" || names[name] != nil {
				return nil, fail("name %q already defined", name)
			}
			v, err := NewCosignatureVerifier(args[1])
			if err != nil {
				return nil, fail("witness %s: %v", name, err)
			}
			if raw := vkeyMaterial(args[1]); keys[raw] {
				return nil, fail("witness %s: key listed twice", name)
			} else {
				keys[raw] = true
			}
			if len(p.witnesses) == maxPolicyWitnesses {
				return nil, fail("more than %d witnesses", maxPolicyWitnesses)
			}
			p.witnesses = append(p.witnesses, v)
			if len(args) == 3 {
				p.urls[v] = args[2]
			}
			names[name] = &quorumNode{w: v}
		case "group":
			if len(args) < 3 {
				return nil, fail("want: group <name> all|any|<k> <name>...")
			}
			name, rule, members := args[0], args[1], args[2:]
			if name == "none" || names[name] != nil {
				return nil, fail("name %q already defined", name)
			}
			g := &quorumNode{}
			seen := map[string]bool{}
			for _, m := range members {
				n := names[m]
				if n == nil {
					return nil, fail("group %s: %q is not a witness or group defined above", name, m)
				}
				if seen[m] {
					return nil, fail("group %s: %q listed twice", name, m)
				}
				seen[m] = true
				g.members = append(g.members, n)
			}
			switch rule {
			case "all":
				g.k = len(members)
			case "any":
				g.k = 1
			default:
				k, err := strconv.Atoi(rule)
				if err != nil || strconv.Itoa(k) != rule || k < 1 || k > len(members) {
					return nil, fail("group %s: threshold %q must be all, any or a decimal from 1 to %d", name, rule, len(members))
				}
				g.k = k
			}
			if groups++; groups > maxPolicyGroups {
				return nil, fail("more than %d groups", maxPolicyGroups)
			}
			names[name] = g
		case "quorum":
			if len(args) != 1 {
				return nil, fail("want: quorum <name>")
			}
			if quorumSeen {
				return nil, fail("a second quorum line")
			}
			quorumSeen = true
			if args[0] != "none" {
				if p.quorum = names[args[0]]; p.quorum == nil {
					return nil, fail("quorum %q is not a witness or group defined above", args[0])
				}
			}
		default:
			return nil, fail("unknown keyword %q (want log, witness, group or quorum)", kw)
		}
	}
	if !quorumSeen {
		return nil, fmt.Errorf("%w: no quorum line", ErrMalformedPolicy)
	}
	return p, nil
}

// vkeyMaterial returns the public key a vkey wraps, whatever its name, ID
// and signature type. The vkey has been parsed already.
func vkeyMaterial(vkey string) string {
	raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	return string(raw[1:])
}

// Logs returns the verifiers of the policy's logs.
func (p *Policy) Logs() []note.Verifier { return p.logs }

// Witnesses returns the verifiers of the policy's witnesses.
func (p *Policy) Witnesses() []*CosignatureVerifier { return p.witnesses }

// LogURL returns the URL the policy gives for the log with the given
// origin, or "" when it gives none. tlogd reads it as the log's tlog-tiles
// prefix.
func (p *Policy) LogURL(origin string) string { return p.logURLs[origin] }

// WitnessURL returns the URL the policy gives for a witness (its
// tlog-witness submission prefix), or "" when it gives none.
func (p *Policy) WitnessURL(w *CosignatureVerifier) string { return p.urls[w] }

// Log returns the verifier of the log with the given origin, if the policy
// lists it.
func (p *Policy) Log(origin string) (note.Verifier, bool) {
	for _, v := range p.logs {
		if v.Name() == origin {
			return v, true
		}
	}
	return nil, false
}

// Met reports whether cosignatures by the given witnesses meet the quorum.
func (p *Policy) Met(cosigned []*CosignatureVerifier) bool {
	return p.quorum == nil || p.quorum.met(cosigned)
}

func (n *quorumNode) met(cosigned []*CosignatureVerifier) bool {
	if n.w != nil {
		for _, c := range cosigned {
			if c == n.w {
				return true
			}
		}
		return false
	}
	k := 0
	for _, m := range n.members {
		if m.met(cosigned) {
			k++
		}
	}
	return k >= n.k
}

// Open verifies a signed checkpoint against the policy: it must carry a
// valid signature by one of the policy's logs, whose name is its origin, and
// valid cosignatures by witnesses meeting the quorum. Any signature by a
// known key that fails to verify makes the note invalid. It returns the
// checkpoint, the note and the witnesses whose cosignatures verified.
func (p *Policy) Open(msg []byte) (Checkpoint, *note.Note, []*CosignatureVerifier, error) {
	verifiers := make([]note.Verifier, 0, len(p.logs)+len(p.witnesses))
	verifiers = append(verifiers, p.logs...)
	for _, w := range p.witnesses {
		verifiers = append(verifiers, w)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return Checkpoint{}, nil, nil, fmt.Errorf("%w: %w", ErrCheckpointSignature, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, nil, err
	}
	log, ok := p.Log(c.Origin)
	if !ok {
		return Checkpoint{}, nil, nil, fmt.Errorf("%w: origin %q is not a log of the policy", ErrCheckpointSignature, c.Origin)
	}
	var logSigned bool
	var cosigned []*CosignatureVerifier
	for _, s := range n.Sigs {
		if s.Name == log.Name() && s.Hash == log.KeyHash() {
			logSigned = true
		}
		for _, w := range p.witnesses {
			if s.Name == w.Name() && s.Hash == w.KeyHash() {
				cosigned = append(cosigned, w)
			}
		}
	}
	if !logSigned {
		return Checkpoint{}, nil, nil, fmt.Errorf("%w: no signature by the log %q", ErrCheckpointSignature, c.Origin)
	}
	if !p.Met(cosigned) {
		return Checkpoint{}, nil, nil, fmt.Errorf("%w: %d of the policy's %d witnesses cosigned size %d", ErrQuorum, len(cosigned), len(p.witnesses), c.Size)
	}
	return c, n, cosigned, nil
}
