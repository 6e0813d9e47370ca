package main

import (
	"fmt"

	"github.com/tlogd/tlogd/internal/cli"
	tlogv1 "github.com/tlogd/tlogd/proto/tlog/v1"
)

func eraseCmd(e env, args []string) error {
	c := newCommand("erase", "SUBJECT", `Erases, on a lawful request, the payloads and salts of every event naming
a subject, and the subject's index entries, in the same synced batch as the
record of the erasure it appends to the log (who, when, why: -reason, the
subject's SHA-256 key, the entries). Entries, checkpoints and every proof
stay valid;
reads of an erased event say it was erased and by which record. tlogd's own
records (payload reads, erasures) are kept. Needs the admin capability.
Events recorded while it runs are not erased.`)
	var f connFlags
	f.register(c)
	tenant := c.String("tenant", "", "the subject's `tenant` (empty for none)")
	reason := c.String("reason", "", "`why`: the request's reference and legal basis (required; recorded in the log)")
	if err := parse(c, args, e.stdout, 1, 1); err != nil {
		return err
	}
	if *reason == "" {
		return cli.UsageError{Msg: "-reason is required: it is recorded in the log with the erasure"}
	}
	cl, ctx, done, err := f.dialCall(e, "")
	if err != nil {
		return err
	}
	defer done()
	resp, cp, err := cl.EraseSubject(ctx, &tlogv1.EraseSubjectRequest{Tenant: *tenant, SubjectId: c.Args[0], Reason: *reason})
	if err != nil {
		return err
	}
	if f.json {
		printJSON(e.stdout, map[string]any{"erasure_index": resp.GetErasureIndex(), "erased_events": resp.GetErasedEvents(), "checkpoint": checkpointJSON(cp)})
		return nil
	}
	fmt.Fprintf(e.stdout, "erased the payloads of %s naming %q; the erasure is recorded at entry %d, in the tree of size %d (root %s)\n",
		count(int(resp.GetErasedEvents()), "event"), c.Args[0], resp.GetErasureIndex(), cp.Size, cp.Root)
	return nil
}
