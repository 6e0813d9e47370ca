package tlog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tlogd/tlogd/tlog"
)

// specExample is the request body of the example of C2SP tlog-witness.
const specExample = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
`

func TestParseAddCheckpointSpecExample(t *testing.T) {
	r, err := tlog.ParseAddCheckpoint([]byte(specExample))
	if err != nil {
		t.Fatal(err)
	}
	if r.OldSize != 20852014 || len(r.Proof) != 4 || !strings.HasPrefix(string(r.Checkpoint), "example.com/behind-the-sofa\n20852163\n") {
		t.Fatalf("parsed %d, %d proof lines, checkpoint %q", r.OldSize, len(r.Proof), r.Checkpoint)
	}
	if got := string(r.Marshal()); got != specExample {
		t.Fatalf("Marshal = %q, want the request back", got)
	}
	c, err := tlog.ParseCheckpointPrefix(r.Checkpoint)
	if err != nil || c.Size != 20852163 {
		t.Fatalf("ParseCheckpointPrefix = %+v, %v", c, err)
	}
	if _, err := tlog.ParseCheckpointPrefix([]byte("o\n1\n" + rootB64 + "\nextension line\n")); err != nil {
		t.Errorf("ParseCheckpointPrefix refused an extension line: %v", err)
	}
}

func TestParseAddCheckpointMalformed(t *testing.T) {
	cp := "o\n1\n" + rootB64 + "\n\n— o AAAA\n"
	for _, body := range []string{
		"", "old 1", "old 1\n", "old 01\n\n" + cp, "old -1\n\n" + cp, "old\n\n" + cp, "new 1\n\n" + cp,
		"old 1\n" + cp, "old 1\n\n", "old 1\nAAAA\n\n" + cp, "old 1\n" + rootB64 + " \n\n" + cp,
		"old 1\n" + strings.Repeat(rootB64+"\n", 64) + "\n" + cp,
		"old 18446744073709551616\n\n" + cp,
	} {
		if _, err := tlog.ParseAddCheckpoint([]byte(body)); !errors.Is(err, tlog.ErrMalformedRequest) {
			t.Errorf("ParseAddCheckpoint(%q) = %v, want ErrMalformedRequest", body, err)
		}
	}
	if _, err := tlog.ParseAddCheckpoint([]byte("old 1\n" + strings.Repeat(rootB64+"\n", 63) + "\n" + cp)); err != nil {
		t.Errorf("63 proof lines refused: %v", err)
	}
}
