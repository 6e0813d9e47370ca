package cli

import (
	"errors"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		min, max int
		wantArgs []string
		wantN    int
		wantErr  string
	}{
		{args: []string{"a", "-n", "3", "b"}, max: -1, wantArgs: []string{"a", "b"}, wantN: 3},
		{args: []string{"-n", "2", "--", "-n", "x"}, max: -1, wantArgs: []string{"-n", "x"}, wantN: 2},
		{args: []string{"a", "b"}, max: 1, wantErr: `unexpected argument "b"`},
		{args: []string{}, min: 1, max: 1, wantErr: "missing arguments: want FILE"},
		{args: []string{"-bogus"}, max: -1, wantErr: "flag provided but not defined: -bogus"},
		{args: []string{"-n", "x"}, max: -1, wantErr: `invalid value "x" for flag -n`},
	} {
		c := New("prog", "cmd", "FILE", "Does things.")
		n := c.Int("n", 0, "a number")
		err := c.Parse(tc.args, io.Discard, tc.min, tc.max)
		if tc.wantErr != "" {
			if !errors.As(err, new(UsageError)) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %v, want a usage error with %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(c.Args, tc.wantArgs) || *n != tc.wantN {
			t.Errorf("Parse(%q) = %v, args %q, n %d", tc.args, err, c.Args, *n)
		}
	}
}

func TestHelp(t *testing.T) {
	c := New("prog", "cmd", "FILE", "Does things.")
	c.String("out", "", "output `file`")
	var b strings.Builder
	if err := c.Parse([]string{"-help"}, &b, 1, 1); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-help) = %v", err)
	}
	for _, want := range []string{"Usage: prog cmd [flags] FILE", "Does things.", "-out file"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, b.String())
		}
	}
}

func TestEnvAndConfig(t *testing.T) {
	c := New("prog", "cmd", "", "")
	addr := c.String("addr", "default", "")
	level := c.String("log-level", "info", "")
	keep := c.String("keep", "flag", "")
	t.Setenv("P_ADDR", "from-env")
	if err := c.Parse([]string{"-keep", "cmdline"}, io.Discard, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Setenv("P_KEEP", "from-env")
	if err := c.ApplyEnvAndConfig("P_", ""); err != nil {
		t.Fatal(err)
	}
	if *addr != "from-env" || *level != "info" || *keep != "cmdline" {
		t.Fatalf("addr %q level %q keep %q", *addr, *level, *keep)
	}
}

func TestConfigList(t *testing.T) {
	c := New("prog", "cmd", "", "")
	var hosts []string
	c.Func("host", "", func(v string) error { hosts = append(hosts, v); return nil })
	level := c.String("log-level", "info", "")
	file := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(file, []byte("host: [a.example, b.example]\nlog-level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Parse(nil, io.Discard, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnvAndConfig("P_", file); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hosts, []string{"a.example", "b.example"}) || *level != "debug" {
		t.Fatalf("hosts %q level %q", hosts, *level)
	}
}
