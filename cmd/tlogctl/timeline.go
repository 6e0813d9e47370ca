package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tlogd/tlogd/client"
	"github.com/tlogd/tlogd/internal/cli"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
	"github.com/tlogd/tlogd/tlog"
)

func timelineCmd(e env, args []string) error {
	c := newCommand("timeline", "SUBJECT", `Prints the verified timeline of a subject (a user, group, role or service
account id, as an actor or a target of audit events): every event naming it,
in log order, with role and permission changes as old → new. Each line
shows when the event occurred (the client's clock, occurred_at) and, at the
end, when the log sequenced it (the log's clock, in the entry).

Everything is checked against the log's latest checkpoint: each event's
inclusion proof and commitment, and the chain of back-links in the entries.
Each event's entry holds the index of the subject's previous event, inside
the leaf hash, so a timeline with an event left out does not link up: the
command then fails with exit 1, saying which link is broken. The read
returns payloads: it needs the read_payloads capability and is recorded in
the log.`)
	var f connFlags
	f.register(c)
	tenant := c.String("tenant", "", "the subject's `tenant` (empty for none; ids are per tenant, so give it if the events have one)")
	if err := parse(c, args, e.stdout, 1, 1); err != nil {
		return err
	}
	cl, done, err := f.dial("")
	if err != nil {
		return err
	}
	defer done()
	bar := cli.NewProgress(e.stderr, "verifying events", 0)
	tl, err := cl.Timeline(e.ctx, *tenant, c.Args[0], func(n int) { bar.Update(uint64(n)) })
	if err != nil {
		return err
	}
	bar.Done(uint64(len(tl.Events)))
	if f.json {
		for _, ev := range tl.Events {
			if ev.Erased {
				fmt.Fprintf(e.stdout, `{"index":%d,"log_time":%q,"link":%s,"erased_by":%d}`+"\n", ev.Index, ev.Time.UTC().Format(time.RFC3339Nano), linkJSON(ev.Link), ev.ErasedBy)
				continue
			}
			fmt.Fprintf(e.stdout, `{"index":%d,"log_time":%q,"link":%s,"event":%s}`+"\n", ev.Index, ev.Time.UTC().Format(time.RFC3339Nano), linkJSON(ev.Link), eventJSON(ev.Event))
		}
		printJSON(e.stdout, map[string]any{"verified": true, "subject": tl.Subject, "tenant": tl.Tenant, "events": len(tl.Events), "checkpoint": checkpointJSON(tl.Checkpoint)})
		return nil
	}
	fmt.Fprintf(e.stdout, "timeline of %q%s: %s, verified against tree size %d (root %s); every event links back to the one before\n",
		tl.Subject, tenantSuffix(tl.Tenant), count(len(tl.Events), "event"), tl.Checkpoint.Size, tl.Checkpoint.Root)
	if len(tl.Events) == 0 && tl.Tenant == "" {
		fmt.Fprintln(e.stderr, "tlogctl timeline: no events; ids are per tenant: if the events have one, give -tenant")
	}
	for _, ev := range tl.Events {
		fmt.Fprintln(e.stdout, formatEvent(ev))
	}
	return nil
}

// eventJSON is an event in protobuf's JSON form, compact (protojson varies
// its spacing on purpose).
func eventJSON(ev *tlogv1.AuditEvent) []byte {
	b, _ := protojson.Marshal(ev)
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

func tenantSuffix(t string) string {
	if t == "" {
		return ""
	}
	return " in tenant " + fmt.Sprintf("%q", t)
}

func linkJSON(l uint64) string {
	if l == tlog.NoLink {
		return "null"
	}
	return fmt.Sprint(l)
}

// formatEvent is one line of a timeline.
func formatEvent(ev client.Event) string {
	if ev.Erased {
		return fmt.Sprintf("%8d  %s  ERASED by entry %d (the entry and its proof remain)", ev.Index, ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"), ev.ErasedBy)
	}
	e := ev.Event
	action := strings.TrimPrefix(e.GetAction().String(), "ACTION_")
	if e.GetAction() == tlogv1.Action_ACTION_CUSTOM {
		action = e.GetCustomAction()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%8d  %s  %-22s %s → %s %s  %s", ev.Index, e.GetOccurredAt().AsTime().UTC().Format("2006-01-02T15:04:05Z"), action,
		e.GetActor().GetId(), strings.ToLower(strings.TrimPrefix(e.GetTarget().GetType().String(), "TARGET_TYPE_")), e.GetTarget().GetId(),
		strings.TrimPrefix(e.GetOutcome().String(), "OUTCOME_"))
	for _, ch := range e.GetChanges() {
		fmt.Fprintf(&b, "  %s: %q → %q", ch.GetAttribute(), ch.GetOldValue(), ch.GetNewValue())
	}
	if e.GetReason() != "" {
		fmt.Fprintf(&b, "  (%s)", e.GetReason())
	}
	fmt.Fprintf(&b, "  [logged %s]", ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"))
	return b.String()
}
