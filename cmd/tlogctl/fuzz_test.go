package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/tlog"
)

// FuzzParseBaseline: any baseline file is parsed without a panic, and one
// that parses is written back (as YAML) to a file that parses to the same
// baseline. (An empty tenant is valid: -tenant may give it, and
// single-tenant logs have none.)
func FuzzParseBaseline(f *testing.F) {
	f.Add([]byte("tenant: acme\nsubjects:\n  alice: {roles: [viewer], permissions: [reports.read], groups: [engineering]}\n  svc-billing: {roles: [billing-writer]}\n"))
	f.Add([]byte(`{"tenant": "acme", "subjects": {"bob": {"roles": ["admin"]}}}`))
	f.Add([]byte("tenant: acme\nsubjects: {}\nextra: 1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := parseBaseline(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		out, err := yaml.Marshal(b)
		if err != nil {
			t.Fatalf("a parsed baseline does not encode: %v", err)
		}
		again, err := parseBaseline(out)
		if err != nil || !sameBaseline(again, b) {
			t.Fatalf("round trip of %q through %q: %v", raw, out, err)
		}
	})
}

// sameBaseline compares baselines, an empty list the same as none.
func sameBaseline(a, b client.Baseline) bool {
	if a.Tenant != b.Tenant || len(a.Subjects) != len(b.Subjects) {
		return false
	}
	for s, ga := range a.Subjects {
		gb, ok := b.Subjects[s]
		if !ok || !slices.Equal(ga.Roles, gb.Roles) || !slices.Equal(ga.Permissions, gb.Permissions) || !slices.Equal(ga.Groups, gb.Groups) {
			return false
		}
	}
	return true
}

// FuzzReadJSONLines: any standard input of tlogctl append is read without
// a panic; every payload it gives is one non-empty line, and valid JSON.
func FuzzReadJSONLines(f *testing.F) {
	f.Add([]byte("{\"a\": 1}\n\n[1,2]\n\"x\"\n"))
	f.Add([]byte("{\"a\": \n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		payloads, names, err := readJSONLines(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(payloads) != len(names) {
			t.Fatalf("%d payloads, %d names", len(payloads), len(names))
		}
		for _, p := range payloads {
			if len(p) == 0 || bytes.ContainsRune(p, '\n') || !json.Valid(p) {
				t.Fatalf("payload %q", p)
			}
		}
	})
}

// FuzzParseTreeState: any monitor -full state file is parsed without a
// panic, and a tree that parses is saved back to the same state.
func FuzzParseTreeState(f *testing.F) {
	tr, _ := tlog.NewTree(0, nil)
	for i := range 5 {
		tr.Append(tlog.Hash{byte(i)}, nil)
	}
	st := treeState{Size: tr.Size()}
	for _, h := range tr.Hashes() {
		st.Hashes = append(st.Hashes, h[:])
	}
	b, _ := json.Marshal(st)
	f.Add(b)
	f.Add([]byte(`{"size":1,"hashes":["AA=="]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := parseTreeState(b)
		if err != nil {
			return
		}
		if h := tr.Hashes(); uint64(len(h)) > 64 || tr.Size() == 0 && len(h) != 0 {
			t.Fatalf("a tree of size %d with %d hashes", tr.Size(), len(h))
		}
	})
}
