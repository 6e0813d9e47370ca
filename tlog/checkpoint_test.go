package tlog_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

const testOrigin = "example.com/log"

// rootB64 is katRoots[8] in standard base64.
const rootB64 = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg="

func testCheckpoint(t *testing.T) tlog.Checkpoint {
	t.Helper()
	return tlog.Checkpoint{Origin: testOrigin, Size: 8, Root: mustHash(t, katRoots[8])}
}

// newKey returns a fresh note key pair named name.
func newKey(t *testing.T, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	testVkeys.Store(s, vkey)
	return s, v
}

// testVkeys maps the signers made by newKey to their verifier key texts.
var testVkeys sync.Map

func TestCheckpointMarshalGolden(t *testing.T) {
	want := testOrigin + "\n8\n" + rootB64 + "\n"
	c := testCheckpoint(t)
	if got := string(c.Marshal()); got != want {
		t.Errorf("Marshal = %q, want %q", got, want)
	}
	if got, want := string(tlog.Checkpoint{Origin: "o", Size: 0, Root: tlog.EmptyRoot}.Marshal()), "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"; got != want {
		t.Errorf("Marshal(empty tree) = %q, want %q", got, want)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	tests := []tlog.Checkpoint{
		testCheckpoint(t),
		{Origin: "o", Size: 0, Root: tlog.EmptyRoot},
		{Origin: "example.com/log with spaces and ünïcode", Size: 1, Root: tlog.Hash{}},
		{Origin: testOrigin, Size: 1<<64 - 1, Root: tlog.Hash(bytes.Repeat([]byte{0xff}, 32))},
		{Origin: testOrigin, Size: 1 << 63, Root: tlog.LeafHash([]byte("x"))},
	}
	for _, c := range tests {
		t.Run(c.Origin, func(t *testing.T) {
			text := c.Marshal()
			got, err := tlog.ParseCheckpoint(text)
			if err != nil {
				t.Fatalf("ParseCheckpoint(%q): %v", text, err)
			}
			if got != c {
				t.Errorf("ParseCheckpoint(Marshal(%+v)) = %+v", c, got)
			}
			if again := got.Marshal(); !bytes.Equal(again, text) {
				t.Errorf("Marshal(ParseCheckpoint(%q)) = %q", text, again)
			}
		})
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	root := rootB64
	root31 := base64.StdEncoding.EncodeToString(make([]byte, 31))
	root33 := base64.StdEncoding.EncodeToString(make([]byte, 33))
	// The last character before "=" carries 2 padding bits that must be zero.
	nonCanonical := root[:len(root)-2] + "h="
	if b, err := base64.StdEncoding.DecodeString(nonCanonical); err != nil || len(b) != 32 {
		t.Fatalf("test bug: %q should decode leniently to 32 bytes: %v", nonCanonical, err)
	}
	tests := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"newline only", "\n"},
		{"missing final newline", testOrigin + "\n8\n" + root},
		{"one line", testOrigin + "\n"},
		{"two lines", testOrigin + "\n8\n"},
		{"extension line", testOrigin + "\n8\n" + root + "\nextension\n"},
		{"empty extension line", testOrigin + "\n8\n" + root + "\n\n"},
		{"signature block", testOrigin + "\n8\n" + root + "\n\n— example.com/log AAAA\n"},
		{"empty origin", "\n8\n" + root + "\n"},
		{"CRLF", testOrigin + "\r\n8\r\n" + root + "\r\n"},
		{"control char in origin", "example.com/\x01log\n8\n" + root + "\n"},
		{"tab in origin", "example.com\tlog\n8\n" + root + "\n"},
		{"DEL in origin", "example.com/log\x7f\n8\n" + root + "\n"},
		{"CR in origin", "example.com/log\r\n8\n" + root + "\n"},
		{"empty size", testOrigin + "\n\n" + root + "\n"},
		{"leading zero", testOrigin + "\n01\n" + root + "\n"},
		{"zero zero", testOrigin + "\n00\n" + root + "\n"},
		{"plus sign", testOrigin + "\n+1\n" + root + "\n"},
		{"minus sign", testOrigin + "\n-1\n" + root + "\n"},
		{"minus zero", testOrigin + "\n-0\n" + root + "\n"},
		{"overflow", testOrigin + "\n18446744073709551616\n" + root + "\n"},
		{"huge", testOrigin + "\n99999999999999999999999\n" + root + "\n"},
		{"hex size", testOrigin + "\n0x8\n" + root + "\n"},
		{"underscore", testOrigin + "\n1_0\n" + root + "\n"},
		{"space before size", testOrigin + "\n 8\n" + root + "\n"},
		{"space after size", testOrigin + "\n8 \n" + root + "\n"},
		{"non-ASCII digit", testOrigin + "\n８\n" + root + "\n"},
		{"non-canonical base64", testOrigin + "\n8\n" + nonCanonical + "\n"},
		{"unpadded base64", testOrigin + "\n8\n" + strings.TrimRight(root, "=") + "\n"},
		{"URL base64", testOrigin + "\n8\n" + strings.NewReplacer("+", "-", "/", "_").Replace(root) + "\n"},
		{"CR in root", testOrigin + "\n8\n" + root + "\r\n"},
		{"space in root", testOrigin + "\n8\n" + root[:10] + " " + root[10:] + "\n"},
		{"hex root", testOrigin + "\n8\n" + katRoots[8] + "\n"},
		{"empty root", testOrigin + "\n8\n\n"},
		{"31-byte root", testOrigin + "\n8\n" + root31 + "\n"},
		{"33-byte root", testOrigin + "\n8\n" + root33 + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tlog.ParseCheckpoint([]byte(tt.text))
			if !errors.Is(err, tlog.ErrMalformedCheckpoint) {
				t.Errorf("ParseCheckpoint(%q) = %+v, %v; want ErrMalformedCheckpoint", tt.text, c, err)
			}
			if c != (tlog.Checkpoint{}) {
				t.Errorf("ParseCheckpoint(%q) returned %+v with its error", tt.text, c)
			}
		})
	}
}

func TestParseCheckpointAccepts(t *testing.T) {
	tests := []struct {
		text string
		want tlog.Checkpoint
	}{
		{testOrigin + "\n8\n" + rootB64 + "\n", testCheckpoint(t)},
		{"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", tlog.Checkpoint{Origin: "o", Size: 0, Root: tlog.EmptyRoot}},
		{"o\n18446744073709551615\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", tlog.Checkpoint{Origin: "o", Size: 1<<64 - 1}},
		{"a b\n10\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", tlog.Checkpoint{Origin: "a b", Size: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.want.Origin, func(t *testing.T) {
			got, err := tlog.ParseCheckpoint([]byte(tt.text))
			if err != nil {
				t.Fatalf("ParseCheckpoint(%q): %v", tt.text, err)
			}
			if got != tt.want {
				t.Errorf("ParseCheckpoint(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestSignOpenCheckpoint(t *testing.T) {
	signer, verifier := newKey(t, testOrigin)
	c := testCheckpoint(t)
	msg, err := tlog.SignCheckpoint(c, signer)
	if err != nil {
		t.Fatalf("SignCheckpoint: %v", err)
	}
	if !bytes.HasPrefix(msg, append(c.Marshal(), '\n')) {
		t.Errorf("signed note %q does not start with the body and a blank line", msg)
	}
	got, n, err := tlog.OpenCheckpoint(msg, verifier)
	if err != nil {
		t.Fatalf("OpenCheckpoint: %v", err)
	}
	if got != c {
		t.Errorf("OpenCheckpoint = %+v, want %+v", got, c)
	}
	if n.Text != string(c.Marshal()) {
		t.Errorf("note text = %q, want %q", n.Text, c.Marshal())
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != testOrigin || n.Sigs[0].Hash != verifier.KeyHash() || len(n.UnverifiedSigs) != 0 {
		t.Errorf("note signatures = %+v, unverified %+v; want one by %s", n.Sigs, n.UnverifiedSigs, testOrigin)
	}
}

// TestSignedCheckpointGolden pins the signed note bytes for a fixed key:
// Ed25519 is deterministic, so replicas applying the same batches must sign
// byte-identical checkpoints. The signature is also checked with
// crypto/ed25519 directly, independently of the note package.
// A note key pair for testOrigin from the Ed25519 seed 00 01 02 ... 1f.
const (
	goldenSignerKey   = "PRIVATE+KEY+example.com/log+d455c521+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
	goldenVerifierKey = "example.com/log+d455c521+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
)

func TestSignedCheckpointGolden(t *testing.T) {
	const (
		skey = goldenSignerKey
		vkey = goldenVerifierKey
		sig  = "1FXFIQghEbt48JV0nbbvyoj51oOGWi8PWVu51z3js1zWy2qLhh2zcvy6M2X+e8pEVRpGR/9z7MVVru29jIzLkdPuEwg="
		want = "example.com/log\n8\n" + rootB64 + "\n\n\u2014 example.com/log " + sig + "\n"
	)
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := tlog.SignCheckpoint(testCheckpoint(t), signer)
	if err != nil {
		t.Fatalf("SignCheckpoint: %v", err)
	}
	if string(msg) != want {
		t.Errorf("SignCheckpoint = %q, want %q", msg, want)
	}
	if _, _, err := tlog.OpenCheckpoint([]byte(want), verifier); err != nil {
		t.Errorf("OpenCheckpoint(golden): %v", err)
	}

	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != 4+ed25519.SignatureSize {
		t.Fatalf("golden signature: %d bytes, %v", len(raw), err)
	}
	if got := binary.BigEndian.Uint32(raw[:4]); got != 0xd455c521 {
		t.Errorf("signature key hash = %08x, want d455c521", got)
	}
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, testCheckpoint(t).Marshal(), raw[4:]) {
		t.Error("golden signature does not verify with crypto/ed25519 over the checkpoint body")
	}
}

func TestOpenCheckpointRejects(t *testing.T) {
	signer, verifier := newKey(t, testOrigin)
	otherSigner, otherVerifier := newKey(t, testOrigin) // same name, other key
	strangerSigner, strangerVerifier := newKey(t, "other.example/log")
	c := testCheckpoint(t)
	msg, err := tlog.SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(text string, signers ...note.Signer) []byte {
		t.Helper()
		m, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatalf("note.Sign(%q): %v", text, err)
		}
		return m
	}
	tampered := bytes.Replace(bytes.Clone(msg), []byte("\n8\n"), []byte("\n9\n"), 1)
	if bytes.Equal(tampered, msg) {
		t.Fatal("test bug: tampering did nothing")
	}
	tamperedRoot := bytes.Clone(msg)
	tamperedRoot[len(testOrigin)+3] ^= 'X' ^ 'Y' // first root character: X → Y
	sigFlipped := bytes.Clone(msg)
	sigFlipped[len(sigFlipped)-5] ^= 'A' ^ 'B'

	tests := []struct {
		name     string
		msg      []byte
		verifier note.Verifier
		wantErr  error
	}{
		{"other key with the same name", msg, otherVerifier, tlog.ErrCheckpointSignature},
		{"signed by other key with the same name", sign(string(c.Marshal()), otherSigner), verifier, tlog.ErrCheckpointSignature},
		{"key with another name", msg, strangerVerifier, tlog.ErrCheckpointSignature},
		{"tampered size", tampered, verifier, tlog.ErrCheckpointSignature},
		{"tampered root", tamperedRoot, verifier, tlog.ErrCheckpointSignature},
		{"corrupted signature", sigFlipped, verifier, tlog.ErrCheckpointSignature},
		{"body only", c.Marshal(), verifier, tlog.ErrCheckpointSignature},
		{"empty", nil, verifier, tlog.ErrCheckpointSignature},
		{"origin differs from key name", sign("other.example/log\n8\n"+rootB64+"\n", signer), verifier, tlog.ErrMalformedCheckpoint},
		{"signed by its origin's key, opened with ours", sign("other.example/log\n8\n"+rootB64+"\n", strangerSigner), verifier, tlog.ErrCheckpointSignature},
		{"origin is key name plus suffix", sign(testOrigin+"x\n8\n"+rootB64+"\n", signer), verifier, tlog.ErrMalformedCheckpoint},
		{"signed malformed body: leading zero", sign(testOrigin+"\n08\n"+rootB64+"\n", signer), verifier, tlog.ErrMalformedCheckpoint},
		{"signed malformed body: extension", sign(testOrigin+"\n8\n"+rootB64+"\next\n", signer), verifier, tlog.ErrMalformedCheckpoint},
		{"signed malformed body: short root", sign(testOrigin+"\n8\nAAAA\n", signer), verifier, tlog.ErrMalformedCheckpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := tlog.OpenCheckpoint(tt.msg, tt.verifier)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("OpenCheckpoint = %+v, %v; want %v", got, err, tt.wantErr)
			}
			if got != (tlog.Checkpoint{}) || n != nil {
				t.Errorf("OpenCheckpoint returned %+v, %v with its error", got, n)
			}
		})
	}

	// A signature by another key of the same name is a forgery attempt or
	// a key rotation; either way the note error stays inspectable.
	_, _, err = tlog.OpenCheckpoint(msg, otherVerifier)
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		t.Errorf("OpenCheckpoint with another key = %v, want it to wrap *note.UnverifiedNoteError", err)
	}
	_, _, err = tlog.OpenCheckpoint(tampered, verifier)
	var invalid *note.InvalidSignatureError
	if !errors.As(err, &invalid) {
		t.Errorf("OpenCheckpoint(tampered) = %v, want it to wrap *note.InvalidSignatureError", err)
	}
}

// TestOpenCheckpointCosigned checks that signatures by other keys
// (witness cosignatures) do not stop a checkpoint from opening, and are
// returned unverified.
func TestOpenCheckpointCosigned(t *testing.T) {
	signer, verifier := newKey(t, testOrigin)
	witness, _ := newKey(t, "witness.example/w1")
	c := testCheckpoint(t)
	msg, err := note.Sign(&note.Note{Text: string(c.Marshal())}, witness, signer)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := tlog.OpenCheckpoint(msg, verifier)
	if err != nil {
		t.Fatalf("OpenCheckpoint(cosigned): %v", err)
	}
	if got != c {
		t.Errorf("OpenCheckpoint = %+v, want %+v", got, c)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != testOrigin {
		t.Errorf("verified signatures = %+v, want the log's only", n.Sigs)
	}
	if len(n.UnverifiedSigs) != 1 || n.UnverifiedSigs[0].Name != "witness.example/w1" {
		t.Errorf("unverified signatures = %+v, want the witness's", n.UnverifiedSigs)
	}
}

func TestSignCheckpointNameMismatch(t *testing.T) {
	signer, _ := newKey(t, testOrigin)
	tests := []string{"other.example/log", testOrigin + "/", "Example.com/log", ""}
	for _, origin := range tests {
		t.Run(origin, func(t *testing.T) {
			c := testCheckpoint(t)
			c.Origin = origin
			msg, err := tlog.SignCheckpoint(c, signer)
			if err == nil {
				t.Fatalf("SignCheckpoint(origin %q) with key %q = %q, want an error", origin, signer.Name(), msg)
			}
			if msg != nil {
				t.Errorf("SignCheckpoint returned %q with its error", msg)
			}
		})
	}
}

func TestParseSignerKey(t *testing.T) {
	for _, in := range []string{goldenSignerKey, goldenSignerKey + "\n", "  " + goldenSignerKey + "\r\n"} {
		s, vkey, err := tlog.ParseSignerKey(in)
		if err != nil {
			t.Fatalf("ParseSignerKey(%q): %v", in, err)
		}
		if vkey != goldenVerifierKey {
			t.Errorf("ParseSignerKey(%q) verifier key = %q, want %q", in, vkey, goldenVerifierKey)
		}
		if s.Name() != testOrigin || s.KeyHash() != 0xd455c521 {
			t.Errorf("signer = %s/%08x, want %s/d455c521", s.Name(), s.KeyHash(), testOrigin)
		}
	}

	// A fresh key: the derived verifier opens what the signer signs.
	skey, wantVkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, vkey, err := tlog.ParseSignerKey(skey)
	if err != nil {
		t.Fatalf("ParseSignerKey: %v", err)
	}
	if vkey != wantVkey {
		t.Errorf("verifier key = %q, GenerateKey said %q", vkey, wantVkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := tlog.SignCheckpoint(testCheckpoint(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlog.OpenCheckpoint(msg, v); err != nil {
		t.Errorf("OpenCheckpoint with the derived verifier: %v", err)
	}

	bad := []struct{ name, skey string }{
		{"empty", ""},
		{"verifier key", goldenVerifierKey},
		{"wrong key hash", strings.Replace(goldenSignerKey, "d455c521", "d455c522", 1)},
		{"other name, same hash", strings.Replace(goldenSignerKey, "example.com/log", "example.com/lag", 1)},
		{"truncated key", goldenSignerKey[:len(goldenSignerKey)-4]},
		{"unknown algorithm", "PRIVATE+KEY+example.com/log+d455c521+AgABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"},
		{"space in name", strings.Replace(goldenSignerKey, "example.com/log", "example.com log", 1)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if s, vkey, err := tlog.ParseSignerKey(tt.skey); err == nil {
				t.Errorf("ParseSignerKey(%q) = %v, %q, nil; want an error", tt.skey, s, vkey)
			}
		})
	}
}
