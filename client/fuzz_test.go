package client_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tlogd/tlogd/client"
)

// FuzzVerifyEvidence: arbitrary evidence files never panic and never hold
// unless two checkpoints are signed by the key.
func FuzzVerifyEvidence(f *testing.F) {
	fl := newFakeLog(f, "example.com/audit")
	c, _ := client.New(fl.serve(f), client.Config{VerifierKey: fl.vkey})
	for _, p := range [][]byte{[]byte("a"), []byte("b"), []byte("c")} {
		if _, _, err := c.Append(context.Background(), p); err != nil {
			f.Fatal(err)
		}
	}
	f.Add([]byte(`{"format":"tlogd-evidence/v1","old_checkpoint":` + quote(fl.signed[1]) + `,"new_checkpoint":` + quote(fl.signed[3]) + `,"consistency_proof":["AAAA"],"reason":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := client.ParseEvidence(b)
		if err != nil {
			return
		}
		if what, err := client.VerifyEvidence(ev, fl.vkey); err == nil {
			// fl is one honest history: nothing may prove a fork of it.
			t.Fatalf("evidence against an honest log holds: %s", what)
		}
	})
}

// FuzzVerifyExport: arbitrary export files never panic and never verify
// unless they are the honest export (or carry the same records).
func FuzzVerifyExport(f *testing.F) {
	fl := newFakeLog(f, "example.com/audit")
	c, _ := client.New(fl.serve(f), client.Config{VerifierKey: fl.vkey})
	if _, _, err := c.Append(context.Background(), events(5)...); err != nil {
		f.Fatal(err)
	}
	cp, _ := c.Trusted()
	var buf bytes.Buffer
	if err := c.Export(context.Background(), &buf, cp, 0, 0, true, nil); err != nil {
		f.Fatal(err)
	}
	honest := buf.Bytes()
	f.Add(honest)
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sum, err := client.VerifyExport(bytes.NewReader(b), fl.vkey, nil)
		if err != nil {
			return
		}
		if sum.Checkpoint.Size != cp.Size || sum.Checkpoint.Root != cp.Root {
			t.Fatalf("an export verified against another tree: %+v", sum.Checkpoint)
		}
	})
}

func quote(b []byte) string {
	var out bytes.Buffer
	out.WriteByte('"')
	for _, c := range b {
		switch c {
		case '\n':
			out.WriteString(`\n`)
		case '"', '\\':
			out.WriteByte('\\')
			out.WriteByte(c)
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('"')
	return out.String()
}
