package main

import "testing"

// FuzzParseBaseline: any baseline file is parsed without a panic, and one
// that parses passes the baseline's own check. (An empty tenant is valid:
// -tenant may give it, and single-tenant logs have none.)
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
		if err := b.Check(); err != nil {
			t.Fatalf("a parsed baseline fails its check: %v", err)
		}
	})
}
