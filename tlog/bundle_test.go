package tlog_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

func TestProofBundle(t *testing.T) {
	signer, verifier := newKey(t, "example.com/bundle")
	f := newFixture(t, 13)
	signed, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: "example.com/bundle", Size: 13, Root: f.roots[13]}, signer)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := tlog.InclusionProof(6, 13, f.reader(13))
	if err != nil {
		t.Fatal(err)
	}
	entry := tlog.Entry{Time: 1700000000000, Commitment: tlog.Commit(make([]byte, 16), []byte("p"))}.AppendBinary(nil)
	p := tlog.Proof{Extra: tlog.RecordExtra(entry, make([]byte, 16)), Index: 6, Hashes: hashes, Checkpoint: signed}
	text := p.Marshal()
	if !bytes.HasPrefix(text, []byte("c2sp.org/tlog-proof@v1\nextra ")) || !bytes.Contains(text, []byte("\nindex 6\n")) || !bytes.HasSuffix(text, signed) {
		t.Fatalf("proof text:\n%s", text)
	}
	got, err := tlog.ParseProof(text)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), text) {
		t.Fatal("round trip changed the proof")
	}
	if cp, err := got.Verify(f.leaves[6], verifier); err != nil || cp.Size != 13 {
		t.Fatalf("Verify: %+v %v", cp, err)
	}
	e, salt, err := tlog.ParseRecordExtra(got.Extra)
	if err != nil || !bytes.Equal(e, entry) || len(salt) != 16 {
		t.Fatalf("extra: %x %x %v", e, salt, err)
	}
	// Wrong leaf, wrong index, tampered hash, wrong key.
	if _, err := got.Verify(f.leaves[5], verifier); !errors.Is(err, tlog.ErrProof) {
		t.Fatalf("wrong leaf: %v", err)
	}
	moved := got
	moved.Index = 7
	if _, err := moved.Verify(f.leaves[6], verifier); !errors.Is(err, tlog.ErrProof) {
		t.Fatalf("wrong index: %v", err)
	}
	tampered, _ := tlog.ParseProof(text)
	tampered.Hashes[0][0] ^= 1
	if _, err := tampered.Verify(f.leaves[6], verifier); !errors.Is(err, tlog.ErrProof) {
		t.Fatalf("tampered hash: %v", err)
	}
	_, other := newKey(t, "example.com/bundle")
	if _, err := got.Verify(f.leaves[6], other); !errors.Is(err, tlog.ErrCheckpointSignature) {
		t.Fatalf("other key: %v", err)
	}
	// No extra line is fine.
	bare := tlog.Proof{Index: 6, Hashes: hashes, Checkpoint: signed}
	if back, err := tlog.ParseProof(bare.Marshal()); err != nil || back.Extra != nil {
		t.Fatalf("bare proof: %v", err)
	}
	for _, bad := range []string{
		"",
		"c2sp.org/tlog-proof@v2\nindex 1\n\n" + string(signed),
		"c2sp.org/tlog-proof@v1\nindex 01\n\n" + string(signed),
		"c2sp.org/tlog-proof@v1\nextra !!\nindex 1\n\n" + string(signed),
		"c2sp.org/tlog-proof@v1\nindex 1\nnot-base64\n\n" + string(signed),
		"c2sp.org/tlog-proof@v1\nindex 1\n" + strings.Repeat("A", 44) + "\n\n" + string(signed),
		"c2sp.org/tlog-proof@v1\n\n" + string(signed),
	} {
		if _, err := tlog.ParseProof([]byte(bad)); !errors.Is(err, tlog.ErrMalformedProof) {
			t.Errorf("ParseProof(%q) = %v", bad, err)
		}
	}
	if _, _, err := tlog.ParseRecordExtra([]byte{50, 1, 2}); !errors.Is(err, tlog.ErrMalformedProof) {
		t.Fatalf("short extra: %v", err)
	}
}

func FuzzParseProof(f *testing.F) {
	f.Add([]byte("c2sp.org/tlog-proof@v1\nextra AAAA\nindex 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nexample.com/x\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x AAAA\n"))
	f.Add([]byte("c2sp.org/tlog-proof@v1\nindex 0\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := tlog.ParseProof(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("round trip: %q → %q", b, p.Marshal())
		}
	})
}
