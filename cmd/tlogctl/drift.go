package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
)

func driftCmd(e env, args []string) error {
	c := newCommand("drift", "", `Reports how the grants in the log drifted from an approved baseline: it
replays every verified role, permission and group event of the tenant and
lists every grant held that the baseline does not approve, every approved
grant that was revoked, and every approved grant no event ever gave, each
with who did it and when (the log's time). An assignment adds a grant and
does not take the old value away: a change of role from "viewer" to "admin"
is an assignment of admin; the revocation of viewer is its own event.
Erased events cannot be replayed: a grant whose events were erased is not
seen (an approved one shows as never granted).

Where the events come from:
  (default)  a query for them, each event with its proof; a query cannot
             prove that it left nothing out
  -complete  every entry of the log, read as verified ranges, so none can
             be left out (reads the whole log)
  -server    the server replays them (GetDrift) and cites the event behind
             each item with its proof, which is checked: fastest, but the
             server could leave items out

The baseline is a YAML (or JSON) file:

  tenant: acme
  subjects:
    alice: {roles: [viewer], permissions: [reports.read], groups: [engineering]}
    svc-billing: {roles: [billing-writer]}

Events follow this convention: the target is the grantee, and a change
whose attribute is "role", "permission" or "group" names the grant (new
value when granted, old value when revoked). Deleting an account takes all
its grants. Only successful events count. The read returns payloads: it
needs the read_payloads capability and is recorded in the log. Exit code 0
whether or not there is drift (use -json to act on it).`)
	var f connFlags
	f.register(c)
	baselineFile := c.String("baseline", "", "approved grants `file` (YAML or JSON; required)")
	tenant := c.String("tenant", "", "the `tenant` to check (default: the baseline's)")
	complete := c.Bool("complete", false, "read and verify every entry, so no grant event can be left out (reads the whole log)")
	server := c.Bool("server", false, "let the server replay the events (GetDrift) and verify each item it reports; it could leave items out")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	if *baselineFile == "" {
		return cli.UsageError{Msg: "-baseline is required"}
	}
	raw, err := os.ReadFile(*baselineFile)
	if err != nil {
		return fmt.Errorf("read -baseline: %w", err)
	}
	b, err := parseBaseline(raw)
	if err != nil {
		return cli.Usagef("-baseline %s: %v", *baselineFile, err)
	}
	if *tenant != "" {
		b.Tenant = *tenant
	}
	cl, done, err := f.dial("")
	if err != nil {
		return err
	}
	defer done()
	drift := cl.Drift
	switch {
	case *complete && *server:
		return cli.Usagef("-complete and -server: choose one")
	case *complete:
		drift = cl.DriftComplete
	case *server:
		drift = cl.ServerDrift
	}
	r, err := drift(e.ctx, b)
	if err != nil {
		return err
	}
	if f.json {
		for _, it := range r.Items {
			out := map[string]any{"subject": it.Subject, "kind": it.Kind, "name": it.Name, "status": it.Status}
			if it.Event != nil {
				out["index"] = it.Event.Index
				out["log_time"] = it.Event.Time.UTC()
				out["actor"] = it.Event.Event.GetActor().GetId()
				out["action"] = it.Event.Event.GetAction().String()
			}
			printJSON(e.stdout, out)
		}
		printJSON(e.stdout, map[string]any{"differences": len(r.Items), "events": r.Events, "unreadable": r.Unreadable, "checkpoint": checkpointJSON(r.Checkpoint)})
		return nil
	}
	for _, it := range r.Items {
		line := fmt.Sprintf("%-20s %-10s %-24s %s", it.Subject, it.Kind, it.Name, strings.ToUpper(it.Status))
		if ev := it.Event; ev != nil {
			verb := map[string]string{client.DriftUnapproved: "granted", client.DriftRevoked: "taken"}[it.Status]
			line += fmt.Sprintf(": %s by %s at %s (entry %d, %s)", verb, ev.Event.GetActor().GetId(), ev.Time.UTC().Format(time.RFC3339),
				ev.Index, strings.TrimPrefix(ev.Event.GetAction().String(), "ACTION_"))
		}
		fmt.Fprintln(e.stdout, line)
	}
	replayed := "replayed " + count(r.Events, "verified grant event")
	caveat := "; a query cannot prove that no event was left out (-complete can)"
	switch {
	case *complete:
		caveat = ", read from every entry"
	case *server:
		replayed = "the server replayed " + count(r.Events, "grant event")
		caveat = "; each item's event was verified, but the server could have left items out (-complete cannot be misled)"
	}
	fmt.Fprintf(e.stdout, "%s from the baseline; %s of tenant %q in the tree of size %d",
		count(len(r.Items), "difference"), replayed, b.Tenant, r.Checkpoint.Size)
	if r.Unreadable > 0 {
		fmt.Fprintf(e.stdout, " (of which %d named no role, permission or group in their changes and changed nothing)", r.Unreadable)
	}
	fmt.Fprintln(e.stdout, caveat)
	return nil
}

// parseBaseline parses and checks a baseline file (YAML or JSON), strictly:
// unknown fields are errors.
func parseBaseline(raw []byte) (client.Baseline, error) {
	var b client.Baseline
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&b); errors.Is(err, io.EOF) {
		return b, errors.New("the file is empty; it needs a tenant and subjects (see -help)")
	} else if err != nil {
		return b, errors.New(strings.ReplaceAll(err.Error(), "drift.Grants", "a subject's grants (roles, permissions, groups)"))
	}
	return b, b.Check()
}
