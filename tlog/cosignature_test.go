package tlog_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tlogd/tlogd/tlog"
)

// goldenCosignerSeed is the seed of the cosigner key of the golden vector.
var goldenCosignerSeed = bytes.Repeat([]byte{7}, ed25519.SeedSize)

const goldenCosignTime = 1679315147

func goldenCosigner(t *testing.T) *tlog.Cosigner {
	t.Helper()
	c, err := tlog.NewCosigner("witness.example/w1", ed25519.NewKeyFromSeed(goldenCosignerSeed),
		func() time.Time { return time.Unix(goldenCosignTime, 0) })
	if err != nil {
		t.Fatalf("NewCosigner: %v", err)
	}
	return c
}

// TestCosignatureByHand checks a cosignature against the C2SP
// tlog-cosignature text, computed here without the package: the key ID, the
// signed message and the timestamp prefix.
func TestCosignatureByHand(t *testing.T) {
	c := goldenCosigner(t)
	body := testCheckpoint(t).Marshal()
	sig, err := c.Sign(body)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	priv := ed25519.NewKeyFromSeed(goldenCosignerSeed)
	pub := priv.Public().(ed25519.PublicKey)

	id := sha256.Sum256(append([]byte("witness.example/w1\n\x04"), pub...))
	if got, want := c.KeyHash(), binary.BigEndian.Uint32(id[:4]); got != want {
		t.Errorf("KeyHash = %08x, want %08x", got, want)
	}
	msg := "cosignature/v1\ntime 1679315147\n" + string(body)
	want := binary.BigEndian.AppendUint64(nil, goldenCosignTime)
	want = append(want, ed25519.Sign(priv, []byte(msg))...)
	if !bytes.Equal(sig, want) {
		t.Errorf("Sign = %x, want %x", sig, want)
	}
	wantVkey := fmt.Sprintf("witness.example/w1+%08x+%s", binary.BigEndian.Uint32(id[:4]),
		base64.StdEncoding.EncodeToString(append([]byte{4}, pub...)))
	if got := c.VerifierKey(); got != wantVkey {
		t.Errorf("VerifierKey = %q, want %q", got, wantVkey)
	}
}

func TestCosignatureNote(t *testing.T) {
	logSigner, logVerifier := newKey(t, testOrigin)
	c := goldenCosigner(t)
	msg, err := note.Sign(&note.Note{Text: string(testCheckpoint(t).Marshal())}, logSigner, c)
	if err != nil {
		t.Fatalf("note.Sign: %v", err)
	}
	v, err := tlog.NewCosignatureVerifier(c.VerifierKey())
	if err != nil {
		t.Fatalf("NewCosignatureVerifier: %v", err)
	}
	if v.String() != c.VerifierKey() {
		t.Errorf("String = %q, want %q", v.String(), c.VerifierKey())
	}
	n, err := note.Open(msg, note.VerifierList(logVerifier, v))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if len(n.Sigs) != 2 {
		t.Fatalf("verified %d signatures, want 2", len(n.Sigs))
	}
	cosig := n.Sigs[1]
	if cosig.Name != "witness.example/w1" || cosig.Hash != c.KeyHash() {
		t.Fatalf("second signature is %s/%08x, want the cosigner", cosig.Name, cosig.Hash)
	}
	ts, err := tlog.CosignatureTime(cosig)
	if err != nil || !ts.Equal(time.Unix(goldenCosignTime, 0)) {
		t.Errorf("CosignatureTime = %v, %v; want %v", ts, err, time.Unix(goldenCosignTime, 0).UTC())
	}

	// Changing the body, or the timestamp inside the signature, breaks it.
	other := tlog.Checkpoint{Origin: testOrigin, Size: 9, Root: tlog.EmptyRoot}.Marshal()
	raw, _ := base64.StdEncoding.DecodeString(cosig.Base64)
	if v.Verify(other, raw[4:]) {
		t.Error("cosignature verified for another checkpoint")
	}
	raw[4+7]++
	if v.Verify(testCheckpoint(t).Marshal(), raw[4:]) {
		t.Error("cosignature verified with another timestamp")
	}
	if v.Verify(testCheckpoint(t).Marshal(), raw[4:len(raw)-1]) {
		t.Error("short cosignature verified")
	}
}

func TestCosignerKeyRoundTrip(t *testing.T) {
	skey, vkey, err := tlog.GenerateCosignerKey("replica-1.example", rand.Reader)
	if err != nil {
		t.Fatalf("GenerateCosignerKey: %v", err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+replica-1.example+") {
		t.Errorf("private key %q lacks its prefix", skey)
	}
	c, err := tlog.ParseCosignerKey(skey+"\n", nil)
	if err != nil {
		t.Fatalf("ParseCosignerKey: %v", err)
	}
	if c.VerifierKey() != vkey || c.Name() != "replica-1.example" {
		t.Errorf("parsed cosigner %q/%q, want %q", c.Name(), c.VerifierKey(), vkey)
	}
	// A note (type 0x01) key is not a cosigner key, and the reverse.
	nskey, nvkey, _ := note.GenerateKey(rand.Reader, "log.example")
	if _, err := tlog.ParseCosignerKey(nskey, nil); !errors.Is(err, tlog.ErrMalformedKey) {
		t.Errorf("ParseCosignerKey(note key) = %v, want ErrMalformedKey", err)
	}
	if _, err := tlog.NewCosignatureVerifier(nvkey); !errors.Is(err, tlog.ErrMalformedKey) {
		t.Errorf("NewCosignatureVerifier(note key) = %v, want ErrMalformedKey", err)
	}
	if _, err := note.NewVerifier(vkey); err == nil {
		t.Error("note.NewVerifier accepted a cosigner key")
	}
}

func TestCosignatureVerifierMalformed(t *testing.T) {
	good := goldenCosigner(t).VerifierKey()
	name, rest, _ := strings.Cut(good, "+")
	hash, key, _ := strings.Cut(rest, "+")
	raw, _ := base64.StdEncoding.DecodeString(key)
	short := base64.StdEncoding.EncodeToString(raw[:len(raw)-1])
	for _, vkey := range []string{
		"",
		name,
		name + "+" + hash,
		"+" + hash + "+" + key,
		"a b+" + hash + "+" + key,
		name + "+" + strings.ToUpper(hash) + "+" + key,
		name + "+00000000+" + key,
		name + "+" + hash + "+" + short,
		name + "+" + hash + "+" + key + "+x",
		name + "+" + hash + "+!!!!",
		"other.example+" + hash + "+" + key,
	} {
		if _, err := tlog.NewCosignatureVerifier(vkey); !errors.Is(err, tlog.ErrMalformedKey) {
			t.Errorf("NewCosignatureVerifier(%q) = %v, want ErrMalformedKey", vkey, err)
		}
	}
}

func TestCosignatureTimeMalformed(t *testing.T) {
	for _, s := range []note.Signature{
		{Name: "w", Base64: "!!"},
		{Name: "w", Base64: base64.StdEncoding.EncodeToString(make([]byte, 4+64))},
		{Name: "w", Base64: base64.StdEncoding.EncodeToString(append(make([]byte, 4), bytes.Repeat([]byte{0xff}, 72)...))},
	} {
		if _, err := tlog.CosignatureTime(s); err == nil {
			t.Errorf("CosignatureTime(%q) succeeded", s.Base64)
		}
	}
}
