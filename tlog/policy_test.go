package tlog_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

type testWitness struct {
	name string // policy name
	c    *tlog.Cosigner
}

func newWitnesses(t *testing.T, names ...string) []testWitness {
	t.Helper()
	var ws []testWitness
	for _, n := range names {
		skey, _, err := tlog.GenerateCosignerKey("witness.example/"+n, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tlog.ParseCosignerKey(skey, nil)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, testWitness{n, c})
	}
	return ws
}

// examplePolicy is the example of the C2SP tlog-policy text: X1-X3 and Y1-Y3,
// 2 of X and any of Y.
func examplePolicy(t *testing.T, logVkey string, ws []testWitness) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# the example of the specification\nlog %s https://log.example/\n", logVkey)
	for _, w := range ws[:3] {
		fmt.Fprintf(&b, "witness %s %s\n", w.name, w.c.VerifierKey())
	}
	b.WriteString("group X-witnesses 2 X1 X2 X3\n\n")
	for _, w := range ws[3:] {
		fmt.Fprintf(&b, "  witness\t%s %s https://%s.example/\n", w.name, w.c.VerifierKey(), w.name)
	}
	b.WriteString("group Y-witnesses any Y1 Y2 Y3\ngroup X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n")
	return b.String()
}

func TestPolicyQuorum(t *testing.T) {
	logSigner, _ := newKey(t, testOrigin)
	ws := newWitnesses(t, "X1", "X2", "X3", "Y1", "Y2", "Y3")
	logVkey := vkeyOf(t, logSigner)
	p, err := tlog.ParsePolicy([]byte(examplePolicy(t, logVkey, ws)))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	if len(p.Logs()) != 1 || len(p.Witnesses()) != 6 {
		t.Fatalf("policy has %d logs and %d witnesses, want 1 and 6", len(p.Logs()), len(p.Witnesses()))
	}
	if got, none := p.WitnessURL(p.Witnesses()[3]), p.WitnessURL(p.Witnesses()[0]); got != "https://Y1.example/" || none != "" {
		t.Errorf("witness URLs %q and %q, want https://Y1.example/ and none", got, none)
	}
	if got := p.LogURL(testOrigin); got != "https://log.example/" {
		t.Errorf("log URL %q, want https://log.example/", got)
	}
	body := testCheckpoint(t).Marshal()
	for _, tc := range []struct {
		cosigners string
		met       bool
	}{
		{"", false},
		{"X1 X2", false},
		{"X1 Y1", false},
		{"X1 X2 Y3", true},
		{"X1 X2 X3 Y1 Y2 Y3", true},
		{"Y1 Y2 Y3 X3", false},
		{"X2 X3 Y2", true},
	} {
		signers := []note.Signer{logSigner}
		for _, w := range ws {
			if strings.Contains(" "+tc.cosigners+" ", " "+w.name+" ") {
				signers = append(signers, w.c)
			}
		}
		msg, err := note.Sign(&note.Note{Text: string(body)}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		c, _, cosigned, err := p.Open(msg)
		if tc.met {
			if err != nil || c.Size != 8 || len(cosigned) != len(signers)-1 {
				t.Errorf("cosigned by %q: Open = size %d, %d cosigners, %v; want size 8, %d, nil", tc.cosigners, c.Size, len(cosigned), err, len(signers)-1)
			}
		} else if !errors.Is(err, tlog.ErrQuorum) {
			t.Errorf("cosigned by %q: Open = %v, want ErrQuorum", tc.cosigners, err)
		}
	}

	// A cosignature line that names a known witness but does not verify
	// makes the whole note invalid, quorum or not.
	msg, _ := note.Sign(&note.Note{Text: string(body)}, logSigner, ws[0].c, ws[1].c, ws[3].c)
	bad := flipSignature(t, msg, "witness.example/X2")
	if _, _, _, err := p.Open(bad); err == nil {
		t.Error("Open accepted a note with a broken cosignature")
	}

	// A checkpoint of another log, or without the log's signature.
	otherSigner, _ := newKey(t, "other.example/log")
	other := tlog.Checkpoint{Origin: "other.example/log", Size: 8, Root: mustHash(t, katRoots[8])}
	msg, _ = note.Sign(&note.Note{Text: string(other.Marshal())}, otherSigner, ws[0].c, ws[1].c, ws[3].c)
	if _, _, _, err := p.Open(msg); !errors.Is(err, tlog.ErrCheckpointSignature) {
		t.Errorf("Open(another log) = %v, want ErrCheckpointSignature", err)
	}
	msg, _ = note.Sign(&note.Note{Text: string(body)}, ws[0].c, ws[1].c, ws[3].c)
	if _, _, _, err := p.Open(msg); !errors.Is(err, tlog.ErrCheckpointSignature) {
		t.Errorf("Open(cosigned, not signed by the log) = %v, want ErrCheckpointSignature", err)
	}
}

func TestPolicyNone(t *testing.T) {
	logSigner, _ := newKey(t, testOrigin)
	p, err := tlog.ParsePolicy([]byte("log " + vkeyOf(t, logSigner) + "\nquorum none\n"))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	msg, _ := note.Sign(&note.Note{Text: string(testCheckpoint(t).Marshal())}, logSigner)
	if _, _, cosigned, err := p.Open(msg); err != nil || len(cosigned) != 0 {
		t.Errorf("Open = %d cosigners, %v; want 0, nil", len(cosigned), err)
	}
}

func TestParsePolicyMalformed(t *testing.T) {
	logSigner, _ := newKey(t, testOrigin)
	logVkey := vkeyOf(t, logSigner)
	otherSigner, _ := newKey(t, testOrigin) // another key, the same origin
	otherVkey := vkeyOf(t, otherSigner)
	ws := newWitnesses(t, "A", "B")
	a, b := ws[0].c.VerifierKey(), ws[1].c.VerifierKey()
	for _, tc := range []struct{ text, want string }{
		{"log " + logVkey + "\n", "no quorum line"},
		{"quorum none\nquorum none\n", "line 2: a second quorum line"},
		{"quorum A\n", "line 1: quorum \"A\" is not a witness or group defined above"},
		{"log " + a + "\nquorum none\n", "line 1: log key"},
		{"witness A " + logVkey + "\nquorum none\n", "line 1: witness A"},
		{"log " + logVkey + "\nlog " + logVkey + "\nquorum none\n", "line 2: log key listed twice"},
		{"log " + logVkey + "\nlog " + otherVkey + "\nquorum none\n", "line 2: a second log with origin"},
		{"witness A " + a + "\nwitness B " + a + "\nquorum none\n", "line 2: witness B: key listed twice"},
		{"witness A " + a + "\nwitness A " + b + "\nquorum none\n", "line 2: name \"A\" already defined"},
		{"witness none " + a + "\nquorum none\n", "line 1: name \"none\" already defined"},
		{"witness A " + a + "\ngroup G 2 A\nquorum G\n", "line 2: group G: threshold \"2\""},
		{"witness A " + a + "\ngroup G 0 A\nquorum G\n", "line 2: group G: threshold \"0\""},
		{"witness A " + a + "\ngroup G 01 A\nquorum G\n", "line 2: group G: threshold \"01\""},
		{"witness A " + a + "\ngroup G any A A\nquorum G\n", "line 2: group G: \"A\" listed twice"},
		{"group G any A\nwitness A " + a + "\nquorum G\n", "line 1: group G: \"A\" is not a witness or group defined above"},
		{"witness A " + a + "\ngroup G any\nquorum G\n", "line 2: want: group"},
		{"witness A " + a + "\nquorum A B\n", "line 2: want: quorum <name>"},
		{"witness A\nquorum none\n", "line 1: want: witness"},
		{"cosigner A " + a + "\nquorum none\n", "line 1: unknown keyword \"cosigner\""},
		{"quorum none\r\n", "line 1: control character 0x0d"},
	} {
		_, err := tlog.ParsePolicy([]byte(tc.text))
		if !errors.Is(err, tlog.ErrMalformedPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePolicy(%q) = %v, want ErrMalformedPolicy with %q", tc.text, err, tc.want)
		}
	}
}

// vkeyOf returns the verifier key text of a note signer made by newKey.
func vkeyOf(t *testing.T, s note.Signer) string {
	t.Helper()
	vkey, ok := testVkeys.Load(s)
	if !ok {
		t.Fatalf("no verifier key for %s", s.Name())
	}
	return vkey.(string)
}

// flipSignature returns msg with one bit of name's signature flipped.
func flipSignature(t *testing.T, msg []byte, name string) []byte {
	t.Helper()
	prefix := "\u2014 " + name + " "
	i := strings.Index(string(msg), prefix)
	if i < 0 {
		t.Fatalf("no signature by %s in %q", name, msg)
	}
	start := i + len(prefix)
	end := start + strings.IndexByte(string(msg[start:]), '\n')
	raw, err := base64.StdEncoding.DecodeString(string(msg[start:end]))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	return []byte(string(msg[:start]) + base64.StdEncoding.EncodeToString(raw) + string(msg[end:]))
}
