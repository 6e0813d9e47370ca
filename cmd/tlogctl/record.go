package main

import (
	"bufio"
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tlogd/tlogd/internal/cli"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

func recordCmd(e env, args []string) error {
	c := newCommand("record", "", `Records user-management audit events, read from stdin as JSON lines (one
tlog.v1.AuditEvent per line, in protobuf's JSON form), and verifies each as
tlogctl append does; each event's entry also links back to the previous
events of its actor and target (see tlogctl timeline). An event whose tenant
and event_id are already in the log is a duplicate. For example:

  {"eventId":"e-1042","occurredAt":"2026-11-26T09:00:00Z","tenant":"acme",
   "actor":{"type":"ACTOR_TYPE_USER","id":"admin"},"action":"ACTION_ROLE_ASSIGNED",
   "target":{"type":"TARGET_TYPE_USER","id":"alice"},"outcome":"OUTCOME_SUCCESS",
   "changes":[{"attribute":"role","oldValue":"viewer","newValue":"admin"}]}

(on one line). The server checks every field and names the one it refuses.`)
	var f connFlags
	f.register(c)
	state := c.String("state", "", "`file` keeping the latest trusted checkpoint across runs (optional)")
	if err := parse(c, args, e.stdout, 0, 0); err != nil {
		return err
	}
	var events []*tlogv1.AuditEvent
	sc := bufio.NewScanner(e.stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev := &tlogv1.AuditEvent{}
		if err := protojson.Unmarshal(line, ev); err != nil {
			return cli.Usagef("stdin line %d: not an AuditEvent in JSON: %v", n, err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(events) == 0 {
		return cli.UsageError{Msg: "no events on stdin (one JSON AuditEvent per line)"}
	}
	cl, info, done, err := f.dialInfo(e, *state)
	if err != nil {
		return err
	}
	defer done()
	// Each answer echoes the event's encoding with a proof: keep batches
	// within both the request and the response limits.
	limit := min(int(info.GetMaxRequestBytes()), int(info.GetMaxResponseBytes()))
	sizes := make([]int, len(events))
	for i, ev := range events {
		sizes[i] = proto.Size(ev)
	}
	conflicts := 0
	for len(events) > 0 {
		batch := events[:batchLen(sizes, 2400, int(info.GetMaxRecordsPerAppend()), limit)]
		events, sizes = events[len(batch):], sizes[len(batch):]
		ctx, cancel := f.call(e.ctx)
		res, cp, err := cl.RecordEvents(ctx, batch...)
		cancel()
		if err != nil {
			return err
		}
		for _, r := range res {
			printAppended(e, f.json, r, cp, "")
			if r.Conflict {
				conflicts++
			}
		}
	}
	if conflicts > 0 {
		return cli.Usagef("%s refused: each event id was recorded before with other content (the rest were recorded)", count(conflicts, "event"))
	}
	return nil
}
