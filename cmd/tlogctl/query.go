package main

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

func queryCmd(e env, args []string) error {
	c := newCommand("query", "", `Searches the audit events: every event matching all the filters given, in
log order, each verified (inclusion proof against one checkpoint, commitment,
and that it matches the filters). A query cannot prove that nothing was left
out; a subject's timeline can (tlogctl timeline). The read returns payloads:
it needs the read_payloads capability and is recorded in the log.

Ids (-subject, -actor, -target) are per tenant: give -tenant with them if the
events have one. Without an id filter, no -tenant means any tenant.`)
	var f connFlags
	f.register(c)
	q := &tlogv1.QueryEventsRequest{}
	c.StringVar(&q.Tenant, "tenant", "", "events of this `tenant`")
	c.StringVar(&q.SubjectId, "subject", "", "events whose actor or target is this `id`")
	c.StringVar(&q.ActorId, "actor", "", "events whose actor is this `id`")
	c.StringVar(&q.TargetId, "target", "", "events whose target is this `id`")
	var names []string
	for i := 1; i < len(tlogv1.Action_name); i++ {
		names = append(names, strings.TrimPrefix(tlogv1.Action(i).String(), "ACTION_"))
	}
	c.Func("action", "events with this `action`; repeat for any of several: "+strings.Join(names, ", "), func(v string) error {
		a, ok := tlogv1.Action_value["ACTION_"+strings.TrimPrefix(strings.ToUpper(v), "ACTION_")]
		if !ok || a == 0 {
			return fmt.Errorf("unknown action %q", v)
		}
		q.Actions = append(q.Actions, tlogv1.Action(a))
		return nil
	})
	c.Func("outcome", "events with this `outcome`: SUCCESS, FAILURE or DENIED", func(v string) error {
		o, ok := tlogv1.Outcome_value["OUTCOME_"+strings.TrimPrefix(strings.ToUpper(v), "OUTCOME_")]
		if !ok || o == 0 {
			return fmt.Errorf("unknown outcome %q", v)
		}
		q.Outcome = tlogv1.Outcome(o)
		return nil
	})
	for _, tf := range []struct {
		name, usage string
		dst         **timestamppb.Timestamp
	}{
		{"occurred-from", "events that occurred at or after this `time` (RFC 3339; the client's clock, occurred_at)", &q.OccurredFrom},
		{"occurred-before", "events that occurred before this `time` (RFC 3339)", &q.OccurredBefore},
		{"logged-from", "events the log sequenced at or after this `time` (RFC 3339; the log's clock, in the entry)", &q.LoggedFrom},
		{"logged-before", "events the log sequenced before this `time` (RFC 3339)", &q.LoggedBefore},
	} {
		c.Func(tf.name, tf.usage, func(v string) error {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("want RFC 3339, like 2026-11-26T09:00:00Z")
			}
			*tf.dst = timestamppb.New(t)
			return nil
		})
	}
	limit := c.Int("limit", 0, "stop after this many `events` (0: all)")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	cl, done, err := f.dial("")
	if err != nil {
		return err
	}
	defer done()
	n := 0
	for ev, err := range cl.QueryEvents(e.ctx, q) {
		if err != nil {
			return err
		}
		n++
		if f.json {
			fmt.Fprintf(e.stdout, `{"index":%d,"log_time":%q,"event":%s}`+"\n", ev.Index, ev.Time.UTC().Format(time.RFC3339Nano), eventJSON(ev.Event))
		} else {
			fmt.Fprintln(e.stdout, formatEvent(ev))
		}
		if *limit > 0 && n == *limit {
			break
		}
	}
	cp, _ := cl.Trusted() // the query's checkpoint, verified and trusted
	if f.json {
		printJSON(e.stdout, map[string]any{"events": n, "checkpoint": checkpointJSON(cp)})
	} else {
		fmt.Fprintf(e.stdout, "%s, each verified in the tree of size %d; a query does not prove that none was left out (tlogctl timeline does, per subject)\n", count(n, "event"), cp.Size)
	}
	if n == 0 && q.Tenant == "" && (q.SubjectId != "" || q.ActorId != "" || q.TargetId != "") {
		fmt.Fprintln(e.stderr, "tlogctl query: no events; ids are per tenant: if the events have one, give -tenant")
	}
	return nil
}
